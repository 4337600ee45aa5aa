"""Data releases: freezing products and object rows while live processing goes on, and querying them by TAP."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa

from romanarchive.archive import Archive
from romanarchive.releases import ReleaseError, create_release, list_releases, release_product_ids
from romanarchive.sim.calibrated import l2_files

pytestmark = pytest.mark.db


def _env(archive: Archive) -> dict[str, str]:
    return {**os.environ, "ROMANARCHIVE_HOME": str(archive.settings.home), "ROMANARCHIVE_DATABASE_URL": archive.url,
            "ROMANARCHIVE_STORE": archive.settings.store_url}


def _add_objects(archive: Archive, n: int) -> list[int]:
    from romanarchive.db.tables import metadata
    from romanarchive.sky.footprint import healpix29

    rng = np.random.default_rng(5)
    ra = 271.81 + rng.uniform(-0.01, 0.01, n)
    dec = 66.72 + rng.uniform(-0.01, 0.01, n)
    hpx = healpix29(ra, dec)
    ids = [int(h >> 35 << 35) + k for k, h in enumerate(hpx)]
    rows = [{"source_id": s, "release": "live", "ra": float(a), "dec": float(d), "hpx": int(h),
             "pos": f"({a}d,{d}d)", "skycell": "p16043x23y12", "is_extended": bool(k % 2)}
            for k, (s, a, d, h) in enumerate(zip(ids, ra, dec, hpx, strict=True))]
    with archive.engine.begin() as conn:
        conn.execute(metadata.tables["objects"].insert(), rows)
    return ids


def _tap(base: str, query: str) -> list[tuple]:
    import pyvo

    return [tuple(r.values()) for r in pyvo.dal.TAPService(base + "/tap").search(query).to_table()
            .to_pandas().to_dict("records")]


def test_release_freezes_products_and_objects_while_processing_continues(archive: Archive,
                                                                         science_survey: Path) -> None:
    from click.testing import CliRunner
    from support.server import live_server

    from romanarchive.cli import main
    from romanarchive.db.tables import metadata, products
    from romanarchive.ingest.service import ingest_paths
    from romanarchive.mosaic.job import build_and_register
    from romanarchive.mosaic.step import load_l2
    from romanarchive.sky.skycells import home_skycells

    f158 = [p for p in l2_files(science_survey) if "_f158_" in p.name]
    list(ingest_paths(archive, f158[:3]))
    # One skycell is enough here (test_mosaic runs the queued jobs): the one the late L2's centre falls in.
    late = load_l2(f158[3]).arrays
    cell = home_skycells(*late.wcs.pixel_to_world_values(255.5, 255.5))[0].name
    build_and_register(archive, cell, "F158")
    ids = _add_objects(archive, 5)
    objects = metadata.tables["objects"]
    with archive.engine.connect() as conn:
        live = {r.product_id: r for r in conn.execute(sa.select(products))}
    l3_before = {pid for pid, r in live.items() if r.level == 3}
    assert l3_before

    rel = create_release(archive.engine, "DR1", "first light")
    assert (rel.n_products, rel.n_objects) == (len(live), 5)
    for bad, why in (("DR1", "already exists"), ("live", "tag of the unfrozen set"), ("no spaces", "invalid")):
        with pytest.raises(ReleaseError, match=why):
            create_release(archive.engine, bad)

    # Live processing goes on: a new L2 rebuilds some skycells, the catalog step rewrites its live rows.
    list(ingest_paths(archive, [f158[3]]))
    build_and_register(archive, cell, "F158")
    with archive.engine.begin() as conn:
        conn.execute(objects.delete().where(objects.c.source_id == ids[0], objects.c.release == "live"))
        conn.execute(objects.update().where(objects.c.release == "live").values(ra=objects.c.ra + 1.0))
        after = {r.product_id: r for r in conn.execute(sa.select(products))}
        frozen_ids = release_product_ids(conn, "DR1")
        frozen_rows = conn.execute(sa.select(objects.c.source_id, objects.c.ra).where(objects.c.release == "DR1")
                                   .order_by(objects.c.source_id)).all()
    assert frozen_ids == sorted(live)
    # Every frozen product still exists with its file; replaced L3s were re-tagged, not deleted.
    assert set(frozen_ids) <= set(after)
    retagged = {pid for pid in l3_before if after[pid].release == "DR1"}
    assert retagged, "the new L2 should have replaced at least one frozen L3"
    new_l3 = {pid for pid, r in after.items() if r.level == 3 and r.release == "live"} - l3_before
    assert len(new_l3) == len(retagged)
    keys = set(archive.store.list_keys())
    with archive.engine.connect() as conn:
        uris = set(conn.execute(sa.text("SELECT uri FROM files")).scalars())
    assert uris <= keys
    assert [s for s, _ in frozen_rows] == sorted(ids)

    with live_server(archive) as base:
        rows = _tap(base, "SELECT product_id FROM roman.release_products WHERE release = 'DR1' ORDER BY product_id")
        assert [int(r[0]) for r in rows] == frozen_ids
        rows = _tap(base, "SELECT COUNT(*) AS n FROM roman.products AS p JOIN roman.release_products AS r "
                          "ON p.product_id = r.product_id WHERE r.release = 'DR1' AND p.level = 3")
        assert int(rows[0][0]) == len(l3_before)
        rows = _tap(base, "SELECT source_id, ra, release FROM roman.objects_latest ORDER BY source_id")
        assert [(int(s), float(a)) for s, a, _ in rows] == [(int(s), float(a)) for s, a in frozen_rows]
        assert {r[2] for r in rows} == {"DR1"}
        rows = _tap(base, "SELECT release, COUNT(*) AS n FROM roman.objects GROUP BY release ORDER BY release")
        assert [(r[0], int(r[1])) for r in rows] == [("DR1", 5), ("live", 4)]
        rows = _tap(base, "SELECT release, n_products, n_objects FROM roman.releases")
        assert [(r[0], int(r[1]), int(r[2])) for r in rows] == [("DR1", len(live), 5)]

    # The command line: a second release becomes the latest.
    env = _env(archive)
    res = CliRunner().invoke(main, ["release", "create", "DR2", "--description", "after epoch 2"], env=env)
    assert res.exit_code == 0, res.output
    assert "4 objects frozen" in res.output
    res = CliRunner().invoke(main, ["release", "list", "--json"], env=env)
    listed = json.loads(res.output)
    assert [r["release"] for r in listed] == ["DR2", "DR1"] and listed[0]["n_objects"] == 4
    res = CliRunner().invoke(main, ["release", "create", "DR2"], env=env)
    assert res.exit_code != 0 and "already exists" in res.output
    with archive.engine.connect() as conn:
        latest = conn.execute(sa.text("SELECT DISTINCT release FROM objects_latest")).scalars().all()
        assert latest == ["DR2"]
        assert [r.release for r in list_releases(conn)] == ["DR2", "DR1"]


def test_objects_latest_view_has_every_objects_column(archive: Archive) -> None:
    from romanarchive.db.tables_catalog import OBJECTS
    from romanarchive.releases import OBJECTS_LATEST

    with archive.engine.connect() as conn:
        cols = conn.execute(sa.text("SELECT column_name FROM information_schema.columns "
                                    "WHERE table_name = 'objects_latest' ORDER BY ordinal_position")).scalars().all()
    assert cols == [c.name for c in OBJECTS.columns] == [c.name for c in OBJECTS_LATEST.columns]
