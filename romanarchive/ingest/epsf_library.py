"""Selection from the empirical PSF library: the ePSF for a detector, filter, detector position and time.

Shared by the library's own API (``GET /epsf``, the CLI, the client; :mod:`romanarchive.epsf`) and by the producers
that fit PSFs (forced photometry), which must not import the epsf domain. The rule:

* the **library product**: among the live ``wfi_epsf`` products of the detector and filter, the one whose time
  window holds ``mjd``, else the one whose window is nearest to it (ties: the newest product) — nearest in time;
* the **ePSF**: bilinear in detector position between the product's grid points (``interpolate``), or its grid point
  nearest the position (``nearest``); outside the grid the edge values are used.

Stamps are read from the stored ASDF (``EpsfRefModel``, ``psf[0, 1, position]``) once per process and file.
"""

from __future__ import annotations

import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import sqlalchemy as sa

from romanarchive.archive import Archive
from romanarchive.db import product_types
from romanarchive.imaging.epsf import bilinear_weights, combine, nearest_index

MODES = ("interpolate", "nearest")


@dataclass(frozen=True)
class LibraryFile:
    """The ePSF grid of one library product, as stored."""

    product_id: int
    filename: str
    stamps: np.ndarray  # (n_positions, n, n)
    x: np.ndarray
    y: np.ndarray
    oversample: int


@dataclass(frozen=True)
class Selection:
    """One selected (or interpolated) ePSF and where it came from."""

    stamp: np.ndarray
    oversample: int
    product_id: int
    filename: str
    detector: str
    filter: str
    x: float
    y: float
    t_min: float
    t_max: float
    weights: dict[int, float]  # grid position -> weight

    @property
    def label(self) -> str:
        """How provenance names it: ``<file name>[position:weight,...]``."""
        w = ",".join(f"{k}:{v:.3f}" for k, v in sorted(self.weights.items()))
        return f"{self.filename}[{w}]"


_ROW = sa.text(
    """
    SELECT p.product_id, f.uri, f.filename, w.t_min, w.t_max FROM products p JOIN files f ON f.file_id = p.file_id
    JOIN (SELECT product_id, min(t_min) AS t_min, max(t_max) AS t_max, min(n_stars) AS n_stars FROM epsf
          GROUP BY product_id) w ON w.product_id = p.product_id
    WHERE p.product_type = :ptype AND p.release = 'live' AND p.detector = :det AND p.filter = :filt
      AND w.n_stars >= :min_stars
    ORDER BY CASE WHEN CAST(:mjd AS double precision) IS NULL THEN 0
                  WHEN :mjd BETWEEN w.t_min AND w.t_max THEN 0
                  ELSE least(abs(:mjd - w.t_min), abs(:mjd - w.t_max)) END, p.product_id DESC
    LIMIT 1
    """
)

_CACHE: dict[str, LibraryFile] = {}
_LOCK = threading.Lock()


def find_product(conn: sa.Connection, detector: str, filter_name: str, mjd: float | None, min_stars: int = 0
                 ) -> tuple[int, str, str, float, float] | None:
    """(product_id, uri, filename, t_min, t_max) of the library product for the detector, filter and time, among
    those whose every ePSF was built from at least ``min_stars`` star images."""
    row = conn.execute(_ROW, {"ptype": product_types.EPSF, "det": detector.upper(), "filt": filter_name.upper(),
                              "mjd": mjd, "min_stars": min_stars}).first()
    return None if row is None else (int(row[0]), str(row[1]), str(row[2]), float(row[3]), float(row[4]))


def read_library_file(path: str | Path, product_id: int = 0) -> LibraryFile:
    """Read a library ASDF (``EpsfRefModel``): the G2V stamps at focus 0 and their positions."""
    import roman_datamodels.datamodels as rdm

    with rdm.open(path) as m:
        psf = np.asarray(m.psf, dtype=np.float32)
        if psf.ndim != 5:
            raise ValueError(f"{path}: ePSF array has shape {psf.shape}; expected (focus, type, position, y, x)")
        return LibraryFile(product_id, Path(str(path)).name, psf[0, min(1, psf.shape[1] - 1)],
                           np.asarray(m.meta.pixel_x, float), np.asarray(m.meta.pixel_y, float),
                           int(m.meta.oversample))


def load_library_file(archive: Archive, product_id: int, uri: str, filename: str) -> LibraryFile:
    """The stamps of a stored library file (read once per process)."""
    with _LOCK:
        hit = _CACHE.get(uri)
    if hit is not None:
        return hit
    with tempfile.TemporaryDirectory(prefix="epsf-lib-") as tmp:
        lib = read_library_file(archive.store.local_file(uri, Path(tmp) / filename), product_id)
    with _LOCK:
        _CACHE[uri] = lib
    return lib


def select(archive: Archive, detector: str, filter_name: str, x: float | None, y: float | None,
           mjd: float | None = None, mode: str = "interpolate", min_stars: int = 0) -> Selection | None:
    """The library ePSF at detector pixel (x, y) of a detector and filter at time ``mjd`` (``None``: any time).

    ``x`` or ``y`` ``None``: the centre of the product's grid. ``min_stars``: only products whose ePSFs were all
    built from at least that many star images. Returns ``None`` when the library has no such ePSF of that detector
    and filter.
    """
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; use one of {', '.join(MODES)}")
    with archive.engine.connect() as conn:
        row = find_product(conn, detector, filter_name, mjd, min_stars)
    if row is None:
        return None
    pid, uri, filename, t_min, t_max = row
    lib = load_library_file(archive, int(pid), str(uri), str(filename))
    if x is None or y is None:
        x, y = float(np.mean(np.unique(lib.x))), float(np.mean(np.unique(lib.y)))
    weights = (bilinear_weights(lib.x, lib.y, x, y) if mode == "interpolate"
               else {nearest_index(lib.x, lib.y, x, y): 1.0})
    return Selection(combine(lib.stamps, weights).astype(np.float32), lib.oversample, int(pid), lib.filename,
                     detector.upper(), filter_name.upper(), float(x), float(y), float(t_min), float(t_max), weights)
