"""``python -m mnemo_tutorial``: see :mod:`mnemo_tutorial.cli`."""
import sys

from .cli import main

sys.exit(main())
