"""Synthetic calibration reference files matching what romanisim simulates.

romanisim (offline, ``usecrds=False``) uses scalar instrument defaults from
``romanisim.models.parameters.reference_data``: gain 2 e/DN, read noise 5 DN,
saturation 55000 DN, dark 0.01 e/s, identity (in)linearity, flat 1, no dark
decay.  Calibrating such an exposure with romancal needs reference files that
say exactly that, shaped for the simulated detector size, plus a DISTORTION
that reproduces galsim's WCS (:func:`romanarchive.sim.l1.fit_distortion`),
photometric conversions from romanisim's own AB fluxes, and aperture
corrections / ePSF drawn from the same galsim PSF.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asdf
import numpy as np
from astropy.time import Time

from romanarchive.calib.selection import REFTYPES
from romanarchive.sim.l1 import FULL_SIZE, IMAGING_FILTERS, detector_size, fit_distortion

__all__ = ["REFTYPES", "RefInfo", "read_reference_info", "reference_filename", "write_reference_set"]

#: Reference types whose content depends on the optical element.
FILTER_REFTYPES = frozenset({"dark", "distortion", "flat", "apcorr", "epsf"})

_NBORDER = 4
_AUTHOR = "romanarchive"
# romancal fits a cubic spline through (ee_radii, ee_fractions) and evaluates it at its aperture radii: 9
# fractions 0.1..0.9 let it overshoot by up to 0.1 between 0.3" and 1.6" (measured, F158/F213); this grid,
# denser where the encircled energy flattens, keeps it within 0.003 of the PSF's.
_EE_FRACTIONS: np.ndarray = np.concatenate([np.arange(0.1, 0.8, 0.05), np.arange(0.8, 0.951, 0.025)]).round(3)
_EPSF_OVERSAMPLE = 4
_EPSF_STAMP = 181  # oversampled pixels (~45 native pixels), odd so the centre is a pixel


@dataclass
class RefInfo:
    """Identity of one reference file, as needed to register it in the archive."""

    reftype: str
    detector: str
    optical_element: str | None
    useafter: Time
    path: Path


def reference_filename(reftype: str, detector: str, optical_element: str | None, size: int, useafter: str) -> str:
    """Deterministic file name, e.g. ``roman_wfi01_f158_flat_s512_20200101.asdf``."""
    day = Time(useafter).datetime.strftime("%Y%m%d")
    elem = f"_{optical_element.lower()}" if optical_element else ""
    return f"roman_{detector.lower()}{elem}_{reftype}_s{size}_{day}.asdf"


def _defaults() -> dict[str, float]:
    from romanisim.models import parameters

    ref = parameters.reference_data
    return {
        "gain": float(ref["gain"]),
        "readnoise": float(ref["readnoise"]),
        "saturation": float(ref["saturation"]),
        "dark": float(ref["dark"]),  # electron / s
    }


def _meta(model: Any, reftype: str, detector: str, optical_element: str | None, useafter: str, what: str) -> None:
    meta = model.meta
    meta.reftype = reftype.upper()
    meta.instrument.detector = detector
    if optical_element is not None:
        meta.instrument.optical_element = optical_element
    meta.useafter = Time(useafter)
    meta.author = _AUTHOR
    meta.pedigree = "DUMMY"
    meta.origin = "romanarchive synthetic"
    meta.description = f"Synthetic {reftype} for romanisim (offline) exposures: {what}"


def _psf_stamps(
    detector: str, optical_element: str, size: int, positions: list[tuple[float, float]]
) -> tuple[list[np.ndarray], list[float]]:
    """Draw galsim's Roman PSF (as romanisim uses it) integrated over native pixels, oversampled.

    The PSF has unit total flux and each stamp is scaled by ``oversample**2`` (romancal's "new style"
    ePSF convention), so a stamp sums to ``oversample**2`` times the PSF's fraction inside it (~97 %):
    a PSF fit then measures total flux.  Also returns the native pixel scale (arcsec, square root of the
    local pixel area) at each position.
    """
    import galsim
    from romanisim import ris_make_utils
    from romanisim.models import wcs as rwcs
    from romanisim.psf import make_one_psf_galsim

    stamps, scales = [], []
    with detector_size(size):
        meta = ris_make_utils.set_metadata(bandpass=optical_element, sca=int(detector[3:]))
        rwcs.fill_in_parameters(meta, galsim.CelestialCoord(270 * galsim.degrees, 66 * galsim.degrees))
        imwcs = rwcs.get_wcs(meta, usecrds=False)
        for x, y in positions:
            pos = galsim.PositionD(x, y)
            psf = make_one_psf_galsim(int(detector[3:]), optical_element, wcs=imwcs, pix=(x, y))
            local = imwcs.local(image_pos=pos)
            pixel = local.toWorld(galsim.Pixel(1.0))  # native pixel response in world coordinates
            fine = galsim.JacobianWCS(*(np.asarray(local.getMatrix()).ravel() / _EPSF_OVERSAMPLE))
            img = galsim.Convolve(psf, pixel).drawImage(
                nx=_EPSF_STAMP, ny=_EPSF_STAMP, wcs=fine, method="no_pixel"
            )
            stamps.append((img.array * _EPSF_OVERSAMPLE**2).astype(np.float32))
            scales.append(float(np.sqrt(local.pixelArea())))
    return stamps, scales


def _encircled_energy(stamp: np.ndarray, pixel_scale: float) -> tuple[np.ndarray, np.ndarray]:
    """Radii (arcsec) enclosing ``_EE_FRACTIONS`` of the total flux of a centred oversampled ePSF stamp.

    Fractions are of the PSF's total flux (``oversample**2`` in a stamp, see :func:`_psf_stamps`), not of
    the part inside the stamp, so aperture corrections give total fluxes.  romancal evaluates the apcorr
    spline at its aperture radii in arcsec (0.2", 0.4", ...) and so do the CRDS files, although rad's
    schema text says pixels: the radii are written in arcsec.

    Parameters
    ----------
    stamp
        ePSF oversampled by ``_EPSF_OVERSAMPLE``, centred on its central pixel.
    pixel_scale
        Native pixel scale in arcsec.
    """
    from photutils.aperture import CircularAperture, aperture_photometry

    centre = float(stamp.shape[0] // 2)
    # Exact-overlap circles every 1/4 oversampled pixel: assigning whole pixels to rings is too coarse
    # inside ~1.5 native pixels, where the EE curve is steep.
    r = np.arange(0.25, centre, 0.25)
    sums = aperture_photometry(stamp, [CircularAperture((centre, centre), x) for x in r], method="exact")
    cum: np.ndarray = np.maximum.accumulate(
        np.array([float(sums[f"aperture_sum_{i}"][0]) for i in range(len(r))]) / _EPSF_OVERSAMPLE**2
    )
    # Only fractions the stamp reaches (it holds ~95-99 % of the light, depending on the filter).
    reached = float(cum[-1]) - 0.005
    fractions = _EE_FRACTIONS[np.less(_EE_FRACTIONS, reached)]
    radii = np.interp(fractions, cum, r / _EPSF_OVERSAMPLE * pixel_scale)
    return fractions.astype(np.float64), radii.astype(np.float64)


def _photom_table(detector: str, gain: float) -> dict[str, Any]:
    import astropy.units as u
    from romanisim.models import bandpass, parameters

    sca = int(detector[3:])
    area_sr = float(((parameters.pixel_scale * u.arcsec) ** 2).to(u.sr).value)
    table: dict[str, Any] = {}
    for filt in IMAGING_FILTERS:
        # romanisim renders 1 maggie as get_abflux electrons/s: DN/s -> MJy/sr is gain * etomjysr.
        table[filt] = {
            # Plain numbers: the schema units are documentary ((MJy/sr)/(DN/s), sr, m^2, micron).
            "photmjsr": float(gain * bandpass.etomjysr(filt, sca)),
            "uncertainty": 0.0,
            "pixelareasr": area_sr,
            "collecting_area": float(parameters.collecting_area / 1e4),
            "wavelength": np.array([0.5, 2.5], dtype=np.float32),
            "effective_area": np.zeros(2, dtype=np.float32),
        }
    return table


def _build(
    reftype: str, *, detector: str, optical_element: str, size: int, useafter: str, ma_table_number: int,
    ra: float | None, dec: float | None, psf_cache: dict[str, list[np.ndarray]],
) -> Any:
    """Create the datamodel of one reference type."""
    from roman_datamodels import datamodels as rdm
    from roman_datamodels.dqflags import pixel

    d = _defaults()
    n = size + 2 * _NBORDER  # full-frame arrays include the reference-pixel border
    full = (n, n)
    f32 = np.float32
    elem: str | None = optical_element if reftype in FILTER_REFTYPES else None
    what = ""
    if reftype == "mask":
        m = rdm.MaskRefModel.create_fake_data(shape=full)
        dq = np.zeros(full, np.uint32)
        dq[:_NBORDER, :] = dq[-_NBORDER:, :] = dq[:, :_NBORDER] = dq[:, -_NBORDER:] = pixel.REFERENCE_PIXEL
        m.dq = dq
        what = "no bad pixels; border flagged REFERENCE_PIXEL"
    elif reftype == "saturation":
        m = rdm.SaturationRefModel.create_fake_data(shape=full)
        m.data = np.full(full, d["saturation"], f32)
        m.dq = np.zeros(full, np.uint32)
        what = f"{d['saturation']:g} DN everywhere"
    elif reftype == "refpix":
        # Zero coefficients: no 1/f correction (romanisim simulates none). Shape as in CRDS files:
        # (channels, rfft length of one padded 140-column channel).
        nchan, length = n // 128, n * 140 // 2 + 1
        m = rdm.RefpixRefModel.create_fake_data(shape=(nchan, length))
        m.gamma = np.zeros((nchan, length), np.complex128)
        m.zeta = np.zeros((nchan, length), np.complex128)
        m.alpha = np.zeros((nchan, length), np.complex128)
        what = "zero coefficients"
    elif reftype == "darkdecaysignal":
        # 'N/A' crashes the step: a zero-amplitude table for every detector is a no-op.
        m = rdm.DarkdecaysignalRefModel.create_fake_data()
        m.decay_table = {f"WFI{i:02d}": {"amplitude": 0.0, "time_constant": 1.0} for i in range(1, 19)}
        what = "zero amplitude"
    elif reftype in ("linearity", "inverselinearity"):
        model = rdm.LinearityRefModel if reftype == "linearity" else rdm.InverselinearityRefModel
        m = model.create_fake_data(shape=(2, n, n))
        coeffs = np.zeros((2, n, n), f32)
        coeffs[1] = 1.0  # identity polynomial: romanisim adds no non-linearity
        m.coeffs = coeffs
        m.dq = np.zeros(full, np.uint32)
        what = "identity"
    elif reftype == "dark":
        m = rdm.DarkRefModel.create_fake_data(shape=full)
        m.dark_slope = np.full(full, d["dark"] / d["gain"], f32)  # DN/s
        m.dark_slope_error = np.zeros(full, f32)
        m.dq = np.zeros(full, np.uint32)
        what = f"{d['dark'] / d['gain']:g} DN/s"
    elif reftype == "readnoise":
        m = rdm.ReadnoiseRefModel.create_fake_data(shape=full)
        m.data = np.full(full, d["readnoise"], f32)
        what = f"{d['readnoise']:g} DN"
    elif reftype == "gain":
        m = rdm.GainRefModel.create_fake_data(shape=full)
        m.data = np.full(full, d["gain"], f32)
        what = f"{d['gain']:g} e/DN"
    elif reftype == "distortion":
        m = rdm.DistortionRefModel.create_fake_data()
        m.coordinate_distortion_transform = fit_distortion(
            detector, size, ra=270.0 if ra is None else ra, dec=66.0 if dec is None else dec
        )
        m.meta["input_units"] = "pixel"
        m.meta["output_units"] = "arcsec"
        what = "polynomial fit to galsim's Roman WCS"
    elif reftype == "flat":
        # The flat is the trimmed science size: a full-frame flat makes the step skip itself.
        m = rdm.FlatRefModel.create_fake_data(shape=(size, size))
        m.data = np.ones((size, size), f32)
        m.err = np.zeros((size, size), f32)
        m.dq = np.zeros((size, size), np.uint32)
        what = "unity"
    elif reftype == "photom":
        m = rdm.WfiImgPhotomRefModel.create_fake_data()
        m.phot_table = _photom_table(detector, d["gain"])
        what = "romanisim AB zeropoints"
    elif reftype in ("apcorr", "epsf"):
        if "stamps" not in psf_cache:  # apcorr and epsf share one set of PSF renderings
            psf_cache["stamps"] = _epsf_grid(detector, optical_element, size, psf_cache)
        stamps = psf_cache["stamps"]
        if reftype == "apcorr":
            m = rdm.ApcorrRefModel.create_fake_data()
            centre = len(stamps) // 2
            frac, radii = _encircled_energy(stamps[centre], float(psf_cache["pixel_scales"][centre]))
            m.data = {
                optical_element: {
                    "ee_fractions": frac,
                    "ee_radii": radii,
                    "ap_corrections": 1.0 / frac,
                    "sky_background_rin": float(radii[-1] * 2),  # arcsec, like ee_radii
                    "sky_background_rout": float(radii[-1] * 3),
                }
            }
            what = "encircled energy of galsim's Roman PSF (ee_radii in arcsec)"
        else:
            m = rdm.EpsfRefModel.create_fake_data()
            # romancal picks spectral-type index 1 (G2V): provide three identical ones.
            m.psf = np.stack([np.stack([np.stack(stamps)] * 3)])
            m.meta.oversample = _EPSF_OVERSAMPLE
            m.meta.spectral_type = ["A0V", "G2V", "M6V"]
            m.meta.defocus = [0]
            m.meta.pixel_x, m.meta.pixel_y = (list(map(float, a)) for a in zip(*psf_cache["positions"], strict=True))
            # Same jitter as romancal assumes for images without guide-star values -> no re-convolution.
            m.meta.jitter_major, m.meta.jitter_minor, m.meta.jitter_position_angle = 8.0, 8.0, 0.0
            what = "galsim Roman PSF, 3x3 grid, oversample 4"
    else:
        raise ValueError(f"unknown reftype {reftype!r}")
    if reftype in ("dark", "readnoise"):
        m.meta.exposure.type = "WFI_IMAGE"
        m.meta.exposure["ma_table_number"] = ma_table_number
    _meta(m, reftype, detector, elem, useafter, what)
    return m


def _epsf_grid(detector: str, optical_element: str, size: int, cache: dict[str, Any]) -> list[np.ndarray]:
    """ePSF stamps on a 3x3 grid; small cut-outs reuse the centre PSF (variation is negligible).

    Also leaves the positions and native pixel scales (arcsec) in ``cache``.
    """
    edge = np.array([0.1, 0.5, 0.9]) * (size - 1)
    positions = [(float(x), float(y)) for y in edge for x in edge]
    cache["positions"] = positions
    if size >= 2048:
        stamps, scales = _psf_stamps(detector, optical_element, size, positions)
    else:
        centre, scale = _psf_stamps(detector, optical_element, size, [positions[4]])
        stamps, scales = centre * len(positions), scale * len(positions)
    cache["pixel_scales"] = scales
    return stamps


def write_reference_set(
    out_dir: Path,
    *,
    detector: str,
    optical_element: str,
    size: int,
    useafter: str = "2020-01-01T00:00:00",
    ma_table_number: int = 4,
    ra: float | None = None,
    dec: float | None = None,
    reftypes: tuple[str, ...] = REFTYPES,
    compress: bool = True,
) -> dict[str, Path]:
    """Write every reference file needed to calibrate one detector's exposures.

    Parameters
    ----------
    out_dir
        Directory for the files (created).  Names are deterministic
        (:func:`reference_filename`), so re-running overwrites the same files.
    detector
        ``WFI01`` .. ``WFI18``.
    optical_element
        Filter; recorded in the filter-dependent files (distortion, flat, apcorr, epsf).
    size
        Science pixels along each side of the exposures (512 ... 4088).
    useafter
        ISO time from which the files apply.
    ma_table_number
        Recorded in the dark/readnoise metadata.
    ra, dec
        Pointing used for the distortion fit (default 270, 66); the fit is
        pointing independent to < 1 mas, so any value works for any exposure.
    reftypes
        Subset to write (default: all of :data:`REFTYPES`).
    compress
        zlib-compress the arrays (costs ~1 s per full-size array to write and read).

    Returns
    -------
    dict
        ``{reftype: path}``.
    """
    detector = detector.upper()
    optical_element = optical_element.upper()
    if not 64 <= size <= FULL_SIZE:
        raise ValueError("size must be within 64..4088")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    cache: dict[str, Any] = {}
    paths: dict[str, Path] = {}
    for reftype in reftypes:
        elem = optical_element if reftype in FILTER_REFTYPES else None
        path = out_dir / reference_filename(reftype, detector, elem, size, useafter)
        model = _build(
            reftype, detector=detector, optical_element=optical_element, size=size, useafter=useafter,
            ma_table_number=ma_table_number, ra=ra, dec=dec, psf_cache=cache,
        )
        tmp = path.with_name(f".{path.stem}.part.asdf")
        # Synthetic arrays are constant: zlib shrinks a full-size set from ~1.2 GB to a few MB.
        model.save(tmp, all_array_compression="zlib" if compress else None)
        tmp.replace(path)
        paths[reftype] = path
    return paths


def read_reference_info(path: Path) -> RefInfo:
    """Read the identity of a reference file from its metadata (arrays are not loaded).

    Parameters
    ----------
    path
        A Roman reference-file ASDF.

    Returns
    -------
    RefInfo
        ``reftype`` lower case; ``optical_element`` None when the file has none.
    """
    path = Path(path)
    with asdf.open(path, lazy_load=True, memmap=False) as af:
        meta = af["roman"]["meta"]
        instrument = meta.get("instrument", {})
        useafter = meta["useafter"]
        if isinstance(useafter, datetime.datetime | str):
            useafter = Time(useafter)
        return RefInfo(
            reftype=str(meta["reftype"]).lower(),
            detector=str(instrument.get("detector", "")),
            optical_element=instrument.get("optical_element"),
            useafter=Time(useafter),
            path=path,
        )
