"""Simulate one WFI level-1 (uncalibrated ramp) exposure with romanisim, offline.

romanisim is run with ``usecrds=False`` and galsim's built-in Roman PSF and WCS,
so nothing is downloaded.  Three things are added on top of romanisim:

* a *small-detector* mode: romanisim has no option for images smaller than the
  4088x4088 science area, but its geometry is driven by a handful of module
  globals (``n_pix``).  :func:`detector_size` patches them for the duration of a
  simulation (and restores them), which gives a valid central cut-out of the
  detector that romancal can calibrate (size 512 in ~6 s instead of ~65 s).
* bright point sources drawn with the PSF's full extent over the whole image instead of in
  romanisim's truncated stamps (:mod:`romanarchive.sim.wings`).
* a WCS that romancal can reproduce: the file's ``meta.wcsinfo`` is rewritten to
  the detector aperture using a pixel->V2/V3 polynomial fitted to galsim's WCS
  (:func:`fit_distortion`); the same fit is stored as the DISTORTION reference
  file (see :mod:`romanarchive.sim.references`), so ``assign_wcs`` reproduces
  the sky positions romanisim rendered the sources at.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from copy import deepcopy
from pathlib import Path
from typing import Any

import asdf
import numpy as np
import pydantic
from astropy.modeling import Model, fitting, models
from astropy.table import Table
from astropy.time import Time

__all__ = [
    "FULL_SIZE",
    "IMAGING_FILTERS",
    "SIMULATION_VERSION",
    "L1Spec",
    "detector_size",
    "fit_distortion",
    "is_observable",
    "l1_filename",
    "make_l1",
    "observable_mjd",
    "v23tosky",
]

#: Science pixels along one side of a full WFI detector (4096 minus 2x4 reference pixels).
FULL_SIZE = 4088
_NBORDER = 4
IMAGING_FILTERS = ("F062", "F087", "F106", "F129", "F146", "F158", "F184", "F213")

# Patching module globals is process-wide: serialise every patched region.
_PATCH_LOCK = threading.RLock()

#: Bumped whenever the pixels :func:`make_l1` draws for a given spec and catalogue change
#: (2: bright point sources drawn with the PSF's full extent, :mod:`romanarchive.sim.wings`).
SIMULATION_VERSION = 2


class L1Spec(pydantic.BaseModel):
    """Everything that defines one simulated L1 exposure.

    ``ra``/``dec`` are the sky position of the detector centre (deg) and ``pa``
    the position angle of the observatory (galsim/romanisim ``pa_aperture``, deg).
    ``size`` is the side of the science area in pixels; the stored arrays are
    ``size + 8`` wide (4 reference pixels on each edge).
    """

    model_config = pydantic.ConfigDict(frozen=True, extra="forbid")

    ra: float = pydantic.Field(ge=0.0, lt=360.0)
    dec: float = pydantic.Field(ge=-90.0, le=90.0)
    pa: float = 0.0
    detector: str = pydantic.Field(default="WFI01", pattern=r"^WFI(0[1-9]|1[0-8])$")
    bandpass: str = "F158"
    mjd: float = 61000.0
    size: int = pydantic.Field(default=512, ge=64, le=FULL_SIZE)
    ma_table_number: int = 4
    seed: int = 1
    program: int = pydantic.Field(default=1, ge=1, le=99999)
    execution_plan: int = pydantic.Field(default=1, ge=1, le=99)
    pass_: int = pydantic.Field(default=1, ge=1, le=999)
    segment: int = pydantic.Field(default=1, ge=1, le=999)
    observation: int = pydantic.Field(default=1, ge=1, le=999)
    visit: int = pydantic.Field(default=1, ge=1, le=999)
    visit_file_group: int = pydantic.Field(default=1, ge=1, le=99)
    visit_file_sequence: int = pydantic.Field(default=1, ge=1, le=5)
    visit_file_activity: str = pydantic.Field(default="01", pattern=r"^[0-9A-Za-z]{2}$")
    exposure: int = pydantic.Field(default=1, ge=1, le=9999)

    @pydantic.field_validator("bandpass")
    @classmethod
    def _known_filter(cls, v: str) -> str:
        v = v.upper()
        if v not in IMAGING_FILTERS:
            raise ValueError(f"bandpass must be one of {IMAGING_FILTERS}")
        return v

    @pydantic.field_validator("ma_table_number")
    @classmethod
    def _known_ma_table(cls, v: int) -> int:
        from romanisim.models import parameters

        if v not in parameters.read_pattern:
            raise ValueError(f"unknown MA table {v}; known: {sorted(parameters.read_pattern)}")
        return v

    @property
    def sca(self) -> int:
        """Detector number 1..18."""
        return int(self.detector[3:])

    @property
    def visit_id(self) -> str:
        """``PPPPPCCAAASSSOOOVVV`` as in ``meta.observation.visit_id``."""
        return (
            f"{self.program:05d}{self.execution_plan:02d}{self.pass_:03d}"
            f"{self.segment:03d}{self.observation:03d}{self.visit:03d}"
        )

    @property
    def observation_id(self) -> str:
        """``PPPPPCCAAASSSOOOVVVggsaaeeee`` as in ``meta.observation.observation_id``."""
        return (
            f"{self.visit_id}{self.visit_file_group:02d}{self.visit_file_sequence:1d}"
            f"{self.visit_file_activity}{self.exposure:04d}"
        )


def l1_filename(spec: L1Spec) -> str:
    """Return the Roman-style file name of the L1 product of ``spec``.

    Follows the convention used by romancal/romanisim test data:
    ``r<visit_id>_<exposure:04d>_<detector>_<filter>_uncal.asdf`` (lower case);
    romancal derives ``..._cal.asdf`` from it by replacing the suffix.  Note that
    the visit-file group/sequence/activity are not part of the name (they are in
    ``meta.observation.observation_id``).

    Parameters
    ----------
    spec
        Exposure specification.

    Returns
    -------
    str
        e.g. ``r0000101001001001001_0001_wfi01_f158_uncal.asdf``.
    """
    return f"r{spec.visit_id}_{spec.exposure:04d}_{spec.detector.lower()}_{spec.bandpass.lower()}_uncal.asdf"


@contextmanager
def detector_size(size: int) -> Iterator[None]:
    """Temporarily make romanisim simulate a ``size`` x ``size`` science area.

    romanisim reads the detector size from ``parameters.n_pix`` and from copies
    of it bound at import time in several modules; all of them are patched and
    restored on exit.  Regions are serialised with a process-wide lock because
    the patch is global.  ``size == 4088`` is a no-op apart from the lock.

    Parameters
    ----------
    size
        Science pixels along each side.
    """
    import romanisim.models.parameters as parameters
    import romanisim.models.psf_utils as psf_utils
    import romanisim.models.wcs as rwcs
    import romanisim.models.wcs_utils as wcs_utils
    import romanisim.psf as rpsf

    modules = (parameters, psf_utils, rwcs, wcs_utils, rpsf)
    with _PATCH_LOCK:
        saved = [(m, m.n_pix) for m in modules]
        try:
            for m in modules:
                m.n_pix = size
            yield
        finally:
            for m, value in saved:
                m.n_pix = value


def is_observable(ra: float, dec: float, mjd: float) -> bool:
    """Whether Roman may point at (ra, dec) on ``mjd`` (Sun angle 90 +/- 36 deg).

    galsim's Roman WCS refuses other pointings, so :func:`make_l1` does too.
    """
    import galsim
    from romanisim.models.wcs_utils import allowedPos

    pos = galsim.CelestialCoord(ra * galsim.degrees, dec * galsim.degrees)
    return bool(allowedPos(pos, Time(mjd, format="mjd").datetime))


def observable_mjd(ra: float, dec: float, near_mjd: float = 61000.0) -> float:
    """Return the observable date (whole-day steps) closest to ``near_mjd``.

    Raises
    ------
    ValueError
        If no date within a year is observable (cannot happen for real pointings).
    """
    for step in range(0, 366):
        for mjd in (near_mjd + step, near_mjd - step):
            if is_observable(ra, dec, mjd):
                return mjd
    raise ValueError(f"({ra}, {dec}) is never observable")


def v23tosky(ra_ref: float, dec_ref: float, roll_ref: float, v2_ref: float = 0.0, v3_ref: float = 0.0) -> Model:
    """V2/V3 (arcsec) -> RA/Dec (deg) rotation, identical to romancal's ``assign_wcs.v23tosky``."""
    from gwcs.geometry import CartesianToSpherical, SphericalToCartesian

    rot = models.RotationSequence3D(
        [v2_ref / 3600, -v3_ref / 3600, roll_ref, dec_ref, -ra_ref], axes_order="zyxyz"
    )
    return (
        (models.Scale(1 / 3600) & models.Scale(1 / 3600))
        | SphericalToCartesian(wrap_lon_at=180)
        | rot
        | CartesianToSpherical(wrap_lon_at=360)
    )


def _base_metadata(spec: L1Spec) -> dict[str, Any]:
    """romanisim metadata for ``spec`` with the boresight placed so the detector centre is at (ra, dec).

    Must be called inside :func:`detector_size` (the centre depends on ``n_pix``).
    """
    import galsim
    from romanisim import ris_make_utils
    from romanisim.models import wcs as rwcs
    from romanisim.models.wcs_utils import convertCenter

    start = Time(spec.mjd, format="mjd", scale="utc")
    if not is_observable(spec.ra, spec.dec, spec.mjd):
        raise ValueError(
            f"Roman cannot point at ({spec.ra}, {spec.dec}) on MJD {spec.mjd} (Sun constraint); "
            f"nearest observable date: MJD {observable_mjd(spec.ra, spec.dec, spec.mjd)}"
        )
    meta = ris_make_utils.set_metadata(
        date=start.isot, bandpass=spec.bandpass, sca=spec.sca, ma_table_number=spec.ma_table_number
    )
    # galsim's WCS is anchored on the focal-plane centre: find the one that puts
    # this detector's centre on the requested position.
    centre = galsim.CelestialCoord(spec.ra * galsim.degrees, spec.dec * galsim.degrees)
    fpa = convertCenter(
        centre, spec.sca, PA=spec.pa * galsim.degrees, date=start.datetime, tol=0.01 * galsim.arcsec
    )
    rwcs.fill_in_parameters(meta, fpa, pa_aper=spec.pa, boresight=True)
    return meta


def fit_distortion(
    detector: str,
    size: int,
    *,
    ra: float = 270.0,
    dec: float = 66.0,
    pa: float = 0.0,
    mjd: float | None = None,
    degree: int = 5,
    npts: int = 41,
) -> Model:
    """Fit romanisim/galsim's WCS of one detector as a pixel -> V2/V3 polynomial.

    The galsim Roman WCS is evaluated on a grid, rotated to V2/V3 with the
    boresight convention romanisim writes into ``meta.wcsinfo`` (V2/V3 = 0 at
    ``ra_ref/dec_ref``, ``roll_ref = pa + 60``) and fitted with two scaled 2-D
    polynomials.  The result does not depend on the pointing (< 1 mas between
    pointings, measured), so one fit per detector and size serves every exposure.

    Parameters
    ----------
    detector
        ``WFI01`` .. ``WFI18``.
    size
        Science pixels along each side (the same patched geometry as :func:`make_l1`).
    ra, dec, pa
        Pointing used for the fit (detector centre, deg).
    mjd
        Date for the fit; default: the observable date nearest MJD 61000.
    degree
        Polynomial degree.
    npts
        Grid points along each axis.

    Returns
    -------
    astropy.modeling.Model
        ``(x, y)`` 0-based science pixels -> ``(v2, v3)`` arcsec, with ``inverse`` set.
    """
    from romanisim.models import wcs as rwcs

    if mjd is None:
        mjd = observable_mjd(ra, dec)
    spec = L1Spec(ra=ra % 360.0, dec=dec, pa=pa, detector=detector, size=size, mjd=mjd)
    with detector_size(size):
        meta = _base_metadata(spec)
        gwcs_galsim = rwcs.get_wcs(meta, usecrds=False)
    info = meta["wcsinfo"]
    grid = np.linspace(-0.5, size - 0.5, npts)
    x, y = (a.ravel() for a in np.meshgrid(grid, grid))
    ra_, dec_ = gwcs_galsim.toWorld(x, y, units="deg")
    v2, v3 = v23tosky(info["ra_ref"], info["dec_ref"], info["roll_ref"]).inverse(ra_, dec_)
    v2 = np.where(v2 > 180 * 3600, v2 - 360 * 3600, v2)
    half = (size - 1) / 2
    # Centre and scale pixels to [-1, 1] so the least-squares problem is well conditioned.
    norm = (models.Shift(-half) | models.Scale(1 / half)) & (models.Shift(-half) | models.Scale(1 / half))
    u, w = norm(x, y)
    fitter = fitting.LinearLSQFitter()
    p2 = fitter(models.Polynomial2D(degree), u, w, v2)
    p3 = fitter(models.Polynomial2D(degree), u, w, v3)
    forward = norm | models.Mapping((0, 1, 0, 1)) | (p2 & p3)
    # Inverse fitted the same way (V2/V3 -> pixels), needed for world_to_pixel.
    c2, c3, s = float(np.mean(v2)), float(np.mean(v3)), float(np.ptp(v2) + np.ptp(v3)) / 4
    vnorm = (models.Shift(-c2) | models.Scale(1 / s)) & (models.Shift(-c3) | models.Scale(1 / s))
    a, b = vnorm(v2, v3)
    px = fitter(models.Polynomial2D(degree), a, b, x)
    py = fitter(models.Polynomial2D(degree), a, b, y)
    forward.inverse = vnorm | models.Mapping((0, 1, 0, 1)) | (px & py)
    forward.name = f"{detector.lower()}_pix2v2v3"
    return forward


def _simulate(spec: L1Spec, catalog: Table) -> tuple[Any, dict[str, Any]]:
    """Run romanisim for ``spec``; returns (ScienceRaw node, romanisim extras)."""
    import galsim
    from romanisim import image, util
    from romanisim.models import parameters
    from romanisim.models import wcs as rwcs

    from romanarchive.sim.wings import wide_wings

    with detector_size(spec.size), wide_wings(spec.sca, spec.bandpass, spec.size):
        meta = _base_metadata(spec)
        # Cosmic-ray rate is given per detector area: scale it to the cut-out.
        crparam = {"area": parameters.cr["area"] * (spec.size / FULL_SIZE) ** 2}
        saved_refdata = deepcopy(parameters.reference_data)
        try:
            im, extras = image.simulate(
                meta,
                catalog,
                usecrds=False,
                psftype="galsim",
                level=1,
                crparam=crparam,
                rng=galsim.UniformDeviate(spec.seed),
            )
        finally:
            parameters.reference_data.clear()
            parameters.reference_data.update(saved_refdata)
        # Re-reference wcsinfo to this detector, through the same fitted distortion
        # that the DISTORTION reference file holds, so romancal reproduces the WCS.
        info = meta["wcsinfo"]
        distortion = fit_distortion(spec.detector, spec.size, ra=spec.ra, dec=spec.dec, pa=spec.pa, mjd=spec.mjd)
        targ = util.skycoord(galsim.CelestialCoord(info["ra_ref"] * galsim.degrees, info["dec_ref"] * galsim.degrees))
        gw = rwcs.make_wcs(targ, distortion, roll_ref=info["roll_ref"], v2_ref=0.0, v3_ref=0.0)
        util.update_pointing_and_wcsinfo_metadata(im["meta"], gw)
    return im, extras


def make_l1(spec: L1Spec, catalog: Table, path: Path) -> Path:
    """Simulate one L1 exposure and write it as a ScienceRawModel ASDF file.

    Parameters
    ----------
    spec
        Pointing, detector, filter, size, seed and observation identity.
    catalog
        Sources in romanisim's table format: ``ra``, ``dec``, ``type`` ('PSF' or
        'SER'), ``n``, ``half_light_radius`` (arcsec), ``pa``, ``ba`` and one
        column per filter in maggies.  Must contain ``spec.bandpass``.
    path
        Output file, or an existing directory to write :func:`l1_filename` into.

    Returns
    -------
    Path
        The file written.  Same ``spec`` and catalog give identical pixels.
    """
    import romanisim
    from roman_datamodels import datamodels as rdm

    if spec.bandpass not in catalog.colnames:
        raise ValueError(f"catalog has no {spec.bandpass} column")
    path = Path(path)
    if path.is_dir():
        path = path / l1_filename(spec)
    im, extras = _simulate(spec, catalog)

    nres = im["data"].shape[0]
    npix = spec.size + 2 * _NBORDER
    # romanisim hard-codes a 4096-row amp33; the schema wants it to match the data rows.
    im["amp33"] = np.zeros((nres, npix, 128), dtype=im["amp33"].dtype)
    obs = im["meta"]["observation"]
    obs.update(
        program=spec.program,
        execution_plan=spec.execution_plan,
        segment=spec.segment,
        observation=spec.observation,
        visit=spec.visit,
        visit_file_group=spec.visit_file_group,
        visit_file_sequence=spec.visit_file_sequence,
        visit_file_activity=spec.visit_file_activity,
        exposure=spec.exposure,
        visit_id=spec.visit_id,
        observation_id=spec.observation_id,
    )
    obs["pass"] = spec.pass_  # "pass" is a Python keyword
    im["meta"]["filename"] = path.name

    # Like romanisim's --drop-extra-dq: the (nres, n, n) truth DQ cube is not kept.
    extras.pop("dq", None)
    simcat = extras.pop("simcatobj", None)
    provenance: dict[str, Any] = {
        "version": romanisim.__version__,
        "simulation_version": SIMULATION_VERSION,
        "spec": spec.model_dump(),
    }
    if simcat is not None:
        provenance["simcatobj"] = simcat
    rdm.ScienceRawModel(im).validate()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    af = asdf.AsdfFile({"roman": im, "romanisim": provenance})
    af.write_to(tmp)
    tmp.replace(path)  # never leave a half-written L1 under its final name
    return path
