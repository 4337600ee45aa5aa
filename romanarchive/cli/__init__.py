"""``romanarchive`` command line: the top layer, gathering every domain's commands (see :mod:`.main`)."""

from romanarchive.cli.main import main

__all__ = ["main"]
