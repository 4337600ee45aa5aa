"""Per-object measurements on a segmentation (photutils ``SourceCatalog``), optionally split over processes.

Everything per object — segment fluxes, shapes, Kron and circular-aperture photometry, local background, the
concentration apertures — is independent between objects once the segmentation and the detection centroids are
fixed, so the objects are split into interleaved halves measured by forked worker processes (``SourceCatalog``
slices measure only their own objects, on the full shared images). Results are identical to one process.
"""

from __future__ import annotations

import multiprocessing
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass
class ObjectInputs:
    """The arrays every object's measurement reads.

    Attributes
    ----------
    det_cat
        Detection ``SourceCatalog`` (detection image, its convolved image, error, mask and local-background width).
    segm
        Segmentation image.
    subs, errs, masks
        Per band: background-subtracted data, error and mask at the native PSF.
    matched, matched_err
        Per band: PSF-matched data and error.
    comb_m, comb_m_err, mask_all
        PSF-matched combined image, its error and the all-bands mask (concentration).
    r_ap, r1, r2
        Aperture radius and concentration radii (pixels).
    local_bkg_width
        Width of the local-background annulus (pixels).
    """

    det_cat: Any
    segm: Any
    subs: list[np.ndarray]
    errs: list[np.ndarray]
    masks: list[np.ndarray]
    matched: list[np.ndarray]
    matched_err: list[np.ndarray]
    comb_m: np.ndarray
    comb_m_err: np.ndarray
    mask_all: np.ndarray
    r_ap: float
    r1: float
    r2: float
    local_bkg_width: int


def _values(v: Any) -> np.ndarray:
    return np.asarray(getattr(v, "value", v), dtype=float)


def measure_objects(inp: ObjectInputs, idx: np.ndarray) -> dict[str, np.ndarray]:
    """Raw (pixel-unit) measurements of the objects at positions ``idx`` of the detection catalog.

    Keys: ``seg_flux``, ``seg_err``, ``a``, ``b``, ``theta`` (degrees), ``area``, ``ellipticity``, ``r_half``; per
    band ``i``: ``f{i}``, ``fe{i}`` (native aperture), ``fm{i}``, ``fme{i}`` (PSF-matched), ``kron{i}``,
    ``krone{i}``, ``lb{i}``; and ``c1``, ``ce1``, ``c2``, ``ce2`` (concentration apertures).
    """
    from photutils.segmentation import SourceCatalog

    det = inp.det_cat[idx]
    out: dict[str, np.ndarray] = {
        "seg_flux": _values(det.segment_flux), "seg_err": _values(det.segment_flux_err),
        "a": _values(det.semimajor_axis), "b": _values(det.semiminor_axis), "theta": _values(det.orientation),
        "area": _values(det.area), "ellipticity": _values(det.ellipticity), "r_half": _values(det.flux_radius(0.5)),
    }
    single = len(inp.subs) == 1  # the detection image is the band itself: reuse its catalogs
    catm = None
    for i in range(len(inp.subs)):
        cat = det if single else SourceCatalog(
            inp.subs[i], inp.segm, error=inp.errs[i], mask=inp.masks[i], local_bkg_width=inp.local_bkg_width,
            detection_catalog=inp.det_cat)[idx]
        out[f"f{i}"], out[f"fe{i}"] = (_values(v) for v in cat.circular_photometry(inp.r_ap))
        # Colours use the global background only: the local annulus is measured once, at the native PSF.
        catm = SourceCatalog(inp.matched[i], inp.segm, error=inp.matched_err[i], mask=inp.masks[i],
                             detection_catalog=inp.det_cat)[idx]
        out[f"fm{i}"], out[f"fme{i}"] = (_values(v) for v in catm.circular_photometry(inp.r_ap))
        out[f"kron{i}"], out[f"krone{i}"] = _values(cat.kron_flux), _values(cat.kron_flux_err)
        out[f"lb{i}"] = _values(cat.local_background)
    ccat = catm if single and catm is not None else SourceCatalog(
        inp.comb_m, inp.segm, error=inp.comb_m_err, mask=inp.mask_all, detection_catalog=inp.det_cat)[idx]
    out["c1"], out["ce1"] = (_values(v) for v in ccat.circular_photometry(inp.r1))
    out["c2"], out["ce2"] = (_values(v) for v in ccat.circular_photometry(inp.r2))
    return out


_SHARED: ObjectInputs | None = None  # what forked workers read (inherited, never pickled)


def _worker(idx: np.ndarray) -> dict[str, np.ndarray]:
    assert _SHARED is not None
    return measure_objects(_SHARED, idx)


def measure_objects_parallel(inp: ObjectInputs, n_workers: int, min_objects: int = 400) -> dict[str, np.ndarray]:
    """:func:`measure_objects` of every object, over ``n_workers`` processes (fork) when there are enough."""
    global _SHARED
    n = len(inp.det_cat.labels)
    # Pool workers and Dask workers are daemonic and may not have children: they measure in-process.
    if (n_workers <= 1 or n < min_objects or multiprocessing.current_process().daemon
            or "fork" not in multiprocessing.get_all_start_methods()):
        return measure_objects(inp, np.arange(n))
    parts = [np.arange(k, n, n_workers) for k in range(n_workers)]  # interleaved: equal mixes of big and small
    _SHARED = inp
    try:
        with multiprocessing.get_context("fork").Pool(n_workers - 1) as pool:
            pending = pool.map_async(_worker, parts[1:])
            results = [measure_objects(inp, parts[0]), *pending.get()]
    finally:
        _SHARED = None
    merged: dict[str, np.ndarray] = {}
    for key in results[0]:
        arr = np.empty(n, dtype=results[0][key].dtype)
        for part, res in zip(parts, results, strict=True):
            arr[part] = res[key]
        merged[key] = arr
    return merged
