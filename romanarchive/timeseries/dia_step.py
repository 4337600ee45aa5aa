"""The difference-imaging step on a skycell + filter: per-epoch co-adds minus templates of earlier images.

L2s are grouped into epochs (:func:`group_epochs`: gaps longer than ``epoch_gap_days``). For an epoch after the
first, its L2s are co-added onto the skycell grid (:func:`romanarchive.imaging.coadd.coadd`) as the science image
and all *earlier* L2s as the template (outlier rejection on when it has enough inputs);
:func:`romanarchive.timeseries.dia.difference_image` subtracts and detects on the part both cover, and detections
are placed on the sky with the skycell WCS (:func:`difference_epochs`). No database: the job
(:mod:`romanarchive.timeseries.dia_job`) finds the L2s, decides which epochs are new, links detections to static
objects and writes ``dia_sources``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pydantic

from romanarchive.imaging.coadd import CoaddParams, coadd
from romanarchive.imaging.l2 import L2Input
from romanarchive.imaging.psf import coadd_psf_image
from romanarchive.sky.skycells import Skycell
from romanarchive.timeseries.dia import DiaParams, DiaResult, difference_image


class DiaConfig(pydantic.BaseModel):
    """Configuration of the difference-imaging step."""

    model_config = pydantic.ConfigDict(extra="forbid", frozen=True)

    threshold: float = pydantic.Field(default=5.0, gt=0, description="Detection S/N on the difference image")
    match_tolerance: float = pydantic.Field(default=0.05, ge=0, description="PSF-width mismatch that triggers matching")
    epoch_gap_days: float = pydantic.Field(default=0.5, gt=0, description="Gap between L2s that starts a new epoch")
    link_radius_arcsec: float = pydantic.Field(default=0.3, gt=0, description="Static-object match radius for 'new'")
    psf_size: int = pydantic.Field(default=41, ge=9, description="PSF image side on the skycell grid (odd)")
    incremental: bool = pydantic.Field(default=True, description="Difference only epochs not differenced before")

    def params(self) -> DiaParams:
        """Parameters of the pure function."""
        return DiaParams(threshold=self.threshold, match_tolerance=self.match_tolerance)


@dataclass
class EpochDifference:
    """The detections of one differenced epoch.

    Attributes
    ----------
    science, template
        Indices (into the step's inputs) of the epoch's L2s and of the earlier L2s of its template.
    mjd
        Mean mid-exposure time of the science L2s.
    result
        The pure function's detections (pixel positions on the cut-out both images cover; fluxes are sums of
        MJy/sr over skycell pixels: times :func:`romanarchive.imaging.l2.grid_njy_factor` gives nJy).
    x, y
        Detection positions on the skycell grid, pixels.
    ra, dec
        Detection positions on the sky, degrees (ra in [0, 360)).
    """

    science: np.ndarray
    template: np.ndarray
    mjd: float
    result: DiaResult
    x: np.ndarray
    y: np.ndarray
    ra: np.ndarray
    dec: np.ndarray


def group_epochs(t_min: np.ndarray, gap_days: float) -> list[np.ndarray]:
    """Indices of L2s per epoch: sorted by start time, split where consecutive starts are ``gap_days`` apart."""
    order = np.argsort(t_min, kind="stable")
    cuts = np.flatnonzero(np.diff(np.asarray(t_min)[order]) > gap_days) + 1
    return [g for g in np.split(order, cuts) if len(g)]


def epoch_inputs(product_ids: Sequence[int], groups: Sequence[np.ndarray]) -> list[tuple[tuple[int, ...],
                                                                                        tuple[int, ...]]]:
    """(science product ids, sorted template product ids) of every epoch after the first, in epoch order."""
    return [(tuple(product_ids[i] for i in groups[e]),
             tuple(sorted(product_ids[i] for i in np.concatenate(groups[:e])))) for e in range(1, len(groups))]


def bbox(*imgs: np.ndarray) -> tuple[slice, slice] | None:
    """The smallest (rows, columns) box holding every pixel finite in all ``imgs``; ``None`` when there is none."""
    ok = np.logical_and.reduce([np.isfinite(i) for i in imgs])
    ys, xs = np.nonzero(ok)
    if not len(ys):
        return None
    return slice(int(ys.min()), int(ys.max()) + 1), slice(int(xs.min()), int(xs.max()) + 1)


def difference_epochs(inputs: Mapping[int, L2Input], times: Sequence[tuple[float | None, float | None]],
                      groups: Sequence[np.ndarray], todo: Sequence[int], cell: Skycell, filter_name: str,
                      config: DiaConfig | None = None) -> tuple[list[EpochDifference], int]:
    """Co-add and difference epochs ``todo`` of a skycell + filter.

    Parameters
    ----------
    inputs
        The read L2s by input index: at least those of the epochs in ``todo`` and of every earlier epoch.
    times
        (t_min, t_max) MJD of every input index (``None`` where unknown).
    groups
        Input indices per epoch (:func:`group_epochs`).
    todo
        Epochs to difference (indices into ``groups``, >= 1: the first epoch has no template).
    cell
        The skycell grid.
    filter_name
        The filter (its PSF is the detection filter).
    config
        Step configuration.

    Returns
    -------
    epochs, n_coadds
        The epochs that have pixels both images cover, in ``todo`` order, and the co-adds built (two per epoch).
    """
    cfg = config or DiaConfig()
    out: list[EpochDifference] = []
    n_coadds = 0
    if not todo:
        return out, n_coadds
    # The co-adds' own point-source profile (optics, L2 pixel, drizzle drop, skycell pixel), in total flux.
    psf = coadd_psf_image(filter_name, cell.pixel_scale, size=cfg.psf_size)
    for e in todo:
        sci_idx, tmpl_idx = groups[e], np.concatenate(groups[:e])
        sci = coadd([inputs[int(i)].arrays for i in sci_idx], cell.wcs, cell.shape, CoaddParams())
        tmpl = coadd([inputs[int(i)].arrays for i in tmpl_idx], cell.wcs, cell.shape, CoaddParams())
        n_coadds += 2
        box = bbox(sci.data, tmpl.data)
        mjd = float(np.mean([0.5 * ((times[i][0] or 0.0) + (times[i][1] or times[i][0] or 0.0)) for i in sci_idx]))
        if box is None:
            continue
        res = difference_image(sci.data[box], sci.err[box], tmpl.data[box], tmpl.err[box], psf, cfg.params())
        x, y = res.x + box[1].start, res.y + box[0].start
        ra, dec = (np.asarray(v, float) for v in cell.wcs.pixel_to_world_values(x, y))
        out.append(EpochDifference(sci_idx, tmpl_idx, mjd, res, x, y, np.mod(ra, 360.0), dec))
    return out, n_coadds
