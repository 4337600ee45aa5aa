"""Planning a simulated survey: its configuration, the exposure plan and each exposure's WCS (no pixels drawn).

Separate from :mod:`romanarchive.sim.survey` (which draws the survey) so that the truth catalogue can place its
sources on the plan without importing the drawing.
"""

from __future__ import annotations

import datetime
import math
from functools import lru_cache
from typing import Any

import galsim
import pydantic
from astropy.time import Time

from romanarchive.sim.l1 import IMAGING_FILTERS, L1Spec, detector_size

#: WFI pixel scale in arcsec (romanisim.models.parameters.pixel_scale).
PIXEL_SCALE = 0.11

# Gaia DR3 pair (G = 9.15 and 9.84, 50" apart), 1.0 deg from the north ecliptic pole: the midpoint
# puts both real stars inside one 512² image, and the field is observable on every date.
DEMO_FIELD = (271.81053, 66.72141)


class SurveyConfig(pydantic.BaseModel):
    """Description of a simulated survey.

    The default field centre is the midpoint of the Gaia DR3 stars 2257870565276819200 (G=9.15)
    and 2257870565276818560 (G=9.84), ~50" apart and 1 deg from the north ecliptic pole.  G<10
    stars average ~10 deg⁻² there, i.e. ~0.002 per 512² image, so a random field would almost
    never contain one; this pair puts two real, saturated Gaia stars into pointing 0.  Ecliptic
    latitude ~89 deg keeps the field inside Roman's Sun-angle limits (galsim.roman.allowedPos) on
    any date, so ``start_mjd`` and ``epoch_spacing_days`` are free.

    Presets: `demo` (2 pointings × 2 dithers × 3 epochs × 2 filters × 1 detector = 24 L1 files of
    512², ~2.5–3 min on 2 cores at ~6 s each), `tiny` (1 × 1 × 2 × 1 × 1 = 2 L1 files, for tests) and
    `star_field` (a dense star field, 4 dithers × 2 filters, for the ePSF library).

    Attributes
    ----------
    ra, dec
        Sky position [deg] of the centre of the first detector's image at pointing 0.
    pa
        Position angle of the observatory [deg], passed to romanisim as ``pa_aperture``.
    n_pointings
        Number of pointings, laid out on a square grid (row-major) around ``ra, dec``.
    pointing_step_arcsec
        Grid spacing; by default 80% of the image width so that neighbouring images overlap.
    dithers, dither_arcsec
        Dither positions per pointing and their size (a small box/line pattern).
    epochs, epoch_spacing_days, start_mjd
        Number of visits to every pointing, their spacing and the MJD of the first exposure.
    cadence_s
        Time between consecutive exposures within an epoch (MA table 4 integrates for 139 s).
    filters, detectors
        WFI optical elements and detectors (``WFI01``–``WFI18``) observed.
    size
        Image size in pixels (512, or 4088 for a full detector; the source counts are per image,
        so scale them up for full detectors).
    seed
        Seed of the whole survey: truth catalogue and per-exposure noise derive from it.
    n_stars, n_variables, n_galaxies, n_transients, n_moving
        Numbers of synthetic sources *per image footprint* (scaled by pointings × detectors),
        except ``n_moving`` which is the total.
    include_gaia
        Add the real Gaia DR3 (G < 10) stars that fall inside the footprints.
    """

    ra: float = DEMO_FIELD[0]
    dec: float = DEMO_FIELD[1]
    pa: float = 0.0
    n_pointings: int = pydantic.Field(default=1, ge=1)
    pointing_step_arcsec: float | None = None
    dithers: int = pydantic.Field(default=1, ge=1)
    dither_arcsec: float = 3.0
    epochs: int = pydantic.Field(default=1, ge=1)
    epoch_spacing_days: float = 5.0
    start_mjd: float = 61000.0
    cadence_s: float = 200.0
    filters: list[str] = pydantic.Field(default_factory=lambda: ["F158"])
    detectors: list[str] = pydantic.Field(default_factory=lambda: ["WFI01"])
    size: int = 512
    seed: int = 1
    ma_table_number: int = 4
    program: int = 1
    # ~45 sources per 512² image: rendering costs ~0.07 s each on top of ~3 s per exposure.
    n_stars: int = 25
    n_variables: int = 5
    n_galaxies: int = 12
    n_transients: int = 3
    n_moving: int = 1
    include_gaia: bool = True

    @pydantic.field_validator("detectors")
    @classmethod
    def _check_detectors(cls, value: list[str]) -> list[str]:
        for det in value:
            if not (det.startswith("WFI") and det[3:].isdigit() and 1 <= int(det[3:]) <= 18):
                raise ValueError(f"unknown detector {det!r} (expected WFI01..WFI18)")
        return value

    @pydantic.field_validator("filters")
    @classmethod
    def _check_filters(cls, value: list[str]) -> list[str]:
        value = [f.upper() for f in value]
        bad = [f for f in value if f not in IMAGING_FILTERS]
        if bad or not value or len(set(value)) != len(value):
            raise ValueError(f"filters must be distinct imaging filters {IMAGING_FILTERS}, got {value}")
        return value

    @classmethod
    def demo(cls, **overrides: Any) -> SurveyConfig:
        """Return the demonstration survey: 24 exposures of 512², ~2.5–3 minutes on 2 cores."""
        kw: dict[str, Any] = dict(
            n_pointings=2, dithers=2, epochs=3, epoch_spacing_days=1.0, filters=["F087", "F158"]
        )
        return cls(**(kw | overrides))

    @classmethod
    def tiny(cls, **overrides: Any) -> SurveyConfig:
        """Return a 2-exposure survey (1 pointing, 2 epochs) for tests."""
        kw: dict[str, Any] = dict(
            n_pointings=1, dithers=1, epochs=2, epoch_spacing_days=1.0, n_stars=15, n_galaxies=6
        )
        return cls(**(kw | overrides))

    @classmethod
    def star_field(cls, **overrides: Any) -> SurveyConfig:
        """Return a dense star field for the ePSF library: 4 dithers x 2 filters of 512², 400 stars per image,
        no Gaia stars (their halos), few galaxies, nothing variable (~8 exposures, ~1 minute each on 2 cores)."""
        kw: dict[str, Any] = dict(
            n_pointings=1, dithers=4, dither_arcsec=1.7, epochs=1, filters=["F087", "F158"], n_stars=400,
            n_variables=0, n_galaxies=5, n_transients=0, n_moving=0, include_gaia=False, seed=7,
        )
        return cls(**(kw | overrides))

    @property
    def image_arcsec(self) -> float:
        """Width of one image on the sky."""
        return self.size * PIXEL_SCALE

    @property
    def step_arcsec(self) -> float:
        """Pointing grid spacing actually used."""
        return self.pointing_step_arcsec or 0.8 * self.image_arcsec

    @property
    def n_exposures(self) -> int:
        """Number of L1 files the survey produces."""
        return self.n_pointings * self.dithers * self.epochs * len(self.filters) * len(self.detectors)

    def epoch_mjd(self, epoch: int) -> float:
        """MJD at which `epoch` starts."""
        return self.start_mjd + epoch * self.epoch_spacing_days


def tangent_offset(ra: float, dec: float, east_arcsec: float, north_arcsec: float) -> tuple[float, float]:
    """Return the position `east_arcsec`, `north_arcsec` away from (`ra`, `dec`) on the tangent plane."""
    centre = galsim.CelestialCoord(ra * galsim.degrees, dec * galsim.degrees)
    # galsim's u axis points west (increasing RA is -u), hence the sign.
    pos = centre.deproject(-east_arcsec * galsim.arcsec, north_arcsec * galsim.arcsec)
    return float(pos.ra.deg % 360.0), float(pos.dec.deg)


def _date(mjd: float) -> datetime.datetime:
    date = Time(mjd, format="mjd", scale="utc").to_datetime()
    assert isinstance(date, datetime.datetime)
    return date


@lru_cache(maxsize=4096)
def spec_wcs(spec: L1Spec) -> galsim.GSFitsWCS:
    """The galsim WCS romanisim renders `spec` with (0-based pixels of the ``size``² image).

    Mirrors `make_l1`: under `detector_size` the SCA's reference pixel is the image centre,
    and the focal-plane pointing is the one that puts that centre at ``spec.ra, spec.dec``.
    """
    from romanisim.models import wcs_utils

    centre = galsim.CelestialCoord(spec.ra * galsim.degrees, spec.dec * galsim.degrees)
    pa = spec.pa * galsim.degrees
    with detector_size(spec.size):
        fpa = wcs_utils.convertCenter(centre, spec.sca, PA=pa, date=_date(spec.mjd), tol=0.01 * galsim.arcsec)
        return wcs_utils.getWCS(world_pos=fpa, PA=pa, SCAs=spec.sca, date=_date(spec.mjd))[spec.sca]


def detector_centers(
    ra: float, dec: float, pa: float, detectors: list[str], size: int, mjd: float
) -> list[tuple[float, float]]:
    """Image centres [deg] of `detectors` in one exposure whose first detector is centred on `ra`, `dec`.

    The other detectors keep their real Cycle-6 focal-plane offsets (galsim.roman layout).
    """
    from romanisim.models import wcs_utils

    centre = galsim.CelestialCoord(ra * galsim.degrees, dec * galsim.degrees)
    angle = pa * galsim.degrees
    sca0 = int(detectors[0][3:])
    out = [(ra % 360.0, dec)]
    with detector_size(size):
        fpa = wcs_utils.convertCenter(centre, sca0, PA=angle, date=_date(mjd), tol=0.01 * galsim.arcsec)
        for det in detectors[1:]:
            sca = int(det[3:])
            wcs = wcs_utils.getWCS(world_pos=fpa, PA=angle, SCAs=sca, date=_date(mjd))[sca]
            pos = wcs.toWorld(galsim.PositionD(size / 2, size / 2))  # convertCenter's centre pixel
            out.append((float(pos.ra.deg % 360.0), float(pos.dec.deg)))
    return out


def pointing_offsets(config: SurveyConfig) -> list[tuple[float, float]]:
    """(east, north) offsets [arcsec] of the pointings: a row-major square grid centred on pointing 0."""
    ncol = math.ceil(math.sqrt(config.n_pointings))
    step = config.step_arcsec
    return [((i % ncol) * step, (i // ncol) * step) for i in range(config.n_pointings)]


def dither_offsets(config: SurveyConfig) -> list[tuple[float, float]]:
    """(east, north) offsets [arcsec] of the dithers: 0, then a box of side `dither_arcsec`."""
    d = config.dither_arcsec
    pattern = [(0.0, 0.0), (d, d * 0.5), (-d * 0.5, d), (d * 0.5, -d), (-d, -d * 0.5)]
    # Beyond the 5-point box, continue on a sub-pixel-staggered spiral.
    for k in range(len(pattern), config.dithers):
        ang = 2.4 * k
        pattern.append((d * math.cos(ang) * (1 + k / 5), d * math.sin(ang) * (1 + k / 5)))
    return pattern[: config.dithers]


# --------------------------------------------------------------------------- planning


def plan_exposures(config: SurveyConfig) -> list[L1Spec]:
    """List every exposure of the survey, in observing order.

    Order is epoch → pointing → dither → filter → detector.  Identity (all 1-based): pass = epoch,
    observation = pointing, visit = 1, exposure = dither × filter index; detectors of the same
    exposure share it (as on the real WFI), so (identity, detector) is unique and `l1_filename`
    gives one file per spec.  Seeds derive from `config.seed` and the spec's position in the plan.

    Parameters
    ----------
    config
        Survey description.

    Returns
    -------
    list[L1Spec]
        ``config.n_exposures`` specs.
    """
    specs: list[L1Spec] = []
    nfilt = len(config.filters)
    for epoch in range(config.epochs):
        k = 0  # exposure sequence within the epoch
        for ip, (pe, pn) in enumerate(pointing_offsets(config)):
            for idith, (de, dn) in enumerate(dither_offsets(config)):
                tra, tdec = tangent_offset(config.ra, config.dec, pe + de, pn + dn)
                for ifilt, filt in enumerate(config.filters):
                    mjd = config.epoch_mjd(epoch) + k * config.cadence_s / 86400.0
                    k += 1
                    centres = detector_centers(tra, tdec, config.pa, config.detectors, config.size, mjd)
                    for det, (dra, ddec) in zip(config.detectors, centres, strict=True):
                        specs.append(
                            L1Spec(
                                ra=dra, dec=ddec, pa=config.pa, detector=det, bandpass=filt,
                                mjd=mjd, size=config.size, ma_table_number=config.ma_table_number,
                                seed=config.seed * 1_000_003 + len(specs),
                                program=config.program, execution_plan=1, pass_=epoch + 1,
                                segment=1, observation=ip + 1, visit=1, visit_file_group=1,
                                visit_file_sequence=1, visit_file_activity="01",
                                exposure=idith * nfilt + ifilt + 1,
                            )
                        )
    return specs


# --------------------------------------------------------------------------- simulation
