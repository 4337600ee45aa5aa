"""DIA association on a catalogued star: a variable's scattered detections are one DIA object."""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa

from romanarchive.archive import Archive
from romanarchive.timeseries.dia_objects import associate

pytestmark = pytest.mark.db

RA0, DEC0 = 271.8, 66.7
ARC = 1 / 3600.0


def _detection(conn: sa.Connection, k: int, dra_arcsec: float, snr: float) -> None:
    import math

    ra = RA0 + dra_arcsec * ARC / math.cos(math.radians(DEC0))
    conn.execute(sa.text(
        "INSERT INTO dia_sources (skycell, filter, mjd, science_ids, template_ids, ra, dec, pos, snr, flags, run_id) "
        "VALUES ('cell', 'F158', :mjd, CAST(:j AS jsonb), CAST(:j AS jsonb), :ra, :dec, "
        "spoint(radians(:ra), radians(:dec)), :snr, 0, 1)"),
        {"mjd": 61000.0 + k, "j": json.dumps([k]), "ra": ra, "dec": DEC0, "snr": snr})


def _objects(archive: Archive) -> list[tuple[int, int]]:
    with archive.engine.connect() as conn:
        return [tuple(r) for r in conn.execute(sa.text(
            "SELECT dia_object_id, n_detections FROM dia_objects ORDER BY dia_object_id"))]


@pytest.mark.parametrize("star", [True, False], ids=["on a star", "empty sky"])
def test_detections_on_a_star_meet_at_its_position(archive: Archive, star: bool) -> None:
    """Detections 0.2" either side of a catalogued point source (0.4" apart, beyond the 0.3" radius) are one
    object; the same detections on empty sky (or on a galaxy: a host, not the variable) are two."""
    with archive.engine.begin() as conn:
        conn.execute(sa.text(
            "INSERT INTO objects (source_id, release, ra, dec, pos, hpx, is_extended) VALUES "
            "(1, 'live', :ra, :dec, spoint(radians(:ra), radians(:dec)), 0, :ext)"),
            {"ra": RA0, "dec": DEC0, "ext": not star})
        _detection(conn, 0, -0.2, 15.0)
        _detection(conn, 1, +0.2, 8.0)
        out = associate(conn)
    assert out["assigned"] == 2
    objs = _objects(archive)
    assert [n for _, n in objs] == ([2] if star else [1, 1])
    # A later detection on the star joins the same object (existing objects meet at the star too).
    with archive.engine.begin() as conn:
        _detection(conn, 2, +0.25, 6.0)
        associate(conn)
    after = _objects(archive)
    if star:
        assert after == [(objs[0][0], 3)]
    else:
        assert sum(n for _, n in after) == 3


def test_objects_found_before_the_catalog_merge_on_its_star(archive: Archive) -> None:
    """DIA ran before the skycell's catalog: two objects for one variable; the catalog's arrival re-links them and,
    both lying on one catalogued star, merges them into the older one."""
    from romanarchive.timeseries.dia_objects import refresh_counterparts

    with archive.engine.begin() as conn:
        _detection(conn, 0, -0.2, 15.0)
        _detection(conn, 1, +0.2, 8.0)
        associate(conn)
    two = _objects(archive)
    assert [n for _, n in two] == [1, 1]
    d = 10 * ARC
    poly = f"{{({RA0 - 3 * d}d,{DEC0 - d}d),({RA0 + 3 * d}d,{DEC0 - d}d),({RA0 + 3 * d}d,{DEC0 + d}d)," \
           f"({RA0 - 3 * d}d,{DEC0 + d}d)}}"
    with archive.engine.begin() as conn:
        conn.execute(sa.text(
            "INSERT INTO objects (source_id, release, ra, dec, pos, hpx, is_extended) VALUES "
            "(1, 'live', :ra, :dec, spoint(radians(:ra), radians(:dec)), 0, false)"), {"ra": RA0, "dec": DEC0})
        assert refresh_counterparts(conn, poly) == 2
    with archive.engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT dia_object_id, n_detections, counterpart_id FROM dia_objects")).all()
        owners = set(conn.execute(sa.text("SELECT dia_object_id FROM dia_sources")).scalars())
    assert [tuple(r) for r in rows] == [(two[0][0], 2, 1)] and owners == {two[0][0]}
