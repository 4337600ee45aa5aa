"""DIA objects: detections of one sky position associated across epochs and filters, linked to the static catalog.

After each DIA run (:func:`romanarchive.timeseries.dia_job.run_cell`, in its transaction) :func:`associate`

1. gives every new ``dia_sources`` row a ``dia_object_id``: strongest detections first, each joins the nearest DIA
   object within ``radius_arcsec`` (existing, or created earlier in the same pass) or founds a new one — so a
   transient seen in both filters and at several epochs is one object, with its light curve in ``dia_sources``.
   Detections and objects within ``radius_arcsec`` of a catalogued point source are compared at its position
   (:func:`_on_stars`): a variable star's faint detections scatter around it by more than their noise;
2. recomputes the touched objects' summary (|S/N|-weighted mean position, counts, epochs, flux range) and their
   static counterpart: the nearest live catalog object within ``radius_arcsec`` (a variable star, an AGN), else
   the nearest *extended* object within ``host_radius_arcsec`` (a transient's host galaxy, with its offset);
3. deletes objects left without detections (their rows were recomputed away).

When a skycell's catalog changes (new or rebuilt L4), :func:`refresh_counterparts` links the DIA objects over it
again: the static catalog's ids and classes may have changed, and DIA may have run before the catalog existed —
objects that turn out to lie on one catalogued star are then merged into the oldest.

An advisory lock serialises association: two filters of one skycell, or overlapping skycells, run in parallel
workers and must not found two objects for one position.
"""

from __future__ import annotations

import numpy as np
import sqlalchemy as sa

_LOCK = sa.text("SELECT pg_advisory_xact_lock(hashtext('dia_objects'))")

_SUMMARY = sa.text(
    """
    UPDATE dia_objects o SET ra = CASE WHEN s.ra < 0 THEN s.ra + 360.0 ELSE s.ra END, dec = s.dec,
        pos = spoint(radians(s.ra), radians(s.dec)),
        n_detections = s.n, n_epochs = s.n_epochs, filters = s.filters, first_mjd = s.first_mjd,
        last_mjd = s.last_mjd, max_abs_snr = s.max_abs_snr, max_flux = s.max_flux, min_flux = s.min_flux,
        updated_at = now()
    FROM (
        SELECT dia_object_id,
            degrees(atan2(sum(abs(snr) * sin(radians(ra))), sum(abs(snr) * cos(radians(ra))))) AS ra,
            sum(abs(snr) * dec) / sum(abs(snr)) AS dec, count(*) AS n,
            count(DISTINCT (filter, round(mjd::numeric, 3))) AS n_epochs,
            string_agg(DISTINCT filter, ',' ORDER BY filter) AS filters, min(mjd) AS first_mjd, max(mjd) AS last_mjd,
            max(abs(snr)) AS max_abs_snr, max(flux) AS max_flux, min(flux) AS min_flux
        FROM dia_sources WHERE dia_object_id = ANY(:ids) GROUP BY dia_object_id
    ) s WHERE o.dia_object_id = s.dia_object_id
    """
)

_COUNTERPART = sa.text(
    """
    UPDATE dia_objects o SET counterpart_id = c.source_id, counterpart_sep = c.sep,
        counterpart_extended = c.is_extended
    FROM dia_objects d CROSS JOIN LATERAL (
        SELECT x.source_id, degrees(x.pos <-> d.pos) * 3600.0 AS sep, x.is_extended FROM objects x
        WHERE x.release = 'live' AND x.pos @ scircle(d.pos, radians(:host / 3600.0))
          AND (degrees(x.pos <-> d.pos) * 3600.0 <= :radius OR x.is_extended)
        ORDER BY degrees(x.pos <-> d.pos) * 3600.0 > :radius, x.pos <-> d.pos LIMIT 1
    ) c
    WHERE d.dia_object_id = ANY(:ids) AND o.dia_object_id = d.dia_object_id
    """
)


def _assign(ra: np.ndarray, dec: np.ndarray, snr: np.ndarray, obj_ra: np.ndarray, obj_dec: np.ndarray,
            radius_arcsec: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Index of the object each detection joins (existing ones first, then new ones), and the new objects' seeds.

    Returns
    -------
    which, new_ra, new_dec
        ``which[k] < len(obj_ra)``: detection ``k`` joins existing object ``which[k]``; otherwise new object
        ``which[k] - len(obj_ra)``, founded at ``new_ra``, ``new_dec``.
    """
    cand_ra, cand_dec = list(obj_ra), list(obj_dec)
    which = np.full(len(ra), -1, np.int64)
    for k in np.argsort(-np.abs(snr), kind="stable"):
        if cand_ra:
            dra = ((np.asarray(cand_ra) - ra[k] + 180.0) % 360.0 - 180.0) * np.cos(np.radians(dec[k]))
            d = np.hypot(dra, np.asarray(cand_dec) - dec[k]) * 3600.0
            j = int(np.argmin(d))
            if d[j] <= radius_arcsec:
                which[k] = j
                continue
        which[k] = len(cand_ra)
        cand_ra.append(float(ra[k]))
        cand_dec.append(float(dec[k]))
    n0 = len(obj_ra)
    return which, np.asarray(cand_ra[n0:], float), np.asarray(cand_dec[n0:], float)


_STAR_NEAR = sa.text(
    """
    SELECT d.k, x.ra, x.dec FROM unnest(CAST(:ra AS float8[]), CAST(:dec AS float8[])) WITH ORDINALITY AS d(ra, dec, k)
    CROSS JOIN LATERAL (
        SELECT x.ra, x.dec FROM objects x
        WHERE x.release = 'live' AND NOT coalesce(x.is_extended, true)
          AND x.pos @ scircle(spoint(radians(d.ra), radians(d.dec)), radians(:radius / 3600.0))
        ORDER BY x.pos <-> spoint(radians(d.ra), radians(d.dec)) LIMIT 1
    ) x
    """
)


def _on_stars(conn: sa.Connection, ra: np.ndarray, dec: np.ndarray, radius_arcsec: float
              ) -> tuple[np.ndarray, np.ndarray]:
    """Positions to associate by: a catalogued point source's within ``radius_arcsec``, else the detection's own.

    A variable star's faint detections sit on the difference image's residual of the star itself, whose pattern
    pulls the peak 0.1-0.2" off (demo, S/N < 20); the catalog's position of the star is the one they share.
    """
    a_ra, a_dec = ra.copy(), dec.copy()
    if len(ra):
        for k, x_ra, x_dec in conn.execute(_STAR_NEAR, {"ra": [float(v) for v in ra],
                                                        "dec": [float(v) for v in dec], "radius": radius_arcsec}):
            a_ra[int(k) - 1], a_dec[int(k) - 1] = float(x_ra), float(x_dec)
    return a_ra, a_dec


def associate(conn: sa.Connection, radius_arcsec: float = 0.3, host_radius_arcsec: float = 2.0) -> dict[str, int]:
    """Associate unassigned ``dia_sources`` rows into ``dia_objects`` and refresh what changed (see the module).

    Returns
    -------
    dict
        ``assigned`` detections, ``created`` and ``deleted`` objects.
    """
    conn.execute(_LOCK)
    new = conn.execute(sa.text("SELECT dia_id, ra, dec, snr FROM dia_sources WHERE dia_object_id IS NULL")).all()
    out = {"assigned": len(new), "created": 0, "deleted": 0}
    touched: set[int] = set()
    if new:
        ids = np.array([r[0] for r in new], np.int64)
        ra, dec = np.array([r[1] for r in new], float), np.array([r[2] for r in new], float)
        snr = np.nan_to_num(np.array([r[3] for r in new], float))
        pad = 2 * radius_arcsec / 3600.0
        near = conn.execute(sa.text(
            "SELECT dia_object_id, ra, dec FROM dia_objects WHERE dec BETWEEN :d0 AND :d1"),
            {"d0": float(dec.min()) - pad, "d1": float(dec.max()) + pad}).all()
        obj_id = np.array([r[0] for r in near], np.int64)
        # Detections and existing objects on a catalogued star meet at the star's position.
        a_ra, a_dec = _on_stars(conn, ra, dec, radius_arcsec)
        o_ra, o_dec = _on_stars(conn, np.array([r[1] for r in near], float), np.array([r[2] for r in near], float),
                                radius_arcsec)
        which, new_ra, new_dec = _assign(a_ra, a_dec, snr, o_ra, o_dec, radius_arcsec)  # seeds: the summary follows
        created = [int(conn.execute(sa.text(
            "INSERT INTO dia_objects (ra, dec, pos, n_detections, n_epochs) VALUES (:ra, :dec, "
            "spoint(radians(:ra), radians(:dec)), 0, 0) RETURNING dia_object_id"),
            {"ra": float(a), "dec": float(d)}).scalar_one()) for a, d in zip(new_ra, new_dec, strict=True)]
        all_ids = np.r_[obj_id, np.asarray(created, np.int64)]
        conn.execute(sa.text("UPDATE dia_sources SET dia_object_id = :o WHERE dia_id = :d"),
                     [{"o": int(all_ids[w]), "d": int(i)} for i, w in zip(ids, which, strict=True)])
        touched = {int(all_ids[w]) for w in which}
        out["created"] = len(created)
    # Objects whose rows were deleted or replaced since their summary was written.
    touched |= set(conn.execute(sa.text(
        "SELECT o.dia_object_id FROM dia_objects o LEFT JOIN (SELECT dia_object_id, count(*) AS n FROM dia_sources "
        "GROUP BY dia_object_id) s USING (dia_object_id) WHERE coalesce(s.n, 0) <> o.n_detections")).scalars())
    out["deleted"] = conn.execute(sa.text(
        "DELETE FROM dia_objects o WHERE o.dia_object_id = ANY(:ids) AND NOT EXISTS "
        "(SELECT 1 FROM dia_sources s WHERE s.dia_object_id = o.dia_object_id)"), {"ids": sorted(touched)}).rowcount
    if touched:
        conn.execute(_SUMMARY, {"ids": sorted(touched)})
        _relink(conn, sorted(touched), radius_arcsec, host_radius_arcsec)
        out["deleted"] += _merge_on_stars(conn, sorted(touched), radius_arcsec, host_radius_arcsec)
    return out


def _relink(conn: sa.Connection, ids: list[int], radius_arcsec: float, host_radius_arcsec: float) -> None:
    """Clear and recompute the static counterpart of these DIA objects."""
    conn.execute(sa.text("UPDATE dia_objects SET counterpart_id = NULL, counterpart_sep = NULL, "
                         "counterpart_extended = NULL WHERE dia_object_id = ANY(:ids)"), {"ids": ids})
    conn.execute(_COUNTERPART, {"ids": ids, "radius": radius_arcsec, "host": host_radius_arcsec})


_SAME_STAR = sa.text(
    """
    SELECT array_agg(dia_object_id ORDER BY dia_object_id) FROM dia_objects
    WHERE counterpart_id IN (SELECT counterpart_id FROM dia_objects WHERE dia_object_id = ANY(:ids))
      AND NOT coalesce(counterpart_extended, true) AND counterpart_sep <= :radius
    GROUP BY counterpart_id HAVING count(*) > 1
    """
)


def _merge_on_stars(conn: sa.Connection, ids: list[int], radius_arcsec: float, host_radius_arcsec: float) -> int:
    """Merge DIA objects whose counterpart is one catalogued point source (DIA ran before that catalog existed, so
    the detections could not meet at the star's position): the oldest object keeps them all. Returns how many
    objects were merged away."""
    merged = 0
    for group in conn.execute(_SAME_STAR, {"ids": ids, "radius": radius_arcsec}).scalars():
        keep, others = int(group[0]), [int(g) for g in group[1:]]
        conn.execute(sa.text("UPDATE dia_sources SET dia_object_id = :k WHERE dia_object_id = ANY(:o)"),
                     {"k": keep, "o": others})
        conn.execute(sa.text("DELETE FROM dia_objects WHERE dia_object_id = ANY(:o)"), {"o": others})
        conn.execute(_SUMMARY, {"ids": [keep]})
        _relink(conn, [keep], radius_arcsec, host_radius_arcsec)
        merged += len(others)
    return merged


def refresh_counterparts(conn: sa.Connection, polygon: str, radius_arcsec: float = 0.3,
                         host_radius_arcsec: float = 2.0) -> int:
    """Re-link the DIA objects inside a pgsphere polygon (a skycell whose catalog changed), merging those that turn
    out to lie on one catalogued star; returns how many objects were re-linked."""
    conn.execute(_LOCK)
    ids = sorted(conn.execute(sa.text("SELECT dia_object_id FROM dia_objects WHERE pos @ CAST(:poly AS spoly)"),
                              {"poly": polygon}).scalars())
    if ids:
        _relink(conn, ids, radius_arcsec, host_radius_arcsec)
        _merge_on_stars(conn, ids, radius_arcsec, host_radius_arcsec)
    return len(ids)
