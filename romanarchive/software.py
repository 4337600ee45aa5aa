"""Installed package versions, as recorded in the provenance of every output."""

from __future__ import annotations

import functools
from collections.abc import Iterable
from importlib import metadata

#: Packages that determine calibrated L2 pixels (``romanarchive.calib.pipeline.software_versions`` records them);
#: provenance downstream of the calibration (e.g. the time-series tables) records them too.
CALIBRATION_PACKAGES = ("romancal", "stcal", "stpipe", "roman_datamodels", "rad", "romanisim", "numpy", "astropy",
                        "gwcs", "crds")


def package_versions(names: Iterable[str], missing: str | None = None) -> dict[str, str]:
    """Versions of the named distributions.

    Parameters
    ----------
    names
        Distribution names, in the order the result lists them.
    missing
        Value for a distribution that is not installed; ``None`` leaves it out.
    """
    return dict(_versions(tuple(names), missing))


@functools.lru_cache(maxsize=32)
def _versions(names: tuple[str, ...], missing: str | None) -> tuple[tuple[str, str], ...]:
    # Installed versions do not change within a process; a lookup costs ~1 ms per package otherwise.
    out = []
    for name in names:
        try:
            out.append((name, metadata.version(name)))
        except metadata.PackageNotFoundError:
            if missing is not None:
                out.append((name, missing))
    return tuple(out)
