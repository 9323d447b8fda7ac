"""The command line (``python -m mnemo_tutorial`` or ``mnemo-tutorial``); importing it loads no
torch until a command that needs it runs."""

from mnemo_tutorial.cli.commands import main

__all__ = ["main"]
