"""Latency from ``ingest`` of a new epoch's L1 files to its DIA and forced-photometry rows being queryable by TAP.

Project issue 14: "Latency from ``ingest`` of a new epoch's L1 to its DIA rows being queryable through TAP, on 2
workers: reported; goal < 5 minutes for the demo-size survey." The latency to the new epoch's forced-photometry rows
is reported too.

What is measured
----------------
The demo survey (what ``romanarchive demo`` writes to ``$ROMANARCHIVE_HOME/demo``: ``refs/``, ``l1/``,
``manifest.json``; :meth:`romanarchive.sim.survey.SurveyConfig.demo`: 2 pointings x 2 dithers x 3 epochs x 2 filters
x 1 detector = 24 L1 files of 512²) is split into epochs by the manifest (``spec.pass_`` is the epoch, 1-based;
:func:`romanarchive.sim.plan.plan_exposures`). On a scratch archive (:func:`_common.scratch_archive`: its own
embedded PostgreSQL cluster and object store):

* untimed setup, the sequence of :func:`romanarchive.cli.demo.run_demo`: ingest the reference files and every epoch
  but the last (:func:`romanarchive.ingest.service.ingest_paths`, 2 processes), then
  :func:`romanarchive.jobs.worker.run_workers` with 2 workers until the queue is empty (calibration, co-adds,
  catalogs, forced photometry, difference imaging of the later epochs against the earlier);
* the real TAP server, ``romanarchive serve`` in its own process on a free loopback port, pointed at the scratch
  archive through ``ROMANARCHIVE_HOME`` / ``ROMANARCHIVE_DATABASE_URL`` / ``ROMANARCHIVE_STORE``;
* timed, t = 0: ingest the last epoch's L1 files (``ingest_paths``, 2 processes, as ``romanarchive ingest
  --workers 2``), then ``romanarchive worker -n 2`` in a subprocess (what an operator, and the demo, runs after an
  ingest), while a client thread polls ``/tap/sync`` (``REQUEST=doQuery``, ``LANG=ADQL``, ``RESPONSEFORMAT=csv``)
  every ``--poll`` seconds (2 s) with three ADQL counts of new-epoch rows, "new" meaning a time after the midpoint
  between the previous epoch's last exposure and the new epoch's first::

      SELECT COUNT(*) AS n FROM ivoa.obscore WHERE calib_level = 2 AND t_min >= T
      SELECT COUNT(*) AS n FROM roman.forced_phot WHERE mjd >= T
      SELECT COUNT(*) AS n FROM roman.dia_sources WHERE mjd >= T

  With ``--workers-mode standing`` the workers are instead a ``romanarchive worker -n 2 --wait`` pool started (and
  warmed up) before t = 0, as for a survey that is always processing: calibration then overlaps the ingest, and
  both workers stay alive when the queue is momentarily empty (a draining worker exits then).

Reported: seconds (and minutes) from t = 0 to the ingest finishing, to the first new-epoch L2 in ObsCore, to the
first new-epoch ``forced_phot`` rows and the first new-epoch ``dia_sources`` rows seen through TAP, and to the queue
being idle (all jobs done), with the new-epoch row counts then; the goal (< 5 min to queryable DIA rows) met or not.
The same instants from database timestamps (``products.created_at``, ``timeseries_runs.created_at``,
``jobs.finished_at``, each written in the transaction that makes the rows visible) bound the polling resolution.
Per stage, from the ``jobs`` table (``started_at``, ``finished_at``; forced photometry from ``timeseries_runs``,
because a new catalog re-opens the forced-photometry job of every L2 under it and a job row keeps only its last
attempt): the runs of each kind after t = 0, their summed run time, their first start and last end, and how many
worker processes ran them. A DIA job may run on an epoch whose L2s are not all calibrated yet (it is queued by the
first new L2 of a skycell and filter); its rows are replaced by the next run, so "first DIA rows" is the first
queryable difference of the new epoch and "DIA final" the last ``dia`` job's end.

There is no peer system for this figure: nothing else runs this archive's chain (romancal calibration, co-adds,
catalogs, forced photometry, DIA, TAP) on these inputs, so no peer is run; the goal of issue 14 is the yardstick.

Run
---
``nice python benchmarks/bench_latency.py --survey DIR`` (``DIR`` as written by ``romanarchive demo``; simulated
with :func:`romanarchive.sim.survey.simulate_survey` there first if it does not exist, which takes minutes).
Writes ``benchmarks/out/bench_latency.json``. Options: ``--workers 2``, ``--poll 2``, ``--workers-mode
drain|standing``, ``--timeout`` (s, for the timed part), ``--preset demo|tiny`` (what to simulate). Takes about 10-20
minutes on 2 cores for the demo survey, most of it the untimed setup.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import platform
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import requests
import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import scratch_archive  # noqa: E402

from romanarchive.archive import Archive  # noqa: E402
from romanarchive.config import Settings  # noqa: E402
from romanarchive.db.scratch import free_port  # noqa: E402
from romanarchive.ingest.inspect import IngestError  # noqa: E402
from romanarchive.ingest.service import ingest_paths  # noqa: E402
from romanarchive.jobs.worker import run_workers  # noqa: E402
from romanarchive.timeseries.runs import STEP_DIA, STEP_FORCED  # noqa: E402

GOAL_S = 300.0  # issue 14: < 5 minutes from ingest to queryable DIA rows
#: TAP counts polled; ``{t}`` is the new epoch's time threshold (MJD).
QUERIES = {
    "l2": "SELECT COUNT(*) AS n FROM ivoa.obscore WHERE calib_level = 2 AND t_min >= {t}",
    "forced_phot": "SELECT COUNT(*) AS n FROM roman.forced_phot WHERE mjd >= {t}",
    "dia_sources": "SELECT COUNT(*) AS n FROM roman.dia_sources WHERE mjd >= {t}",
}
PROCESSING = "kind <> 'tap_query'"  # the jobs that processing waits on (async TAP queries are the server's)


def survey_epochs(survey: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The survey's configuration and its epochs in time order: ``{epoch, files, mjd_min, mjd_max}`` each."""
    from romanarchive.sim.survey import load_manifest

    manifest = load_manifest(survey)
    groups: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for entry in manifest.l1:
        groups[int(entry["spec"]["pass_"])].append(entry)
    epochs = [{"epoch": k, "files": sorted(survey / e["path"] for e in v),
               "mjd_min": min(float(e["spec"]["mjd"]) for e in v), "mjd_max": max(float(e["spec"]["mjd"]) for e in v)}
              for k, v in sorted(groups.items())]
    return manifest.config.model_dump(), epochs


def code_version() -> dict[str, Any]:
    """Where ``romanarchive`` was imported from and, for a git checkout, its commit and uncommitted changes."""
    import romanarchive

    root = Path(romanarchive.__file__).resolve().parents[1]
    out: dict[str, Any] = {"package": str(root / "romanarchive"), "PYTHONPATH": os.environ.get("PYTHONPATH")}
    git = ["git", "--no-optional-locks", "-C", str(root)]
    head = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True)
    if head.returncode == 0:
        dirty = subprocess.run([*git, "status", "--porcelain", "--", "romanarchive"], capture_output=True, text=True)
        out |= {"commit": head.stdout.strip(), "uncommitted": dirty.stdout.split("\n")[:-1]}
    return out


def package_root() -> str:
    """The folder this process imported ``romanarchive`` from."""
    import romanarchive

    return str(Path(romanarchive.__file__).resolve().parents[1])


def pin_package() -> None:
    """Make spawned worker and ingest processes import this process's ``romanarchive``.

    They start with this process's ``sys.path``, on which :func:`romanarchive.db.engine.upgrade` has put ``.``
    (alembic.ini's ``prepend_sys_path``): run from a checkout other than the imported package (``PYTHONPATH`` at a
    snapshot of a commit, say), they would import the checkout's code against a database migrated by the package's.
    """
    root = package_root()
    if sys.path[0] != root:
        sys.path.insert(0, root)


def subprocess_env(settings: Settings) -> dict[str, str]:
    """Environment that points ``romanarchive`` commands at the scratch archive, running this process's package.

    The package's folder goes first on ``PYTHONPATH``, so the server and the workers import the ``romanarchive``
    this process migrated the database with (they also run outside the checkout: ``python -m`` puts the current
    folder first on ``sys.path``).
    """
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([package_root(), *filter(None, [env.get("PYTHONPATH")])])
    env.update(ROMANARCHIVE_HOME=str(settings.home), ROMANARCHIVE_DATABASE_URL=str(settings.database_url),
               ROMANARCHIVE_STORE=settings.store_url, ROMANARCHIVE_LEASE_SECONDS=str(settings.lease_seconds))
    return env


def romanarchive_cmd(*args: str) -> list[str]:
    """The ``romanarchive`` command line of this interpreter."""
    return [sys.executable, "-m", "romanarchive.cli", *args]


def start(cmd: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """Start ``cmd`` in its own process group (so its worker children can be stopped with it), output to ``log``."""
    with log.open("ab") as fh:
        return subprocess.Popen(cmd, env=env, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True,
                                cwd=log.parent)


def stop(proc: subprocess.Popen[bytes], timeout_s: float = 20.0) -> None:
    """SIGTERM the process group of ``proc`` (a process this script started), then SIGKILL if it lingers."""
    if proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout_s)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout_s)


def tail(path: Path, n: int = 30) -> str:
    """Last ``n`` lines of a log."""
    return "\n".join(path.read_text(errors="replace").splitlines()[-n:]) if path.exists() else ""


def wait_for_server(base: str, proc: subprocess.Popen[bytes], log: Path, timeout_s: float = 180.0) -> None:
    """Wait until ``/tap/availability`` answers."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            if requests.get(f"{base}/tap/availability", timeout=5).ok:
                return
        except requests.RequestException:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"the TAP server did not start:\n{tail(log)}")
        time.sleep(0.5)


def tap_count(session: requests.Session, base: str, adql: str) -> int:
    """``COUNT(*)`` of an ADQL query through TAP sync, CSV."""
    r = session.post(f"{base}/tap/sync", data={"REQUEST": "doQuery", "LANG": "ADQL", "RESPONSEFORMAT": "csv",
                                                 "QUERY": adql}, timeout=60)
    r.raise_for_status()
    lines = r.text.strip().splitlines()
    if len(lines) != 2 or lines[0].strip().strip('"') != "n":
        raise RuntimeError(f"unexpected TAP answer to {adql!r}: {r.text[:300]}")
    return int(lines[1])


class TapPoller:
    """A client thread: the new-epoch counts through TAP every ``interval`` s, and when each first went above 0."""

    def __init__(self, base: str, threshold_mjd: float, t0: float, interval: float = 2.0) -> None:
        self.base = base
        self.queries = {k: q.format(t=f"{threshold_mjd:.6f}") for k, q in QUERIES.items()}
        self.t0 = t0
        self.interval = interval
        self.samples: list[dict[str, Any]] = []
        self.first: dict[str, float] = {}
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="tap-poller", daemon=True)
        self._session = requests.Session()

    def poll(self) -> dict[str, Any]:
        """One round of the counts; each query timestamped when its answer arrived."""
        sample: dict[str, Any] = {}
        t_start = time.time()
        for key, adql in self.queries.items():
            try:
                n = tap_count(self._session, self.base, adql)
            except (requests.RequestException, RuntimeError) as exc:
                self.errors.append(f"{time.time() - self.t0:.1f} s {key}: {exc}")
                continue
            t = time.time() - self.t0
            sample[key] = n
            if n > 0 and key not in self.first:
                self.first[key] = t
        sample["t"] = round(t_start - self.t0, 3)
        sample["round_ms"] = round(1e3 * (time.time() - t_start), 1)
        self.samples.append(sample)
        return sample

    def _run(self) -> None:
        while not self._stop.is_set():
            t = time.monotonic()
            self.poll()
            self._stop.wait(max(0.0, self.interval - (time.monotonic() - t)))

    def start(self) -> None:
        """Start polling."""
        self._thread.start()

    def close(self) -> dict[str, Any]:
        """Stop polling; returns one last round (the final counts)."""
        self._stop.set()
        self._thread.join(timeout=120)
        return self.poll()


def ingest(archive: Archive, paths: list[Path], workers: int) -> int:
    """Ingest ``paths``; returns the files registered (or already present); raises on any ingest error."""
    results = list(ingest_paths(archive, paths, workers=workers))
    bad = [r for r in results if isinstance(r, IngestError)]
    if bad:
        raise RuntimeError(f"{len(bad)} ingest error(s), first: {bad[0]}")
    return len(results)


def queue_state(archive: Archive) -> dict[str, int]:
    """Processing jobs by state."""
    with archive.engine.connect() as conn:
        rows = conn.execute(sa.text(f"SELECT state, count(*) FROM jobs WHERE {PROCESSING} GROUP BY state")).all()
    return {str(s): int(n) for s, n in rows}


def since(t0: float, value: dt.datetime | None) -> float | None:
    """Seconds from ``t0`` (epoch seconds) to a database timestamp."""
    return None if value is None else round(value.timestamp() - t0, 2)


def job_stages(archive: Archive, t0: float, first_dia_s: float | None) -> dict[str, Any]:
    """Per job kind, what ran after ``t0``: runs, run time, first start / last end, workers.

    From the ``jobs`` table (``started_at``, ``finished_at``), except ``forced_phot``: a new catalog re-opens the
    forced-photometry jobs of every L2 over its skycell (the same row, which keeps only its last attempt's times),
    so its runs come from ``timeseries_runs`` (one row per run: ``created_at``, when it wrote its rows, and
    ``wall_time_s``); a failed one writes no run and comes from ``jobs``.
    """
    p = {"t0": dt.datetime.fromtimestamp(t0, dt.UTC), "fp": STEP_FORCED}
    with archive.engine.connect() as conn:
        rows = conn.execute(sa.text(
            f"SELECT job_id, kind, product_id, target, state, worker, started_at, finished_at, error FROM jobs "
            f"WHERE {PROCESSING} AND (kind <> 'forced_phot' OR state = 'failed') AND started_at >= :t0"),
            p).mappings().all()
        fp = conn.execute(sa.text(
            "SELECT r.job_id, r.target, r.n_rows, r.created_at, r.wall_time_s, j.state, j.worker "
            "FROM timeseries_runs r LEFT JOIN jobs j ON j.job_id = r.job_id "
            "WHERE r.step = :fp AND r.created_at >= :t0"), p).mappings().all()
    jobs = [{"kind": r["kind"], "job_id": r["job_id"], "product_id": r["product_id"], "target": r["target"],
             "state": r["state"], "worker": r["worker"], "started_s": since(t0, r["started_at"]),
             "finished_s": since(t0, r["finished_at"]),
             "error": (r["error"] or "").strip().split("\n")[0][:300] or None} for r in rows]
    for r in fp:
        end = since(t0, r["created_at"])
        assert end is not None
        jobs.append({"kind": "forced_phot", "job_id": r["job_id"], "target": r["target"], "rows": r["n_rows"],
                     "state": r["state"], "worker": r["worker"], "started_s": round(end - r["wall_time_s"], 2),
                     "finished_s": end})
    jobs.sort(key=lambda j: j["started_s"])
    for j in jobs:
        ok = j["started_s"] is not None and j["finished_s"] is not None
        j["run_s"] = round(j["finished_s"] - j["started_s"], 2) if ok else None
    stages: dict[str, dict[str, Any]] = {}
    for j in jobs:
        s = stages.setdefault(j["kind"], {"runs": 0, "failed": 0, "run_s": 0.0, "max_run_s": 0.0,
                                          "first_start_s": j["started_s"], "last_end_s": None,
                                          "run_s_before_first_dia": 0.0, "workers": set()})
        s["runs"] += 1
        s["failed"] += j["state"] == "failed"
        s["workers"].add(j["worker"])
        if j["run_s"] is not None:
            s["run_s"] += j["run_s"]
            s["max_run_s"] = max(s["max_run_s"], j["run_s"])
            s["last_end_s"] = max(s["last_end_s"] or 0.0, j["finished_s"])
            if first_dia_s is not None and j["finished_s"] <= first_dia_s:
                s["run_s_before_first_dia"] += j["run_s"]
    total = sum(s["run_s"] for s in stages.values()) or 1.0
    for s in stages.values():
        s["workers"] = len(s["workers"] - {None})
        s["share_of_run_time"] = round(s["run_s"] / total, 3)
        for k in ("run_s", "max_run_s", "run_s_before_first_dia"):
            s[k] = round(s[k], 2)
    return {"stages": stages, "jobs": jobs, "workers_seen": len({j["worker"] for j in jobs} - {None})}


def db_instants(archive: Archive, t0: float, threshold_mjd: float) -> dict[str, Any]:
    """The same instants from database timestamps (each written in the transaction that makes its rows visible)."""
    p = {"t": threshold_mjd, "t0": dt.datetime.fromtimestamp(t0, dt.UTC), "fp": STEP_FORCED, "dia": STEP_DIA}
    with archive.engine.connect() as conn:
        def one(sql: str) -> Any:
            return conn.execute(sa.text(sql), p).scalar()

        return {
            "first_l2_registered_s": since(t0, one(
                "SELECT min(created_at) FROM products WHERE level = 2 AND t_min >= :t")),
            "last_l2_registered_s": since(t0, one(
                "SELECT max(created_at) FROM products WHERE level = 2 AND t_min >= :t")),
            "first_forced_phot_rows_s": since(t0, one(
                "SELECT min(r.created_at) FROM timeseries_runs r JOIN products p ON r.target = 'product:' || "
                "p.product_id WHERE r.step = :fp AND r.n_rows > 0 AND p.level = 2 AND p.t_min >= :t")),
            "last_forced_phot_run_s": since(t0, one(
                "SELECT max(created_at) FROM timeseries_runs WHERE step = :fp AND created_at >= :t0")),
            "first_dia_rows_s": since(t0, one(
                "SELECT min(created_at) FROM timeseries_runs WHERE step = :dia AND n_rows > 0 AND created_at >= :t0")),
            "last_dia_job_done_s": since(t0, one(
                "SELECT max(finished_at) FROM jobs WHERE kind = 'dia' AND finished_at >= :t0")),
            "final_dia_rows_written_s": since(t0, one(
                "SELECT max(created_at) FROM dia_sources WHERE mjd >= :t")),
            "last_job_done_s": since(t0, one(
                f"SELECT max(finished_at) FROM jobs WHERE {PROCESSING} AND finished_at >= :t0")),
            "new_products_by_level": {int(lv): int(n) for lv, n in conn.execute(sa.text(
                "SELECT level, count(*) FROM products WHERE created_at >= :t0 GROUP BY level ORDER BY level"), p)},
        }


def settled(samples: list[dict[str, Any]], key: str) -> float | None:
    """Poll time from which ``key`` kept its final (non-zero) count."""
    seen = [s for s in samples if key in s]
    if not seen or not seen[-1][key]:
        return None
    i = len(seen) - 1
    while i > 0 and seen[i - 1][key] == seen[-1][key]:
        i -= 1
    return float(seen[i]["t"])


@contextmanager
def output_to(path: Path) -> Iterator[None]:
    """Send this process's (and its children's) stdout and stderr to ``path``: romancal's step logs, CRDS notes."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with path.open("ab") as fh:
        os.dup2(fh.fileno(), 1)
        os.dup2(fh.fileno(), 2)
        try:
            yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])


def timed_run(archive: Archive, new_files: list[Path], threshold_mjd: float, base: str, workers: int, mode: str,
              poll_s: float, timeout_s: float, logdir: Path) -> dict[str, Any]:
    """t = 0: ingest the new epoch, process it with ``workers`` workers; poll TAP until the queue is idle."""
    env = subprocess_env(archive.settings)
    wlog = logdir / "worker.log"
    proc = None
    if mode == "standing":
        proc = start(romanarchive_cmd("worker", "-n", str(workers), "--wait"), env, wlog)
        time.sleep(30)  # interpreters up and imports done before t = 0: the pool is already running
        if proc.poll() is not None:
            raise RuntimeError(f"the standing workers exited:\n{tail(wlog)}")
    t0 = time.time()
    poller = TapPoller(base, threshold_mjd, t0, poll_s)
    poller.start()
    out: dict[str, Any] = {}
    try:
        with output_to(logdir / "ingest.log"):
            out["files_ingested"] = ingest(archive, new_files, workers)
        out["ingest_done_s"] = round(time.time() - t0, 2)
        if mode == "drain":
            proc = start(romanarchive_cmd("worker", "-n", str(workers)), env, wlog)
            out["workers_started_s"] = round(time.time() - t0, 2)
        assert proc is not None
        idle_since = None
        while True:
            time.sleep(1.0)
            state = queue_state(archive)
            busy = state.get("queued", 0) + state.get("running", 0)
            if mode == "drain" and proc.poll() is not None:
                if proc.returncode != 0:
                    raise RuntimeError(f"`romanarchive worker` exited with {proc.returncode}:\n{tail(wlog)}")
                break
            if mode == "standing":
                idle_since = (idle_since or time.time()) if busy == 0 else None
                if idle_since is not None and time.time() - idle_since >= 3.0:
                    break
            if time.time() - t0 > timeout_s:
                out["timed_out"] = True
                break
        out["idle_s"] = round(time.time() - t0, 2)
        out["queue_after"] = queue_state(archive)
    finally:
        final = poller.close()
        if proc is not None:
            stop(proc)
    out["final_counts"] = {k: final.get(k) for k in QUERIES}
    out["tap_first_s"] = {k: round(v, 2) for k, v in poller.first.items()}
    out["tap_settled_s"] = {k: settled(poller.samples, k) for k in QUERIES}
    out["tap_samples"] = poller.samples
    out["tap_errors"] = poller.errors
    out["tap_poll_round_ms_max"] = max((s["round_ms"] for s in poller.samples), default=None)
    out["db"] = db_instants(archive, t0, threshold_mjd)
    out |= job_stages(archive, t0, poller.first.get("dia_sources"))
    out["t0_utc"] = dt.datetime.fromtimestamp(t0, dt.UTC).isoformat()
    return out


def fmt_s(s: float | None) -> str:
    """``123.4 s (2.06 min)`` or ``not reached``."""
    return "not reached" if s is None else f"{s:7.1f} s ({s / 60:5.2f} min)"


def report(res: dict[str, Any]) -> None:
    """Print the report."""
    cfg, run = res["survey"], res["timed"]
    db = run["db"]
    code = res["code"]
    where = (f"commit {code['commit'][:10]}" + (f" + {len(code['uncommitted'])} uncommitted file(s)"
                                                 if code["uncommitted"] else "")) if "commit" in code else "no git"
    print(f"\ncode: {code['package']} ({where})", end="")
    print(f"\nsurvey {res['survey_dir']}: {cfg['n_exposures']} L1 files of {cfg['size']}² ({cfg['n_pointings']} "
          f"pointings x {cfg['dithers']} dithers x {cfg['epochs']} epochs x {len(cfg['filters'])} filters "
          f"{','.join(cfg['filters'])} x {len(cfg['detectors'])} detector)")
    print(f"setup (untimed): refs + epochs {res['setup']['epochs']} ({res['setup']['l1_files']} L1) ingested and "
          f"processed in {res['setup']['seconds']:.0f} s, {res['setup']['jobs_run']} jobs")
    how = ("`romanarchive worker -n N` started after the ingest" if res["workers_mode"] == "drain" else
           "a `romanarchive worker -n N --wait` pool running before t = 0")
    print(f"timed: epoch {res['new_epoch']['epoch']} ({len(res['new_epoch']['files'])} L1 files, MJD >= "
          f"{res['new_epoch']['threshold_mjd']:.4f}); {res['workers']} workers ({res['workers_mode']}: {how}); "
          f"TAP polled every {res['poll_s']} s")
    lat, settle = res["latency_s"], run["tap_settled_s"]
    print("latency from t = 0 (start of ingest); TAP: first /tap/sync poll that saw it; db: commit timestamps")
    print(f"  ingest finished                     {fmt_s(lat['ingest_done'])}")
    print(f"  first new-epoch L2 in ivoa.obscore  {fmt_s(lat['first_l2'])}   db {fmt_s(db['first_l2_registered_s'])}")
    print(f"  first new-epoch roman.forced_phot   {fmt_s(lat['first_forced_phot'])}   "
          f"db {fmt_s(db['first_forced_phot_rows_s'])}")
    print(f"  first new-epoch roman.dia_sources   {fmt_s(lat['first_dia'])}   db {fmt_s(db['first_dia_rows_s'])}")
    print(f"  DIA final (last dia job done)       {fmt_s(lat['dia_final'])}   "
          f"TAP count settled {fmt_s(settle['dia_sources'])}")
    print(f"  all jobs done (queue idle)          {fmt_s(lat['all_done'])}   "
          f"forced_phot count settled {fmt_s(settle['forced_phot'])}")
    fc = run["final_counts"]
    print(f"  new-epoch rows then (TAP): {fc['l2']} L2, {fc['forced_phot']} forced_phot, {fc['dia_sources']} "
          f"dia_sources; products made after t = 0 by level {db['new_products_by_level']}")
    dia = lat["first_dia"]
    verdict = "not reached" if dia is None else ("MET" if dia < GOAL_S else "NOT met")
    detail = "" if dia is None else f" ({dia / 60:.2f} min; DIA final {(lat['dia_final'] or 0) / 60:.2f} min)"
    print(f"goal: queryable DIA rows < {GOAL_S / 60:.0f} min with {res['workers']} workers: {verdict}{detail}")
    print("runs after t = 0 by kind (jobs table; forced_phot from timeseries_runs), seconds from t = 0:")
    print(f"  {'kind':<12} {'runs':>4} {'failed':>6} {'run s':>8} {'share':>6} {'max s':>7} {'first start':>11} "
          f"{'last end':>9} {'workers':>7}  run s before 1st DIA")
    for kind, s in sorted(run["stages"].items(), key=lambda kv: kv[1]["first_start_s"]):
        print(f"  {kind:<12} {s['runs']:>4} {s['failed']:>6} {s['run_s']:>8.1f} {s['share_of_run_time']:>6.0%} "
              f"{s['max_run_s']:>7.1f} {s['first_start_s']:>11.1f} {s['last_end_s'] or 0:>9.1f} {s['workers']:>7}  "
              f"{s['run_s_before_first_dia']:.1f}")
    print(f"  distinct worker processes that ran jobs: {run['workers_seen']}")
    failed = [j for j in run["jobs"] if j["state"] == "failed"]
    if failed:
        print(f"WARNING: {len(failed)} job(s) failed after t = 0, first ({failed[0]['kind']} "
              f"{failed[0].get('target') or failed[0].get('product_id')}): {failed[0].get('error')}")
    if res["setup"]["queue"].get("failed"):
        print(f"WARNING: {res['setup']['queue']['failed']} job(s) failed during the setup")
    if run.get("timed_out"):
        print("WARNING: the timed part hit --timeout before the queue was idle")
    if run["tap_errors"]:
        print(f"WARNING: {len(run['tap_errors'])} TAP poll errors, first: {run['tap_errors'][0]}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--survey", type=Path, required=True, help="survey directory (refs/, l1/, manifest.json)")
    ap.add_argument("--preset", choices=("demo", "tiny"), default="demo", help="what to simulate if it is missing")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--workers-mode", choices=("drain", "standing"), default="drain")
    ap.add_argument("--poll", type=float, default=2.0, help="TAP poll interval (s)")
    ap.add_argument("--timeout", type=float, default=3600.0, help="limit of the timed part (s)")
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "out" / "bench_latency.json")
    args = ap.parse_args()
    logging.disable(logging.INFO)
    survey = args.survey.resolve()
    if not (survey / "manifest.json").exists():
        from romanarchive.sim.survey import SurveyConfig, simulate_survey

        if survey.exists():
            raise SystemExit(f"{survey} exists but has no manifest.json")
        t = time.perf_counter()
        simulate_survey(SurveyConfig.demo() if args.preset == "demo" else SurveyConfig.tiny(), survey)
        print(f"simulated the {args.preset} survey into {survey} in {time.perf_counter() - t:.0f} s")
    config, epochs = survey_epochs(survey)
    if len(epochs) < 2:
        raise SystemExit(f"{survey} has {len(epochs)} epoch(s); the benchmark needs a new epoch after earlier ones")
    *early, new = epochs
    threshold = 0.5 * (early[-1]["mjd_max"] + new["mjd_min"])
    res: dict[str, Any] = {
        "survey_dir": str(survey), "survey": config | {"n_exposures": sum(len(e["files"]) for e in epochs)},
        "workers": args.workers, "workers_mode": args.workers_mode, "poll_s": args.poll, "goal_s": GOAL_S,
        "new_epoch": {"epoch": new["epoch"], "files": [str(f) for f in new["files"]], "threshold_mjd": threshold,
                      "mjd_min": new["mjd_min"], "mjd_max": new["mjd_max"]},
        "code": code_version(),
        "host": {"python": platform.python_version(), "cpus": os.cpu_count(), "loadavg_start": os.getloadavg()},
    }
    logdir = Path(tempfile.mkdtemp(prefix="bench-latency-logs-"))
    print(f"survey {survey}: {res['survey']['n_exposures']} L1 files in {len(epochs)} epochs; new epoch "
          f"{new['epoch']} ({len(new['files'])} files); logs in {logdir}", flush=True)
    with scratch_archive() as archive:
        pin_package()
        t = time.perf_counter()
        early_files = [f for e in early for f in e["files"]]
        with output_to(logdir / "setup.log"):
            ingest(archive, [survey / "refs", *early_files], args.workers)
            ran = run_workers(archive.settings, args.workers)
        state = queue_state(archive)
        res["setup"] = {"epochs": [e["epoch"] for e in early], "l1_files": len(early_files), "jobs_run": ran,
                        "seconds": round(time.perf_counter() - t, 1), "queue": state}
        print(f"setup: {len(early_files)} L1 files + refs ingested and processed in {res['setup']['seconds']:.0f} s "
              f"({ran} jobs; queue {state})", flush=True)
        if state.get("failed"):
            print(f"WARNING: {state['failed']} job(s) failed during the setup", flush=True)
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        slog = logdir / "serve.log"
        server = start(romanarchive_cmd("serve", "--port", str(port)), subprocess_env(archive.settings), slog)
        try:
            wait_for_server(base, server, slog)
            print(f"TAP server at {base}/tap; timed run starts", flush=True)
            res["timed"] = timed_run(archive, new["files"], threshold, base, args.workers, args.workers_mode,
                                     args.poll, args.timeout, logdir)
        finally:
            stop(server)
    res["host"]["loadavg_end"] = os.getloadavg()
    run, db = res["timed"], res["timed"]["db"]
    res["latency_s"] = {"ingest_done": run["ingest_done_s"], "first_l2": run["tap_first_s"].get("l2"),
                        "first_forced_phot": run["tap_first_s"].get("forced_phot"),
                        "first_dia": run["tap_first_s"].get("dia_sources"), "dia_final": db["last_dia_job_done_s"],
                        "all_done": db["last_job_done_s"]}
    first_dia = res["latency_s"]["first_dia"]
    res["goal_met"] = first_dia is not None and first_dia < GOAL_S
    res["logs"] = str(logdir)
    report(res)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(res, indent=1, default=str))
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
