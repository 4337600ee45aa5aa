"""Astrometry check: the L4 object catalog against Gaia DR3, residual statistics per skycell (L3 image).

A thin step (:func:`check_astrometry`, configured by :class:`AstrometryConfig`) over a pure function of arrays
(:func:`residual_stats`). Point-like objects of a release are matched to their nearest reference star within the
radius (the HEALPix sort-merge of ``romanarchive xmatch``); residuals are catalog minus reference, in mas, with RA
residuals multiplied by cos(dec). Results replace the release's rows of ``astrometry_checks`` (TAP
``roman.astrometry_checks``). The reference positions are at their catalog epoch: the bundled Gaia table has no
proper motions, so stars' motion since J2016.0 shows up in the scatter.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import sqlalchemy as sa
from pydantic import BaseModel, Field

from romanarchive.xmatch.match import crossmatch
from romanarchive.xmatch.sources import read_table

MAS_PER_DEG = 3_600_000.0


class AstrometryConfig(BaseModel):
    """Parameters of the astrometry check."""

    radius_arcsec: float = Field(default=0.5, gt=0, le=3600, description="Match radius")
    reference: str = Field(default="refcat.gaia_dr3_bright", description="Published reference catalog")
    release: str = Field(default="live", description="Release of the object catalog rows to check")


def residual_stats(ra: np.ndarray, dec: np.ndarray, ref_ra: np.ndarray, ref_dec: np.ndarray,
                   radius_deg: float) -> dict[str, float | int | None]:
    """Residual statistics of positions against their nearest reference position within the radius.

    Parameters
    ----------
    ra, dec
        Catalog positions (degrees).
    ref_ra, ref_dec
        Reference positions (degrees).
    radius_deg
        Match radius.

    Returns
    -------
    dict
        ``n_objects``, ``n_matched`` and the median, robust scatter (1.4826 MAD) of the RA (times cos dec) and Dec
        residuals and the median and 90th percentile separation, in mas (None without matches).
    """
    out: dict[str, float | int | None] = {"n_objects": len(ra), "n_matched": 0}
    keys = ("dra_median", "ddec_median", "dra_scatter", "ddec_scatter", "sep_median", "sep_p90")
    out.update(dict.fromkeys(keys))
    if len(ra) == 0 or len(ref_ra) == 0:
        return out
    pairs = crossmatch(ra, dec, ref_ra, ref_dec, radius_deg, nearest=True)
    out["n_matched"] = len(pairs)
    if len(pairs) == 0:
        return out
    r_ra, r_dec = ref_ra[pairs.right], ref_dec[pairs.right]
    dra = ((ra[pairs.left] - r_ra + 180.0) % 360.0 - 180.0) * np.cos(np.radians(r_dec)) * MAS_PER_DEG
    ddec = (dec[pairs.left] - r_dec) * MAS_PER_DEG
    sep = pairs.sep_arcsec * 1000.0

    def mad(x: np.ndarray) -> float:
        return float(1.4826 * np.median(np.abs(x - np.median(x))))

    out.update({"dra_median": float(np.median(dra)), "ddec_median": float(np.median(ddec)),
                "dra_scatter": mad(dra), "ddec_scatter": mad(ddec), "sep_median": float(np.median(sep)),
                "sep_p90": float(np.percentile(sep, 90))})  # fmt: skip
    return out


def check_astrometry(engine: sa.Engine, home: Path, config: AstrometryConfig | None = None) -> list[dict[str, object]]:
    """Run the check on every skycell of a release and store the rows of ``astrometry_checks``.

    Returns
    -------
    list of dict
        The rows written, one per skycell.
    """
    cfg = config or AstrometryConfig()
    ref, _ = read_table(engine, home, cfg.reference)
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT skycell, ra, dec FROM objects WHERE release = :r AND point_like "
                                    "AND skycell IS NOT NULL ORDER BY skycell"), {"r": cfg.release}).all()
    cells = np.array([r[0] for r in rows], dtype=object)
    ra = np.array([r[1] for r in rows], np.float64)
    dec = np.array([r[2] for r in rows], np.float64)
    written = []
    for cell in sorted(set(cells.tolist())):
        sel = cells == cell
        stats = residual_stats(ra[sel], dec[sel], ref.ra, ref.dec, cfg.radius_arcsec / 3600)
        written.append({"skycell": cell, "release": cfg.release, "reference": cfg.reference,
                        "radius_arcsec": cfg.radius_arcsec, **stats})
    with engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM astrometry_checks WHERE release = :r"), {"r": cfg.release})
        if written:
            cols = list(written[0])
            conn.execute(sa.text(f"INSERT INTO astrometry_checks ({', '.join(cols)}) VALUES "
                                 f"({', '.join(':' + c for c in cols)})"), written)
    return written
