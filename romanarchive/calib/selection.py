"""Choose calibration reference files from the archive's own reference-file table."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa

from romanarchive.db.tables import files, reference_files

#: Reference types the ExposurePipeline (+ source catalog) reads, in pipeline order.
REFTYPES: tuple[str, ...] = (
    "mask",
    "saturation",
    "refpix",
    "darkdecaysignal",
    "linearity",
    "inverselinearity",
    "dark",
    "readnoise",
    "gain",
    "distortion",
    "photom",
    "flat",
    "apcorr",
    "epsf",
)


class MissingReferenceError(LookupError):
    """No reference file fits an exposure."""


def select_references(conn: sa.Connection, reftypes: tuple[str, ...], detector: str, optical_element: str,
                      start: dt.datetime) -> dict[str, tuple[str, str]]:
    """Best reference of each type for an exposure: newest ``useafter`` not after its start, exact filter first.

    Parameters
    ----------
    conn
        Database connection.
    reftypes
        Types the pipeline needs.
    detector, optical_element
        The exposure's detector and filter.
    start
        Exposure start (UTC).

    Returns
    -------
    dict
        reftype -> (object-store key, file name).

    Raises
    ------
    MissingReferenceError
        When any type has no candidate; the message lists all that are missing.
    """
    rf = reference_files
    rows = conn.execute(
        sa.select(rf.c.reftype, files.c.uri, files.c.filename)
        .join(files, files.c.file_id == rf.c.file_id)
        .where(rf.c.reftype.in_(reftypes), rf.c.detector == detector.upper(),
               rf.c.optical_element.in_([optical_element.upper(), "ANY"]), rf.c.useafter <= start)
        .order_by(rf.c.reftype, (rf.c.optical_element == "ANY").asc(), rf.c.useafter.desc())
        .distinct(rf.c.reftype)
    ).all()
    chosen = {r.reftype: (r.uri, r.filename) for r in rows}
    missing = [t for t in reftypes if t not in chosen]
    if missing:
        raise MissingReferenceError(
            f"no {', '.join(missing)} reference file for {detector}/{optical_element} valid at "
            f"{start:%Y-%m-%dT%H:%M:%S} — ingest a reference set (romanarchive simulate writes one under refs/)"
        )
    return chosen
