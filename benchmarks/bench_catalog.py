"""Catalog benchmarks: cataloguing one image against Source Extractor, and loading catalog rows into PostgreSQL.

1. **Catalog one image** (goal: <= 2x Source Extractor's wall time). Images:

   * ``synthetic``: a 4096² F158 image (0.11"/pixel, 7.5' square) rendered with galsim at a high-latitude source
     density (``--density`` sources per arcmin², 85% Sérsic galaxies, 15% stars, uniform in 20-28 mag) as an L3
     sees them (PSF x detector pixel x drizzle drop), plus Gaussian sky noise, wrapped as an L3 MosaicModel;
   * ``l3``: the simulated survey's real F087 + F158 L3s (2048² skycell at 0.055"), co-added here with
     romanarchive's mosaic step when the survey cache exists (``ROMANARCHIVE_SIM_CACHE``).

   Our time is :class:`romanarchive.catalog.step.CatalogStep` (romancal's MultibandCatalogStep — background,
   detection, deblending, per-band aperture/Kron/segment photometry, PSF fits, PSF matching, is_extended — plus
   the archive's selection); the peer is ``source-extractor`` at 3 sigma on the same FITS, once per band, timed
   around the external process (FITS writing not counted). Both are matched to the truth (synthetic) for
   completeness at predicted aperture S/N >= 5.

2. **Load rate** of N synthetic catalog rows (default 3M) with the objects table's core and a dozen measurement
   columns (goal: >= 2M rows/s), HEALPix (order 29, cdshealpix, vectorised) and source ids computed in the timing:

   * ``replace_skycell``: the production path — one transaction that deletes the skycell's live rows and
     binary-COPies the new ones (sorted by source_id) straight into the indexed ``objects`` table (``pos`` in
     spoint's binary form, NaN as NULL); maintaining the four indexes, above all the GiST on ``pos``, dominates;
   * ``bulk``: what a release (re)load would do — binary COPY over 2 connections into a fresh, unindexed
     ``objects``-shaped table, then the indexes built once (PK, hpx, skycell on one connection, GiST pos on a
     second meanwhile); the copy-only and the with-indexes rates are both reported (no swap into ``objects``
     is timed: that is not implemented in production);
   * peer ``plain COPY``: one binary COPY of the same numeric rows into an unindexed table (no HEALPix, no pos,
     no NULLs, no text).

Results go to ``benchmarks/out/catalog.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from pathlib import Path

import numpy as np
import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # test support: live servers, images
from _common import scratch_archive  # noqa: E402
from support.synthetic import mag_to_njy, synthetic_image  # noqa: E402

from romanarchive.catalog.config import CatalogConfig  # noqa: E402
from romanarchive.catalog.draw import mosaic_model  # noqa: E402
from romanarchive.catalog.ids import assign_source_ids  # noqa: E402
from romanarchive.catalog.peer import run_source_extractor  # noqa: E402
from romanarchive.catalog.step import CatalogStep, LoadedImage  # noqa: E402
from romanarchive.db.bulk import copy_arrays  # noqa: E402
from romanarchive.db.engine import libpq_url  # noqa: E402
from romanarchive.sky.footprint import healpix29  # noqa: E402

OUT = Path(__file__).resolve().parent / "out"
MEASURE_COLS = ("x_centroid", "y_centroid", "segment_area", "semimajor", "semiminor", "ellipticity", "orientation_sky",
                "kron_radius", "psf_f087_flux", "psf_f087_flux_err", "psf_f158_flux", "psf_f158_flux_err")
SIGMA = 3.0  # source-extractor's DETECT_THRESH, as the catalog's snr_threshold


def _references(bands: tuple[str, ...]) -> dict[str, dict[str, Path]]:
    from romanarchive.sim.references import write_reference_set

    return {b: {k: Path(v) for k, v in write_reference_set(OUT / "refs", detector="WFI01", optical_element=b,
                                                           size=512, reftypes=("apcorr", "epsf")).items()}
            for b in bands}


def _complete(truth_ra: np.ndarray, truth_dec: np.ndarray, ra: np.ndarray, dec: np.ndarray) -> np.ndarray:
    from astropy import units as u
    from astropy.coordinates import SkyCoord

    _, sep, _ = SkyCoord(truth_ra * u.deg, truth_dec * u.deg).match_to_catalog_sky(SkyCoord(ra * u.deg, dec * u.deg))
    return np.asarray(sep.arcsec <= 0.2)


def bench_synthetic(size: int, density: float) -> dict[str, object]:
    area = (size * 0.11 / 60) ** 2
    n = int(density * area)
    t0 = time.perf_counter()
    im = synthetic_image(shape=(size, size), band="F158", n_stars=int(0.15 * n), n_galaxies=n - int(0.15 * n),
                         seed=7, mag_range=(20.0, 28.0))
    render = time.perf_counter() - t0
    cfg = CatalogConfig()
    step = CatalogStep(cfg, _references(("F158",)))
    step.run([LoadedImage(mosaic_model(im.data[:256, :256], im.err[:256, :256], im.wcs, "F158"), "F158")])  # warm
    loaded = LoadedImage(mosaic_model(im.data, im.err, im.wcs, "F158"), "F158")
    t0 = time.perf_counter()
    ours = step.run([loaded]).catalog
    t_ours = time.perf_counter() - t0
    sx = run_source_extractor(im.data, im.err, im.wcs, detect_thresh=SIGMA)
    mags = np.asarray(im.truth["mag"])
    n_pix = np.pi * (0.2 / 0.11) ** 2
    noise = 0.02 * np.sqrt(n_pix) * np.radians(0.11 / 3600) ** 2 * 1e15
    five = mag_to_njy(mags) * 0.7 / noise >= 5  # ~70 % of a point source's flux within 0.2"
    c_ours = _complete(im.truth["ra"], im.truth["dec"], ours.columns["ra"], ours.columns["dec"])
    c_sx = _complete(im.truth["ra"], im.truth["dec"], np.asarray(sx.table["ALPHAWIN_J2000"]),
                     np.asarray(sx.table["DELTAWIN_J2000"]))
    return {"image": f"synthetic {size}x{size} F158, {n} sources ({density:g}/arcmin2)", "render_s": render,
            "ours_s": t_ours, "sextractor_s": sx.wall_time_s, "ratio": t_ours / sx.wall_time_s,
            "ours_detections": len(ours), "sextractor_detections": len(sx.table), "n_5sigma": int(five.sum()),
            "ours_completeness_5sigma": float(c_ours[five].mean()),
            "sextractor_completeness_5sigma": float(c_sx[five].mean())}


def bench_l3() -> dict[str, object] | None:
    cache = os.environ.get("ROMANARCHIVE_SIM_CACHE")
    if not cache:
        return None
    from romanarchive.catalog.step import load_image
    from romanarchive.mosaic.step import MosaicStep
    from romanarchive.sim.calibrated import calibrated_survey, l2_files, science_config
    from romanarchive.sky.skycells import skycell

    survey = calibrated_survey(science_config(), progress=False)
    images = []
    for band in ("F087", "F158"):
        files = [p for p in l2_files(survey) if f"_{band.lower()}_" in p.name]
        path = OUT / f"bench_l3_{band.lower()}.asdf"
        MosaicStep().run(files, skycell("p16042x22y37")).write(path)
        images.append(load_image(path))
    step = CatalogStep(CatalogConfig(home_only=False), _references(("F087", "F158")))
    step.run(images)  # warm caches
    t0 = time.perf_counter()
    ours = step.run(images).catalog
    t_ours = time.perf_counter() - t0
    t_sx, n_sx = 0.0, 0
    for im in images:  # one run per band (single-image mode)
        sx = run_source_extractor(im.data, im.err, im.wcs, detect_thresh=SIGMA)
        t_sx += sx.wall_time_s
        n_sx = max(n_sx, len(sx.table))
    for band in ("f087", "f158"):
        (OUT / f"bench_l3_{band}.asdf").unlink()
    return {"image": "real L3s F087+F158 p16042x22y37 2048x2048 (0.055\"/pixel)", "ours_s": t_ours,
            "sextractor_s": t_sx, "ratio": t_ours / t_sx, "ours_detections": len(ours),
            "sextractor_detections": n_sx}


def _rows(n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    ra = rng.uniform(150.0, 152.0, n)
    dec = np.degrees(np.arcsin(rng.uniform(np.sin(np.radians(1.0)), np.sin(np.radians(3.0)), n)))
    cols = {"ra": ra, "dec": dec}
    cols.update({c: rng.normal(size=n) for c in MEASURE_COLS})
    cols["is_extended"] = (rng.random(n) > 0.2).astype(float)
    return cols


def bench_load(n: int) -> dict[str, object]:
    import sqlalchemy as sa

    from romanarchive.catalog.load import copy_rows, numeric_columns, replace_skycell

    rng = np.random.default_rng(1)
    cols = _rows(n, rng)
    out: dict[str, object] = {"rows": n, "columns": 4 + len(MEASURE_COLS) + 4}
    with scratch_archive() as archive:
        url = libpq_url(archive.url)
        # 1. production path: one transaction, binary COPY straight into the indexed objects table.
        t0 = time.perf_counter()
        with archive.engine.begin() as conn:
            replace_skycell(conn, "bench", cols)
        out["replace_skycell_rows_per_s"] = n / (time.perf_counter() - t0)

        # 2. bulk (re)load of a release: HEALPix + ids, binary COPY over 2 connections into a fresh unindexed
        #    objects-shaped table (pos generated), then the indexes built once.
        t0 = time.perf_counter()
        hpx = healpix29(cols["ra"], cols["dec"])
        t_hpx = time.perf_counter() - t0
        ids = assign_source_ids(hpx, cols["ra"], cols["dec"], np.empty(0, np.int64), np.empty(0), np.empty(0), set())
        order = np.argsort(ids, kind="stable")
        data = numeric_columns({**{k: v[order] for k, v in cols.items()}, "source_id": ids[order],
                                "hpx": hpx[order]})
        with psycopg.connect(url, autocommit=True) as c:
            c.execute("CREATE TABLE objects_bulk (LIKE objects INCLUDING DEFAULTS INCLUDING GENERATED)")

        def part(sl: slice) -> None:
            with psycopg.connect(url) as c:
                c.execute("SET synchronous_commit = off")
                copy_rows(c, "objects_bulk", {k: v[sl] for k, v in data.items()}, "bench", "bulk")
                c.commit()

        half = n // 2
        threads = [threading.Thread(target=part, args=(s,)) for s in (slice(0, half), slice(half, n))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        t_copy = time.perf_counter() - t0
        # The GiST (the slow one) builds on one connection while the B-trees build on another.
        done: dict[str, float] = {}

        def build(name: str, statements: list[str]) -> None:
            with psycopg.connect(url, autocommit=True) as c:
                c.execute("SET maintenance_work_mem = '512MB'")
                for stmt in statements:
                    c.execute(stmt)
            done[name] = time.perf_counter() - t0

        builders = [threading.Thread(target=build, args=a) for a in (
            ("gist", ["CREATE INDEX ON objects_bulk USING gist (pos)"]),
            ("btree", ["CREATE UNIQUE INDEX objects_bulk_pk ON objects_bulk (source_id, release)",
                       "CREATE INDEX ON objects_bulk (hpx)", "CREATE INDEX ON objects_bulk (skycell)"]))]
        for t in builders:
            t.start()
        for t in builders:
            t.join()
        with psycopg.connect(url, autocommit=True) as c:
            c.execute("ALTER TABLE objects_bulk ADD CONSTRAINT objects_bulk_pkey PRIMARY KEY "
                      "USING INDEX objects_bulk_pk")
        total = time.perf_counter() - t0
        out.update({"bulk_hpx_s": t_hpx, "bulk_copy_s": t_copy, "bulk_btree_indexes_s": done["btree"] - t_copy,
                    "bulk_gist_s": done["gist"] - t_copy, "bulk_total_s": total,
                    "bulk_copy_rows_per_s": n / t_copy, "bulk_with_indexes_rows_per_s": n / total})

        # 3. peer: one plain binary COPY of the same numeric rows into an unindexed table.
        plain = {k: np.ma.getdata(v) for k, v in data.items()}
        with psycopg.connect(url, autocommit=True) as c:
            c.execute("CREATE TABLE peer_bulk AS SELECT " + ", ".join(f'"{k}"' for k in plain)
                      + " FROM objects_bulk WITH NO DATA")
        t0 = time.perf_counter()
        with psycopg.connect(url) as c:
            copy_arrays(c, "peer_bulk", plain)
            c.commit()
        out["peer_plain_copy_rows_per_s"] = n / (time.perf_counter() - t0)
        with archive.engine.connect() as conn:
            out["rows_in_objects"] = conn.execute(sa.text("SELECT count(*) FROM objects")).scalar_one()
            out["pos_matches_radec"] = bool(conn.execute(sa.text(
                "SELECT bool_and(abs(degrees(long(pos)) - ra) < 1e-9 AND abs(degrees(lat(pos)) - dec) < 1e-9) "
                "FROM objects")).scalar_one())
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=4096, help="Synthetic image side (pixels)")
    ap.add_argument("--density", type=float, default=60.0, help="Sources per arcmin2 in the synthetic image")
    ap.add_argument("--rows", type=int, default=3_000_000, help="Rows of the load benchmark")
    ap.add_argument("--skip-image", action="store_true")
    ap.add_argument("--skip-load", action="store_true")
    args = ap.parse_args()
    OUT.mkdir(exist_ok=True)
    path = OUT / "catalog.json"
    # Skipped parts keep their last figures.
    results: dict[str, object] = json.loads(path.read_text()) if path.exists() else {}
    if not args.skip_image:
        for name, fn in (("synthetic", lambda: bench_synthetic(args.size, args.density)), ("l3", bench_l3)):
            r = fn()
            if r is None:
                continue
            results[name] = r
            print(f"[catalog] {r['image']}: ours {r['ours_s']:.2f} s, source-extractor {r['sextractor_s']:.2f} s, "
                  f"ratio {r['ratio']:.2f}x (goal <= 2x); detections {r['ours_detections']} vs "
                  f"{r['sextractor_detections']}")
            if "n_5sigma" in r:
                print(f"          completeness at S/N >= 5 ({r['n_5sigma']} sources): ours "
                      f"{r['ours_completeness_5sigma']:.3f}, "
                      f"source-extractor {r['sextractor_completeness_5sigma']:.3f}")
    if not args.skip_load:
        r = bench_load(args.rows)
        results["load"] = r
        peer = float(r["peer_plain_copy_rows_per_s"])  # type: ignore[arg-type]
        for key in ("replace_skycell_rows_per_s", "bulk_copy_rows_per_s", "bulk_with_indexes_rows_per_s"):
            v = float(r[key])  # type: ignore[arg-type]
            print(f"[load] {key}: {v / 1e6:.2f}M rows/s ({v / peer:.2f}x the plain COPY peer; goal >= 2M rows/s)")
        print(f"[load] peer plain binary COPY: {peer / 1e6:.2f}M rows/s ({r['rows']} rows, {r['columns']} columns)")
    path.write_text(json.dumps(results, indent=1, default=float))


if __name__ == "__main__":
    main()
