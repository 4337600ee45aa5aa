"""The catalog measurement: a pure function from co-registered band images to one multiband object table.

Steps (photutils 3 throughout, as romancal's SourceCatalogStep does, plus what it lacks — multiband detection, PSF
matching, classification and photo-z):

1. per band: ``Background2D`` estimate (sigma-clipped meshes, median-filtered) and subtraction;
2. detection image: inverse-variance weighted mean of the bands, filtered with a Gaussian kernel; a pixel belongs
   to a source when its filtered S/N — with the noise of the *filtered* image, sqrt(err² * kernel²) — exceeds
   ``snr_threshold``, in ``n_pixels`` connected pixels;
3. hierarchical (multi-threshold) deblending;
4. detection-image shapes: centroid, second-moment axes, ellipticity, position angle, half-light radius;
5. per band with the same segmentation and centroids: circular aperture photometry and local background at the
   native PSF, and again after convolving with the kernel that matches the band's PSF to the broadest band's;
6. star/galaxy class from the concentration of the PSF-matched combined image against the reference PSF's;
7. photometric redshifts from the PSF-matched fluxes (:mod:`romanarchive.catalog.photoz`).

Images are in surface brightness (MJy/sr, the L2/L3 unit); fluxes come out in nJy. Deblending (3) and the
per-object measurements (4-6) are split over ``n_workers`` forked processes (:mod:`romanarchive.catalog.deblend`,
:mod:`romanarchive.catalog.objects`), with results identical to one process.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from romanarchive.catalog.config import CatalogConfig
from romanarchive.catalog.deblend import deblend_parallel
from romanarchive.catalog.objects import ObjectInputs, measure_objects_parallel
from romanarchive.catalog.photoz import fit_photoz
from romanarchive.db.tables_catalog import OBJECT_MEASUREMENTS
from romanarchive.imaging.psf import concentration_of, matching_kernel, psf_image, second_moment_width

NJY_PER_MJY = 1e15
AB_ZP_NJY = 31.4  # m_AB = 31.4 - 2.5 log10(f / nJy)

FLAG_DEBLENDED, FLAG_EDGE, FLAG_MISSING_BAND = 1, 2, 4


class CatalogInputError(ValueError):
    """An input image the catalog cannot be built from (no WCS, empty, all NaN, mismatched bands)."""


@dataclass(frozen=True)
class BandImage:
    """One filter's image on the common pixel grid.

    Attributes
    ----------
    band
        Filter name (F062 ... F213).
    data, err
        Surface brightness and its 1-sigma uncertainty, MJy/sr; NaN or err <= 0 marks unusable pixels.
    """

    band: str
    data: np.ndarray
    err: np.ndarray


@dataclass
class CatalogResult:
    """What :func:`measure` returns."""

    columns: dict[str, np.ndarray]
    segmentation: np.ndarray
    bands: tuple[str, ...]
    reference_band: str
    pixel_scale_arcsec: float
    stats: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.columns["ra"])


def _fftconvolve(img: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    from scipy.signal import fftconvolve

    return np.asarray(fftconvolve(img, kernel, mode="same"))


def _convolve_small(img: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """``_fftconvolve`` for a small kernel: two 1-D passes when it is separable (a Gaussian is), else FFT."""
    from scipy.ndimage import convolve1d

    u, s, vt = np.linalg.svd(kernel)
    if s.size > 1 and s[1] > 1e-12 * s[0]:
        return _fftconvolve(img, kernel)
    col, row = u[:, 0] * np.sqrt(s[0]), vt[0] * np.sqrt(s[0])
    if col.sum() < 0:
        col, row = -col, -row
    out = convolve1d(np.asarray(img, dtype=float), col, axis=0, mode="constant", cval=0.0)
    return np.asarray(convolve1d(out, row, axis=1, mode="constant", cval=0.0))


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


def _validate(bands: Sequence[BandImage]) -> tuple[int, int]:
    if not bands:
        raise CatalogInputError("no band images given")
    shape = bands[0].data.shape
    if len(shape) != 2:
        raise CatalogInputError(f"images must be 2-D, got shape {shape}")
    for b in bands:
        if b.data.shape != shape or b.err.shape != shape:
            raise CatalogInputError(f"band {b.band}: shape {b.data.shape} differs from {shape} (bands must share "
                                    "one pixel grid)")
        good = np.isfinite(b.data) & np.isfinite(b.err) & (b.err > 0)
        if not good.any():
            raise CatalogInputError(f"band {b.band}: no usable pixel (all NaN or zero error)")
        if b.data.size == 0 or np.ptp(b.data[good]) == 0:
            raise CatalogInputError(f"band {b.band}: empty image (constant data)")
    if len({b.band for b in bands}) != len(bands):
        raise CatalogInputError("each band may appear once")
    return shape  # type: ignore[return-value]


def _background(data: np.ndarray, mask: np.ndarray, cfg: CatalogConfig) -> np.ndarray:
    from photutils.background import Background2D

    box = int(min(cfg.bkg_box_px, max(8, min(data.shape) // 4)))
    bkg = Background2D(np.where(mask, 0.0, data), box, coverage_mask=mask, fill_value=0.0,
                       filter_size=(cfg.bkg_filter_px, cfg.bkg_filter_px), exclude_percentile=50.0)
    return np.asarray(bkg.background)


def _empty(bands: tuple[str, ...], shape: tuple[int, int], ref: str, scale: float) -> CatalogResult:
    cols = {"ra": np.empty(0), "dec": np.empty(0), "point_like": np.empty(0, bool)}
    cols.update({c.name: np.empty(0) for c in OBJECT_MEASUREMENTS})
    return CatalogResult(cols, np.zeros(shape, np.int32), bands, ref, scale, {"n_sources": 0})


def measure(images: Sequence[BandImage], wcs: Any, config: CatalogConfig | None = None) -> CatalogResult:
    """Detect, deblend and measure the objects of co-registered band images.

    Parameters
    ----------
    images
        One :class:`BandImage` per filter, all on the pixel grid of ``wcs``.
    wcs
        The grid's WCS (gwcs or astropy), anything with APE 14 ``pixel_to_world_values``.
    config
        Step parameters.

    Returns
    -------
    CatalogResult
        Columns named as the ``objects`` table's (ra, dec, point_like and the measurements) and the segmentation.
    """
    from photutils.segmentation import SourceCatalog, detect_sources, make_2dgaussian_kernel

    cfg = config or CatalogConfig()
    if wcs is None:
        raise CatalogInputError("the image has no WCS")
    shape = _validate(images)
    scale = pixel_scale(wcs, shape)
    bands = tuple(b.band.upper() for b in images)

    # Background-subtracted data; unusable pixels get zero data and weight.
    subs, errs, masks = [], [], []
    for b in images:
        mask = ~(np.isfinite(b.data) & np.isfinite(b.err) & (b.err > 0))
        sub = np.where(mask, 0.0, b.data - _background(b.data, mask, cfg))
        subs.append(sub)
        errs.append(np.where(mask, 0.0, b.err))
        masks.append(mask)
    mask_all = np.logical_and.reduce(masks)

    # PSF matching of every band to the broadest PSF.
    psfs = [psf_image(b, scale, sca=cfg.sca) for b in bands]
    widths = [second_moment_width(p) for p in psfs]
    iref = int(np.argmax(widths))
    kernels = [matching_kernel(p, psfs[iref]) for p in psfs]
    matched = [s if i == iref else _fftconvolve(s, k) for i, (s, k) in enumerate(zip(subs, kernels, strict=True))]
    matched_err = [e if i == iref else np.sqrt(np.clip(_fftconvolve(e**2, k**2), 0, None))
                   for i, (e, k) in enumerate(zip(errs, kernels, strict=True))]

    # Inverse-variance weighted detection image and its filtered S/N threshold.
    def combine(data: list[np.ndarray], err: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        w = [np.where(e > 0, 1.0 / np.where(e > 0, e, 1.0) ** 2, 0.0) for e in err]
        wsum = np.sum(w, axis=0)
        comb = np.where(wsum > 0, np.sum([wi * d for wi, d in zip(w, data, strict=True)], axis=0)
                        / np.where(wsum > 0, wsum, 1.0), 0.0)
        return comb, np.where(wsum > 0, 1.0 / np.sqrt(np.where(wsum > 0, wsum, 1.0)), 0.0)

    det, det_err = (subs[0], errs[0]) if len(subs) == 1 else combine(subs, errs)
    fwhm_px = cfg.kernel_fwhm_arcsec / scale
    size = int(2 * np.ceil(1.5 * fwhm_px) + 1)
    kernel = make_2dgaussian_kernel(fwhm_px, size=max(size, 3)).array
    # scipy.ndimage releases the GIL: the error image's filtering and the peak map run beside the main thread.
    with ThreadPoolExecutor(max(1, min(2, cfg.n_workers))) as pool:
        conv_err_f = pool.submit(lambda: np.sqrt(np.clip(_convolve_small(det_err**2, kernel**2), 0, None)))
        conv = _convolve_small(det, kernel)
        peaks_f = pool.submit(_local_maxima, conv)
        conv_err = conv_err_f.result()
        noise_scale = _noise_scale(conv, conv_err, mask_all)
        threshold = np.where(mask_all, np.inf, cfg.snr_threshold * noise_scale * conv_err)
        segm0 = detect_sources(conv, threshold, cfg.n_pixels, mask=mask_all)
        peaks = peaks_f.result()
    if segm0 is None:
        return _empty(bands, shape, bands[iref], scale)
    multi = _multi_peak_labels(peaks, segm0.data)
    if len(multi):
        segm = deblend_parallel(conv, segm0, multi, cfg.n_workers, cfg.n_pixels, cfg.deblend_levels,
                                cfg.deblend_contrast)
    else:
        segm = segm0.copy()

    det_cat = SourceCatalog(det, segm, convolved_data=conv, error=det_err, mask=mask_all,
                            local_bkg_width=cfg.local_bkg_width_px)
    x = np.asarray(det_cat.x_centroid, dtype=float)
    y = np.asarray(det_cat.y_centroid, dtype=float)
    good = np.isfinite(x) & np.isfinite(y)
    if not good.all():  # segments whose centroid is undefined (all masked) are dropped from the map too
        segm.remove_labels(np.asarray(det_cat.labels)[~good], relabel=True)
        if segm.n_labels == 0:
            return _empty(bands, shape, bands[iref], scale)
        det_cat = SourceCatalog(det, segm, convolved_data=conv, error=det_err, mask=mask_all,
                                local_bkg_width=cfg.local_bkg_width_px)
        x, y = np.asarray(det_cat.x_centroid, float), np.asarray(det_cat.y_centroid, float)
    labels = np.asarray(det_cat.labels)
    n = len(labels)
    cols: dict[str, np.ndarray] = {}

    ra, dec = (np.asarray(v, dtype=float) for v in wcs.pixel_to_world_values(x, y))
    cols["ra"], cols["dec"] = ra % 360.0, dec
    # Per-object measurements (shapes; per band photometry with the detection's segmentation and centroids).
    r_ap = cfg.aperture_radius_arcsec / scale
    r1, r2 = cfg.concentration_radii_px
    comb_m, comb_m_err = (matched[0], matched_err[0]) if len(matched) == 1 else combine(matched, matched_err)
    m = measure_objects_parallel(ObjectInputs(det_cat, segm, subs, errs, masks, matched, matched_err, comb_m,
                                              comb_m_err, mask_all, r_ap, r1, r2, cfg.local_bkg_width_px),
                                 cfg.n_workers)
    seg_flux, seg_err = m["seg_flux"], m["seg_err"]
    snr = np.where(seg_err > 0, seg_flux / np.where(seg_err > 0, seg_err, 1.0), 0.0)
    a, b_axis = m["a"], m["b"]
    theta = np.radians(m["theta"])
    pos_err_mas = a * scale * 1000.0 / np.maximum(snr, 1.0)
    cols.update(
        ra_err=pos_err_mas, dec_err=pos_err_mas.copy(), x_det=x, y_det=y, segment_id=labels.astype(np.int32),
        det_snr=snr, area=m["area"] * scale**2, semimajor_sigma=a * scale, semiminor_sigma=b_axis * scale,
        ellipticity=m["ellipticity"], position_angle=_position_angle(wcs, x, y, theta, ra, dec),
        r_half=m["r_half"] * scale,
    )

    # Deblended children and edge/masked-touching segments.
    # Each child lies inside one parent segment, so any of its pixels names the parent.
    parent = np.zeros(segm.max_label + 1, dtype=np.int64)
    inside = segm.data > 0
    parent[segm.data[inside]] = segm0.data[inside]
    n_children = np.bincount(parent[1:], minlength=segm0.max_label + 1)
    flags = np.where(n_children[parent[labels]] > 1, FLAG_DEBLENDED, 0)
    edge = np.zeros(segm.max_label + 1, dtype=bool)
    border = np.zeros(shape, dtype=bool)
    border[[0, -1], :] = border[:, [0, -1]] = True
    edge[np.unique(segm.data[(border | _dilate(mask_all)) & (segm.data > 0)])] = True
    flags = flags | np.where(edge[labels], FLAG_EDGE, 0)

    to_njy = (np.radians(scale / 3600.0) ** 2) * NJY_PER_MJY  # MJy/sr * pixels -> nJy
    psfm_flux = np.full((n, len(bands)), np.nan)
    psfm_err = np.full((n, len(bands)), np.nan)
    n_bands = np.zeros(n, dtype=np.int16)
    for i, band in enumerate(bands):
        f, fe, fm, fme = (m[f"{k}{i}"] * to_njy for k in ("f", "fe", "fm", "fme"))
        key = band.lower()
        cols[f"{key}_flux_kron"] = m[f"kron{i}"] * to_njy
        cols[f"{key}_flux_kron_err"] = m[f"krone{i}"] * to_njy
        cols[f"{key}_flux_ap"], cols[f"{key}_flux_ap_err"] = f, fe
        cols[f"{key}_flux_psfm"], cols[f"{key}_flux_psfm_err"] = fm, fme
        with np.errstate(divide="ignore", invalid="ignore"):
            cols[f"{key}_mag_ap"] = np.where(f > 0, AB_ZP_NJY - 2.5 * np.log10(f), np.nan)
            cols[f"{key}_mag_ap_err"] = np.where(f > 0, 2.5 / np.log(10) * fe / f, np.nan)
        cols[f"{key}_bkg_local"] = m[f"lb{i}"]
        psfm_flux[:, i], psfm_err[:, i] = fm, fme
        n_bands += np.isfinite(f).astype(np.int16)
    flags = flags | np.where(n_bands < len(bands), FLAG_MISSING_BAND, 0)

    # Star/galaxy: concentration of the PSF-matched combined image against the reference PSF's.
    f1, e1, f2, e2 = m["c1"], m["ce1"], m["c2"], m["ce2"]
    with np.errstate(divide="ignore", invalid="ignore"):
        conc = f1 / f2
        conc_err = np.abs(conc) * np.sqrt((e1 / f1) ** 2 + (e2 / f2) ** 2)
    c_psf = concentration_of(bands[iref], scale, r1, r2, sca=cfg.sca)
    cols["concentration"] = conc
    cols["point_like"] = ((snr >= cfg.class_min_snr) & np.isfinite(conc)
                          & (conc >= c_psf - cfg.class_tolerance - 2 * np.nan_to_num(conc_err, nan=1.0)))

    pz = fit_photoz(psfm_flux, psfm_err, bands)
    cols.update(photoz=pz.z, photoz_err=pz.z_err, photoz_chi2=pz.chi2, photoz_template=pz.template,
                flags=flags.astype(np.int32), n_bands=n_bands)
    stats = {"n_sources": n, "n_parents": int(segm0.n_labels), "reference_band": bands[iref],
             "noise_scale": noise_scale, "psf_concentration": c_psf,
             "psf_width_px": dict(zip(bands, widths, strict=True))}
    return CatalogResult(cols, segm.data.astype(np.int32), bands, bands[iref], scale, stats)


def _noise_scale(conv: np.ndarray, conv_err: np.ndarray, mask: np.ndarray, tile: int = 32) -> float:
    """Factor (>= 1) by which the filtered image's measured noise exceeds what ``err`` predicts.

    Resampled (L3) images have correlated noise that per-pixel ``err`` does not describe; the filtered image shows
    it. Measured per ``tile`` x ``tile`` block of fully usable pixels as the robust (1.4826 MAD) scatter of
    conv / conv_err, then the median over blocks, so blocks with sources or bright halos do not count.
    """
    ny, nx = (conv.shape[0] // tile) * tile, (conv.shape[1] // tile) * tile
    if ny == 0 or nx == 0:
        return 1.0
    good = ~mask[:ny, :nx] & (conv_err[:ny, :nx] > 0)
    ratio = np.divide(conv[:ny, :nx], conv_err[:ny, :nx], out=np.full((ny, nx), np.nan), where=good)
    blocks = ratio.reshape(ny // tile, tile, nx // tile, tile).transpose(0, 2, 1, 3).reshape(-1, tile * tile)
    blocks = blocks[np.isfinite(blocks).all(axis=1)]
    if len(blocks) < 4:
        return 1.0
    # In place: the median only reorders each block, which leaves its deviations' multiset unchanged.
    med = np.median(blocks, axis=1, keepdims=True, overwrite_input=True)
    np.abs(np.subtract(blocks, med, out=blocks), out=blocks)
    scatter = 1.4826 * np.median(blocks, axis=1, overwrite_input=True)
    return float(max(1.0, np.median(scatter)))


def _local_maxima(conv: np.ndarray) -> np.ndarray:
    """Pixels that are the maximum of their 3x3 neighbourhood."""
    from scipy.ndimage import maximum_filter

    return np.asarray(conv == maximum_filter(conv, size=3))


def _multi_peak_labels(peaks: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Segments holding more than one local maximum (``peaks``, from :func:`_local_maxima`): the only ones
    multi-thresholding can split (each child of a deblended segment contains a maximum), so deblending just these
    gives the same result much faster."""
    peaks = peaks & (labels > 0)
    counts = np.bincount(labels[peaks], minlength=int(labels.max()) + 1)
    return np.flatnonzero(counts > 1)


def _dilate(mask: np.ndarray) -> np.ndarray:
    from scipy.ndimage import binary_dilation

    return np.asarray(binary_dilation(mask)) if mask.any() else mask


def _position_angle(wcs: Any, x: np.ndarray, y: np.ndarray, theta: np.ndarray, ra: np.ndarray,
                    dec: np.ndarray) -> np.ndarray:
    """Sky position angle (east of north, degrees in [0, 180)) of pixel-frame orientations ``theta``."""
    ra2, dec2 = (np.asarray(v, dtype=float) for v in wcs.pixel_to_world_values(x + np.cos(theta),
                                                                                 y + np.sin(theta)))
    dra = ((ra2 - ra + 180.0) % 360.0 - 180.0) * np.cos(np.radians(dec))
    return np.degrees(np.arctan2(dra, dec2 - dec)) % 180.0


def aperture_correction(band: str, scale: float, radius_arcsec: float, sca: int = 1) -> float:
    """Total / aperture flux of a point source (the PSF) for the catalog's aperture."""
    from photutils.aperture import CircularAperture, aperture_photometry

    psf = psf_image(band, scale, size=101, sca=sca)
    c = ((psf.shape[1] - 1) / 2.0, (psf.shape[0] - 1) / 2.0)
    inside = float(aperture_photometry(psf, CircularAperture(c, radius_arcsec / scale))["aperture_sum"][0])
    return 1.0 / inside
