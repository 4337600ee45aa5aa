"""The Level 5 submission service: team tokens, submissions, their reports, and the audit log.

A submission is authenticated by a bearer token (stored as its SHA-256 only), its files are written under their
checked base names into a private scratch folder, validated with the same code the CLI runs (plus the link check
against the archive's published catalogs), and published only when fully valid (`romanarchive.level5.publish`).
Every submission is recorded with its report; every action goes to ``level5_audit``.
"""

from __future__ import annotations

import hashlib
import secrets
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np
import sqlalchemy as sa

from romanarchive.archive import Archive
from romanarchive.db.bulk import copy_arrays
from romanarchive.db.registry import ColumnSpec, TableSpec, create_table_ddl
from romanarchive.db.tables import metadata
from romanarchive.db.tables_level5 import LEVEL5_AUDIT, LEVEL5_SUBMISSIONS, LEVEL5_TEAMS, LEVEL5_TOKENS
from romanarchive.level5.contract import FILE_NAME, TEAM_NAME, Issues, Limits
from romanarchive.level5.publish import Hook, OwnershipError, level5_versions, publish
from romanarchive.level5.validate import LinkChecker, validate_product
from romanarchive.tap import schema as tap_schema

teams, tokens, submissions, audit = (metadata.tables[s.name] for s in (LEVEL5_TEAMS, LEVEL5_TOKENS,
                                                                       LEVEL5_SUBMISSIONS, LEVEL5_AUDIT))
TOKEN_PREFIX = "l5_"
_CHUNK = 1 << 20


@dataclass(frozen=True)
class Team:
    """An authenticated team."""

    team_id: int
    name: str


class AuthError(Exception):
    """Missing, unknown or revoked token; ``code`` is ``auth.missing`` or ``auth.invalid``."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def token_digest(token: str) -> str:
    """SHA-256 hex of a token (tokens are 256-bit random strings, so no salt or stretching is needed)."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def record(conn: sa.Connection, action: str, outcome: str, team: str | None = None, detail: str | None = None,
           submission_id: int | None = None, product: str | None = None, client: str | None = None) -> None:
    """Append an audit entry."""
    conn.execute(sa.insert(audit).values(action=action, outcome=outcome, team=team, detail=(detail or "")[:2000],
                                         submission_id=submission_id, product_name=product, client=client))


def create_token(archive: Archive, team: str) -> str:
    """Create a token for ``team`` (creating the team when new); the token is returned once and stored hashed.

    Raises
    ------
    ValueError
        The team name is not a lower-case identifier.
    """
    if not TEAM_NAME.match(team):
        raise ValueError(f"team name {team!r} must match {TEAM_NAME.pattern}")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    with archive.engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO level5_teams (name) VALUES (:n) ON CONFLICT (name) DO NOTHING"), {"n": team})
        team_id = conn.execute(sa.select(teams.c.team_id).where(teams.c.name == team)).scalar_one()
        conn.execute(sa.insert(tokens).values(team_id=team_id, token_sha256=token_digest(token),
                                              prefix=token[:len(TOKEN_PREFIX) + 6]))  # fmt: skip
        record(conn, "token_create", "ok", team=team, detail=f"token {token[:len(TOKEN_PREFIX) + 6]}...")
    return token


def authenticate(conn: sa.Connection, token: str | None) -> Team:
    """The team a bearer token acts for.

    Raises
    ------
    AuthError
        No token, or one that is unknown or revoked.
    """
    if not token:
        raise AuthError("auth.missing", "a bearer token is required (Authorization: Bearer <token>)")
    row = conn.execute(sa.select(teams.c.team_id, teams.c.name).select_from(
        tokens.join(teams, tokens.c.team_id == teams.c.team_id)).where(
        tokens.c.token_sha256 == token_digest(token), tokens.c.revoked_at.is_(None))).first()  # fmt: skip
    if row is None:
        raise AuthError("auth.invalid", "the token is unknown or revoked")
    return Team(int(row[0]), str(row[1]))


#: The ids a link check looks up, in a temporary table dropped with the check's transaction.
_LINK_IDS = TableSpec("l5_link_ids", "Linked ids to look up", (ColumnSpec("id", "bigint", "A linked id"),))


def link_checker(archive: Archive) -> LinkChecker:
    """Checks linked ids against a published archive table (static or Level 5), in one set-based query."""

    def check(table: str, column: str, ids: np.ndarray) -> np.ndarray:
        with archive.engine.connect() as conn:
            tap_schema.load_dynamic(conn)
            entry = tap_schema.find(table)
            if entry is None or entry.sql_name not in tap_schema.existing_relations(conn):
                raise LookupError(f"link target {table!r} is not a published table of this archive")
            if column not in {c.name for c in entry.columns}:
                raise LookupError(f"link target {table!r} has no column {column!r}")
            raw = conn.connection.driver_connection
            assert raw is not None
            schema_name, name = entry.sql_name.split(".")
            with raw.cursor() as cur:
                for statement in create_table_ddl(_LINK_IDS, temporary=True, comments=False):
                    cur.execute(statement)
                copy_arrays(raw, "l5_link_ids", {"id": np.unique(ids.astype(np.int64))})
                cur.execute(f'SELECT i.id FROM l5_link_ids i WHERE NOT EXISTS (SELECT 1 FROM "{schema_name}"."{name}" '
                            f't WHERE t."{column}" = i.id)')
                unknown = np.array([r[0] for r in cur.fetchall()], dtype=np.int64)
            conn.rollback()
        return np.isin(ids, unknown)

    return check


def _save(scratch: Path, uploads: Sequence[tuple[str, IO[bytes]]], limits: Limits, issues: Issues
          ) -> dict[Path, str]:
    """Write uploads under their checked base names into ``scratch``; hostile names are never written."""
    saved: dict[Path, str] = {}
    root = scratch.resolve()
    for name, fh in uploads:
        if not name or not FILE_NAME.match(name):
            issues.add("file.name", repr(name)[:200], f"file name {name!r} is not a plain file name "
                       f"({FILE_NAME.pattern}); nothing was written")
            continue
        target = (root / name).resolve()
        if target.parent != root or target in saved:
            issues.add("file.name", name, "file name repeated or outside the upload area")
            continue
        size = 0
        with target.open("xb") as out:
            while chunk := fh.read(_CHUNK):
                size += len(chunk)
                if size > limits.max_file_bytes:
                    break
                out.write(chunk)
        if size > limits.max_file_bytes:
            target.unlink()
            issues.add("file.too_large", name, f"larger than the limit of {limits.max_file_bytes} bytes")
            continue
        saved[target] = name
    return saved


def submit(archive: Archive, token: str | None, uploads: Sequence[tuple[str, IO[bytes]]], client: str | None = None,
           limits: Limits | None = None, hook: Hook | None = None) -> tuple[int, dict[str, Any]]:
    """Authenticate, validate and (when fully valid) publish a submission.

    Parameters
    ----------
    archive
        The archive.
    token
        Bearer token.
    uploads
        (file name as sent, readable binary file) pairs.
    client
        Client address, for the audit log.
    limits
        Size limits.
    hook
        Failure-injection hook passed to `romanarchive.level5.publish.publish`.

    Returns
    -------
    tuple
        HTTP status (201 published, 401 unauthenticated, 403 not the owner, 422 invalid, 500 failed) and the
        report: ``{"valid", "errors", "submission_id", "state", "product", "version", "table", ...}``.
    """
    limits = limits or Limits()
    sent = [n for n, _ in uploads]
    with archive.engine.begin() as conn:
        try:
            team = authenticate(conn, token)
        except AuthError as exc:
            record(conn, "submit", "refused", detail=f"{exc.code}: {exc}", client=client)
            return 401, Issues().report() | {"valid": False, "state": "refused",
                                             "errors": [{"code": exc.code, "location": "Authorization",
                                                         "message": str(exc)}]}  # fmt: skip
        sid = int(conn.execute(sa.insert(submissions).values(team_id=team.team_id, filenames=sent)
                               .returning(submissions.c.submission_id)).scalar_one())  # fmt: skip
    issues = Issues(limits.max_errors)
    scratch_root = archive.settings.scratch / "level5"
    scratch_root.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f"sub{sid}-", dir=scratch_root))
    status, state, extra = 422, "rejected", {}
    report: dict[str, Any]
    try:
        if len(uploads) > limits.max_files:
            issues.add("submission.files", "submission", f"{len(uploads)} files given; at most {limits.max_files}")
            saved: dict[Path, str] = {}
        else:
            saved = _save(scratch, uploads, limits, issues)
        if issues:
            report = issues.report(product=None, kind=None)
        else:
            v = validate_product(list(saved), limits, link_checker(archive), names=saved)
            report = v.report()
            if v.valid:
                try:
                    pub = publish(archive, v, team.team_id, sid, names=saved, hook=hook)
                except OwnershipError as exc:
                    status, state = 403, "rejected"
                    report = Issues().report(product=v.name, kind=v.kind) | {"valid": False, "errors": [
                        {"code": "auth.forbidden", "location": "product", "message": str(exc)}]}
                else:
                    status, state = 201, "published"
                    extra = {"version": pub.version, "table": pub.table, "product_id": pub.product_id,
                             "version_id": pub.version_id}  # fmt: skip
    except Exception as exc:  # noqa: BLE001 - recorded as a failed submission; publication already rolled back
        status, state = 500, "failed"
        report = {"valid": False, "errors": [{"code": "publish.failed", "location": "server",
                                              "message": f"{type(exc).__name__}: {exc}"}]}  # fmt: skip
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    report = report | extra
    with archive.engine.begin() as conn:
        conn.execute(sa.update(submissions).where(submissions.c.submission_id == sid).values(
            state=state, report=report, product_name=report.get("product"), version_id=extra.get("version_id"),
            finished_at=sa.func.now()))
        first = report["errors"][0]["code"] + ": " + report["errors"][0]["message"] if report["errors"] else None
        record(conn, "submit", state, team=team.name, submission_id=sid, product=report.get("product"),
               detail=first or f"version {extra.get('version')}", client=client)
    return status, {"submission_id": sid, "state": state, **report}


def get_submission(archive: Archive, token: str | None, submission_id: int) -> tuple[int, dict[str, Any]]:
    """Status and report of one of the caller's submissions (404 when not theirs)."""
    with archive.engine.connect() as conn:
        try:
            team = authenticate(conn, token)
        except AuthError as exc:
            return 401, {"errors": [{"code": exc.code, "location": "Authorization", "message": str(exc)}]}
        row = conn.execute(sa.select(submissions).where(submissions.c.submission_id == submission_id,
                                                        submissions.c.team_id == team.team_id)).mappings().first()
    if row is None:
        return 404, {"errors": [{"code": "not_found", "location": "submission", "message": "no such submission"}]}
    return 200, _submission_json(row)


def list_submissions(archive: Archive, token: str | None, limit: int = 100) -> tuple[int, dict[str, Any]]:
    """The caller's latest submissions."""
    with archive.engine.connect() as conn:
        try:
            team = authenticate(conn, token)
        except AuthError as exc:
            return 401, {"errors": [{"code": exc.code, "location": "Authorization", "message": str(exc)}]}
        rows = conn.execute(sa.select(submissions).where(submissions.c.team_id == team.team_id)
                            .order_by(submissions.c.submission_id.desc()).limit(limit)).mappings().all()
    return 200, {"team": team.name, "submissions": [_submission_json(r) for r in rows]}


def _submission_json(row: Any) -> dict[str, Any]:
    return {"submission_id": row["submission_id"], "state": row["state"], "product": row["product_name"],
            "filenames": row["filenames"], "created_at": row["created_at"].isoformat(),
            "finished_at": row["finished_at"].isoformat() if row["finished_at"] else None,
            "report": row["report"]}  # fmt: skip


def list_versions(archive: Archive) -> list[dict[str, Any]]:
    """Every published version, newest first."""
    with archive.engine.connect() as conn:
        rows = conn.execute(sa.select(level5_versions.c.name, level5_versions.c.version, teams.c.name.label("team"),
                                      level5_versions.c.kind, level5_versions.c.table_name,
                                      level5_versions.c.n_rows, level5_versions.c.product_id,
                                      level5_versions.c.created_at)
                            .select_from(level5_versions.join(teams, teams.c.team_id == level5_versions.c.team_id))
                            .order_by(level5_versions.c.name, level5_versions.c.version.desc())).mappings().all()
    return [dict(r) | {"created_at": r["created_at"].isoformat()} for r in rows]
