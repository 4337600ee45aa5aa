"""Source injection: recovery of injected stars and Sérsic galaxies, stored runs, the CLI, nothing archived."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from support.synthetic import synthetic_image

from romanarchive.archive import Archive
from romanarchive.catalog.draw import mosaic_model
from romanarchive.catalog.injection import InjectionConfig, injection_grid, run_injection, store_injection
from romanarchive.catalog.step import LoadedImage


@pytest.fixture(scope="module")
def injected(tmp_path_factory: pytest.TempPathFactory) -> tuple[LoadedImage, InjectionConfig, object]:
    from romanarchive.sim.references import write_reference_set

    refs = {"F158": write_reference_set(tmp_path_factory.mktemp("inj_refs"), detector="WFI01",
                                        optical_element="F158", size=512, reftypes=("apcorr", "epsf"))}
    im = synthetic_image(shape=(640, 640), band="F158", n_stars=25, n_galaxies=25, seed=21)
    loaded = LoadedImage(mosaic_model(im.data, im.err, im.wcs, "F158"), "F158", 7, "synthetic.asdf")
    cfg = InjectionConfig(mags=(21.0, 23.0, 25.0, 26.5, 28.5), points_per_mag=6, spacing_arcsec=2.5, seed=3)
    return loaded, cfg, run_injection([loaded], cfg, refs)  # type: ignore[dict-item]


def test_grid_covers_every_parameter() -> None:
    cfg = InjectionConfig(mags=(22.0, 24.0), points_per_mag=3, sersic_n=(1.0, 4.0), r_half_arcsec=(0.2,),
                          ellipticity=(0.0, 0.5))
    grid = injection_grid(cfg)
    assert len(grid) == 2 * (3 + 2 * 1 * 2)
    gals = [g for g in grid if g["kind"] == "sersic"]
    assert {(g["sersic_n"], g["ellipticity"]) for g in gals} == {(1.0, 0.0), (1.0, 0.5), (4.0, 0.0), (4.0, 0.5)}


def test_injection_recovers_bright_and_loses_faint(injected: tuple[LoadedImage, InjectionConfig, object]) -> None:
    loaded, cfg, result = injected
    src, comp = result.sources, result.completeness  # type: ignore[attr-defined]
    assert len(src) == len(injection_grid(cfg))
    print("\ninjection completeness / flux bias (Kron flux) / astrometric rms, F158 synthetic 640²:")
    for row in comp:
        print(f"  {row['kind']:6s} {row['mag_lo']:5.1f}-{row['mag_hi']:<5.1f} n={row['n_injected']:3d} "
              f"completeness {row['completeness']:.2f} bias {row['flux_bias']:+.3f} "
              f"scatter {row['flux_scatter']:.3f} astrometry {row['astrometric_scatter']:.1f} mas")
    point = comp[comp["kind"] == "point"]
    assert point["completeness"][point["mag_lo"] < 22].min() == 1.0
    assert point["completeness"][point["mag_lo"] > 28].max() <= 0.2
    bright = point[point["mag_lo"] < 24]
    assert np.all(np.abs(bright["flux_bias"]) < 0.25)
    assert np.all(bright["astrometric_scatter"] < 40)
    stars = src[(src["kind"] == "point") & (src["mag"] < 24)]
    assert np.mean(stars["point_like_out"]) > 0.8  # recovered as point-like
    # The original arrays were not touched: injection works on copies.
    assert np.array_equal(loaded.data, synthetic_image(shape=(640, 640), band="F158", n_stars=25,
                                                             n_galaxies=25, seed=21).data)


@pytest.mark.db
def test_store_run_and_publish(archive: Archive, injected: tuple[LoadedImage, InjectionConfig, object]) -> None:
    from romanarchive.tap.schema import find

    _, cfg, result = injected
    with archive.engine.begin() as conn:
        run_id = store_injection(conn, result, "synthetic", [7], cfg)  # type: ignore[arg-type]
    with archive.engine.connect() as conn:
        n_src = conn.execute(sa.text("SELECT count(*) FROM injected_sources WHERE run_id = :r"),
                             {"r": run_id}).scalar_one()
        comp = conn.execute(sa.text("SELECT kind, mag_lo, completeness FROM injection_completeness "
                                    "WHERE run_id = :r ORDER BY kind, mag_lo"), {"r": run_id}).all()
    assert n_src == len(result.sources)  # type: ignore[attr-defined]
    assert len(comp) == len(result.completeness)  # type: ignore[attr-defined]
    assert find("roman.injection_completeness") is not None and find("roman.injected_sources") is not None


@pytest.mark.db
@pytest.mark.slow
def test_inject_cli_on_an_l3_archives_nothing(archive: Archive, tmp_path: Path) -> None:
    from romanarchive.cli import main
    from romanarchive.ingest.service import ingest_paths
    from romanarchive.mosaic.job import build_and_register
    from romanarchive.sim.calibrated import calibrated_survey, l2_files, science_config

    survey = calibrated_survey(science_config(), out_dir=tmp_path / "science", progress=False)
    list(ingest_paths(archive, [survey / "refs", *[p for p in l2_files(survey) if "f158" in p.name.lower()]]))
    pid = build_and_register(archive, "p16042x22y37", "F158")
    assert pid is not None
    keys_before = sorted(archive.store.list_keys())
    with archive.engine.connect() as conn:
        n_products = conn.execute(sa.text("SELECT count(*) FROM products")).scalar_one()
    env = {"ROMANARCHIVE_HOME": str(archive.settings.home), "ROMANARCHIVE_DATABASE_URL": archive.url,
           "ROMANARCHIVE_STORE": archive.settings.store_url}
    out = CliRunner().invoke(main, ["inject", "--product", str(pid), "--mags", "21,26", "--points-per-mag", "4"],
                             env=env)
    assert out.exit_code == 0, out.output
    assert "injection run" in out.output and "completeness" in out.output
    assert sorted(archive.store.list_keys()) == keys_before  # nothing injected reached the store
    with archive.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM products")).scalar_one() == n_products
        assert conn.execute(sa.text("SELECT count(*) FROM injection_runs")).scalar_one() == 1
    bad = CliRunner().invoke(main, ["inject"], env=env)
    assert bad.exit_code != 0 and "exactly one of" in bad.output
    l2 = CliRunner().invoke(main, ["inject", "--product", "1"], env=env)
    assert l2.exit_code != 0 and "not an L3 mosaic" in l2.output
