"""``python -m romanarchive.cli``."""

from romanarchive.cli.main import main

main()
