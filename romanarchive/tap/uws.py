"""Asynchronous TAP: UWS 1.1 jobs kept in PostgreSQL, run by the archive's workers, results in the object store.

A job is a ``uws_jobs`` row. ``PHASE=RUN`` queues it as a ``tap_query`` row of the foundation's ``jobs`` table, so
any worker (the server's own threads, ``romanarchive worker``, Dask) claims it with ``FOR UPDATE SKIP LOCKED`` under a
lease: a job whose worker died runs again once the lease expires, and jobs survive a server restart. The result is
streamed to a spool file and stored under ``tap-results/``; ABORT cancels the running statement.
"""

from __future__ import annotations

import logging
import secrets
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import IO, Any

import sqlalchemy as sa

from romanarchive.archive import Archive
from romanarchive.db.tables import jobs, uws_jobs
from romanarchive.ingest.access import base_url
from romanarchive.jobs import queue
from romanarchive.tap import formats
from romanarchive.tap.descriptors import links_descriptor
from romanarchive.tap.service import QueryParams, QueryRunner, TapConfig, TapError, parse_query_params
from romanarchive.tap.upload import fetch_url
from romanarchive.tap.votable import SERVICE_DESCRIPTORS, xml_attr, xml_text

log = logging.getLogger(__name__)

KIND = "tap_query"
ACTIVE = ("PENDING", "QUEUED", "EXECUTING", "HELD", "SUSPENDED")
PHASES = (*ACTIVE, "COMPLETED", "ERROR", "ABORTED", "UNKNOWN", "ARCHIVED")
MAX_WAIT_S = 60.0
_NS = ('xmlns:uws="http://www.ivoa.net/xml/UWS/v1.0" xmlns:xlink="http://www.w3.org/1999/xlink" '
       'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" version="1.1"')
_RUNNERS: dict[str, QueryRunner] = {}


class JobNotFoundError(TapError):
    """No such job (or it was destroyed)."""

    def __init__(self, job_id: str) -> None:
        super().__init__(f"no job {job_id!r} (unknown or destroyed)", 404)


def register_runner(runner: QueryRunner) -> None:
    """Let workers in this process run the archive's jobs with this runner (and its limits)."""
    _RUNNERS[runner.archive.url] = runner


def _runner(archive: Archive) -> QueryRunner:
    if archive.url not in _RUNNERS:
        _RUNNERS[archive.url] = QueryRunner(archive)
    return _RUNNERS[archive.url]


def iso(dt: datetime | None) -> str:
    """UWS timestamp: ISO 8601 UTC with milliseconds and Z."""
    if dt is None:
        return ""
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def parse_time(value: str) -> datetime:
    """Parse an ISO 8601 timestamp; no zone means UTC."""
    try:
        dt = datetime.fromisoformat(value.strip().replace("z", "Z"))
    except ValueError:
        raise TapError(f"not an ISO 8601 timestamp: {value!r}") from None
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


class UwsService:
    """The UWS job list of one archive.

    Parameters
    ----------
    runner
        Query runner whose archive and limits the jobs use.
    """

    def __init__(self, runner: QueryRunner) -> None:
        self.runner = runner
        self.archive = runner.archive
        self.config: TapConfig = runner.config
        register_runner(runner)

    # ------------------------------------------------------------------------------------------------ create/read
    def create(self, params: Mapping[str, list[str]], files: Mapping[str, IO[bytes]]) -> str:
        """Create a PENDING job (or QUEUED with ``PHASE=RUN``); uploaded parts are stored until it runs."""
        job_id = secrets.token_hex(8)
        stored = {}
        for part, fh in files.items():
            with tempfile.NamedTemporaryFile(dir=self._scratch()) as tmp:
                while chunk := fh.read(1 << 20):
                    tmp.write(chunk)
                    if tmp.tell() > self.config.upload_limit_bytes:
                        raise TapError(f"upload part {part} exceeds {self.config.upload_limit_bytes} bytes", 413)
                tmp.flush()
                stored[part] = self.archive.store.put_file(tmp.name, "tap-uploads", f"{part}.vot").key
        values = {k: v[-1] for k, v in params.items() if k not in ("phase", "runid", "executionduration",
                                                                   "destruction")}  # fmt: skip
        if "upload" in params:
            values["upload"] = ";".join(params["upload"])
        duration = self._duration(params.get("executionduration", [None])[-1], self.config.default_duration_s)
        destruction = datetime.now(UTC) + timedelta(seconds=self.config.destruction_s)
        if params.get("destruction"):
            destruction = parse_time(params["destruction"][-1])
        with self.archive.engine.begin() as conn:
            conn.execute(uws_jobs.insert().values(
                job_id=job_id, run_id=params.get("runid", [None])[-1], parameters=values, uploads=stored,
                execution_duration=duration, destruction=destruction))  # fmt: skip
        if params.get("phase", [""])[-1].upper() == "RUN":
            self.set_phase(job_id, "RUN")
        return job_id

    def _scratch(self) -> str:
        path = self.archive.settings.scratch / "tap"
        path.mkdir(parents=True, exist_ok=True)
        return str(path)

    def _duration(self, value: str | None, default: int) -> int:
        if value is None or not value.strip():
            return default
        try:
            seconds = int(float(value))
        except ValueError:
            raise TapError(f"EXECUTIONDURATION must be a number of seconds, not {value!r}") from None
        if seconds < 0:
            raise TapError("EXECUTIONDURATION must not be negative")
        return min(seconds, self.config.max_duration_s) if seconds else self.config.max_duration_s

    def get(self, job_id: str) -> dict[str, Any]:
        """The job's row; `NotFound` when it does not exist."""
        with self.archive.engine.connect() as conn:
            row = conn.execute(sa.select(uws_jobs).where(uws_jobs.c.job_id == job_id)).mappings().first()
        if row is None or row["destruction"] < datetime.now(UTC):
            raise JobNotFoundError(job_id)
        return dict(row)

    def wait(self, job_id: str, seconds: float, phase: str | None = None) -> dict[str, Any]:
        """UWS 1.1 WAIT: block while the job stays in its (active) phase, at most ``seconds`` (-1: the maximum)."""
        row = self.get(job_id)
        start = row["phase"]
        if start not in ("PENDING", "QUEUED", "EXECUTING") or (phase and phase.upper() != start):
            return row
        deadline = time.monotonic() + (MAX_WAIT_S if seconds < 0 else min(seconds, MAX_WAIT_S))
        delay = 0.02
        while time.monotonic() < deadline:
            time.sleep(delay)
            delay = min(delay * 1.5, 0.25)
            row = self.get(job_id)
            if row["phase"] != start:
                break
        return row

    def list_jobs(self, phases: list[str], after: str | None, last: str | None) -> list[dict[str, Any]]:
        """Job list filtered as UWS 1.1 says: PHASE (any of), AFTER (created later), LAST (newest N)."""
        self.reap()
        stmt = sa.select(uws_jobs.c.job_id, uws_jobs.c.phase, uws_jobs.c.run_id, uws_jobs.c.creation_time)
        bad = [p for p in phases if p.upper() not in PHASES]
        if bad:
            raise TapError(f"unknown PHASE {bad[0]!r}; phases are {', '.join(PHASES)}")
        if phases:
            stmt = stmt.where(uws_jobs.c.phase.in_([p.upper() for p in phases]))
        else:
            stmt = stmt.where(uws_jobs.c.phase != "ARCHIVED")
        if after:
            stmt = stmt.where(uws_jobs.c.creation_time > parse_time(after))
        stmt = stmt.order_by(uws_jobs.c.creation_time.desc(), uws_jobs.c.job_id)
        if last is not None:
            try:
                n = int(last)
            except ValueError:
                raise TapError(f"LAST must be a positive integer, not {last!r}") from None
            if n <= 0:
                raise TapError(f"LAST must be a positive integer, not {last!r}")
            stmt = stmt.limit(n)
        with self.archive.engine.connect() as conn:
            return [dict(r) for r in conn.execute(stmt).mappings()]

    # ------------------------------------------------------------------------------------------------- changes
    def set_phase(self, job_id: str, phase: str) -> None:
        """``RUN`` queues a PENDING job; ``ABORT`` stops an active one (cancelling its running statement)."""
        phase = phase.strip().upper()
        row = self.get(job_id)
        if phase == "RUN":
            if row["phase"] != "PENDING":
                return  # already queued, running or finished: nothing to do
            with self.archive.engine.begin() as conn:
                res = conn.execute(sa.insert(jobs).values(kind=KIND, product_id=None, max_attempts=2)
                                   .returning(jobs.c.job_id))  # fmt: skip
                qid = res.scalar_one()
                conn.execute(uws_jobs.update().where(uws_jobs.c.job_id == job_id, uws_jobs.c.phase == "PENDING")
                             .values(phase="QUEUED", queue_job_id=qid))  # fmt: skip
        elif phase == "ABORT":
            if row["phase"] not in ACTIVE:
                return
            with self.archive.engine.begin() as conn:
                conn.execute(uws_jobs.update().where(uws_jobs.c.job_id == job_id)
                             .values(phase="ABORTED", end_time=sa.func.now()))  # fmt: skip
                self._cancel(conn, row)
        else:
            raise TapError(f"PHASE must be RUN or ABORT, not {phase!r}")

    def _cancel(self, conn: sa.Connection, row: Mapping[str, Any]) -> None:
        if row["queue_job_id"] is not None:
            conn.execute(jobs.delete().where(jobs.c.job_id == row["queue_job_id"], jobs.c.state == "queued"))
        if row["phase"] == "EXECUTING" and row["backend_pid"]:
            conn.execute(sa.text("SELECT pg_cancel_backend(:pid)"), {"pid": row["backend_pid"]})

    def set_destruction(self, job_id: str, value: str) -> None:
        """Change when the job is destroyed."""
        self.get(job_id)
        with self.archive.engine.begin() as conn:
            conn.execute(uws_jobs.update().where(uws_jobs.c.job_id == job_id).values(destruction=parse_time(value)))

    def set_execution_duration(self, job_id: str, value: str) -> None:
        """Change the execution time allowed (before the job runs)."""
        row = self.get(job_id)
        if row["phase"] not in ("PENDING", "QUEUED"):
            raise TapError(f"the job is {row['phase']}: its execution duration can no longer change")
        seconds = self._duration(value, row["execution_duration"])
        with self.archive.engine.begin() as conn:
            conn.execute(uws_jobs.update().where(uws_jobs.c.job_id == job_id).values(execution_duration=seconds))

    def set_parameters(self, job_id: str, params: Mapping[str, list[str]]) -> None:
        """Add or replace parameters of a PENDING job."""
        row = self.get(job_id)
        if row["phase"] != "PENDING":
            raise TapError(f"the job is {row['phase']}: parameters can only change while it is PENDING")
        values = dict(row["parameters"])
        values.update({k: v[-1] for k, v in params.items() if k not in ("phase", "runid")})
        with self.archive.engine.begin() as conn:
            conn.execute(uws_jobs.update().where(uws_jobs.c.job_id == job_id).values(parameters=values))
        if "phase" in params:
            self.set_phase(job_id, params["phase"][-1])

    def delete(self, job_id: str) -> None:
        """Destroy the job and its stored result and uploads."""
        row = self.get(job_id)
        self._destroy([row])

    def reap(self) -> int:
        """Destroy jobs past their destruction time; returns how many."""
        with self.archive.engine.connect() as conn:
            rows = conn.execute(sa.select(uws_jobs).where(uws_jobs.c.destruction < sa.func.now())).mappings().all()
        self._destroy([dict(r) for r in rows])
        return len(rows)

    def _destroy(self, rows: list[Mapping[str, Any]]) -> None:
        if not rows:
            return
        ids = [r["job_id"] for r in rows]
        with self.archive.engine.begin() as conn:
            for r in rows:
                if r["phase"] in ACTIVE:
                    self._cancel(conn, r)
            conn.execute(uws_jobs.delete().where(uws_jobs.c.job_id.in_(ids)))
            keys = {r["result_key"] for r in rows if r["result_key"]} | {k for r in rows for k in r["uploads"].values()}
            for key in keys:
                _delete_unreferenced(self.archive, conn, key)

    # -------------------------------------------------------------------------------------------------- results
    def result(self, job_id: str) -> tuple[str, str]:
        """(object-store key, media type) of a COMPLETED job's result."""
        row = self.get(job_id)
        if row["phase"] != "COMPLETED" or not row["result_key"]:
            raise TapError(f"job {job_id} has no result (phase {row['phase']})", 404)
        return row["result_key"], row["result_media_type"] or "application/x-votable+xml"


def _delete_unreferenced(archive: Archive, conn: sa.Connection, key: str) -> None:
    # Results and uploads are content-addressed: identical content is shared by jobs, so delete only the last use.
    used = conn.execute(sa.text("SELECT count(*) FROM uws_jobs WHERE result_key = :k "
                                "OR EXISTS (SELECT 1 FROM jsonb_each_text(uploads) e WHERE e.value = :k)"),
                        {"k": key}).scalar_one()  # fmt: skip
    if not used:
        try:
            archive.store.delete(key)
        except OSError:
            log.warning("could not remove %s from the store", key)


# ------------------------------------------------------------------------------------------------------ XML views
def _el(name: str, value: str | None) -> str:
    if value is None or value == "":
        return f'  <uws:{name} xsi:nil="true"/>\n'
    return f"  <uws:{name}>{xml_text(value)}</uws:{name}>\n"


def job_xml(row: Mapping[str, Any], job_url: str) -> str:
    """The UWS 1.1 job document."""
    params = "".join(f'    <uws:parameter id="{xml_attr(k)}">{xml_text(str(v))}</uws:parameter>\n'
                     for k, v in row["parameters"].items())  # fmt: skip
    results = ""
    if row["phase"] == "COMPLETED" and row["result_key"]:
        results = (f'    <uws:result id="result" xlink:type="simple" xlink:href="{xml_attr(job_url)}/results/result"'
                   f' mime-type="{xml_attr(row["result_media_type"] or "")}"/>\n')
    error = ""
    if row["phase"] == "ERROR":
        error = (f'  <uws:errorSummary type="fatal" hasDetail="true">\n'
                 f'    <uws:message>{xml_text(row["error_summary"] or "error")}</uws:message>\n'
                 "  </uws:errorSummary>\n")
    run_id = f"  <uws:runId>{xml_text(row['run_id'])}</uws:runId>\n" if row["run_id"] else ""
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<uws:job {_NS}>\n'
        f"  <uws:jobId>{xml_text(row['job_id'])}</uws:jobId>\n{run_id}"
        '  <uws:ownerId xsi:nil="true"/>\n'
        f"  <uws:phase>{row['phase']}</uws:phase>\n"
        '  <uws:quote xsi:nil="true"/>\n'
        + _el("creationTime", iso(row["creation_time"]))
        + _el("startTime", iso(row["start_time"]))
        + _el("endTime", iso(row["end_time"]))
        + f"  <uws:executionDuration>{row['execution_duration']}</uws:executionDuration>\n"
        + _el("destruction", iso(row["destruction"]))
        + f"  <uws:parameters>\n{params}  </uws:parameters>\n"
        + f"  <uws:results>\n{results}  </uws:results>\n"
        + error
        + "</uws:job>\n"
    )


def jobs_xml(rows: Sequence[Mapping[str, Any]], async_url: str) -> str:
    """The UWS 1.1 job list."""
    refs = []
    for r in rows:
        run_id = f"<uws:runId>{xml_text(r['run_id'])}</uws:runId>" if r["run_id"] else ""
        refs.append(f'  <uws:jobref id="{xml_attr(r["job_id"])}" xlink:type="simple" '
                    f'xlink:href="{xml_attr(async_url)}/{xml_attr(r["job_id"])}"><uws:phase>{r["phase"]}</uws:phase>'
                    f'{run_id}<uws:ownerId xsi:nil="true"/>'
                    f"<uws:creationTime>{iso(r['creation_time'])}</uws:creationTime></uws:jobref>\n")  # fmt: skip
    return f'<?xml version="1.0" encoding="UTF-8"?>\n<uws:jobs {_NS}>\n{"".join(refs)}</uws:jobs>\n'


def parameters_xml(row: Mapping[str, Any]) -> str:
    """The ``/parameters`` document."""
    params = "".join(f'  <uws:parameter id="{xml_attr(k)}">{xml_text(str(v))}</uws:parameter>\n'
                     for k, v in row["parameters"].items())  # fmt: skip
    return f'<?xml version="1.0" encoding="UTF-8"?>\n<uws:parameters {_NS}>\n{params}</uws:parameters>\n'


def results_xml(row: Mapping[str, Any], job_url: str) -> str:
    """The ``/results`` document."""
    doc = job_xml(row, job_url)
    inner = doc.split("<uws:results>\n", 1)[1].split("  </uws:results>", 1)[0]
    return f'<?xml version="1.0" encoding="UTF-8"?>\n<uws:results {_NS}>\n{inner}</uws:results>\n'


# ------------------------------------------------------------------------------------------------------- the job
def run_tap_job(archive: Archive, job: queue.Job) -> int:
    """Worker handler of ``tap_query`` jobs: run the UWS job's query and store its result."""
    with archive.engine.begin() as conn:
        row = conn.execute(sa.select(uws_jobs).where(uws_jobs.c.queue_job_id == job.job_id)
                           .with_for_update()).mappings().first()  # fmt: skip
        if row is None or row["phase"] not in ("QUEUED", "EXECUTING"):
            queue.mark_done(conn, job.job_id, None)  # deleted or aborted meanwhile
            return job.job_id
        conn.execute(uws_jobs.update().where(uws_jobs.c.job_id == row["job_id"])
                     .values(phase="EXECUTING", start_time=sa.func.now(), backend_pid=None))  # fmt: skip
    job_id = row["job_id"]
    runner = _runner(archive)
    try:
        key, media, nrows, overflow = _execute(archive, runner, dict(row))
    except Exception as exc:  # noqa: BLE001 - any failure is the job's ERROR, reported through UWS
        if not isinstance(exc, TapError):
            log.exception("TAP job %s failed", job_id)
        _finish(archive, job, job_id, phase="ERROR", error_summary=str(exc) or type(exc).__name__)
        return job.job_id
    if not _finish(archive, job, job_id, phase="COMPLETED", result_key=key, result_media_type=media,
                   result_rows=nrows, overflow=overflow):  # fmt: skip
        with archive.engine.begin() as conn:
            _delete_unreferenced(archive, conn, key)
    return job.job_id


def _finish(archive: Archive, job: queue.Job, job_id: str, **values: Any) -> bool:
    with archive.engine.begin() as conn:
        res = conn.execute(uws_jobs.update().where(uws_jobs.c.job_id == job_id, uws_jobs.c.phase == "EXECUTING")
                           .values(end_time=sa.func.now(), backend_pid=None, **values))  # fmt: skip
        queue.mark_done(conn, job.job_id, None)
    return res.rowcount == 1


class _AbortWatch:
    """Cancel the job's statement once it is ABORTED or deleted (an ABORT may land between two statements)."""

    def __init__(self, archive: Archive, job_id: str, every_s: float = 0.5) -> None:
        self.archive = archive
        self.job_id = job_id
        self.every_s = every_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self, pid: int) -> None:
        self._thread = threading.Thread(target=self._run, args=(pid,), daemon=True, name=f"abort-watch-{pid}")
        self._thread.start()

    def _run(self, pid: int) -> None:
        while not self._stop.wait(self.every_s):
            try:
                with self.archive.engine.begin() as conn:
                    phase = conn.execute(sa.select(uws_jobs.c.phase).where(uws_jobs.c.job_id == self.job_id)).scalar()
                    if phase != "EXECUTING":
                        conn.execute(sa.text("SELECT pg_cancel_backend(:pid)"), {"pid": pid})
            except sa.exc.SQLAlchemyError:
                log.warning("abort watch of job %s could not reach the database", self.job_id)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()


class _Counted:
    """Row batches counted (for result_rows/overflow) and bounded by the job's execution duration."""

    def __init__(self, batches: Iterator[list[tuple[Any, ...]]], deadline: float) -> None:
        self.batches = batches
        self.deadline = deadline
        self.rows = 0
        self.error: Exception | None = None

    def __iter__(self) -> Iterator[list[tuple[Any, ...]]]:
        try:
            for rows in self.batches:
                if time.monotonic() > self.deadline:
                    raise TapError("the job exceeded its execution duration")
                self.rows += len(rows)
                yield rows
        except Exception as exc:
            self.error = exc
            raise

    def close(self) -> None:
        close = getattr(self.batches, "close", None)
        if close is not None:
            close()


def _execute(archive: Archive, runner: QueryRunner, row: dict[str, Any]) -> tuple[str, str, int, bool]:
    params = {k: [str(v)] for k, v in row["parameters"].items()}
    qp = parse_query_params(params, runner.config)
    uploads: dict[str, str] = row["uploads"]

    def opener(ref: str) -> IO[bytes]:
        if ref.startswith("param:"):
            if ref[6:] in uploads:
                return archive.store.open(uploads[ref[6:]])
            raise TapError(f"upload reference {ref!r} names no part sent with the job")
        return fetch_url(ref)

    watch = _AbortWatch(archive, row["job_id"])

    def started(pid: int) -> None:
        # Recorded before the query runs so that ABORT can cancel it; an ABORT that came first stops it here.
        with archive.engine.begin() as conn:
            res = conn.execute(uws_jobs.update().where(uws_jobs.c.job_id == row["job_id"],
                                                       uws_jobs.c.phase == "EXECUTING").values(backend_pid=pid))
        if res.rowcount != 1:
            raise TapError("the job was aborted")
        watch.start(pid)

    duration = row["execution_duration"] or runner.config.max_duration_s
    try:
        return _run_to_store(archive, runner, qp, opener, started, duration)
    finally:
        watch.stop()


def _datalink_hook(archive: Archive) -> tuple[str, Callable[[str], str]] | None:
    """The DataLink descriptor hook of results holding ``obs_publisher_did``, on the base URL the server recorded in
    ``archive_settings`` (None before any server started: results then carry no descriptor)."""
    with archive.engine.connect() as conn:
        base = base_url(conn)
    return ("obs_publisher_did", partial(links_descriptor, base)) if base else None


def _run_to_store(archive: Archive, runner: QueryRunner, qp: QueryParams, opener: Callable[[str], IO[bytes]],
                  started: Callable[[int], None], duration: float) -> tuple[str, str, int, bool]:
    oq = runner.open(qp, duration, opener, started)
    counted = _Counted(oq.batches, time.monotonic() + duration)
    fmt = formats.resolve_format(qp.fmt)
    ext = {"votable/binary2": "vot", "votable/tabledata": "vot"}.get(fmt, fmt)
    scratch = archive.settings.scratch / "tap"
    scratch.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=scratch, suffix=f".{ext}") as tmp:
        # Outside a request, so the server's DataLink middleware is not there: set its descriptor hook here.
        token = SERVICE_DESCRIPTORS.set(_datalink_hook(archive))
        try:
            for piece in formats.stream(fmt, oq.columns, counted, overflow_after=qp.maxrec,
                                        infos=[("QUERY", qp.query)]):  # fmt: skip
                tmp.write(piece)
        finally:
            SERVICE_DESCRIPTORS.reset(token)
            counted.close()
        if counted.error is not None:
            raise counted.error if isinstance(counted.error, TapError) else TapError(str(counted.error))
        tmp.flush()
        key = archive.store.put_file(tmp.name, "tap-results", f"result.{ext}").key
    return key, formats.MEDIA_TYPES[fmt], min(counted.rows, qp.maxrec), counted.rows > qp.maxrec

