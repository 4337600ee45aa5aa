"""One pass over the live L3s: the truth sources each covers, and Source Extractor's catalog of it.

Source Extractor is run by :func:`romanarchive.catalog.peer.run_source_extractor` (its defaults: detection at
1.5 σ, DETECT_MINAREA 5, weight = the L3's ``err`` as an RMS map) on the same pixels the archive catalogued; its
windowed positions are matched to the truth with the same radius as the archive's rows. Completeness of both is
per band and magnitude bin over the truth sources on valid L3 pixels of that band (stars, variables and galaxies:
saturated Gaia stars, moving objects and transients have no single co-add magnitude).
"""

from __future__ import annotations

import inspect
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from romanarchive.archive import Archive
from romanarchive.catalog.peer import available, run_source_extractor
from romanarchive.validate.catalog_checks import MATCH_RADIUS
from romanarchive.validate.inputs import StoredProduct, local_file, read_image, validate_model
from romanarchive.validate.matching import Truth, nearest
from romanarchive.validate.stats import Completeness, Figure, at_most, completeness, completeness_shortfall

SECTION = "completeness"
#: Truth kinds in the completeness sample.
COMPLETENESS_KINDS = ("star", "variable", "galaxy")
MAG_EDGES = tuple(np.arange(18.0, 27.01, 0.5))
#: Detection threshold (sigma) of the comparison with source-extractor (its default where the runner lacks it).
PEER_DETECT_THRESH = 3.0
_PEER_OPTIONS: dict[str, Any] = ({"detect_thresh": PEER_DETECT_THRESH}
                 if "detect_thresh" in inspect.signature(run_source_extractor).parameters else {})


@dataclass
class L3Pass:
    """What the pass over the L3s found."""

    #: Per band: truth rows on a valid pixel of some L3 of that band.
    coverage: dict[str, np.ndarray] = field(default_factory=dict)
    #: Per band: Source Extractor's (ra, dec) over all L3s of the band (None when it was not run).
    peer: dict[str, tuple[np.ndarray, np.ndarray]] | None = None
    peer_wall_s: float = 0.0
    peer_note: str = ""
    #: Metadata of the first L3 read and its roman_datamodels validation error ('' = valid).
    meta: dict[str, Any] | None = None
    invalid: str = ""


def scan_l3(archive: Archive, l3: list[StoredProduct], truth: Truth, run_peer: bool,
            progress: Callable[[int], Any] | None = None) -> L3Pass:
    """Read every live L3 once: truth coverage per band, and (``run_peer``) Source Extractor's catalog.

    ``progress`` is called with 1 after each L3 (a progress bar's ``update``).
    """
    out = L3Pass()
    n = len(truth.table)
    if run_peer and not available():
        run_peer = False
        out.peer_note = "source-extractor is not installed (Debian package source-extractor)"
    peer: dict[str, list[np.ndarray]] = {}
    for i, product in enumerate(l3):
        band = product.filter.upper()
        with local_file(archive, product) as path:
            image = read_image(path)
            if i == 0:
                out.meta, out.invalid = image.meta, validate_model(path)
        cov = out.coverage.setdefault(band, np.zeros(n, dtype=bool))
        cov |= image.covers(truth.ra, truth.dec)
        if run_peer:
            t0 = time.perf_counter()
            try:
                res = run_source_extractor(image.data, image.err, image.wcs, **_PEER_OPTIONS)
            except Exception as exc:  # noqa: BLE001 - a failed peer run is reported, not fatal
                out.peer_note = f"source-extractor failed on {product.filename}: {exc}"
                run_peer = False
            else:
                tab = res.table
                peer.setdefault(band, []).append(np.column_stack([np.asarray(tab["ALPHAWIN_J2000"], float),
                                                                  np.asarray(tab["DELTAWIN_J2000"], float)]))
            out.peer_wall_s += time.perf_counter() - t0
        if progress is not None:
            progress(1)
    if run_peer:
        out.peer = {b: (np.concatenate(v)[:, 0], np.concatenate(v)[:, 1]) for b, v in peer.items()}
    return out


def detected(truth: Truth, ra: np.ndarray, dec: np.ndarray, radius: float = MATCH_RADIUS) -> np.ndarray:
    """Per truth source: a catalog position within ``radius``."""
    _, sep = nearest(truth.ra, truth.dec, ra, dec)
    return sep <= radius


def completeness_figures(truth: Truth, ours: np.ndarray, scan: L3Pass, plot: dict[str, Any]) -> list[Figure]:
    """Per band: the archive's and Source Extractor's completeness per magnitude bin, and Source Extractor's share of
    rows without a truth source (for reference).

    ``ours`` is the per-truth-source detection by the archive's catalog (any row within the match radius).
    """
    figs: list[Figure] = []
    sample = np.isin(truth.kind, COMPLETENESS_KINDS)
    tra, tdec, _ = truth.all_positions()
    for band, cov in sorted(scan.coverage.items()):
        sel = sample & cov
        mag = truth.mag(band)[sel]
        ours_c = completeness(mag, ours[sel], MAG_EDGES)
        entry: dict[str, Any] = {"ours": ours_c}
        if scan.peer is not None and band in scan.peer:
            pra, pdec = scan.peer[band]
            peer_c = completeness(mag, detected(truth, pra, pdec)[sel], MAG_EDGES)
            entry["peer"] = peer_c
            shortfall = completeness_shortfall(ours_c, peer_c)
            figs.append(Figure(SECTION, f"{band} completeness shortfall vs source-extractor (worst bin)",
                               shortfall, at_most(0.0), note=_table(ours_c, peer_c),
                               detail={"archive": ours_c.as_dict(), "source_extractor": peer_c.as_dict()}))
            # Only source-extractor rows inside the covered area can be judged: all of them are (same pixels).
            _, psep = nearest(pra, pdec, tra, tdec)
            figs.append(Figure(SECTION, f'{band} source-extractor rows without a truth source within {MATCH_RADIUS}"',
                               float((psep > MATCH_RADIUS).mean()) if len(psep) else None,
                               note=f"{len(psep)} rows over all L3s of the band (overlaps counted twice)"))
        else:
            figs.append(Figure(SECTION, f"{band} completeness shortfall vs source-extractor (worst bin)", None,
                               at_most(0.0), note=scan.peer_note or "source-extractor not run",
                               detail={"archive": ours_c.as_dict()}))
        figs.append(Figure(SECTION, f"{band} archive completeness (all magnitudes)",
                           float(ours[sel].mean()) if sel.any() else None, note=f"{int(sel.sum())} truth sources"))
        plot.setdefault("completeness", {})[band] = entry
    if not scan.coverage:
        figs.append(Figure(SECTION, "completeness vs source-extractor", None, at_most(0.0), note="no live L3"))
    return figs


def _table(ours: Completeness, peer: Completeness) -> str:
    """Compact per-bin text: 'mag: ours/peer' for bins with sources."""
    parts = []
    for lo, n, a, b in zip(ours.edges[:-1], ours.n, ours.fraction, peer.fraction, strict=True):
        if n:
            parts.append(f"{lo:g}:{_pct(a)}/{_pct(b)}")
    return "archive/s-x per bin " + " ".join(parts)


def _pct(x: float) -> str:
    return "-" if not math.isfinite(x) else f"{100 * x:.0f}%"
