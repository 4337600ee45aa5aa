"""Python client of the Roman WFI archive: one import for TAP searches, products, cutouts, light curves and
Level 5 submissions, built on pyvo; the server URL comes from astropy configuration (``conf.server``)."""

from romanarchive.client.config import conf
from romanarchive.client.core import RomanArchive

__all__ = ["RomanArchive", "conf"]
