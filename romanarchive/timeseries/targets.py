"""Forced-photometry targets: positions an operator or a Level 5 catalog asks for, measured on each L2 covering them.

A target is a named sky position (``forced_targets``: unique per ``origin`` and ``name``; ``origin`` is
``'operator'`` or ``'level5:<product>'``). It is measured as a point source — PSF flux and aperture flux, with the
PSF of the image's ``epsf`` reference file — by the per-L2 ``forced_phot`` job
(:func:`romanarchive.timeseries.forced_job.run_product`), which reads the image once for both: the targets inside the
image's footprint (``pos @ s_region``, GiST on ``pos``) are measured after the catalog objects, with the objects'
catalog-to-image registration (a target is never re-centred on itself), and the image's ``target_phot`` rows are
replaced in the transaction that replaces its ``forced_phot`` rows. Every target inside the footprint is measured:
the static catalog's home-core selection does not apply (an origin's names are unique, its positions need not be).

Adding targets (:func:`add_targets`) upserts them — a name already known for that origin at another position moves,
and its measurements of the old position are deleted — and re-opens the ``forced_phot`` jobs of every live L2 whose
footprint holds a new or moved target (a re-run measures the image's objects again too, which is idempotent).
A job that is already running when a target moves is not re-opened: its rows of the old position are not written
(the write keeps measurements of the target's current position only), and the next run of that image measures the
new one. Removing targets (:func:`remove_targets`) deletes them and their rows (``ON DELETE CASCADE``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import sqlalchemy as sa

from romanarchive.archive import Archive
from romanarchive.jobs import queue
from romanarchive.timeseries.forced_step import ForcedPhotConfig, ImageArrays, measure_image
from romanarchive.timeseries.psf import PsfGrid

OPERATOR = "operator"
#: Prefix of the origin of targets made from a Level 5 catalog (``level5:<collection or product id>``).
LEVEL5_PREFIX = "level5:"
#: ``forced_phot`` jobs measure objects and targets; this module queues them under the same kind.
KIND = "forced_phot"

#: SQL condition "the product ``p`` covers some target" (queueing new L2s, the full run's image list).
COVERS_TARGET = "EXISTS (SELECT 1 FROM forced_targets t WHERE t.pos @ p.s_region)"

_TARGETS_IN = sa.text(
    """
    SELECT t.target_id, t.ra, t.dec FROM forced_targets t
    JOIN products p ON t.pos @ p.s_region
    WHERE p.product_id = :pid
    ORDER BY t.target_id
    """
)
#: ``target_phot`` columns written from one image's measurements (besides product_id, filter, run_id).
COLUMNS = ("target_id", "mjd", "flux", "flux_err", "flux_ap", "flux_ap_err", "dra", "ddec", "shift_err", "flags")
_SQL_TYPES = {"target_id": "bigint", "flags": "smallint", "dra": "real", "ddec": "real", "shift_err": "real"}
_NULLABLE = {"flux", "flux_err", "flux_ap", "flux_ap_err", "dra", "ddec", "shift_err"}


class TargetError(ValueError):
    """Targets that cannot be added (missing columns, bad names or coordinates); nothing was written."""


@dataclass(frozen=True)
class TargetsIn:
    """The targets inside one image's footprint."""

    target_id: np.ndarray
    ra: np.ndarray
    dec: np.ndarray

    def __len__(self) -> int:
        return len(self.target_id)


@dataclass
class Added:
    """What :func:`add_and_queue` did.

    Attributes
    ----------
    target_ids
        The targets' ids, in the order given.
    new, moved, unchanged
        How many were inserted, moved to a new position, or already known at that position.
    changed
        Ids of the new and moved targets (what needs measuring).
    products
        Live L2 products covering a new or moved target (their ``forced_phot`` jobs were queued).
    jobs_queued
        Jobs queued or re-opened now (a job of those products that was still waiting is left as it is).
    """

    target_ids: list[int] = field(default_factory=list)
    new: int = 0
    moved: int = 0
    unchanged: int = 0
    changed: list[int] = field(default_factory=list)
    products: list[int] = field(default_factory=list)
    jobs_queued: int = 0


def check_targets(names: Sequence[Any], ra: Sequence[Any] | np.ndarray, dec: Sequence[Any] | np.ndarray,
                  where: str = "row") -> tuple[list[str], np.ndarray, np.ndarray]:
    """Validated names and coordinates: non-empty unique names, finite RA in [0, 360), Dec in [-90, 90].

    Raises
    ------
    TargetError
        Naming up to five offending rows (1-based) of each problem.
    """
    names = [str(n).strip() for n in names]
    try:
        ra_arr = np.asarray(ra, dtype=float).reshape(-1)
        dec_arr = np.asarray(dec, dtype=float).reshape(-1)
    except (TypeError, ValueError) as exc:
        raise TargetError(f"coordinates must be numbers (degrees): {exc}") from None
    if not (len(names) == len(ra_arr) == len(dec_arr)):
        raise TargetError(f"{len(names)} names but {len(ra_arr)} RA and {len(dec_arr)} Dec values")
    if not names:
        raise TargetError("no targets given")
    problems = []

    def rows(mask: np.ndarray) -> str:
        idx = np.flatnonzero(mask)
        shown = ", ".join(str(i + 1) for i in idx[:5])
        return f"{where}{'s' if len(idx) > 1 else ''} {shown}" + (f" and {len(idx) - 5} more" if len(idx) > 5 else "")

    with np.errstate(invalid="ignore"):
        bad_ra = ~(np.isfinite(ra_arr) & (ra_arr >= 0.0) & (ra_arr < 360.0))
        bad_dec = ~(np.isfinite(dec_arr) & (dec_arr >= -90.0) & (dec_arr <= 90.0))
    empty = np.array([not n or n.lower() in ("nan", "--", "none") for n in names])
    if empty.any():
        problems.append(f"empty name at {rows(empty)}")
    if bad_ra.any():
        problems.append(f"RA outside [0, 360) deg at {rows(bad_ra)}")
    if bad_dec.any():
        problems.append(f"Dec outside [-90, 90] deg at {rows(bad_dec)}")
    seen: dict[str, int] = {}
    dup = np.zeros(len(names), bool)
    for i, n in enumerate(names):
        if n in seen:
            dup[i] = True
        seen.setdefault(n, i)
    if dup.any():
        problems.append(f"duplicate name at {rows(dup)}")
    if problems:
        raise TargetError("; ".join(problems))
    return names, ra_arr, dec_arr


def check_origin(origin: str) -> str:
    """``'operator'`` or ``'level5:<id>'`` (raises :class:`TargetError` otherwise)."""
    origin = origin.strip()
    if origin != OPERATOR and not (origin.startswith(LEVEL5_PREFIX) and len(origin) > len(LEVEL5_PREFIX)):
        raise TargetError(f"origin must be {OPERATOR!r} or '{LEVEL5_PREFIX}<collection or product id>', "
                          f"not {origin!r}")
    return origin


def upsert_targets(conn: sa.Connection, names: Sequence[Any], ra: Sequence[Any] | np.ndarray,
                   dec: Sequence[Any] | np.ndarray, origin: str = OPERATOR) -> Added:
    """Insert or move targets (inside the caller's transaction); the measurements of moved ones are deleted.

    Returns the :class:`Added` counts without queueing anything (:func:`queue_for_targets` does).
    """
    origin = check_origin(origin)
    names, ra_arr, dec_arr = check_targets(names, ra, dec)
    rows = conn.execute(sa.text(
        """
        WITH given AS (
            SELECT * FROM unnest(CAST(:names AS text[]), CAST(:ra AS float8[]), CAST(:dec AS float8[]))
            AS g(name, ra, dec)),
        old AS (SELECT t.name, t.ra, t.dec FROM forced_targets t JOIN given g USING (name) WHERE t.origin = :origin),
        up AS (
            INSERT INTO forced_targets (name, ra, dec, pos, origin)
            SELECT name, ra, dec, spoint(radians(ra), radians(dec)), :origin FROM given
            ON CONFLICT (origin, name) DO UPDATE SET ra = EXCLUDED.ra, dec = EXCLUDED.dec, pos = EXCLUDED.pos,
                added = now()
            WHERE (forced_targets.ra, forced_targets.dec) IS DISTINCT FROM (EXCLUDED.ra, EXCLUDED.dec)
            RETURNING target_id, name)
        SELECT coalesce(up.target_id, t.target_id), g.name,
               CASE WHEN old.name IS NULL THEN 'new' WHEN up.target_id IS NULL THEN 'unchanged' ELSE 'moved' END
        FROM given g LEFT JOIN up USING (name) LEFT JOIN old USING (name)
        LEFT JOIN forced_targets t ON t.origin = :origin AND t.name = g.name
        """), {"names": names, "ra": ra_arr.tolist(), "dec": dec_arr.tolist(), "origin": origin}).all()
    by_name = {r[1]: (int(r[0]), str(r[2])) for r in rows}
    out = Added(target_ids=[by_name[n][0] for n in names])
    states = [by_name[n][1] for n in names]
    out.new, out.moved, out.unchanged = (states.count(s) for s in ("new", "moved", "unchanged"))
    out.changed = [by_name[n][0] for n in names if by_name[n][1] != "unchanged"]
    moved = [by_name[n][0] for n in names if by_name[n][1] == "moved"]
    if moved:  # measurements of the old positions
        conn.execute(sa.text("DELETE FROM target_phot WHERE target_id = ANY(:ids)"), {"ids": moved})
    return out


def covering_l2(conn: sa.Connection, target_ids: Sequence[int]) -> list[int]:
    """Live L2 images whose footprint contains one of the targets."""
    if not target_ids:
        return []
    return [int(p) for p in conn.execute(sa.text(
        "SELECT DISTINCT p.product_id FROM products p JOIN forced_targets t ON t.pos @ p.s_region "
        "WHERE t.target_id = ANY(:ids) AND p.level = 2 AND p.product_type = 'wfi_l2' AND p.release = 'live' "
        "ORDER BY p.product_id"), {"ids": list(target_ids)}).scalars()]


def queue_for_targets(conn: sa.Connection, target_ids: Sequence[int]) -> tuple[list[int], int]:
    """(Re-)queue the ``forced_phot`` jobs of the live L2s that cover the targets; (products, jobs queued)."""
    pids = covering_l2(conn, target_ids)
    return pids, queue.requeue(conn, KIND, pids)


def add_and_queue(archive: Archive, names: Sequence[Any], ra: Sequence[Any] | np.ndarray,
                  dec: Sequence[Any] | np.ndarray, origin: str = OPERATOR) -> Added:
    """Upsert targets and queue the jobs that measure the new and moved ones, in one transaction."""
    with archive.engine.begin() as conn:
        out = upsert_targets(conn, names, ra, dec, origin)
        out.products, out.jobs_queued = queue_for_targets(conn, out.changed)
    return out


def add_targets(archive: Archive, names: Sequence[Any], ra: Sequence[Any] | np.ndarray,
                dec: Sequence[Any] | np.ndarray, origin: str = OPERATOR) -> list[int]:
    """Add (or move) targets and queue the ``forced_phot`` jobs of every live L2 that covers a new or moved one.

    Parameters
    ----------
    archive
        The archive.
    names, ra, dec
        Target names (unique within ``origin``) and ICRS positions in degrees.
    origin
        ``'operator'`` or ``'level5:<collection or product id>'``.

    Returns
    -------
    list of int
        The targets' ``target_id``, in the order given.

    Raises
    ------
    TargetError
        Bad names or coordinates (nothing is written).
    """
    return add_and_queue(archive, names, ra, dec, origin).target_ids


def remove_targets(archive: Archive, names: Sequence[str] | None, origin: str = OPERATOR) -> list[str]:
    """Delete targets of an origin by name (``None``: all of that origin) with their measurements; returns the names
    removed."""
    with archive.engine.begin() as conn:
        if names is None:
            gone = conn.execute(sa.text("DELETE FROM forced_targets WHERE origin = :o RETURNING name"),
                                {"o": origin}).scalars().all()
        else:
            gone = conn.execute(sa.text("DELETE FROM forced_targets WHERE origin = :o AND name = ANY(:n) "
                                        "RETURNING name"), {"o": origin, "n": [str(n) for n in names]}).scalars().all()
    return sorted(str(n) for n in gone)


def list_targets(conn: sa.Connection, origin: str | None = None) -> list[dict[str, Any]]:
    """Every target (of one origin, or all) with its measurement count, by origin and name."""
    rows = conn.execute(sa.text(
        "SELECT t.target_id, t.name, t.ra, t.dec, t.origin, t.added, count(f.product_id) AS n_measurements "
        "FROM forced_targets t LEFT JOIN target_phot f USING (target_id) "
        "WHERE CAST(:o AS text) IS NULL OR t.origin = :o GROUP BY t.target_id ORDER BY t.origin, t.name"),
        {"o": origin}).mappings().all()
    return [dict(r) for r in rows]


# --------------------------------------------------------------------------------------- inside the forced_phot job
def targets_in(conn: sa.Connection, product_id: int) -> TargetsIn:
    """The targets inside one product's footprint."""
    rows = conn.execute(_TARGETS_IN, {"pid": product_id}).all()
    return TargetsIn(np.array([r[0] for r in rows], np.int64), np.array([r[1] for r in rows], float),
                     np.array([r[2] for r in rows], float))


def empty_columns() -> dict[str, np.ndarray]:
    """No measurements (an image without targets)."""
    return {c: np.empty(0) for c in (*COLUMNS, "ra", "dec")}


def measure_targets(img: ImageArrays, grid: PsfGrid, targets: TargetsIn, cfg: ForcedPhotConfig,
                    offset: tuple[float, float], mjd: float) -> dict[str, np.ndarray]:
    """One image's ``target_phot`` columns (plus the ``ra``, ``dec`` measured) with the objects' registration."""
    if not len(targets):
        return empty_columns()
    inside, res, extra = measure_image(img, targets.ra, targets.dec, cfg, grid, offset=offset)
    n = int(inside.sum())
    return {
        "target_id": targets.target_id[inside], "ra": targets.ra[inside], "dec": targets.dec[inside],
        "mjd": np.full(n, mjd), "flux": res.flux, "flux_err": res.flux_err, "flux_ap": res.flux_ap,
        "flux_ap_err": res.flux_ap_err, "dra": extra["dra"], "ddec": extra["ddec"], "shift_err": extra["shift_err"],
        "flags": res.flags.astype(np.int16),
    }


def replace_target_rows(conn: sa.Connection, product_id: int, filter_name: str, columns: dict[str, np.ndarray],
                        run_id: int = 0) -> int:
    """Replace one image's ``target_phot`` rows (inside the job's transaction); returns the rows written.

    Only measurements of a target's current position are written: a target removed or moved since the job read it
    is skipped (its next measurement comes from the job its move queued).
    """
    conn.execute(sa.text("DELETE FROM target_phot WHERE product_id = :p"), {"p": product_id})
    if not len(columns["target_id"]):
        return 0

    def values(c: str) -> list[Any]:
        arr = np.asarray(columns[c])
        return arr.astype(np.int64).tolist() if c in ("target_id", "flags") else arr.astype(float).tolist()

    names = (*COLUMNS, "ra", "dec")
    unnest = ", ".join(f"CAST(:{c} AS {_SQL_TYPES.get(c, 'float8')}[])" for c in names)
    sel = ", ".join(f"NULLIF(s.{c}, 'NaN')" if c in _NULLABLE else f"s.{c}" for c in COLUMNS)
    res = conn.execute(sa.text(
        f"INSERT INTO target_phot ({', '.join(COLUMNS)}, product_id, filter, run_id) "
        f"SELECT {sel}, :p, :f, :r FROM unnest({unnest}) AS s({', '.join(names)}) "
        "JOIN forced_targets t ON t.target_id = s.target_id AND t.ra = s.ra AND t.dec = s.dec "
        "ORDER BY s.target_id"),
        {"p": product_id, "f": filter_name, "r": run_id, **{c: values(c) for c in names}})
    return int(res.rowcount)
