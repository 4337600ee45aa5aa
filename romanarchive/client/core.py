"""`RomanArchive`: queries (TAP through pyvo), product lists (DataLink), downloads, SODA cutouts, light curves and
Level 5 submissions. Every query builder takes ``get_query_payload=True`` and then returns the request it would send,
touching no network (as astroquery's methods do)."""

from __future__ import annotations

import hashlib
import io
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import astropy.units as u
import numpy as np
from astropy.coordinates import Angle, SkyCoord
from astropy.table import Table, vstack

from romanarchive.client.config import conf
from romanarchive.level5.client import submit

DID_PREFIX = "ivo://romanarchive/product?"
#: What `RomanArchive.cone` searches by default: the static-sky object catalog.
OBJECTS_TABLE = "roman.objects"
_OBSCORE_COLS = ("product_id, obs_id, obs_publisher_did, calib_level, \"level\", dataproduct_type, filter, detector, "
                 "s_ra, s_dec, t_min, t_max, t_exptime, em_min, em_max, access_url, access_format, access_estsize")


def _coord(coordinates: Any) -> SkyCoord:
    if isinstance(coordinates, SkyCoord):
        return coordinates.icrs
    if isinstance(coordinates, tuple | list) and len(coordinates) == 2:
        return SkyCoord(*coordinates, unit="deg", frame="icrs")
    return SkyCoord(coordinates, unit=(u.hourangle, u.deg) if ":" in str(coordinates) else u.deg, frame="icrs")


def _deg(radius: Any, default_unit: u.Unit = u.arcmin) -> float:
    return float(Angle(radius, default_unit).deg)


def _str(value: Any) -> str:
    return "'" + str(value).replace("'", "''") + "'"


def _product_ids(products: Any) -> list[int]:
    """Product ids from ids, DIDs, a Table/Row with ``product_id`` or ``obs_publisher_did``, or a list of those."""
    if isinstance(products, Table) or hasattr(products, "colnames"):
        col = "product_id" if "product_id" in products.colnames else "obs_publisher_did"
        products = list(np.atleast_1d(products[col]))
    if isinstance(products, str | int | np.integer):
        products = [products]
    out = []
    for p in products:
        text = str(p)
        text = text[len(DID_PREFIX):] if text.startswith(DID_PREFIX) else text
        if not text.isdigit():
            raise ValueError(f"{p!r} is not a product id or identifier of this archive")
        out.append(int(text))
    return out


def _error_text(resp: Any) -> str:
    """The message of an error answer: a DALI VOTable's QUERY_STATUS text, else the body."""
    m = re.search(r'<INFO name="QUERY_STATUS" value="ERROR">(.*?)</INFO>', resp.text, re.S)
    return (m.group(1) if m else resp.text).strip()[:500]


class RomanArchive:
    """Client of one archive server.

    Parameters
    ----------
    server
        Base URL; defaults to ``conf.server`` (astropy configuration).
    session
        A ``requests`` session (pyvo's by default), e.g. carrying authentication.
    """

    def __init__(self, server: str | None = None, session: Any = None) -> None:
        self.server = (server or conf.server).rstrip("/")
        if session is None:
            from pyvo.utils.http import create_session

            session = create_session()
        self.session = session

    # ------------------------------------------------------------------------------------------------ services
    @property
    def tap(self) -> Any:
        """The pyvo TAP service."""
        import pyvo

        return pyvo.dal.TAPService(self.server + "/tap", session=self.session)

    def _run(self, payload: dict[str, Any]) -> Table:
        return self.tap.run_sync(payload["QUERY"], maxrec=payload.get("MAXREC")).to_table()

    # ------------------------------------------------------------------------------------------------ queries
    def query_region(self, coordinates: Any, radius: Any = 3 * u.arcmin, *, maxrec: int | None = None,
                     get_query_payload: bool = False, **criteria: Any) -> Table | dict[str, Any]:
        """Products whose footprint overlaps a cone (ObsCore rows through TAP).

        Parameters
        ----------
        coordinates
            A `~astropy.coordinates.SkyCoord`, ``(ra, dec)`` in degrees or a coordinate string.
        radius
            Cone radius (a number is arcminutes).
        maxrec
            Row limit.
        get_query_payload
            Return the TAP request instead of running it.
        **criteria
            Further conditions, as for `query_criteria`.
        """
        return self.query_criteria(coordinates=coordinates, radius=radius, maxrec=maxrec,
                                   get_query_payload=get_query_payload, **criteria)  # fmt: skip

    def query_criteria(self, *, coordinates: Any = None, radius: Any = 3 * u.arcmin, maxrec: int | None = None,
                       get_query_payload: bool = False, **criteria: Any) -> Table | dict[str, Any]:
        """Products matching criteria: ObsCore column = value (a list means any of), ``(lo, hi)`` tuples for
        ranges, e.g. ``filter="F158"``, ``calib_level=2``, ``t_min=(61000, 61002)``.

        Returns
        -------
        astropy.table.Table or dict
            The rows, or the TAP request (``get_query_payload=True``).
        """
        where = []
        if coordinates is not None:
            c = _coord(coordinates)
            where.append(f"1 = INTERSECTS(s_region, CIRCLE('ICRS', {float(c.ra.deg)!r}, {float(c.dec.deg)!r}, "
                         f"{_deg(radius)!r}))")  # fmt: skip
        for name, value in criteria.items():
            if not name.isidentifier():
                raise ValueError(f"bad column name {name!r}")
            col = f'"{name}"' if name == "level" else name
            if isinstance(value, tuple):
                lo, hi = value
                where.append(f"{col} BETWEEN {float(lo)!r} AND {float(hi)!r}")
            elif isinstance(value, list):
                where.append(f"{col} IN ({', '.join(_str(v) if isinstance(v, str) else repr(v) for v in value)})")
            else:
                where.append(f"{col} = {_str(value) if isinstance(value, str) else repr(value)}")
        if not where:
            raise ValueError("give coordinates or at least one criterion")
        query = f"SELECT {_OBSCORE_COLS} FROM ivoa.obscore WHERE {' AND '.join(where)} ORDER BY product_id"
        payload: dict[str, Any] = {"REQUEST": "doQuery", "LANG": "ADQL", "QUERY": query}
        if maxrec is not None:
            payload["MAXREC"] = int(maxrec)
        return payload if get_query_payload else self._run(payload)

    def cone(self, coordinates: Any, radius: Any = 1 * u.arcmin, *, table: str | None = OBJECTS_TABLE,
             release: str | None = "live", columns: str = "*", maxrec: int | None = None, verbosity: int = 2,
             get_query_payload: bool = False) -> Table | dict[str, Any]:
        """Catalog rows within a cone, nearest first.

        By default this searches the archive's object catalog (``roman.objects``, the rows of the ``live``
        release) through TAP, adding a ``dist`` column (degrees). ``table=None`` asks the server's Simple Cone
        Search (``/scs``, through pyvo's SCS client) instead, over whatever table the server serves there.

        Parameters
        ----------
        coordinates
            A `~astropy.coordinates.SkyCoord`, ``(ra, dec)`` in degrees or a coordinate string.
        radius
            Cone radius (a number is arcminutes).
        table
            Published table with ``ra`` and ``dec`` columns (e.g. ``roman.objects``, ``roman.gaia_dr3_bright``),
            or None for ``/scs``.
        release
            Data release of ``roman.objects`` rows (``live``: the catalog as it is now); None for every release.
            Only used for ``roman.objects``.
        columns
            ADQL select list (TAP only).
        maxrec
            Row limit (TAP only).
        verbosity
            SCS VERB, 1 to 3 (``/scs`` only).
        get_query_payload
            Return the request instead of running it.
        """
        c = _coord(coordinates)
        ra, dec, sr = float(c.ra.deg), float(c.dec.deg), _deg(radius)
        if table is None:
            payload: dict[str, Any] = {"RA": ra, "DEC": dec, "SR": sr, "VERB": verbosity}
            if get_query_payload:
                return payload
            import pyvo

            scs = pyvo.dal.SCSService(self.server + "/scs", session=self.session)
            return scs.search((ra, dec), sr, verbosity=verbosity).to_table()
        if not all(part.isidentifier() for part in table.split(".")):
            raise ValueError(f"bad table name {table!r}")
        where = [f"1 = CONTAINS(POINT('ICRS', ra, dec), CIRCLE('ICRS', {ra!r}, {dec!r}, {sr!r}))"]
        if release is not None and table.lower() == OBJECTS_TABLE:
            where.append(f"release = {_str(release)}")
        query = (f"SELECT {columns}, DISTANCE(POINT('ICRS', ra, dec), POINT('ICRS', {ra!r}, {dec!r})) AS dist "
                 f"FROM {table} WHERE {' AND '.join(where)} ORDER BY dist")
        payload = {"REQUEST": "doQuery", "LANG": "ADQL", "QUERY": query}
        if maxrec is not None:
            payload["MAXREC"] = int(maxrec)
        return payload if get_query_payload else self._run(payload)

    # ----------------------------------------------------------------------------------------------- products
    def get_product_list(self, products: Any, *, get_query_payload: bool = False) -> Table | dict[str, Any]:
        """DataLink links of products (ids, DIDs or a query result): the file, its inputs/derivations, preview
        and cutout service, one row per link."""
        ids = [f"{DID_PREFIX}{p}" for p in _product_ids(products)]
        payload = {"ID": ids}
        if get_query_payload:
            return payload
        from pyvo.dal.adhoc import DatalinkService

        svc = DatalinkService(self.server + "/datalink/links", session=self.session)
        tables = [svc.run_sync(i).to_table() for i in ids]
        out = vstack(tables) if len(tables) > 1 else tables[0]
        ok = np.array([not str(m) or str(m) == "--" for m in out["error_message"]], bool)
        if not ok.any():
            raise LookupError(f"no product found: {out['error_message'][0]}")
        return out

    def download_products(self, products: Any, download_dir: str | Path = ".", *,
                          get_query_payload: bool = False) -> Table | dict[str, Any]:
        """Download product files (ids, DIDs or a query result) into ``download_dir``.

        Returns
        -------
        astropy.table.Table
            Manifest: product_id, Local Path, Status (COMPLETE or ERROR), Message, sha256.
        """
        urls = [(pid, f"{self.server}/files/{pid}") for pid in _product_ids(products)]
        if get_query_payload:
            return {"urls": [u_ for _, u_ in urls]}
        folder = Path(download_dir)
        folder.mkdir(parents=True, exist_ok=True)
        rows = []
        for pid, url in urls:
            try:
                path, digest = self._fetch(url, folder)
                rows.append((pid, str(path), "COMPLETE", "", digest))
            except Exception as exc:  # noqa: BLE001 - reported in the manifest, as astroquery does
                rows.append((pid, "", "ERROR", str(exc), ""))
        return Table(rows=rows, names=("product_id", "Local Path", "Status", "Message", "sha256"),
                     dtype=(np.int64, str, str, str, str))  # fmt: skip

    def _fetch(self, url: str, folder: Path, name: str | None = None, params: dict[str, Any] | None = None) -> \
            tuple[Path, str]:  # fmt: skip
        with self.session.get(url, params=params, stream=True, timeout=conf.timeout) as resp:
            if resp.status_code >= 400:
                raise OSError(f"HTTP {resp.status_code}: {_error_text(resp)}")
            if name is None:
                disp = resp.headers.get("Content-Disposition", "")
                name = disp.split("filename=", 1)[1].strip('"') if "filename=" in disp else url.rsplit("/", 1)[-1]
            path = folder / Path(name).name
            digest = hashlib.sha256()
            tmp = path.with_suffix(path.suffix + ".part")
            with open(tmp, "wb") as fh:
                for chunk in resp.iter_content(1 << 20):
                    fh.write(chunk)
                    digest.update(chunk)
            tmp.replace(path)
        return path, digest.hexdigest()

    def cutout(self, product: Any, *, circle: Sequence[float] | None = None, polygon: Sequence[float] | None = None,
               band: Sequence[float] | None = None, fmt: str = "asdf", download_dir: str | Path = ".",
               get_query_payload: bool = False) -> Path | dict[str, Any]:
        """SODA cutout of a calibrated image.

        Parameters
        ----------
        product
            Product id or DID.
        circle
            ``(ra, dec, radius)`` in degrees.
        polygon
            ``(ra1, dec1, ra2, dec2, ...)`` in degrees.
        band
            ``(lo, hi)`` wavelengths in metres.
        fmt
            ``asdf`` or ``fits``.
        download_dir
            Where to write the file.
        get_query_payload
            Return the SODA parameters instead.

        Returns
        -------
        pathlib.Path
            The cutout file.
        """
        (pid,) = _product_ids(product)
        payload: dict[str, Any] = {"ID": f"{DID_PREFIX}{pid}",
                                   "RESPONSEFORMAT": {"asdf": "application/x-asdf", "fits": "application/fits"}[fmt]}
        for key, val in (("CIRCLE", circle), ("POLYGON", polygon), ("BAND", band)):
            if val is not None:
                payload[key] = " ".join(repr(float(v)) for v in val)
        if get_query_payload:
            return payload
        folder = Path(download_dir)
        folder.mkdir(parents=True, exist_ok=True)
        path, _ = self._fetch(self.server + "/soda/sync", folder, None, payload)
        return path

    # ------------------------------------------------------------------------------------------ other services
    def lightcurve(self, source_id: int | str, *, format: str = "votable",
                   get_query_payload: bool = False) -> Any:
        """Light curve of a catalogued source (``GET /lightcurve?source_id=...&format=...``).

        Returns
        -------
        astropy.table.Table, dict or bytes
            A Table for ``votable`` and ``csv``, the decoded document for ``json``, PNG bytes for ``png``.
        """
        payload = {"source_id": str(source_id), "format": format}
        if get_query_payload:
            return payload
        resp = self.session.get(self.server + "/lightcurve", params=payload, timeout=conf.timeout)
        if resp.status_code >= 400:
            raise LookupError(f"light curve of {source_id}: HTTP {resp.status_code}: {_error_text(resp)}")
        if format == "json":
            return resp.json()
        if format == "png":
            return resp.content
        return Table.read(io.BytesIO(resp.content), format={"csv": "ascii.csv"}.get(format, format))

    def epsf(self, detector: str, filter: str, x: float | None = None, y: float | None = None, *,
             time: float | str | None = None, mode: str = "interpolate", jitter: float = 0.0, model: bool = False,
             get_query_payload: bool = False) -> Any:
        """An ePSF of the archive's empirical PSF library (``GET /epsf``).

        Parameters
        ----------
        detector, filter
            e.g. ``"WFI01"``, ``"F158"``.
        x, y
            Detector pixel (0-based); default the centre of the library's grid.
        time
            MJD or ISO date; the library product whose time window holds it (else the nearest) is used.
        mode
            ``interpolate`` (bilinear between grid points) or ``nearest``.
        jitter
            Extra Gaussian jitter to convolve with, mas RMS per axis.
        model
            Return a photutils ``ImagePSF`` (flux 1 = total flux) instead of the array.

        Returns
        -------
        (numpy.ndarray, dict) or photutils.psf.ImagePSF
            The oversampled stamp (romancal's ``epsf`` convention: scaled by ``oversample**2``) and how it was
            selected (product id, grid weights, oversampling, time window).
        """
        payload: dict[str, str] = {"detector": detector, "filter": filter, "mode": mode, "format": "asdf"}
        if x is not None and y is not None:
            payload |= {"x": repr(float(x)), "y": repr(float(y))}
        if time is not None:
            payload["time"] = str(time)
        if jitter:
            payload["jitter"] = repr(float(jitter))
        if get_query_payload:
            return payload
        resp = self.session.get(self.server + "/epsf", params=payload, timeout=conf.timeout)
        if resp.status_code >= 400:
            raise LookupError(f"ePSF of {detector} {filter}: HTTP {resp.status_code}: {_error_text(resp)}")
        import asdf

        with asdf.open(io.BytesIO(resp.content), lazy_load=False, memmap=False) as af:
            node = dict(af.tree["epsf"])
            stamp = np.asarray(node.pop("psf"), dtype=np.float32)
        if model:
            from photutils.psf import ImagePSF

            return ImagePSF(stamp, oversampling=int(node["oversample"]))
        return stamp, node

    def submit_level5(self, paths: str | Path | Iterable[str | Path], token: str | None = None, *,
                      get_query_payload: bool = False) -> dict[str, Any]:
        """Submit a Level 5 product (delegates to `romanarchive.level5.client.submit`)."""
        items = [str(paths)] if isinstance(paths, str | Path) else [str(p) for p in paths]
        if get_query_payload:
            return {"paths": items, "server": self.server, "token": "***" if token else None}
        return submit(items, self.server, token)
