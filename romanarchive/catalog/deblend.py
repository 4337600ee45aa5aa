"""Hierarchical deblending (photutils ``deblend_sources``) split over forked processes, with the serial result.

Each parent segment is deblended independently, so halves of the parents go to forked workers (photutils' own
``n_processes`` uses *spawn*, which re-imports everything per worker and costs more than it saves here). The
children are then numbered exactly as one serial ``deblend_sources(..., relabel=True)`` call numbers them: parents
in label order, each parent's children consecutively in the order its own deblending gave them.
"""

from __future__ import annotations

import multiprocessing
from typing import Any

import numpy as np

_SHARED: dict[str, Any] = {}  # inherited by forked workers, never pickled


def _deblend(conv: np.ndarray, segm0: Any, labels: np.ndarray, kwargs: dict[str, Any]) -> list[np.ndarray]:
    """Per parent of ``labels``, the labels its pixels get (children > segm0.max_label, else the parent's)."""
    from photutils.segmentation import deblend_sources

    data = np.asarray(deblend_sources(conv, segm0, labels=labels, relabel=False, progress_bar=False,
                                      **kwargs).data)
    out = []
    for lab in labels:
        sl = segm0.slices[segm0.get_index(int(lab))]
        out.append(data[sl][np.asarray(segm0.data[sl]) == lab])
    return out


def _worker(labels: np.ndarray) -> list[np.ndarray]:
    return _deblend(_SHARED["conv"], _SHARED["segm0"], labels, _SHARED["kwargs"])


def deblend_parallel(conv: np.ndarray, segm0: Any, labels: np.ndarray, n_workers: int, n_pixels: int,
                     n_levels: int, contrast: float, min_labels: int = 64) -> Any:
    """``deblend_sources(conv, segm0, n_pixels, labels=labels, n_levels=..., contrast=...)`` on ``n_workers``.

    Parameters
    ----------
    conv
        Filtered detection image.
    segm0
        Parent segmentation (``SegmentationImage``).
    labels
        Parents to deblend (sorted); the others stay as they are.
    n_workers
        Processes (1: photutils' serial call).
    n_pixels, n_levels, contrast
        As ``deblend_sources``.
    min_labels
        Below this many parents the serial call is used.

    Returns
    -------
    photutils.segmentation.SegmentationImage
        The deblended segmentation, labelled 1..N as the serial call labels it.
    """
    from photutils.segmentation import SegmentationImage, deblend_sources

    kwargs = {"n_pixels": n_pixels, "n_levels": n_levels, "contrast": contrast}
    labels = np.sort(np.asarray(labels))
    # Pool workers and Dask workers are daemonic and may not have children: they measure in-process.
    if (n_workers <= 1 or len(labels) < min_labels or multiprocessing.current_process().daemon
            or "fork" not in multiprocessing.get_all_start_methods()):
        return deblend_sources(conv, segm0, labels=labels, progress_bar=False, **kwargs)
    parts = [labels[k::n_workers] for k in range(n_workers)]
    _SHARED.update(conv=conv, segm0=segm0, kwargs=kwargs)
    try:
        with multiprocessing.get_context("fork").Pool(n_workers - 1) as pool:
            pending = pool.map_async(_worker, parts[1:])
            results = [_deblend(conv, segm0, parts[0], kwargs), *pending.get()]
    finally:
        _SHARED.clear()

    # Serial numbering: unsplit segments keep their label; children of the parents (in label order) follow
    # segm0.max_label consecutively, each parent's in its own order (the workers numbered them in that order).
    base = segm0.max_label
    out = np.asarray(segm0.data).copy()
    children = {int(lab): child for part, res in zip(parts, results, strict=True)
                for lab, child in zip(part, res, strict=True)}
    next_label = base
    slices = segm0.slices
    for lab in labels:
        sl = slices[segm0.get_index(int(lab))]
        inside = np.asarray(segm0.data[sl]) == lab
        child = children[int(lab)]
        kids = np.unique(child[child > base])
        if len(kids) == 0:
            continue
        lut = np.searchsorted(kids, child)
        region = out[sl]
        region[inside] = np.where(child > base, next_label + 1 + lut, child)
        next_label += len(kids)
    present = np.unique(out[out > 0])
    relabel = np.zeros(int(present.max(initial=0)) + 1, dtype=out.dtype)
    relabel[present] = np.arange(1, len(present) + 1, dtype=out.dtype)
    return SegmentationImage(relabel[out])
