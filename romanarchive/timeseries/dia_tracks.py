"""Tracks: the moving DIA detections of every epoch linked into ``dia_tracks``, after each DIA run.

The linking itself is :func:`romanarchive.timeseries.dia_motion.link_tracks`; this module is its database side. All
moving brightenings (flag 16 with a measured rate) are re-linked on every run, in the DIA run's transaction and under
an advisory lock: a moving object crosses skycells, so a new epoch of any skycell may extend any track. Track ids are
reassigned each time (a track is what its detections say it is); ``dia_sources.track_id`` points into the new set.
The work grows with the square of the moving detections in the archive: fine for the thousands a survey field has;
a survey-wide mover catalogue would link per sky region and time window instead.
"""

from __future__ import annotations

import numpy as np
import sqlalchemy as sa

from romanarchive.timeseries.dia import DIA_MOVING
from romanarchive.timeseries.dia_motion import Detection, link_tracks, mean_rate

_LOCK = sa.text("SELECT pg_advisory_xact_lock(hashtext('dia_tracks'))")


def relink(conn: sa.Connection) -> dict[str, int]:
    """Link every moving brightening into tracks; returns counts of detections and tracks."""
    conn.execute(_LOCK)
    rows = conn.execute(sa.text(
        "SELECT dia_id, ra, dec, mjd, rate_ra, rate_dec, rate_err FROM dia_sources "
        "WHERE flags & :moving <> 0 AND snr > 0 AND rate_err > 0 ORDER BY mjd, dia_id"), {"moving": DIA_MOVING}).all()
    conn.execute(sa.text("UPDATE dia_sources SET track_id = NULL WHERE track_id IS NOT NULL"))
    conn.execute(sa.text("DELETE FROM dia_tracks"))
    if not rows:
        return {"moving_detections": 0, "tracks": 0}
    dets = [Detection(float(r[1]), float(r[2]), float(r[3]), float(r[4]), float(r[5]), float(r[6])) for r in rows]
    track = link_tracks(dets)
    ids = np.array([int(r[0]) for r in rows], np.int64)
    recs = []
    for t in np.unique(track):
        members = np.flatnonzero(track == t)
        first = members[int(np.argmin([dets[i].mjd for i in members]))]
        rra, rde, _ = mean_rate(dets, members.tolist())
        recs.append({
            "n": len(members), "n_epochs": len({round(dets[i].mjd, 3) for i in members}),
            "first": dets[first].mjd, "last": max(dets[i].mjd for i in members),
            "ra": dets[first].ra, "dec": dets[first].dec,
            "rra": rra, "rde": rde,
            "members": [int(ids[i]) for i in members],
        })
    for rec in recs:
        track_id = conn.execute(sa.text(
            "INSERT INTO dia_tracks (n_detections, n_epochs, first_mjd, last_mjd, ra, dec, rate_ra, rate_dec) "
            "VALUES (:n, :n_epochs, :first, :last, :ra, :dec, :rra, :rde) RETURNING track_id"),
            {k: v for k, v in rec.items() if k != "members"}).scalar_one()
        conn.execute(sa.text("UPDATE dia_sources SET track_id = :t WHERE dia_id = ANY(:ids)"),
                     {"t": track_id, "ids": rec["members"]})
    return {"moving_detections": len(rows), "tracks": len(recs)}
