"""What the validation reads from the archive: catalog rows, jobs, products, light curves, DIA sources, images.

Everything is read through the archive's SQLAlchemy engine (plain SQL on the registry and the published tables,
read only) and its object store (L2/L3 files, opened where the store is local, else copied into scratch).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import sqlalchemy as sa

from romanarchive.archive import Archive
from romanarchive.db import product_types

#: Columns of ``objects`` in rad's names; per-band names use the lower-case band.
PSF_FLUX, KRON_FLUX, APER04_FLUX = "psf_{b}_flux", "kron_{b}_flux", "aper04_{b}_flux"


class EmptyArchiveError(Exception):
    """The archive holds nothing the validation can compare (no catalog rows, no L3)."""


Columns = dict[str, np.ndarray]


def _column_arrays(keys: list[str], rows: list[Any]) -> Columns:
    out: Columns = {}
    for i, k in enumerate(keys):
        values = [r[i] for r in rows]
        sample = next((v for v in values if v is not None), None)
        if isinstance(sample, bool):  # NULL booleans become NaN (neither True nor False)
            out[k] = np.array([math.nan if v is None else float(v) for v in values])
        elif isinstance(sample, int) and all(v is not None for v in values):
            out[k] = np.array(values, dtype=np.int64)
        elif sample is None or isinstance(sample, (int, float)) or hasattr(sample, "__float__"):
            out[k] = np.array([math.nan if v is None else float(v) for v in values], dtype=float)
        else:
            out[k] = np.array(["" if v is None else str(v) for v in values])
    return out


def load_objects(conn: sa.Connection, release: str = "live") -> Columns:
    """All ``objects`` rows of a release as numpy columns (``pos`` left out; NULL -> NaN, booleans as 0/1/NaN)."""
    names = conn.execute(sa.text(
        "SELECT column_name FROM information_schema.columns WHERE table_schema = 'public' AND table_name = 'objects' "
        "AND column_name <> 'pos' ORDER BY ordinal_position")).scalars().all()
    if not names:
        raise EmptyArchiveError("the database has no objects table (run `romanarchive db upgrade`)")
    cols = ", ".join(f'"{n}"' for n in names)
    result = conn.execute(sa.text(f"SELECT {cols} FROM objects WHERE release = :r ORDER BY source_id"), {"r": release})
    return _column_arrays(list(names), list(result.all()))


@dataclass(frozen=True)
class StoredProduct:
    """A live product and its stored file."""

    product_id: int
    level: int
    product_type: str
    obs_id: str
    filter: str
    uri: str
    filename: str
    t_min: float | None


def products(conn: sa.Connection, product_type: str, release: str = "live") -> list[StoredProduct]:
    """Products of a type in a release (live by default), ordered by id."""
    rows = conn.execute(sa.text(
        "SELECT p.product_id, p.level, p.product_type, coalesce(p.obs_id, ''), coalesce(p.filter, ''), f.uri, "
        "f.filename, p.t_min FROM products p JOIN files f ON f.file_id = p.file_id "
        "WHERE p.product_type = :t AND p.release = :r ORDER BY p.product_id"), {"t": product_type, "r": release})
    return [StoredProduct(*r) for r in rows.all()]


def l3_products(conn: sa.Connection) -> list[StoredProduct]:
    return products(conn, product_types.L3)


def catalogued_skycells(conn: sa.Connection) -> set[str]:
    """Skycells with a live L4 catalog product."""
    return {p.obs_id for p in products(conn, product_types.L4_CATALOG)}


@dataclass(frozen=True)
class FailedJob:
    job_id: int
    kind: str
    target: str
    error: str


def failed_jobs(conn: sa.Connection) -> list[FailedJob]:
    """Jobs in state ``failed``, with the last line of their error (the exception's message)."""
    rows = conn.execute(sa.text(
        "SELECT job_id, kind, coalesce(target, product_id::text, ''), coalesce(error, '') FROM jobs "
        "WHERE state = 'failed' ORDER BY job_id")).all()
    out = []
    for job_id, kind, target, error in rows:
        lines = [ln.strip() for ln in str(error).strip().splitlines() if ln.strip()]
        out.append(FailedJob(int(job_id), str(kind), str(target), lines[-1][:200] if lines else ""))
    return out


def job_states(conn: sa.Connection) -> dict[str, int]:
    return {str(s): int(n) for s, n in conn.execute(sa.text("SELECT state, count(*) FROM jobs GROUP BY state"))}


def forced_photometry_means(conn: sa.Connection) -> dict[tuple[int, str], tuple[float, int]]:
    """Inverse-variance weighted mean forced-photometry flux (nJy) and the number of unflagged measurements, per
    (source_id, filter); only measurements with ``flags = 0`` and a positive error are used."""
    rows = conn.execute(sa.text(
        "SELECT source_id, filter, sum(flux / (flux_err * flux_err)) / sum(1.0 / (flux_err * flux_err)), count(*) "
        "FROM forced_phot WHERE flags = 0 AND flux_err > 0 AND flux IS NOT NULL GROUP BY source_id, filter")).all()
    return {(int(s), str(f).upper()): (float(m), int(n)) for s, f, m, n in rows}


def light_curve_sources(conn: sa.Connection) -> set[int]:
    """Objects with at least one forced-photometry measurement."""
    return {int(s) for s in conn.execute(sa.text("SELECT DISTINCT source_id FROM forced_phot")).scalars()}


def l2_sources(conn: sa.Connection) -> Columns:
    """The per-image catalogs' rows, the columns :mod:`~romanarchive.validate.l2catalog` compares (empty where the
    archive has no ``l2_sources`` table)."""
    if not sa.inspect(conn).has_table("l2_sources"):
        return {}
    result = conn.execute(sa.text("SELECT product_id, filter, ra, dec, psf_flux, psf_flux_err, aper04_flux, "
                                  "aper04_flux_err FROM l2_sources"))
    return _column_arrays(list(result.keys()), list(result.all()))


def dia_sources(conn: sa.Connection) -> Columns:
    """DIA detections: position, epoch, filter, flux (nJy), S/N, flags, track (-1 when none) and the file names
    (space-separated) of the L2s co-added into the epoch image and into the template."""
    result = conn.execute(sa.text(
        "SELECT d.dia_id, d.skycell, d.filter, d.mjd, d.ra, d.dec, d.flux, d.flux_err, d.snr, d.flags, "
        "coalesce(d.track_id, -1) AS track_id, "
        "(SELECT string_agg(f.filename, ' ') FROM products p JOIN files f ON f.file_id = p.file_id "
        "WHERE p.product_id IN (SELECT jsonb_array_elements_text(d.science_ids)::bigint)) AS science_files, "
        "(SELECT string_agg(f.filename, ' ') FROM products p JOIN files f ON f.file_id = p.file_id "
        "WHERE p.product_id IN (SELECT jsonb_array_elements_text(d.template_ids)::bigint)) AS template_files "
        "FROM dia_sources d ORDER BY d.dia_id"))
    keys = list(result.keys())
    return _column_arrays(keys, list(result.all()))


def dia_objects(conn: sa.Connection) -> Columns:
    """DIA objects: position, detections and static counterpart (``counterpart_id`` -1 when none: ids are 61-bit
    integers, which NULLs would turn into floats)."""
    result = conn.execute(sa.text("SELECT dia_object_id, ra, dec, n_detections, coalesce(counterpart_id, -1) AS "
                                  "counterpart_id, counterpart_sep "
                                  "FROM dia_objects ORDER BY dia_object_id"))
    return _column_arrays(list(result.keys()), list(result.all()))


def light_curves(conn: sa.Connection, release: str = "live") -> Columns:
    """Forced-photometry measurements of the release's objects: the flux its light curve uses (PSF for point-like
    objects, aperture for extended ones), error, epoch, filter, flags and the L2's file name."""
    result = conn.execute(sa.text(
        "SELECT f.source_id, f.filter, f.mjd, CASE WHEN o.is_extended THEN f.flux_ap ELSE f.flux END AS flux, "
        "CASE WHEN o.is_extended THEN f.flux_ap_err ELSE f.flux_err END AS flux_err, f.flags, "
        "fl.filename FROM forced_phot f JOIN objects o ON o.source_id = f.source_id AND o.release = :r "
        "JOIN products p ON p.product_id = f.product_id JOIN files fl ON fl.file_id = p.file_id "
        "ORDER BY f.source_id, f.filter, f.mjd"), {"r": release})
    return _column_arrays(list(result.keys()), list(result.all()))


def variability(conn: sa.Connection) -> Columns:
    """Variability indices per (source, filter)."""
    result = conn.execute(sa.text("SELECT source_id, filter, n_epochs, chi2_red, stetson_j, flags FROM variability"))
    return _column_arrays(list(result.keys()), list(result.all()))


def epoch_times(conn: sa.Connection, gap_days: float = 0.5) -> dict[str, list[float]]:
    """Mean mid-exposure time of each epoch of live L2s per filter (starts more than ``gap_days`` apart split)."""
    rows = conn.execute(sa.text(
        "SELECT upper(filter), t_min, coalesce(t_max, t_min) FROM products WHERE level = 2 AND release = 'live' "
        "AND t_min IS NOT NULL AND filter IS NOT NULL ORDER BY 1, 2")).all()
    out: dict[str, list[list[float]]] = {}
    last: dict[str, float] = {}
    for f, t0, t1 in rows:
        if f not in out or float(t0) - last[f] > gap_days:
            out.setdefault(f, []).append([])
        out[f][-1].append(0.5 * (float(t0) + float(t1)))
        last[f] = float(t0)
    return {f: [float(np.mean(e)) for e in eps] for f, eps in out.items()}


@contextmanager
def local_file(archive: Archive, product: StoredProduct) -> Iterator[Path]:
    """A local path of a stored product's file (copied into scratch and removed after, for a remote store)."""
    local = archive.store.local_path(product.uri)
    if local is not None:
        yield Path(local)
        return
    scratch = archive.settings.scratch / f"validate-{product.product_id}"
    scratch.mkdir(parents=True, exist_ok=True)
    path = Path(archive.store.get_file(product.uri, scratch / product.filename))
    try:
        yield path
    finally:
        path.unlink(missing_ok=True)


@dataclass
class Image:
    """The arrays of an L2/L3 image the validation uses, and its metadata."""

    data: np.ndarray
    err: np.ndarray
    dq: np.ndarray | None
    wcs: Any
    meta: dict[str, Any]
    model_type: str

    def valid(self) -> np.ndarray:
        """Pixels with data: finite data and a positive, finite error."""
        return np.isfinite(self.data) & np.isfinite(self.err) & (self.err > 0)

    def pixel(self, ra: np.ndarray, dec: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """0-based pixel coordinates of sky positions (NaN outside the WCS's domain)."""
        x, y = self.wcs.world_to_pixel_values(np.asarray(ra, float), np.asarray(dec, float))
        return np.asarray(x, float), np.asarray(y, float)

    def covers(self, ra: np.ndarray, dec: np.ndarray) -> np.ndarray:
        """True where a position falls on a valid pixel."""
        x, y = self.pixel(ra, dec)
        ny, nx = self.data.shape
        with np.errstate(invalid="ignore"):
            inside = np.isfinite(x) & np.isfinite(y) & (x > -0.5) & (y > -0.5) & (x < nx - 0.5) & (y < ny - 0.5)
        out = np.zeros(len(x), dtype=bool)
        xi, yi = np.round(x[inside]).astype(int), np.round(y[inside]).astype(int)
        out[np.flatnonzero(inside)] = self.valid()[yi, xi]
        return out


def _plain(node: Any) -> Any:
    """An ASDF/datamodel metadata node as plain dicts, lists and scalars (arrays and objects left out)."""
    if hasattr(node, "items"):
        return {str(k): _plain(v) for k, v in node.items() if k != "wcs"}
    if isinstance(node, (list, tuple)):
        return [_plain(v) for v in node]
    if isinstance(node, (str, int, float, bool)) or node is None:
        return node
    return str(node) if not isinstance(node, np.ndarray) else None


def read_image(path: Path, with_dq: bool = False) -> Image:
    """Read data, err (and dq), the WCS and the metadata of a roman L2 ``ImageModel`` or L3 ``MosaicModel`` file."""
    import asdf

    with asdf.open(path, lazy_load=False, memmap=False) as af:
        tree = af.tree["roman"]
        meta = tree["meta"]
        dq = np.asarray(tree["dq"]) if with_dq and "dq" in tree else None
        return Image(np.asarray(tree["data"], dtype=np.float32), np.asarray(tree["err"], dtype=np.float32), dq,
                     meta.get("wcs"), _plain(meta), type(tree).__name__)


def validate_model(path: Path) -> str:
    """Validate a file against its roman_datamodels schema: '' when it validates, else the first error line."""
    import roman_datamodels as rdm

    try:
        with rdm.open(path) as model:
            model.validate()
    except Exception as exc:  # noqa: BLE001 - any validation or read failure is the answer
        return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
    return ""


def apcorr_files(survey: Path | None, archive: Archive, conn: sa.Connection) -> dict[str, Path]:
    """An ``apcorr`` reference file per optical element: the survey's ``refs/``, else the archive's registered ones."""
    out: dict[str, Path] = {}
    if survey is not None and (survey / "refs").is_dir():
        for p in sorted((survey / "refs").rglob("*apcorr*.asdf")):
            band = next((part.upper() for part in p.name.split("_") if part.lower().startswith("f")
                         and part[1:].isdigit()), None)
            if band:
                out.setdefault(band, p)
    if out:
        return out
    rows = conn.execute(sa.text(
        "SELECT r.optical_element, f.uri FROM reference_files r JOIN files f ON f.file_id = r.file_id "
        "WHERE lower(r.reftype) = 'apcorr' ORDER BY r.useafter DESC")).all()
    for band, uri in rows:
        local = archive.store.local_path(uri)
        if local is not None:
            out.setdefault(str(band).upper(), Path(local))
    return out
