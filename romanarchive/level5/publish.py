"""Publication of a validated Level 5 product, all in one database transaction.

In order: the product name is locked and its owner checked; the files are stored by SHA-256 and get ``files`` rows;
for a catalog, a table ``level5.<name>_v<version>`` is created from its spec (`catalog_spec`), loaded with binary
COPY and indexed; the registry row (``products``, level 5, hence an ObsCore row), its provenance, the
``level5_versions`` row and the column registry (``level5_columns``) are written; TAP_SCHEMA is rewritten and the
publication counter bumped (:func:`romanarchive.jobs.wiring.tables_changed`). The registry rows are written through
the shared product registration (:class:`romanarchive.ingest.register.Registration`), which also fires the pipeline
wiring's rules. A failure anywhere rolls the transaction back and removes every object this attempt stored: nothing
is half-published.

The column registry rows are also where the TAP query catalog finds the table: `catalog_tables` (declared in
``romanarchive.level5.wiring``) returns their specs.

Speed (``benchmarks/bench_level5.py``): the table is created and loaded in the same transaction, so with
``wal_level = minimal`` (the embedded cluster's setting) PostgreSQL writes no WAL for the rows or the index builds and
syncs the new files at commit instead; with ``replica`` (a server with standbys) everything still works, WAL-logged.
The rows are loaded ``FREEZE`` (no later hint-bit rewrite of every page), the indexes are built after the load with
enough ``maintenance_work_mem`` for parallel workers, and the files are hashed and stored in a thread while the
server loads and indexes. The transaction runs with ``synchronous_commit = on`` whatever the server's default
(the embedded cluster's is ``off``): turning it off would save one WAL flush of a small tail (the walwriter flushes
the rest during the load; with ``minimal`` the table files are synced before the commit record anyway) and would let
a crash lose a publication the client was already told succeeded, leaving its stored files unreferenced.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from importlib.metadata import version as package_version
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import sqlalchemy as sa
from psycopg import sql

from romanarchive.archive import Archive
from romanarchive.db import product_types
from romanarchive.db.registry import ColumnSpec, TableSpec, create_table_ddl
from romanarchive.db.tables import files, metadata
from romanarchive.db.tables_level5 import LEVEL5_COLUMNS, LEVEL5_VERSIONS
from romanarchive.ingest.register import Provenance, Registration, discard_unregistered, upsert_files
from romanarchive.jobs import wiring
from romanarchive.level5.contract import MEDIA_TYPES
from romanarchive.level5.copyenc import copy_columns
from romanarchive.level5.validate import Validated
from romanarchive.sky.footprint import healpix29
from romanarchive.store.objectstore import StoredObject, sha256_file
from romanarchive.tap import schema as tap_schema

SCHEMA = "level5"
#: Points where a test may inject a failure (the hook is called with the stage name).
#: ``after_indexes`` comes while the files may still be being stored in their thread.
STAGES = ("after_indexes", "after_store", "after_copy", "after_registry", "after_tap_schema")
Hook = Callable[[str], None]

level5_versions = metadata.tables[LEVEL5_VERSIONS.name]
level5_columns = metadata.tables[LEVEL5_COLUMNS.name]


class OwnershipError(Exception):
    """The product name belongs to another team."""


@dataclass(frozen=True)
class PublishedVersion:
    """What a publication made.

    Attributes
    ----------
    version_id, product_id
        Row identifiers.
    name, version
        Product name and its new version number.
    table
        ADQL name of the catalog table (``None`` for ASDF products).
    n_rows
        Catalog rows loaded.
    """

    version_id: int
    product_id: int
    name: str
    version: int
    table: str | None
    n_rows: int


def table_name(name: str, version: int) -> str:
    """Unqualified table of a catalog version (product names are safe identifiers of at most 40 characters)."""
    return f"{name}_v{version}"


def catalog_spec(table: str, tdecl: Mapping[str, Any]) -> TableSpec:
    """The spec of a catalog version's table ``level5.<table>`` from its declaration (DDL, registry, TAP).

    Parameters
    ----------
    table
        Unqualified table name (`table_name`).
    tdecl
        The declaration's ``table`` block (columns, primary key, position, description).
    """
    pk = tdecl["primary_key"]
    pk = {pk} if isinstance(pk, str) else set(pk)
    pos = tdecl.get("position") or {}
    columns = tuple(ColumnSpec(
        c["name"], c["type"], c["description"], unit=str(c.get("unit") or ""), ucd=str(c.get("ucd") or ""),
        nullable=bool(c.get("nullable", True)) and c["name"] not in pk, primary_key=c["name"] in pk,
        indexed=c["name"] in pk or c["name"] in pos.values(), principal=True,
    ) for c in tdecl["columns"])  # fmt: skip
    return TableSpec(table, tdecl.get("description") or "", columns, schema=SCHEMA, published=True,
                     q3c=((pos["ra"], pos["dec"]),) if pos else ())


def publish(archive: Archive, v: Validated, team_id: int, submission_id: int,
            names: Mapping[Any, str] | None = None, hook: Hook | None = None) -> PublishedVersion:
    """Publish a valid product as a new version, in one transaction.

    Parameters
    ----------
    archive
        Where to publish.
    v
        A product that passed validation.
    team_id
        The submitting team (must own the name, or the name must be new).
    submission_id
        The submission it comes from.
    names
        File names to store the files under (the uploaded names), by path.
    hook
        Called at each of `STAGES` (tests inject failures there).

    Raises
    ------
    OwnershipError
        Another team owns the product name.
    """
    assert v.valid and v.name and v.data is not None
    hook = hook or (lambda stage: None)
    names = names or {}
    try:
        # The registration rolls back and removes the objects it stored (reg.stored) on any failure.
        with Registration.open(archive) as reg:
            result = _publish(reg, v, team_id, submission_id, names, hook)
    except BaseException:
        with archive.engine.connect() as conn:  # forget any entry loaded inside the rolled-back transaction
            tap_schema.load_dynamic(conn)
        raise
    # Objects stored for content the archive had meanwhile are left unreferenced: remove them.
    for obj in reg.stored:
        discard_unregistered(archive, obj.key)
    return result


def _publish(reg: Registration, v: Validated, team_id: int, submission_id: int, names: Mapping[Any, str],
             hook: Hook) -> PublishedVersion:
    assert v.name is not None and v.data is not None
    conn, archive = reg.conn, reg.archive
    # A 201 answer means published: the commit waits for its WAL even where the server's default is not to.
    conn.execute(sa.text("SET LOCAL synchronous_commit = on"))
    conn.execute(sa.text("SELECT pg_advisory_xact_lock(hashtext(:k))"), {"k": f"level5:{v.name}"})
    owner = conn.execute(sa.select(level5_versions.c.team_id).where(level5_versions.c.name == v.name).limit(1))
    owner_id = owner.scalar_one_or_none()
    if owner_id is not None and owner_id != team_id:
        raise OwnershipError(f"product {v.name!r} belongs to another team")
    version = conn.execute(sa.select(sa.func.coalesce(sa.func.max(level5_versions.c.version), 0) + 1)
                           .where(level5_versions.c.name == v.name)).scalar_one()  # fmt: skip
    table = table_name(v.name, version) if v.kind == "catalog" else None
    decl = v.declaration
    tdecl: Mapping[str, Any] = decl.get("table") or {}
    pos = tdecl.get("position") or {}
    spec = catalog_spec(table, tdecl) if table is not None else None
    todo = [(path, names.get(path, path.name), MEDIA_TYPES[str(role)])
            for path, role in ((v.data, v.fmt), (v.sidecar, "sidecar")) if path is not None]  # fmt: skip
    # Hashing and storing the files (disk I/O, hashlib without the GIL) overlaps the COPY and the index builds.
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="level5-store") as pool:
        stored = [pool.submit(_put, archive, path, name) for path, name, _ in todo]
        try:
            if spec is not None:
                _create_and_load(conn, spec, tdecl, v.columns)
            hook("after_indexes")
        finally:
            for fut in stored:  # whatever happens, every object written is known and can be removed
                obj = _result(fut)
                if obj is not None and obj.created:
                    reg.stored.append(obj)
    file_ids = [_file_id(reg, path, *stored[i].result(), name, media) for i, (path, name, media) in enumerate(todo)]
    hook("after_store")
    if table is not None:
        hook("after_copy")
    meta = decl.get("meta") or {}
    product_id = reg.add_product(
        file_ids[0], level=5, product_type=product_types.L5_CATALOG if table else product_types.L5_ASDF,
        product={"obs_id": f"{v.name}/v{version}", "filter": _text(_get(meta, "instrument", "optical_element"), 20),
                 "t_min": _mjd(_get(meta, "exposure", "start_time")), "t_max": _mjd(_get(meta, "exposure", "end_time")),
                 "t_exptime": _float(_get(meta, "exposure", "exposure_time")), **_sky(v, pos, meta)},
        provenance=Provenance(
            "level5.submission", _software(),
            {"submission_id": submission_id, "team_id": team_id, "ccsp_schema": decl.get("ccsp_schema")},
            inputs=[{"file_id": f} for f in file_ids]),
    )
    reg.done(product_id)
    ccsp = _jsonable(meta.get("ccsp") or {})
    version_id = conn.execute(sa.insert(level5_versions).values(
        name=v.name, version=version, team_id=team_id, submission_id=submission_id, product_id=product_id,
        kind=v.kind, table_name=f"{SCHEMA}.{table}" if table else None, description=tdecl.get("description"),
        ra_column=pos.get("ra"), dec_column=pos.get("dec"), n_rows=v.n_rows if table else None,
        file_ids=file_ids, ccsp=ccsp,
    ).returning(level5_versions.c.version_id)).scalar_one()
    if spec is not None:
        conn.execute(sa.insert(level5_columns), [{
            "table_name": spec.sql_name, "column_name": c.name, "position": i, "type": c.type, "unit": c.unit,
            "ucd": c.ucd, "description": c.description, "nullable": c.nullable, "primary_key": c.primary_key,
            "indexed": c.indexed,
        } for i, c in enumerate(spec.columns)])  # fmt: skip
    hook("after_registry")
    wiring.tables_changed(conn)  # TAP rewrites TAP_SCHEMA and bumps the publication counter
    hook("after_tap_schema")
    return PublishedVersion(version_id, product_id, v.name, version, f"{SCHEMA}.{table}" if table else None,
                            v.n_rows if table else 0)  # fmt: skip


def _put(archive: Archive, path: Path, filename: str) -> tuple[str, StoredObject | None]:
    """(SHA-256, stored object) of a file; no object when the archive already has the content (runs in a thread)."""
    sha = sha256_file(path)
    with archive.engine.connect() as conn:
        if conn.execute(sa.select(files.c.file_id).where(files.c.sha256 == sha).limit(1)).first() is not None:
            return sha, None
    return sha, archive.store.put_file(path, SCHEMA, filename=filename, sha256=sha)


def _result(fut: Future[tuple[str, StoredObject | None]]) -> StoredObject | None:
    try:
        return fut.result()[1]
    except Exception:  # noqa: BLE001 - re-raised by the caller's own .result()
        return None


def _file_id(reg: Registration, path: Path, sha: str, obj: StoredObject | None, filename: str,
             media_type: str) -> int:
    """The ``files`` row of a file: the existing one for known content, else a new one for its stored object.

    An object stored for content that became known meanwhile stays unreferenced and is discarded after the
    transaction.
    """
    if obj is None:  # the content was known when the thread looked
        existing = reg.conn.execute(sa.select(files.c.file_id).where(files.c.sha256 == sha)).scalar_one_or_none()
        if existing is not None:
            return int(existing)
        # Known to another connection, but not to this transaction's snapshot: store it after all.
        obj = reg.archive.store.put_file(path, SCHEMA, filename=filename, sha256=sha)
        if obj.created:
            reg.stored.append(obj)
    return upsert_files(reg.conn, [(obj, filename)], media_type)[0]


def _create_and_load(conn: sa.Connection, spec: TableSpec, tdecl: Mapping[str, Any],
                     columns: Mapping[str, pa.Array]) -> None:
    """CREATE TABLE from the spec, COPY the rows, then build the primary key and the indexes (faster after the load).

    The table is created bare (no key, no index: building them once after the load is cheaper than maintaining
    them row by row); its indexes are written here rather than by ``create_index_ddl`` because a published version
    never changes, so they are packed full. No ANALYZE here: autovacuum analyses the new table shortly after the
    commit.
    """
    table = spec.name
    pk = [c.name for c in spec.columns if c.primary_key]
    ident = sql.Identifier(SCHEMA, table)
    bare = replace(spec, columns=tuple(replace(c, primary_key=False, indexed=False) for c in spec.columns))
    raw = conn.connection.driver_connection
    assert raw is not None
    with raw.cursor() as cur:  # no parameters: a '%' in a description stays text
        for statement in create_table_ddl(bare, indexes=False):
            cur.execute(statement)
    copy_columns(raw, spec.sql_name, {c.name: columns[c.name] for c in spec.columns}, freeze=True)
    with raw.cursor() as cur:
        # Sorts in memory, with parallel workers where the server allows them (each needs 32 MB of it): at least
        # 512 MB for this transaction, never less than the server's own setting.
        cur.execute("SELECT set_config('maintenance_work_mem', greatest(pg_size_bytes(current_setting("
                    "'maintenance_work_mem')) / 1024, 524288)::text || 'kB', true)")
        # A published version never changes, so its indexes are packed full (about 10% smaller).
        cur.execute(sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} PRIMARY KEY ({}) WITH (fillfactor = 100)").format(
            ident, sql.Identifier(f"pk_{table}"), sql.SQL(", ").join(sql.Identifier(c) for c in pk)))
        for ra, dec in spec.q3c:
            cur.execute(sql.SQL("CREATE INDEX {} ON {} (q3c_ang2ipix({}, {})) WITH (fillfactor = 100)").format(
                sql.Identifier(f"ix_{table}_q3c"), ident, sql.Identifier(ra), sql.Identifier(dec)))
        link = tdecl.get("link")
        if link:
            cur.execute(sql.SQL("CREATE INDEX {} ON {} ({}) WITH (fillfactor = 100)").format(
                sql.Identifier(f"ix_{table}_link"), ident, sql.Identifier(link["column"])))


def _sky(v: Validated, pos: Mapping[str, str], meta: Mapping[str, Any]) -> dict[str, Any]:
    """s_ra, s_dec, s_fov and hpx of the product: the catalog's centre and extent, else the CCSP target."""
    ra = dec = fov = None
    if pos and v.columns:
        # A strided sample of at most ~200k rows is plenty for a centre and an extent.
        step = max(v.n_rows // 200_000, 1)
        r = np.radians(v.columns[pos["ra"]].drop_null().to_numpy(zero_copy_only=False)[::step].astype(float))
        d = np.radians(v.columns[pos["dec"]].drop_null().to_numpy(zero_copy_only=False)[::step].astype(float))
        if r.size:
            xyz = np.stack([np.cos(d) * np.cos(r), np.cos(d) * np.sin(r), np.sin(d)])
            c = xyz.mean(axis=1)
            c /= np.linalg.norm(c) or 1.0
            ra = float(np.degrees(np.arctan2(c[1], c[0])) % 360.0)
            dec = float(np.degrees(np.arcsin(np.clip(c[2], -1, 1))))
            fov = float(2 * np.degrees(np.arccos(np.clip((c[:, None] * xyz).sum(axis=0).min(), -1, 1))))
    target = meta.get("target_coordinates")
    if ra is None and isinstance(target, Mapping):
        ra, dec = _float(target.get("ra")), _float(target.get("dec"))
    out: dict[str, Any] = {"s_ra": ra, "s_dec": dec, "s_fov": fov}
    if ra is not None and dec is not None:
        out["hpx"] = int(healpix29(ra, dec)[0])
    return out


def _get(meta: Mapping[str, Any], *path: str) -> Any:
    node: Any = meta
    for key in path:
        node = node.get(key) if isinstance(node, Mapping) else None
    return node


def _float(value: Any) -> float | None:
    try:
        return float(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def _text(value: Any, n: int) -> str | None:
    return value[:n] if isinstance(value, str) else None


def _mjd(value: Any) -> float | None:
    from astropy.time import Time

    try:
        return float(Time(value).mjd) if value is not None else None
    except (TypeError, ValueError):
        return None


def _jsonable(node: Any) -> Any:
    if isinstance(node, Mapping):
        return {str(k): _jsonable(v) for k, v in node.items()}
    if isinstance(node, (list, tuple)):
        return [_jsonable(v) for v in node]
    if node is None or isinstance(node, (str, int, float, bool)):
        return node
    return str(node)


def _software() -> dict[str, str]:
    return {p: package_version(p) for p in ("romanarchive", "rad", "asdf", "pyarrow")}


# ------------------------------------------------------------------------------------------------ TAP publication
def catalog_tables(conn: sa.Connection) -> list[TableSpec]:
    """The pipeline wiring's run-time tables of Level 5: every published catalog table, from the column registry.

    Before migration 0007 (the tables do not exist yet) there are none.
    """
    if conn.execute(sa.text("SELECT to_regclass('public.level5_columns')")).scalar_one() is None:
        return []
    versions = conn.execute(sa.select(level5_versions.c.table_name, level5_versions.c.description,
                                      level5_versions.c.ra_column, level5_versions.c.dec_column,
                                      level5_versions.c.name, level5_versions.c.version)
                            .where(level5_versions.c.table_name.is_not(None))
                            .order_by(level5_versions.c.version_id)).all()  # fmt: skip
    cols: dict[str, list[ColumnSpec]] = {}
    for r in conn.execute(sa.select(level5_columns).order_by(level5_columns.c.table_name,
                                                             level5_columns.c.position)).mappings():  # fmt: skip
        cols.setdefault(r["table_name"], []).append(ColumnSpec(
            r["column_name"], r["type"], r["description"], unit=r["unit"], ucd=r["ucd"], nullable=r["nullable"],
            primary_key=r["primary_key"], indexed=r["indexed"], principal=True))
    out = []
    for tname, description, ra, dec, name, version in versions:
        if tname not in cols:
            continue
        schema_name, table = tname.split(".", 1)
        out.append(TableSpec(table, description or f"Level 5 product {name}, version {version}", tuple(cols[tname]),
                             schema=schema_name, published=True, q3c=((ra, dec),) if ra and dec else ()))
    return out
