"""Source injection: draw artificial stars and Sérsic galaxies into copies of L3 mosaics, catalogue them with the
same :class:`~romanarchive.catalog.step.CatalogStep` (romancal's MultibandCatalogStep), match, and summarise
completeness and flux bias. (romancal's own ``inject_sources`` draws COSMOS-like galaxies only; the archive needs
stars too, and a grid it controls, to measure completeness per kind and magnitude.)

Sources are drawn with galsim (the band's galsim.roman PSF, convolved with a sheared Sérsic profile for galaxies) at
positions converted with the image's own WCS, in the image's unit (MJy/sr), with the same AB magnitude in every band
(flat f_nu). They are placed on a jittered grid over usable pixels that the original segmentation map leaves empty,
``spacing_arcsec`` apart, so each injected source is matched only against new detections. Injected images live in
memory only: nothing injected is ever written to the archive's store. The source's own photon noise is not added
(the image noise is already there); this slightly flatters completeness for bright sources only.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

import numpy as np
import sqlalchemy as sa
from astropy.table import Table
from pydantic import BaseModel, ConfigDict, Field

from romanarchive.catalog.config import CatalogConfig
from romanarchive.catalog.draw import draw_sources, mag_to_njy
from romanarchive.catalog.select import AB_ZP_NJY, CatalogResult, pixel_scale
from romanarchive.catalog.step import CatalogStep, LoadedImage, with_data
from romanarchive.db.tables import metadata


class InjectionConfig(BaseModel):
    """The injection grid and matching parameters."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    mags: tuple[float, ...] = Field(default=(21.0, 22.0, 23.0, 24.0, 25.0, 26.0, 27.0), description="AB magnitudes")
    points_per_mag: int = Field(default=12, ge=0, description="Point sources per magnitude")
    sersic_n: tuple[float, ...] = Field(default=(1.0, 4.0), description="Sérsic indices")
    r_half_arcsec: tuple[float, ...] = Field(default=(0.2, 0.5), description="Half-light radii")
    ellipticity: tuple[float, ...] = Field(default=(0.0, 0.4), description="Ellipticities 1 - b/a")
    spacing_arcsec: float = Field(default=3.0, gt=0, description="Minimum distance between injected sources")
    match_radius_arcsec: float = Field(default=0.2, gt=0, description="Injected-recovered match radius")
    seed: int = 1
    catalog: CatalogConfig = Field(default_factory=lambda: CatalogConfig(home_only=False))


@dataclass
class InjectionResult:
    """Injected sources with what was recovered, the completeness table, and both catalogs."""

    sources: Table
    completeness: Table
    catalog: CatalogResult
    original: CatalogResult


def injection_grid(cfg: InjectionConfig) -> list[dict[str, Any]]:
    """Every source to inject: ``points_per_mag`` stars and one galaxy per (n, r_half, e) for each magnitude."""
    out: list[dict[str, Any]] = []
    for mag in cfg.mags:
        out += [{"kind": "point", "mag": mag, "sersic_n": np.nan, "r_half": np.nan, "ellipticity": 0.0}] * \
            cfg.points_per_mag
        for n, r, e in itertools.product(cfg.sersic_n, cfg.r_half_arcsec, cfg.ellipticity):
            out.append({"kind": "sersic", "mag": mag, "sersic_n": n, "r_half": r, "ellipticity": e})
    return out


def _free_positions(segm: np.ndarray, usable: np.ndarray, step_px: float, rng: np.random.Generator,
                    clear_px: int) -> np.ndarray:
    """(x, y) centres of a jittered grid over pixels that are usable and at least ``clear_px`` from any segment."""
    from scipy.ndimage import binary_dilation, binary_erosion

    occupied = binary_dilation(segm > 0, iterations=clear_px) | ~binary_erosion(usable, iterations=clear_px)
    ny, nx = segm.shape
    xs = np.arange(step_px / 2, nx - step_px / 2, step_px)
    ys = np.arange(step_px / 2, ny - step_px / 2, step_px)
    gx, gy = np.meshgrid(xs, ys)
    jitter = step_px * 0.15
    gx = gx.ravel() + rng.uniform(-jitter, jitter, gx.size)
    gy = gy.ravel() + rng.uniform(-jitter, jitter, gy.size)
    ok = ~occupied[np.clip(np.round(gy).astype(int), 0, ny - 1), np.clip(np.round(gx).astype(int), 0, nx - 1)]
    pts = np.stack([gx[ok], gy[ok]], axis=1)
    return pts[rng.permutation(len(pts))]


def inject(images: list[LoadedImage], sources: Table, sca: int = 1) -> list[LoadedImage]:
    """Copies of ``images`` with ``sources`` (ra, dec, mag, kind, sersic_n, r_half, ellipticity, beta) drawn in."""
    out = []
    wcs = images[0].wcs
    scale = pixel_scale(wcs, images[0].data.shape)
    for im in images:
        data = np.array(im.data, dtype=np.float64)  # a copy: the original stays untouched
        finite = np.isfinite(data)
        work = np.where(finite, data, 0.0)
        draw_sources(work, wcs, im.band, sources, scale, sca=sca, l3_pixfrac=_pixfrac(im))
        out.append(with_data(im, np.where(finite, work, np.nan).astype(np.float32)))
    return out


def _pixfrac(image: LoadedImage) -> float | None:
    """The drizzle drop size of an L3 (its sources are drawn as the L3 PSF); ``None`` for an L2."""
    try:
        return float(image.model.meta.resample.pixfrac)
    except (AttributeError, KeyError, TypeError, ValueError):
        return None


def run_injection(images: list[LoadedImage], cfg: InjectionConfig | None = None,
                  references: dict[str, dict[str, Any]] | None = None) -> InjectionResult:
    """Inject the grid into ``images`` (one per band, one pixel grid), catalogue, match and summarise.

    Parameters
    ----------
    images
        The bands' L3 mosaics.
    cfg
        Grid, matching and catalog settings.
    references
        Per band ``{"apcorr": path, "epsf": path}`` for the catalog step.

    Raises
    ------
    ValueError
        When the image has no room for the grid.
    """
    from astropy import units as u
    from astropy.coordinates import SkyCoord

    cfg = cfg or InjectionConfig()
    step = CatalogStep(cfg.catalog, references)
    rng = np.random.default_rng(cfg.seed)
    wcs = images[0].wcs
    original = step.run(images).catalog
    scale = original.pixel_scale_arcsec
    usable = np.logical_or.reduce([np.isfinite(x.data) & (x.err > 0) for x in images])
    grid = injection_grid(cfg)
    pts = _free_positions(original.segmentation, usable, cfg.spacing_arcsec / scale, rng,
                          clear_px=int(np.ceil(1.0 / scale)))
    if len(pts) < len(grid):
        grid = [grid[i] for i in np.sort(rng.choice(len(grid), len(pts), replace=False))] if len(pts) else []
    if not grid:
        raise ValueError("the image has no free area to inject sources into")
    x, y = pts[: len(grid), 0], pts[: len(grid), 1]
    ra, dec = (np.asarray(v, dtype=float) for v in wcs.pixel_to_world_values(x, y))
    src = Table(rows=grid)
    src["inj_id"] = np.arange(len(src), dtype=np.int32)
    src["ra"], src["dec"], src["x"], src["y"] = ra % 360.0, dec, x, y
    src["beta"] = rng.uniform(0, 180, len(src))
    cat = step.run(inject(images, src)).catalog

    band = images[0].band.upper()
    key = band.lower()
    src["filter"] = band
    src["flux_in"] = mag_to_njy(src["mag"])
    src["recovered"] = np.zeros(len(src), bool)
    for name in ("mag_out", "flux_out", "sep"):
        src[name] = np.full(len(src), np.nan)
    src["point_like_out"] = np.zeros(len(src), bool)
    if len(cat):
        idx, sep, _ = SkyCoord(src["ra"] * u.deg, src["dec"] * u.deg).match_to_catalog_sky(
            SkyCoord(cat.columns["ra"] * u.deg, cat.columns["dec"] * u.deg))
        hit = sep.arcsec <= cfg.match_radius_arcsec
        src["recovered"] = hit
        src["sep"] = np.where(hit, sep.to_value(u.mas), np.nan)
        src["flux_out"] = np.where(hit, cat.columns[f"kron_{key}_flux"][idx], np.nan)
        src["mag_out"] = np.where(hit, cat.columns[f"kron_{key}_abmag"][idx], np.nan)
        src["point_like_out"] = hit & (np.asarray(cat.columns["is_extended"][idx]) == 0)
        for im in images:
            b = im.band.lower()
            src[f"flux_out_{b}"] = np.where(hit, cat.columns[f"kron_{b}_flux"][idx], np.nan)
    bands = [im.band.upper() for im in images]
    return InjectionResult(src, completeness_table(src, bands if len(cat) else []), cat, original)


def completeness_table(src: Table, bands: list[str]) -> Table:
    """Completeness, flux bias and scatter, astrometric scatter per (filter, kind, magnitude bin of width 1).

    Recovery is common to all bands (one detection image); the flux ratio uses each band's Kron flux
    (``flux_out_<band>``), as every band was injected with the same magnitude.
    """
    rows = []
    mags = np.asarray(src["mag"], float)
    lo_edges = np.floor(mags - 0.5) + 0.5
    for flt in bands:
        for kind in np.unique(src["kind"]):
            for lo in np.unique(lo_edges):
                sel = (src["kind"] == kind) & (lo_edges == lo)
                if not sel.any():
                    continue
                rec = sel & np.asarray(src["recovered"], bool)
                ratio = np.asarray(src[f"flux_out_{flt.lower()}"][rec] / src["flux_in"][rec], float)
                ratio = ratio[np.isfinite(ratio)]
                med = float(np.median(ratio)) if len(ratio) else np.nan
                rows.append({
                    "filter": str(flt), "kind": str(kind), "mag_lo": float(lo), "mag_hi": float(lo + 1.0),
                    "n_injected": int(sel.sum()), "n_recovered": int(rec.sum()),
                    "completeness": float(rec.sum() / sel.sum()),
                    "flux_bias": med - 1.0 if len(ratio) else np.nan,
                    "flux_scatter": float(1.4826 * np.median(np.abs(ratio - med))) if len(ratio) else np.nan,
                    "astrometric_scatter": float(np.sqrt(np.mean(np.asarray(src["sep"][rec], float) ** 2)))
                    if rec.any() else np.nan,
                })
    return Table(rows=rows) if rows else Table(names=("filter", "kind", "mag_lo"), dtype=(str, str, float))


def store_injection(conn: sa.Connection, result: InjectionResult, skycell: str, product_ids: list[int],
                    cfg: InjectionConfig) -> int:
    """Write the run, its sources and completeness rows (inside the caller's transaction); returns the run id."""
    runs, sources, comp = (metadata.tables[n] for n in ("injection_runs", "injected_sources",
                                                         "injection_completeness"))
    run_id = int(conn.execute(runs.insert().values(skycell=skycell, product_ids=product_ids,
                                                   parameters=cfg.model_dump(mode="json"))
                              .returning(runs.c.run_id)).scalar_one())

    def val(v: Any) -> Any:
        if isinstance(v, (np.floating, float)):
            return None if not np.isfinite(v) else float(v)
        return v.item() if isinstance(v, np.generic) else v

    src = result.sources
    cols = ["inj_id", "filter", "kind", "ra", "dec", "mag_in", "sersic_n", "r_half_in", "ellipticity_in",
            "recovered", "mag_out", "flux_in", "flux_out", "sep", "point_like_out"]
    rename = {"mag_in": "mag", "r_half_in": "r_half", "ellipticity_in": "ellipticity"}
    conn.execute(sources.insert(), [{"run_id": run_id, **{c: val(row[rename.get(c, c)]) for c in cols}}
                                    for row in src])
    ctab = result.completeness
    if len(ctab):
        conn.execute(comp.insert(), [{"run_id": run_id, "skycell": skycell, **{c: val(row[c]) for c in ctab.colnames}}
                                     for row in ctab])
    return run_id


def mag_of(flux_njy: np.ndarray) -> np.ndarray:
    """nJy -> AB magnitude (NaN for non-positive flux)."""
    f = np.asarray(flux_njy, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(f > 0, AB_ZP_NJY - 2.5 * np.log10(f), np.nan)
