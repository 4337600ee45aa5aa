"""The difference-imaging step on a skycell + filter: per-epoch co-adds minus templates of earlier images.

L2s are grouped into epochs (:func:`group_epochs`: gaps longer than ``epoch_gap_days``). For an epoch after the
first, its L2s are co-added onto the skycell grid (:func:`romanarchive.imaging.coadd.coadd`) as the science image
and all *earlier* L2s as the template (outlier rejection on when it has enough inputs);
:func:`romanarchive.timeseries.dia.difference_image` subtracts and detects on the part both cover, and detections
are placed on the sky with the skycell WCS (:func:`difference_epochs`). Detections within a saturated star's mask
(from the L2s' SATURATED pixels) are dropped, and only those in the skycell's core are kept: overlapping skycells
difference the same sky, and each detection must be reported once. Those whose change comes from a single exposure
(:mod:`romanarchive.timeseries.dia_exposures`: cosmic-ray residuals and the like) are dropped too. No database: the job
(:mod:`romanarchive.timeseries.dia_job`) finds the L2s, decides which epochs are new, links detections to static
objects and writes ``dia_sources``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pydantic

from romanarchive.imaging.coadd import CoaddParams, coadd
from romanarchive.imaging.l2 import L2Input
from romanarchive.imaging.psf import coadd_psf_image
from romanarchive.imaging.saturation import SkyStars, merge_stars, saturated_in_l2, star_mask
from romanarchive.sky.skycells import Skycell, in_home
from romanarchive.timeseries.dia import DIA_MOVING, DiaParams, DiaResult, difference_image
from romanarchive.timeseries.dia_exposures import exposure_fluxes, recentred, single_exposure
from romanarchive.timeseries.dia_motion import Rates, epoch_rates, offset_floor
from romanarchive.timeseries.psf import psf_grid


class DiaConfig(pydantic.BaseModel):
    """Configuration of the difference-imaging step."""

    model_config = pydantic.ConfigDict(extra="forbid", frozen=True)

    threshold: float = pydantic.Field(default=5.0, gt=0, description="Lowest detection S/N on the difference image")
    false_positives: float = pydantic.Field(
        default=0.05, gt=0, description="Expected noise detections per difference image (sets the threshold)")
    group_radius_arcsec: float = pydantic.Field(
        default=1.5, gt=0, description="A weaker same-sign peak this close to a stronger one is its PSF structure")
    match_tolerance: float = pydantic.Field(default=0.05, ge=0, description="PSF-width mismatch that triggers matching")
    epoch_gap_days: float = pydantic.Field(default=0.5, gt=0, description="Gap between L2s that starts a new epoch")
    link_radius_arcsec: float = pydantic.Field(default=0.3, gt=0, description="Static-object match radius for 'new'")
    psf_size: int = pydantic.Field(default=41, ge=9, description="PSF image side on the skycell grid (odd)")
    incremental: bool = pydantic.Field(default=True, description="Difference only epochs not differenced before")
    home_core_only: bool = pydantic.Field(
        default=True, description="Keep detections in the skycell's core only (overlapping cells report each once)")
    exposure_check: bool = pydantic.Field(
        default=True, description="Reject detections whose change comes from one exposure (cosmic rays, glints)")
    moving_dchi2: float = pydantic.Field(
        default=25.0, gt=0, description="Chi-square drop of a drift across the epoch's exposures that flags motion")
    exposure_keep_snr: float = pydantic.Field(
        default=3.0, gt=0, description="Change (sigma) that must remain without the most deviant exposure")
    mask_radius_per_core: float = pydantic.Field(
        default=10.0, gt=0, description="Bright-star mask radius per saturated-core radius (the catalog's)")
    mask_min_radius_arcsec: float = pydantic.Field(default=3.0, gt=0, description="Smallest bright-star mask")
    mask_max_radius_arcsec: float = pydantic.Field(default=20.0, gt=0, description="Largest bright-star mask")

    def params(self, pixel_scale: float = 0.055) -> DiaParams:
        """Parameters of the pure function on a grid of ``pixel_scale`` arcsec."""
        return DiaParams(threshold=self.threshold, match_tolerance=self.match_tolerance,
                         false_positives=self.false_positives,
                         group_px=max(1, int(round(self.group_radius_arcsec / pixel_scale))))


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
    rates
        Motion of each detection across the epoch's exposures (:func:`romanarchive.timeseries.dia_motion.epoch_rates`;
        NaN for fadings and where it was not measured).
    """

    science: np.ndarray
    template: np.ndarray
    mjd: float
    result: DiaResult
    x: np.ndarray
    y: np.ndarray
    ra: np.ndarray
    dec: np.ndarray
    rates: Rates


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
    stars = bright_stars(inputs.values())
    for e in todo:
        sci_idx, tmpl_idx = groups[e], np.concatenate(groups[:e])
        sci_l2 = [inputs[int(i)].arrays for i in sci_idx]
        tmpl_l2 = [inputs[int(i)].arrays for i in tmpl_idx]
        sci = coadd(sci_l2, cell.wcs, cell.shape, CoaddParams())
        tmpl = coadd(tmpl_l2, cell.wcs, cell.shape, CoaddParams())
        n_coadds += 2
        box = bbox(sci.data, tmpl.data)
        t_mid = np.array([_mid_time(times[int(i)]) for i in sci_idx])
        mjd = float(np.mean(t_mid))
        if box is None:
            continue
        res = difference_image(sci.data[box], sci.err[box], tmpl.data[box], tmpl.err[box], psf,
                               cfg.params(cell.pixel_scale))
        x, y = res.x + box[1].start, res.y + box[0].start
        ra, dec = (np.asarray(v, float) for v in cell.wcs.pixel_to_world_values(x, y))
        ra = np.mod(ra, 360.0)
        keep = ~star_mask(x, y, stars, cell.wcs, cell.pixel_scale, cfg.mask_radius_per_core,
                          cfg.mask_min_radius_arcsec, cfg.mask_max_radius_arcsec)
        if cfg.home_core_only and len(ra):
            keep &= in_home(ra, dec, cell.name)
        rates = Rates(*(np.full(len(ra), np.nan) for _ in range(4)))
        if cfg.exposure_check and keep.any():
            k = np.flatnonzero(keep)
            grid = psf_grid(filter_name, 8, 11, 2.5)
            sci_fl = exposure_fluxes(sci_l2, ra[k], dec[k], grid)
            one, unconfirmed = single_exposure(np.sign(res.snr[k]), sci_fl,
                                               exposure_fluxes(tmpl_l2, ra[k], dec[k], grid), cfg.exposure_keep_snr)
            keep[k[one | unconfirmed]] = False
            res.rejected["single_exposure"] = int(one.sum())
            res.rejected["unconfirmed"] = int(unconfirmed.sum())
            # Motion across the epoch's exposures, for brightenings (a mover's fading is in the template).
            pos = res.snr[k] > 0
            b = k[pos]
            again = recentred(sci_l2, ra[b], dec[b], grid, sci_fl.subset(pos))
            floor = offset_floor(t_mid, again.dra, again.ddec, again.shift_err)
            r = epoch_rates(t_mid, again.dra, again.ddec, np.hypot(again.shift_err, floor))
            res.rejected["motion_floor_mas"] = int(round(floor))
            rates.ra[b], rates.dec[b], rates.err[b], rates.dchi2[b] = r.ra, r.dec, r.err, r.dchi2
            moving = np.nan_to_num(rates.dchi2) > cfg.moving_dchi2
            res.flags[moving] |= DIA_MOVING
        sub = Rates(rates.ra[keep], rates.dec[keep], rates.err[keep], rates.dchi2[keep])
        out.append(EpochDifference(sci_idx, tmpl_idx, mjd, res.subset(keep), x[keep], y[keep], ra[keep], dec[keep],
                                   sub))
    return out, n_coadds


def _mid_time(t: tuple[float | None, float | None]) -> float:
    """Mid-exposure MJD from (t_min, t_max); t_min alone when t_max is unknown, 0 when both are."""
    return 0.5 * ((t[0] or 0.0) + (t[1] or t[0] or 0.0))


def bright_stars(inputs: Iterable[L2Input]) -> SkyStars:
    """Saturated stars of the L2s (SATURATED clusters of their DQ), one entry per star."""
    parts = [saturated_in_l2(i.arrays.dq, i.arrays.wcs) for i in inputs if i.arrays.dq is not None]
    return merge_stars(parts)
