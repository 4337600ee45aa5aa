"""What becomes an object row: the archive's selection on romancal's multiband catalog (pure functions of arrays).

romancal measures every segment of the detection image; the archive then

1. **finds bright stars** from their saturated cores: holes of unusable pixels inside the data (saturated pixels
   are flagged in every L2 and so have no weight in the L3). Each hole becomes one row flagged ``FLAG_SATURATED``
   (its position is the hole's centroid; it has no flux). Every detection within the star's mask radius is dropped,
   and within its (larger) halo radius only point sources are kept, flagged ``FLAG_NEAR_BRIGHT_STAR``: both radii
   are proportional to the core's size, as the PSF's rings and spikes scale with the star's flux, and what is
   dropped there is the star's own light split into segments, not objects;
2. **keeps each object once**: only objects whose home skycell (:func:`romanarchive.sky.skycells.in_home`) is the
   one being catalogued, so the overlaps of neighbouring skycells are measured once;
3. **calibrates** PSF fluxes to the curve of growth of the skycell's bright point sources, corrects Kron fluxes
   for the PSF's light outside each Kron aperture (:mod:`romanarchive.catalog.apcorr`), and ``err`` to the
   measured noise of the resampled image before romancal runs
   (:func:`noise_scale`, in the step);
4. **summarises** the bands: best position (the PSF fit of the highest-S/N band for point sources, the windowed
   centroid for extended ones), ``is_extended`` of that band, ``n_bands``, archive flags;
5. fits **photometric redshifts** into rad's photoz columns from the PSF-matched 0.4" aperture fluxes
   (:mod:`romanarchive.catalog.photoz`), where enough bands exist (NULL, never 0, when the fit cannot be made).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from romanarchive.catalog.apcorr import DEFAULT_KRON_PARAMS, EncircledEnergy, correct_kron, psf_aperture_factors
from romanarchive.catalog.config import CatalogConfig
from romanarchive.catalog.photoz import fit_photoz
from romanarchive.db.tables_catalog import (
    FLAG_EDGE,
    FLAG_MISSING_BAND,
    FLAG_NEAR_BRIGHT_STAR,
    FLAG_SATURATED,
    OBJECT_MEASUREMENTS,
)
from romanarchive.imaging.saturation import SkyStars
from romanarchive.sky.skycells import in_home
from romanarchive.sky.skycells import skycell as skycell_of

NJY_PER_MJY = 1e15
AB_ZP_NJY = 31.4  # m_AB = 31.4 - 2.5 log10(f / nJy)


class CatalogInputError(ValueError):
    """An input image the catalog cannot be built from (no WCS, empty, all NaN, mismatched bands)."""


class BandArrays(Protocol):
    """What the selection reads of each band's image."""

    band: str

    @property
    def data(self) -> np.ndarray: ...

    @property
    def err(self) -> np.ndarray: ...

    @property
    def wcs(self) -> Any: ...


@dataclass
class CatalogResult:
    """The selected objects: columns named as the ``objects`` table's, the full table, the segmentation."""

    columns: dict[str, np.ndarray]
    table: Any
    segmentation: np.ndarray
    bands: tuple[str, ...]
    reference_band: str
    pixel_scale_arcsec: float
    stats: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.columns["ra"])


def values(col: Any, fill: float = np.nan) -> np.ndarray:
    """A table column as a plain float array (quantities stripped, masked entries -> ``fill``)."""
    arr = np.ma.asarray(getattr(col, "value", col))
    return np.asarray(np.ma.filled(arr.astype(float), fill), dtype=float)


def pixel_scale(wcs: Any, shape: tuple[int, int]) -> float:
    """Mean pixel scale (arcsec) at the image centre, from the WCS's local Jacobian."""
    y0, x0 = (shape[0] - 1) / 2.0, (shape[1] - 1) / 2.0
    ra, dec = (np.asarray(v, dtype=float) for v in wcs.pixel_to_world_values(
        np.array([x0, x0 + 1.0, x0]), np.array([y0, y0, y0 + 1.0])))
    cosd = np.cos(np.radians(dec[0]))
    j = np.array([[((ra[1] - ra[0] + 180) % 360 - 180) * cosd, ((ra[2] - ra[0] + 180) % 360 - 180) * cosd],
                  [dec[1] - dec[0], dec[2] - dec[0]]])
    scale = float(np.sqrt(abs(np.linalg.det(j))) * 3600.0)
    if not np.isfinite(scale) or scale <= 0:
        raise CatalogInputError("the WCS gives no finite sky position at the image centre")
    return scale


@dataclass(frozen=True)
class BrightStars:
    """Saturated cores found in the images: centroid, equivalent radius, mask and halo radii (all pixels)."""

    x: np.ndarray
    y: np.ndarray
    core_radius: np.ndarray
    mask_radius: np.ndarray
    halo_radius: np.ndarray


def saturated_cores(usable: np.ndarray, scale: float, cfg: CatalogConfig, extra: SkyStars | None = None,
                    wcs: Any = None) -> BrightStars:
    """Holes of unusable pixels enclosed by usable ones (a coverage gap touches the data's edge instead), plus the
    ``extra`` stars (from the L2s' saturated pixels: stars whose core lies outside this grid's data still throw
    their halo onto it)."""
    from scipy import ndimage

    holes, n = ndimage.label(~usable)
    area = np.zeros(1)
    keep = np.zeros(1, bool)
    ex, ey, er = np.empty(0), np.empty(0), np.empty(0)
    if extra is not None and len(extra.ra) and wcs is not None:
        # Stars off the grid matter too (their halo reaches in): no bounding box, which would give NaN.
        inv = (wcs.invert(extra.ra, extra.dec, with_bounding_box=False) if hasattr(wcs, "invert")
               else wcs.world_to_pixel_values(extra.ra, extra.dec))
        ex, ey = (np.atleast_1d(np.asarray(v, float)) for v in inv)
        ok = np.isfinite(ex) & np.isfinite(ey)
        ex, ey, er = ex[ok], ey[ok], extra.core_radius_arcsec[ok] / scale
    if n == 0 and len(ex) == 0:
        return BrightStars(*(np.empty(0),) * 5)
    if n:
        border = np.unique(np.r_[holes[0], holes[-1], holes[:, 0], holes[:, -1]])
        area = np.bincount(holes.ravel(), minlength=n + 1).astype(float)
        max_area = np.pi * (cfg.mask_max_radius_arcsec / scale) ** 2  # larger holes are coverage gaps, not stars
        keep = (area >= cfg.saturated_min_px) & (area <= max_area)
        keep[0] = False
        keep[border] = False
    labels = np.flatnonzero(keep)
    cx, cy, r_core = np.empty(0), np.empty(0), np.empty(0)
    if len(labels):
        cy, cx = (np.asarray(v, float) for v in zip(*ndimage.center_of_mass(np.ones_like(holes), holes, labels),
                                                     strict=True))
        r_core = np.sqrt(area[labels] / np.pi)
    cx, cy, r_core = np.r_[cx, ex], np.r_[cy, ey], np.r_[r_core, er]
    if len(cx) == 0:
        return BrightStars(*(np.empty(0),) * 5)
    r_mask = np.clip(cfg.mask_radius_per_hole_px * r_core, cfg.mask_min_radius_arcsec / scale,
                     cfg.mask_max_radius_arcsec / scale)
    # Saturated spikes or neighbours inside a bigger star's mask belong to that star, not to stars of their own.
    order = np.argsort(-r_core, kind="stable")
    kept: list[int] = []
    for i in order:
        if all((cx[i] - cx[j]) ** 2 + (cy[i] - cy[j]) ** 2 > r_mask[j] ** 2 for j in kept):
            kept.append(int(i))
    k = np.sort(np.asarray(kept, dtype=int))
    r_halo = np.clip(cfg.halo_radius_per_hole_px * r_core, r_mask, cfg.halo_max_radius_arcsec / scale)
    return BrightStars(cx[k], cy[k], r_core[k], r_mask[k], r_halo[k])


def _edge_labels(segm: np.ndarray, usable: np.ndarray) -> np.ndarray:
    """Segment labels that touch unusable pixels or the image border."""
    from scipy.ndimage import binary_dilation

    bad = binary_dilation(~usable)
    bad[[0, -1], :] = bad[:, [0, -1]] = True
    return np.unique(segm[bad & (segm > 0)])


def noise_scale(data: np.ndarray, err: np.ndarray, box: int = 9) -> float:
    """Factor (>= 1) by which sums over ``box`` x ``box`` pixels scatter more than ``err`` predicts.

    Resampling correlates neighbouring L3 pixels, so a per-pixel ``err`` understates the noise of any aperture sum.
    Measured over tiles with every pixel usable as the robust (1.4826 MAD) scatter of the tile sums against the
    median of their predicted sigma; sources touch few tiles and barely move a MAD, and each tile is compared with
    its neighbours so that extended light does not count as noise.
    """
    ny, nx = (data.shape[0] // box) * box, (data.shape[1] // box) * box
    if ny == 0 or nx == 0:
        return 1.0
    d = data[:ny, :nx].reshape(ny // box, box, nx // box, box)
    e = err[:ny, :nx].reshape(ny // box, box, nx // box, box)
    ok = (np.isfinite(d) & np.isfinite(e) & (e > 0)).all(axis=(1, 3))
    sums = np.where(ok, np.nansum(d, axis=(1, 3)), np.nan)
    pred = np.sqrt(np.nansum(e**2, axis=(1, 3)))
    # Each tile against the mean of its four neighbours: smooth light (a bright star's halo, sky gradients) cancels;
    # for independent tiles the difference has 1.25 times the variance of one tile.
    nb = np.full_like(sums, np.nan)
    nb[1:-1, 1:-1] = (sums[:-2, 1:-1] + sums[2:, 1:-1] + sums[1:-1, :-2] + sums[1:-1, 2:]) / 4.0
    diff = (sums - nb)[np.isfinite(sums - nb)]
    if len(diff) < 20:
        return 1.0
    scatter = 1.4826 * np.median(np.abs(diff - np.median(diff))) / np.sqrt(1.25)
    return float(max(1.0, scatter / np.median(pred[ok])))


def select_objects(table: Any, segm: np.ndarray, images: Sequence[BandArrays], cfg: CatalogConfig,
                   skycell: str | None, bright: SkyStars | None = None,
                   curves: dict[str, EncircledEnergy] | None = None) -> CatalogResult:
    """The object rows of a romancal multiband catalog (see the module docstring).

    Parameters
    ----------
    table
        romancal's ``source_catalog`` (astropy Table, rad columns, full-grid pixel coordinates).
    segm
        Its segmentation map on the full grid.
    images
        The bands' images (for usable pixels and the WCS).
    cfg
        The step configuration.
    skycell
        The skycell being catalogued (``None``: keep every object).
    bright
        Bright stars known from the L2 images (their saturated cores), besides the holes in these images.
    curves
        Per band (upper case), the PSF's curve of growth (the apcorr reference file): EE(0.4") for
        :func:`~romanarchive.catalog.apcorr.psf_aperture_factors`, the Kron apertures' EE for
        :func:`~romanarchive.catalog.apcorr.correct_kron`.
    """
    bands = tuple(im.band.upper() for im in images)
    keys = [b.lower() for b in bands]
    shape = images[0].data.shape
    wcs = images[0].wcs
    scale = pixel_scale(wcs, shape)
    usable_any = np.zeros(shape, bool)
    usable_all = np.ones(shape, bool)
    for im in images:
        ok = np.isfinite(im.data) & np.isfinite(im.err) & (im.err > 0)
        usable_any |= ok
        usable_all &= ok
    n = len(table)
    col = {name: values(table[name]) for name in table.colnames if name not in ("label",)}
    curves = curves or {}
    ee04 = {b: float(c(0.4)) for b, c in curves.items()}
    psf_factors = psf_aperture_factors(col, keys, ee04) if n else {}
    for k, (factor, _) in psf_factors.items():  # the systematic scatter is reported (provenance), not added
        for name in (f"psf_{k}_flux", f"psf_{k}_flux_err"):
            if name in col:
                col[name] = col[name] * factor
    kron_params = tuple((getattr(table, "meta", None) or {}).get("kron_params") or DEFAULT_KRON_PARAMS)
    kron_factors = correct_kron(col, keys, curves, scale, kron_params) if n else {}

    # Per band S/N of the PSF flux picks the band that speaks for the object.
    snr = np.full((n, len(keys)), -np.inf)
    for i, k in enumerate(keys):
        f, e = col.get(f"psf_{k}_flux"), col.get(f"psf_{k}_flux_err")
        if f is None or e is None:
            f, e = col.get(f"kron_{k}_flux", np.full(n, np.nan)), col.get(f"kron_{k}_flux_err", np.full(n, np.nan))
        with np.errstate(divide="ignore", invalid="ignore"):
            s = np.where(e > 0, f / e, np.nan)
        snr[:, i] = np.where(np.isfinite(s), s, -np.inf)
    best = np.argmax(snr, axis=1) if len(keys) else np.zeros(n, int)
    # The S/N above is the fit's statistical one (selection, positions); the published PSF flux error also says how
    # badly the PSF fitted: times sqrt(reduced chi2) where that exceeds 1. romancal's L3 PSF model is the ePSF
    # azimuthally averaged and smoothed, and the co-add's PSF varies with the dithers' sub-pixel phases: bright stars'
    # PSF fluxes scatter 4-5 % on the demo against 0.1-0.7 % statistical errors.
    for k in keys:
        e, gof = col.get(f"psf_{k}_flux_err"), col.get(f"psf_gof_{k}")
        if e is not None and gof is not None:
            col[f"psf_{k}_flux_err"] = e * np.sqrt(np.where(np.isfinite(gof), np.fmax(gof, 1.0), 1.0))
    rows = np.arange(n)

    def in_band(template: str, band: np.ndarray, fill: float = np.nan) -> np.ndarray:
        """Per object, the column ``template`` of the band index ``band``."""
        stack = np.stack([col.get(template.format(b=k), np.full(n, fill)) for k in keys], axis=1)
        return stack[rows, band] if n else np.empty(0)

    is_ext = in_band("is_extended_{b}", best)
    # Positions from the reddest band's PSF fit (romancal's PSF-matching reference: the best-sampled PSF model,
    # a few mas in the demo against 10 in F087), from the highest-S/N band where that one failed.
    red = len(keys) - 1
    red_ok = (col.get(f"psf_flags_{keys[red]}", np.ones(n)) == 0) & (snr[:, red] >= cfg.min_snr) if keys else \
        np.zeros(n, bool)
    pos_band = np.where(red_ok, red, best)
    psf_ok = in_band("psf_flags_{b}", pos_band, fill=1.0) == 0
    ra_psf, dec_psf = in_band("ra_psf_{b}", pos_band), in_band("dec_psf_{b}", pos_band)
    ra_win, dec_win = col.get("ra_centroid_win", col["ra_centroid"]), col.get("dec_centroid_win", col["dec_centroid"])
    win_ok = np.isfinite(ra_win) & np.isfinite(dec_win)
    use_psf = psf_ok & np.isfinite(ra_psf) & np.isfinite(dec_psf) & (is_ext == 0)
    ra = np.where(use_psf, ra_psf, np.where(win_ok, ra_win, col["ra_centroid"]))
    dec = np.where(use_psf, dec_psf, np.where(win_ok, dec_win, col["dec_centroid"]))
    # romancal 1.1 leaves every position uncertainty at 0: the archive's is the centroid bound for a PSF of the
    # object's FWHM, sqrt(2) * sigma / (S/N), with the S/N of the band the position comes from.
    pos_snr = snr[rows, pos_band] if n else np.empty(0)
    sigma = col.get("fwhm", np.full(n, np.nan)) / 2.3548
    with np.errstate(divide="ignore", invalid="ignore"):
        pos_err = np.where(pos_snr > 0, np.sqrt(2.0) * sigma / pos_snr, np.nan)
    ra_err, dec_err = pos_err, pos_err.copy()
    for i, k in enumerate(keys):  # the per-band PSF-fit positions get the same bound
        with np.errstate(divide="ignore", invalid="ignore"):
            e = np.where(snr[:, i] > 0, np.sqrt(2.0) * sigma / snr[:, i], np.nan)
        for name in (f"ra_psf_{k}_err", f"dec_psf_{k}_err"):
            if name in col:
                col[name] = e
    for name in ("x_centroid_err", "y_centroid_err", "ra_centroid_err", "dec_centroid_err", "x_centroid_win_err",
                 "y_centroid_win_err", "ra_centroid_win_err", "dec_centroid_win_err"):
        if name in col and n and np.all(col[name] == 0):  # not computed: unknown, not zero
            col[name] = np.full(n, np.nan)

    n_bands = np.zeros(n, np.int16)
    for k in keys:
        n_bands += np.isfinite(col.get(f"psf_{k}_flux", col.get(f"kron_{k}_flux", np.full(n, np.nan)))).astype(
            np.int16)
    label = np.asarray(table["label"], dtype=np.int64)
    flags = np.where(n_bands < len(keys), FLAG_MISSING_BAND, 0)
    edge = np.isin(label, _edge_labels(segm, usable_any))
    flags = flags | np.where(edge, FLAG_EDGE, 0)

    # Bright stars: drop what lies in their masks, add the stars themselves.
    stars = saturated_cores(usable_all, scale, cfg, bright, wcs)
    x, y = col["x_centroid"], col["y_centroid"]
    # A detection whose flux is insignificant in every band is noise or an artefact, not an object.
    best_snr = snr.max(axis=1) if len(keys) else np.zeros(n)
    keep = np.isfinite(ra) & np.isfinite(dec) & (best_snr >= cfg.min_snr)
    n_faint = int((np.isfinite(ra) & (best_snr < cfg.min_snr)).sum())
    near = np.zeros(n, bool)
    # A galaxy near a bright star has a peak (its inner 0.2" holds well over the 25 % of its 0.4" light that a flat
    # patch of halo holds) and is not a long thin piece of a diffraction spike (demo: 26 of 27 halo galaxies and 8 of
    # 207 halo fragments pass both).
    with np.errstate(divide="ignore", invalid="ignore"):
        conc = in_band("aper02_{b}_flux", best) / in_band("aper04_{b}_flux", best)
    ellip = col.get("ellipticity", np.full(n, np.nan))
    peaked = (conc >= cfg.halo_min_concentration) & (ellip <= cfg.halo_max_ellipticity)
    for sx, sy, rm, rh in zip(stars.x, stars.y, stars.mask_radius, stars.halo_radius, strict=True):
        d2 = (x - sx) ** 2 + (y - sy) ** 2
        keep &= d2 > rm**2
        # In the halo point sources stay, and extended detections only with a peak of their own: the others are the
        # star's rings and spikes split into segments.
        halo = d2 <= rh**2
        keep &= ~halo | (is_ext == 0) | peaked
        near |= halo
    n_masked = int((~keep & np.isfinite(ra)).sum()) - n_faint

    out: dict[str, np.ndarray] = {}
    for c in OBJECT_MEASUREMENTS:
        if c.name in col:
            out[c.name] = col[c.name]
    flags = flags | np.where(near, FLAG_NEAR_BRIGHT_STAR, 0)
    out.update(label=label.astype(float), ra=ra, dec=dec, ra_err=ra_err, dec_err=dec_err, is_extended=is_ext,
               n_bands=n_bands.astype(float), flags=flags.astype(float))
    pz = _photoz(col, keys, n, cfg)
    out.update(pz)
    if skycell:
        finite = np.isfinite(ra) & np.isfinite(dec)  # rows without a position are dropped below
        in_core = np.zeros(n, bool)
        in_core[finite] = in_home(ra[finite], dec[finite], skycell)
        out["flagged_spatial_id"] = spatial_ids(skycell, x, y, scale, in_core)  # int64: 61 bits, more than a float
    out = {k: np.asarray(v)[keep] for k, v in out.items()}

    inside = (stars.x >= 0) & (stars.x <= shape[1] - 1) & (stars.y >= 0) & (stars.y <= shape[0] - 1)
    if inside.any():
        sra, sdec = (np.asarray(v, float) for v in wcs.pixel_to_world_values(stars.x[inside], stars.y[inside]))
        extra = {k: np.full(len(sra), np.nan) if v.dtype.kind == "f" else np.zeros(len(sra), v.dtype)
                 for k, v in out.items()}
        extra.update(ra=sra % 360.0, dec=sdec, x_centroid=stars.x[inside], y_centroid=stars.y[inside],
                     label=np.zeros(len(sra)),
                     flags=np.full(len(sra), float(FLAG_SATURATED)), n_bands=np.zeros(len(sra)))
        out = {k: np.r_[v, extra[k]] for k, v in out.items()}
        table_rows = np.r_[np.flatnonzero(keep), np.full(len(sra), -1)]
    else:
        table_rows = np.flatnonzero(keep)

    n_before_home = len(out["ra"])
    if cfg.home_only and skycell:
        home = in_home(out["ra"], out["dec"], skycell)
        out = {k: v[home] for k, v in out.items()}
        table_rows = table_rows[home]
    sel = table[table_rows[table_rows >= 0]] if n else table
    ref = str(table.meta.get("psf_match_reference_filter", bands[-1])).upper() if hasattr(table, "meta") else bands[-1]
    stats = {"n_detections": n, "n_below_min_snr": n_faint, "n_masked_by_bright_stars": n_masked,
             "n_saturated_stars": int(len(stars.x)),
             "n_outside_home": int(n_before_home - len(out["ra"])), "n_objects": int(len(out["ra"])),
             "bright_star_mask_radius_arcsec": [round(float(r * scale), 2) for r in stars.mask_radius],
             "bright_star_halo_radius_arcsec": [round(float(r * scale), 2) for r in stars.halo_radius],
             "psf_aperture_factor": {k.upper(): round(v[0], 4) for k, v in psf_factors.items()},
             "psf_systematic_error": {k.upper(): round(v[1], 4) for k, v in psf_factors.items()},
             "kron_aperture_correction_median": {k.upper(): v for k, v in kron_factors.items()}}
    return CatalogResult(out, sel, segm, bands, ref, scale, stats)


def spatial_ids(skycell: str, x: np.ndarray, y: np.ndarray, scale: float, in_core: np.ndarray) -> np.ndarray:
    """rad's ``flagged_spatial_id`` in the archive's layout (romancal's reserves 13 bits for the projection region;
    the archive's regions need 16): bit 60 set outside the home core, bits 44-59 the region, 38-43 the cell row,
    32-37 the cell column, 16-31 and 0-15 the y and x position in 0.05" virtual pixels of the skycell."""
    try:
        cell = skycell_of(skycell)
    except ValueError:  # not one of the archive's skycells (e.g. a synthetic grid)
        return np.zeros(len(x), np.int64)
    virt = scale / 0.05

    def idx(v: np.ndarray) -> np.ndarray:
        return np.clip(np.nan_to_num(np.asarray(v, float) * virt), 0, 2**16 - 1).astype(np.int64)

    out = (cell.region << 44) + (cell.j << 38) + (cell.i << 32) + (idx(y) << 16) + idx(x)
    return np.asarray(out + np.where(in_core, 0, 1 << 60), np.int64)


def _photoz(col: dict[str, np.ndarray], keys: list[str], n: int, cfg: CatalogConfig) -> dict[str, np.ndarray]:
    """rad photoz columns from PSF-matched 0.4" aperture fluxes (the reference band's own, unmatched)."""
    nan = np.full(n, np.nan)
    if len(keys) < cfg.photoz_min_bands or n == 0:
        return {"photoz": nan, "photoz_low68": nan, "photoz_high68": nan, "photoz_gof": nan, "photoz_sed": nan}
    flux = np.stack([col.get(f"aper04_{k}m_flux", col.get(f"aper04_{k}_flux", nan)) for k in keys], axis=1)
    err = np.stack([col.get(f"aper04_{k}m_flux_err", col.get(f"aper04_{k}_flux_err", nan)) for k in keys], axis=1)
    pz = fit_photoz(flux, err, tuple(k.upper() for k in keys), min_bands=cfg.photoz_min_bands)
    return {"photoz": pz.z, "photoz_low68": pz.z_low, "photoz_high68": pz.z_high, "photoz_gof": pz.chi2,
            "photoz_sed": np.where(pz.template >= 0, pz.template, np.nan).astype(float)}
