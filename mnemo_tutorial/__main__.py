"""``python -m mnemo_tutorial``: see :mod:`mnemo_tutorial.cli`."""

import sys

from mnemo_tutorial.cli import main

sys.exit(main())
