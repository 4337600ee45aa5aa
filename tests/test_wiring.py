"""A new product kind is one domain declaration (the README's recipe): registered, its jobs queued and run, published.

The toy domain below is what a contributor writes in ``romanarchive/<domain>/wiring.py``: a table, a job kind with its
handler, and a rule "when an L2 is registered, queue a job on it". The table is created from its spec, as the
domain's one migration would; nothing else in the package is edited.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
import pyvo
import sqlalchemy as sa
from support.server import live_server

from romanarchive.archive import Archive
from romanarchive.db.registry import ColumnSpec, TableSpec, build_table
from romanarchive.ingest.register import Provenance, Registration, register_product
from romanarchive.jobs import queue, wiring, worker
from romanarchive.tap import schema as tap_schema

pytestmark = pytest.mark.db

TOY_KIND = "toy_median"
TOY_TABLE = TableSpec(
    "toy_medians", "Toy product kind of the wiring test: one row per L2 image it measured.",
    (ColumnSpec("product_id", "bigint", "L2 image measured", ucd="meta.id;meta.main", primary_key=True),
     ColumnSpec("n_bytes", "bigint", "Size of the image file", unit="byte", ucd="phys.size;meta.file")),
    published=True,
)


def run_toy(archive: Archive, job: queue.Job) -> int | None:
    """Handler: write the toy row and register a small summary product made from the L2."""
    with Registration.open(archive, job) as reg:
        size = reg.conn.execute(sa.text("SELECT f.size FROM products p JOIN files f USING (file_id) "
                                        "WHERE p.product_id = :p"), {"p": job.product_id}).scalar_one()
        reg.conn.execute(sa.text("INSERT INTO toy_medians VALUES (:p, :n)"), {"p": job.product_id, "n": size})
        out = archive.settings.scratch / f"toy-{job.product_id}.txt"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(f"{job.product_id} {size}\n")
        return reg.add(out, level=4, product_type="toy_summary", prefix="toy",
                       product={"obs_id": f"toy{job.product_id}"},
                       provenance=Provenance("test.ToyStep", {"romanarchive": "test"}, {},
                                             [{"product_id": job.product_id}]),
                       media_type="text/plain")


def queue_toy(conn: sa.Connection, new: Sequence[wiring.NewProduct]) -> None:
    """Rule: every new L2 gets a toy job."""
    queue.enqueue(conn, TOY_KIND, [p.product_id for p in new])


@pytest.fixture
def toy_domain(archive: Archive) -> Iterator[wiring.Domain]:
    domain = wiring.register(wiring.Domain(
        "toy", "A toy product kind.", jobs=(wiring.JobKind(TOY_KIND, run_toy, "measure one L2"),),
        rules=(wiring.Rule("L2 -> toy", queue_toy, level=2),), tables=(TOY_TABLE,)))
    with archive.engine.begin() as conn:  # the domain's migration
        build_table(TOY_TABLE, sa.MetaData()).create(conn)
        tap_schema.refresh_tap_schema(conn)
    try:
        yield domain
    finally:
        wiring.unregister("toy")


def test_a_toy_product_kind_is_registered_queued_run_and_published(archive: Archive, toy_domain: wiring.Domain,
                                                                   tmp_path: Path) -> None:
    assert TOY_KIND in wiring.job_kinds() and toy_domain in wiring.domains()
    l2 = tmp_path / "image_cal.asdf"
    l2.write_bytes(b"#ASDF 1.0.0\n" + b"\0" * 1000)
    pid = register_product(archive, l2, level=2, product_type="wfi_l2", prefix="l2",
                           product={"obs_id": "toy-exposure", "filter": "F158"})
    with archive.engine.connect() as conn:
        jobs = conn.execute(sa.text("SELECT kind, state FROM jobs WHERE product_id = :p"), {"p": pid}).all()
    assert (TOY_KIND, "queued") in [tuple(j) for j in jobs]  # the rule ran in the registering transaction

    assert worker.run_one(archive, kinds=(TOY_KIND,)) is not None
    with archive.engine.connect() as conn:
        job = conn.execute(sa.text("SELECT state, output_product_id FROM jobs WHERE kind = :k"), {"k": TOY_KIND}).one()
        assert job.state == "done"
        made = conn.execute(sa.text("SELECT p.level, p.product_type, v.step, v.inputs FROM products p "
                                    "JOIN provenance v USING (product_id) WHERE p.product_id = :p"),
                            {"p": job.output_product_id}).one()
    assert (made.level, made.product_type, made.step) == (4, "toy_summary", "test.ToyStep")
    assert made.inputs == [{"product_id": pid}]

    with live_server(archive) as url:
        service = pyvo.dal.TAPService(f"{url}/tap")
        tables = service.run_sync("SELECT table_name FROM TAP_SCHEMA.tables").to_table()
        assert "roman.toy_medians" in [str(t) for t in tables["table_name"]]
        rows = service.run_sync("SELECT product_id, n_bytes FROM roman.toy_medians").to_table()
    assert list(rows["product_id"]) == [pid] and list(rows["n_bytes"]) == [l2.stat().st_size]
