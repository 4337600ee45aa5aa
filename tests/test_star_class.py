"""romancal's source catalogue calls the simulation's stars point-like with the archive's apcorr and ePSF files.

A field of stars only (18-22.5 mag, no galaxies, no Gaia stars) is simulated with romanisim, calibrated to L2 by
the archive's pipeline (romancal, offline) and catalogued by romancal's own SourceCatalogStep with the archive's
synthetic ``apcorr`` (encircled energy, ``ee_radii`` in arcsec) and ``epsf`` reference files.  romancal's
``is_extended`` compares the 0.4"/0.2" aperture-flux ratio with the apcorr file's encircled energies, so wrong
radii (e.g. in pixels) flag nearly every star as extended.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from astropy.table import Table

from romanarchive.sim.l1 import L1Spec, make_l1
from romanarchive.sim.plan import DEMO_FIELD, PIXEL_SCALE, spec_wcs
from romanarchive.sim.references import write_reference_set

SIZE = 512
N_STARS = 60
N_GALAXIES = 15

pytestmark = pytest.mark.slow


def _field(spec: L1Spec, rng: np.random.Generator) -> tuple[Table, np.ndarray, np.ndarray]:
    """Stars then galaxies, at least 4" apart and 20 pixels inside the image; returns (catalogue, x, y).

    The galaxies (exponential-ish Sersic, half-light radius 0.4-0.8", 19-20.5 mag) are there to show that
    ``is_extended`` is not simply off: romancal must flag them.
    """
    n = N_STARS + N_GALAXIES
    xs: list[float] = []
    ys: list[float] = []
    while len(xs) < n:
        x, y = rng.uniform(20, SIZE - 21, 2)
        if all(np.hypot(x - a, y - b) * PIXEL_SCALE > 4.0 for a, b in zip(xs, ys, strict=True)):
            xs.append(float(x))
            ys.append(float(y))
    x, y = np.array(xs), np.array(ys)
    ra, dec = spec_wcs(spec).xyToradec(x, y, units="deg")
    galaxy = np.arange(n) >= N_STARS
    mag = np.where(galaxy, rng.uniform(19.0, 20.5, n), rng.uniform(18.0, 22.5, n))
    cat = Table({
        "ra": ra, "dec": dec, "type": np.where(galaxy, "SER", "PSF"), "n": np.where(galaxy, 1.0, 0.0),
        "half_light_radius": np.where(galaxy, rng.uniform(0.4, 0.8, n), 0.0),
        "pa": rng.uniform(0, 360, n), "ba": np.where(galaxy, rng.uniform(0.5, 1.0, n), 1.0),
        spec.bandpass: 10.0 ** (-0.4 * mag),
    })
    return cat, x, y


@pytest.mark.parametrize("band", ["F158", "F087"])
def test_stars_are_point_like(tmp_path: Path, band: str) -> None:
    from roman_datamodels import datamodels as rdm

    from romanarchive.calib.pipeline import CalibConfig, calibrate
    from romanarchive.crds_offline import configure_offline

    spec = L1Spec(ra=DEMO_FIELD[0], dec=DEMO_FIELD[1], bandpass=band, size=SIZE, seed=11)
    cat, x, y = _field(spec, np.random.default_rng(5))
    l1 = make_l1(spec, cat, tmp_path)
    refs = write_reference_set(tmp_path / "refs", detector=spec.detector, optical_element=band, size=SIZE)
    config = CalibConfig()
    l2 = tmp_path / "l2_cal.asdf"
    calibrate(l1, refs, l2, config)

    configure_offline(config.crds_path)
    from romancal.source_catalog import SourceCatalogStep

    step = SourceCatalogStep(override_apcorr=str(refs["apcorr"]), bkg_boxsize=64, fit_psf=True)
    step.override_epsf = str(refs["epsf"])  # not a declared step parameter: set on the instance
    with rdm.open(l2) as model:
        cat_model, _segm = step.run(model)
    table = cat_model.source_catalog

    # Match detections to the inputs (romancal centroids are 0-based pixels, as the truth's).
    cx, cy = np.asarray(table["x_centroid"], float), np.asarray(table["y_centroid"], float)
    d = np.hypot(cx[:, None] - x[None, :], cy[:, None] - y[None, :])
    nearest = d.argmin(axis=0)
    found = d[nearest, np.arange(len(x))] < 1.5
    flagged = np.asarray(table["is_extended"], bool)[nearest]
    star = np.arange(len(x)) < N_STARS
    stars, galaxies = found & star, found & ~star
    assert stars.sum() >= 0.9 * N_STARS, f"only {stars.sum()} of {N_STARS} stars detected"
    assert galaxies.sum() >= 0.8 * N_GALAXIES, f"only {galaxies.sum()} of {N_GALAXIES} galaxies detected"
    point = 1.0 - flagged[stars].mean()
    print(f"{band}: {stars.sum()}/{N_STARS} stars detected, {point:.1%} not is_extended; "
          f"{galaxies.sum()}/{N_GALAXIES} galaxies, {flagged[galaxies].mean():.1%} is_extended")
    assert point >= 0.95, f"{flagged[stars].sum()} of {stars.sum()} stars flagged is_extended"
    assert flagged[galaxies].mean() >= 0.8, f"only {flagged[galaxies].sum()} of {galaxies.sum()} galaxies extended"
