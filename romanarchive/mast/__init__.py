"""MAST-compatible search API (mission search, portal ``invoke`` subset, downloads) that unmodified astroquery uses."""

from romanarchive.mast.common import MastError

__all__ = ["MastError"]
