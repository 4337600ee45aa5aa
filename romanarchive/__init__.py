"""romanarchive: the archive and catalog system for the Roman Wide Field Imager."""

__version__ = "0.1.0"
