"""Ingest files: validate, store, register — all or nothing per file, idempotent by content."""

from __future__ import annotations

import multiprocessing as mp
from collections.abc import Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa

from romanarchive.archive import Archive
from romanarchive.config import Settings
from romanarchive.db.tables import EXPOSURE_IDENTITY, exposures, files, products, reference_files
from romanarchive.ingest.inspect import Description, IngestError, describe
from romanarchive.ingest.register import discard_unregistered, register_files
from romanarchive.store.objectstore import sha256_file


@dataclass(frozen=True)
class IngestResult:
    """Outcome for one file.

    Attributes
    ----------
    path
        The file.
    status
        ``ingested``, ``unchanged`` (same content already archived) or ``replaced``.
    kind
        ``product`` or ``reference``.
    level
        Data level of a product.
    product_id, ref_id, job_id
        Ids written (``None`` where not applicable).
    """

    path: str
    status: str
    kind: str | None = None
    level: int | None = None
    product_id: int | None = None
    ref_id: int | None = None
    job_id: int | None = None


def _already_registered(conn: sa.Connection, sha: str) -> tuple[str, int | None, int | None] | None:
    row = conn.execute(
        sa.select(files.c.file_id, products.c.product_id, products.c.level, reference_files.c.ref_id)
        .select_from(files.outerjoin(products).outerjoin(reference_files, reference_files.c.file_id == files.c.file_id))
        .where(files.c.sha256 == sha)
    ).first()
    if row is None or (row.product_id is None and row.ref_id is None):
        return None
    return ("product", row.product_id, row.level) if row.product_id is not None else ("reference", row.ref_id, None)


def _unchanged(path: Path, known: tuple[str, int | None, int | None]) -> IngestResult:
    kind, ident, level = known
    return IngestResult(str(path), "unchanged", kind, level,
                        ident if kind == "product" else None, ident if kind == "reference" else None)


def _conflicts(conn: sa.Connection, desc: Description, sha: str) -> list[tuple[int, str, str]]:
    """Rows claiming the same identity with other content: (id, file key, file name)."""
    if desc.kind == "product":
        ident = [exposures.c[k] == desc.exposure[k] for k in EXPOSURE_IDENTITY]
        stmt = (
            sa.select(products.c.product_id, files.c.uri, files.c.filename)
            .join(files, files.c.file_id == products.c.file_id)
            .join(exposures, exposures.c.exposure_id == products.c.exposure_id)
            .where(*ident, products.c.product_type == desc.product_type, files.c.sha256 != sha)
        )
    else:
        r = desc.reference
        stmt = (
            sa.select(reference_files.c.ref_id, files.c.uri, files.c.filename)
            .join(files, files.c.file_id == reference_files.c.file_id)
            .where(*(reference_files.c[k] == r[k] for k in ("reftype", "detector", "optical_element", "useafter")),
                   files.c.sha256 != sha)
        )
    return [tuple(r) for r in conn.execute(stmt)]  # type: ignore[misc]


def _remove_existing(conn: sa.Connection, desc: Description, ids: list[int]) -> list[int]:
    """Delete what a replacement supersedes; returns the file ids it leaves unreferenced."""
    if desc.kind == "reference":
        fids = conn.execute(sa.delete(reference_files).where(reference_files.c.ref_id.in_(ids))
                            .returning(reference_files.c.file_id)).scalars().all()
        return list(fids)
    # A new L1 makes every product of that exposure stale (its L2 was calibrated from the old ramps).
    exp_ids = conn.execute(sa.select(products.c.exposure_id).where(products.c.product_id.in_(ids))).scalars().all()
    fids = conn.execute(sa.delete(products).where(products.c.exposure_id.in_(exp_ids))
                        .returning(products.c.file_id)).scalars().all()
    return list(fids)


def _drop_orphans(archive: Archive, file_ids: list[int]) -> None:
    if not file_ids:
        return
    with archive.engine.begin() as conn:
        in_use = sa.union(sa.select(products.c.file_id), sa.select(reference_files.c.file_id)).subquery()
        keys = conn.execute(
            sa.delete(files).where(files.c.file_id.in_(file_ids), files.c.file_id.not_in(sa.select(in_use)))
            .returning(files.c.uri)
        ).scalars().all()
    for key in keys:
        archive.store.delete(key)


def ingest_file(archive: Archive, path: str | Path, replace: bool = False) -> IngestResult:
    """Ingest one file.

    Parameters
    ----------
    archive
        Target archive.
    path
        ASDF file: an L1/L2 product or a calibration reference file.
    replace
        Allow a different file to take the place of an archived one with the same identity.

    Returns
    -------
    IngestResult
        What happened.

    Raises
    ------
    IngestError
        The file is invalid or conflicts with an archived one; nothing was written.
    """
    path = Path(path)
    if not path.is_file():
        raise IngestError(path, "no such file")
    sha = sha256_file(path)
    with archive.engine.connect() as conn:
        known = _already_registered(conn, sha)
    if known:
        return _unchanged(path, known)
    desc = describe(path)
    with archive.engine.connect() as conn:
        # Again: a concurrent ingest of the same content may have committed while we validated.
        known = _already_registered(conn, sha)
        existing = [] if known else _conflicts(conn, desc, sha)
    if known:
        return _unchanged(path, known)
    if existing and not replace:
        _, _, name = existing[0]
        what = "exposure" if desc.kind == "product" else "reference slot"
        raise IngestError(path, f"same {what} already archived from a different file ({name}); "
                                "use --replace to supersede it")
    prefix = f"l{desc.level}" if desc.kind == "product" else "refs"
    stored = archive.store.put_file(path, prefix, sha256=sha)
    try:
        with archive.engine.begin() as conn:
            stale = _remove_existing(conn, desc, [e[0] for e in existing]) if existing else []
            reg = register_files(conn, [(desc, stored, path.name)])[0]
    except sa.exc.IntegrityError:
        discard_unregistered(archive, stored.key)
        with archive.engine.connect() as conn:
            known = _already_registered(conn, sha)
        if known is None:  # not a concurrent ingest of the same content: a real conflict
            raise IngestError(path, "same identity was archived concurrently from a different file; "
                                    "run ingest again (use --replace to supersede it)") from None
        return _unchanged(path, known)
    except BaseException:
        discard_unregistered(archive, stored.key)
        raise
    _drop_orphans(archive, stale)
    return IngestResult(str(path), "replaced" if existing else "ingested", desc.kind, desc.level,
                        reg.product_id, reg.ref_id, reg.job_id)


def expand_paths(paths: Iterable[str | Path]) -> list[Path]:
    """Files named directly, and ``*.asdf`` under named folders (reference files first, so jobs find them)."""
    out: list[Path] = []
    for p in map(Path, paths):
        out.extend(sorted(p.rglob("*.asdf")) if p.is_dir() else [p])
    return sorted(out, key=lambda f: (0 if "refs" in f.parts else 1, str(f)))


def _ingest_one(settings: Settings, path: Path, replace: bool) -> IngestResult | IngestError:
    try:
        return ingest_file(Archive(settings), path, replace)
    except IngestError as exc:
        return exc
    except Exception as exc:  # a database or store fault on one file must not hide the outcome of the others
        return IngestError(path, f"not ingested: {type(exc).__name__}: {str(exc).strip().splitlines()[0][:300]}")


def ingest_paths(archive: Archive, paths: Iterable[str | Path], replace: bool = False,
                 workers: int = 1) -> Iterator[IngestResult | IngestError]:
    """Ingest many files, yielding each outcome (errors are yielded, not raised, so one bad file stops nothing).

    Parameters
    ----------
    archive
        Target archive.
    paths
        Files or folders.
    replace
        See :func:`ingest_file`.
    workers
        Parallel processes; references are always ingested before products.
    """
    files_ = expand_paths(paths)
    refs = [f for f in files_ if "refs" in f.parts]
    rest = [f for f in files_ if "refs" not in f.parts]
    for batch in (refs, rest):
        if workers <= 1 or len(batch) <= 1:
            for f in batch:
                yield _ingest_one(archive.settings, f, replace)
            continue
        # spawn, not fork: a forked child would share the parent's pooled database connections.
        with ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn")) as pool:
            yield from pool.map(_ingest_one, [archive.settings] * len(batch), batch, [replace] * len(batch))
