"""Per-exposure consistency of DIA detections: a real change is in every exposure of its epoch, a cosmic ray in one.

A difference of per-epoch co-adds cannot tell a transient from a cosmic-ray residual (or a hot pixel, or a
satellite glint) that survived the L2's jump detection and the co-add's outlier rejection, which needs three inputs
at a pixel and an epoch often has two; nor from a co-add artefact (different dithers covering a galaxy's edge). The
L2s can: each detection is measured by forced PSF photometry
(:func:`romanarchive.timeseries.photometry.forced_photometry`) at its sky position on every L2 of the epoch and of
its template. Each science exposure's **change** is its flux minus that of the template exposures taken at the same
pointing (the detection within ``pair_px`` of the same pixel: a repeated dither, whose pixel phase and neighbours'
light are the same, so a fixed-position fit next to a galaxy cancels), or of all template exposures when none was.
A real change is in every science exposure; a detection is rejected as

* **single-exposure** when, with the science exposure whose change deviates most from the others' left out, the
  remaining mean change (in the detection's sign) is below ``keep_snr`` sigma — a cosmic ray in one science
  exposure, or in the template exposure paired with one; no change at all (a co-add artefact) fails the same test;
* **unconfirmed** when only one science exposure measures it: nothing can tell its change from an artefact (survey
  epochs dither at least twice for this reason).

Written here rather than taken from romancal: romancal's outlier detection works on the pixels of resampled
exposures, and the question asked here — does this one detection's flux come from one exposure — is per source.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields

import numpy as np

from romanarchive.imaging.coadd import CoaddInput
from romanarchive.timeseries.forced_step import on_image, sky_offsets
from romanarchive.timeseries.photometry import BAD_MEASUREMENT, ForcedParams, forced_photometry
from romanarchive.timeseries.psf import PsfGrid

__all__ = ["ExposureFluxes", "exposure_fluxes", "recentred", "single_exposure"]

_PARAMS = ForcedParams(register=False)


@dataclass
class ExposureFluxes:
    """PSF fluxes at the detections' positions (rows) on each exposure (columns); NaN where not measured."""

    flux: np.ndarray
    err: np.ndarray
    x: np.ndarray  # pixel position of each detection on each exposure
    y: np.ndarray
    dra: np.ndarray  # centroid offset from the detection's position, mas (NaN below the centroid S/N)
    ddec: np.ndarray
    shift_err: np.ndarray  # its 1-sigma uncertainty per axis, mas

    def subset(self, rows: np.ndarray) -> ExposureFluxes:
        """The detections ``rows`` (a boolean mask or indices)."""
        return ExposureFluxes(*(getattr(self, f.name)[rows] for f in fields(self)))


def exposure_fluxes(images: Sequence[CoaddInput], ra: np.ndarray, dec: np.ndarray, grid: PsfGrid) -> ExposureFluxes:
    """Forced PSF fluxes (surface-brightness units x pixels) of sky positions on each image.

    ``ra``, ``dec`` are one position per detection, or (detections x images) arrays of a position per image.
    """
    ra2 = np.broadcast_to(np.asarray(ra, float).reshape(len(ra), -1), (len(ra), len(images)))
    dec2 = np.broadcast_to(np.asarray(dec, float).reshape(len(dec), -1), (len(dec), len(images)))
    shape = (len(ra), len(images))
    flux, err, xs, ys, dra, ddec, shift_err = (np.full(shape, np.nan) for _ in range(7))
    for j, img in enumerate(images):
        if not len(ra):
            break
        x, y = (np.asarray(v, float) for v in img.wcs.invert(ra2[:, j], dec2[:, j], with_bounding_box=False))
        on = np.flatnonzero(on_image(img.data.shape, x, y))
        if not len(on):
            continue
        res = forced_photometry(img.data, img.err, img.dq, x[on], y[on], grid, _PARAMS)
        good = ((res.flags & BAD_MEASUREMENT) == 0) & np.isfinite(res.flux) & (res.flux_err > 0)
        k = on[good]
        flux[k, j], err[k, j] = res.flux[good], res.flux_err[good]
        xs[k, j], ys[k, j] = x[k], y[k]
        dra[k, j], ddec[k, j], shift_err[k, j] = sky_offsets(img.wcs, x[k], y[k], res.dx[good], res.dy[good],
                                                             res.shift_err[good])
    return ExposureFluxes(flux, err, xs, ys, dra, ddec, shift_err)


def recentred(images: Sequence[CoaddInput], ra: np.ndarray, dec: np.ndarray, grid: PsfGrid,
              first: ExposureFluxes, iterations: int = 2) -> ExposureFluxes:
    """Centroid offsets from ``(ra, dec)`` measured again at each exposure's own centroid, ``iterations`` times.

    The linearised centroid of an undersampled PSF underestimates an offset in proportion to its size, differently
    at each pixel phase; measured again from where the last pass put the source, the correction shrinks each time
    (a moving object's offsets reach a pixel within one epoch). Offsets stay relative to ``(ra, dec)``.
    """
    cur = first
    ra0 = np.repeat(np.asarray(ra, float)[:, None], len(images), axis=1)
    dec0 = np.repeat(np.asarray(dec, float)[:, None], len(images), axis=1)
    tot_ra, tot_dec = np.zeros_like(ra0), np.zeros_like(dec0)
    for _ in range(iterations):
        step_ra, step_dec = np.nan_to_num(cur.dra), np.nan_to_num(cur.ddec)
        tot_ra, tot_dec = tot_ra + step_ra, tot_dec + step_dec
        cur = exposure_fluxes(images, ra0 + tot_ra / 3.6e6 / np.cos(np.radians(dec0)), dec0 + tot_dec / 3.6e6, grid)
    cur.dra, cur.ddec = cur.dra + tot_ra, cur.ddec + tot_dec
    return cur


def exposure_changes(science: ExposureFluxes, template: ExposureFluxes, k: int,
                     pair_px: float = 0.3) -> tuple[np.ndarray, np.ndarray]:
    """Per measured science exposure of detection ``k``: its change against the template and the change's error."""
    changes, errors = [], []
    g, ge = template.flux[k], template.err[k]
    have = np.isfinite(g)
    if not have.any():
        return np.empty(0), np.empty(0)
    for i in np.flatnonzero(np.isfinite(science.flux[k])):
        same = have & (np.abs(template.x[k] - science.x[k, i]) < pair_px) \
            & (np.abs(template.y[k] - science.y[k, i]) < pair_px)
        use = same if same.any() else have
        w = 1.0 / ge[use] ** 2
        changes.append(science.flux[k, i] - float(np.sum(g[use] * w) / w.sum()))
        errors.append(float(np.sqrt(science.err[k, i] ** 2 + 1.0 / w.sum())))
    return np.asarray(changes), np.asarray(errors)


def single_exposure(sign: np.ndarray, science: ExposureFluxes, template: ExposureFluxes,
                    keep_snr: float = 3.0, pair_px: float = 0.3) -> tuple[np.ndarray, np.ndarray]:
    """Which detections owe their signal to one exposure, and which only one science exposure measures.

    Parameters
    ----------
    sign
        +1 for a brightening, -1 for a fading detection.
    science, template
        Fluxes of the detections on the epoch's and the template's exposures (:func:`exposure_fluxes`).
    keep_snr
        The change that must remain, in sigma, with the most deviant science exposure left out.
    pair_px
        Largest pixel offset of a template exposure taken at the same pointing as a science one.

    Returns
    -------
    single, unconfirmed
        Boolean arrays, one entry per detection (detections with no template measurement are neither).
    """
    single = np.zeros(len(sign), bool)
    unconfirmed = np.zeros(len(sign), bool)
    for k in range(len(sign)):
        c, e = exposure_changes(science, template, k, pair_px)
        if len(c) == 0:
            continue
        if len(c) == 1:
            unconfirmed[k] = True
            continue
        loo = np.array([_weighted_mean(np.delete(c, i), np.delete(e, i)) for i in range(len(c))])
        worst = int(np.argmax(np.abs(c - loo) / e))
        rest, rest_e = np.delete(c, worst), np.delete(e, worst)
        sigma = float(np.sqrt(1.0 / np.sum(1.0 / rest_e**2)))
        single[k] = sign[k] * _weighted_mean(rest, rest_e) / sigma < keep_snr
    return single, unconfirmed


def _weighted_mean(v: np.ndarray, e: np.ndarray) -> float:
    w = 1.0 / e**2
    return float(np.sum(v * w) / np.sum(w))
