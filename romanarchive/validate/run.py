"""Run every check of the validation on one archive and truth catalogue; return the :class:`Report`."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from romanarchive.archive import Archive
from romanarchive.db import product_types
from romanarchive.db.tables_catalog import CATALOG_BANDS, OBJECTS
from romanarchive.validate import catalog_checks, l2catalog, photometry, timedomain
from romanarchive.validate.inputs import (
    EmptyArchiveError,
    apcorr_files,
    catalogued_skycells,
    dia_objects,
    dia_sources,
    epoch_times,
    failed_jobs,
    forced_photometry_means,
    job_states,
    l2_sources,
    l3_products,
    light_curve_sources,
    light_curves,
    load_objects,
    local_file,
    products,
    read_image,
    validate_model,
    variability,
)
from romanarchive.validate.matching import load_truth
from romanarchive.validate.peer import completeness_figures, scan_l3
from romanarchive.validate.report import Report
from romanarchive.validate.stats import Figure


def validate_archive(archive: Archive, truth_path: Path, release: str = "live", survey: Path | None = None,
                     run_peer: bool = True, max_l2: int = 40, progress: bool = True) -> Report:
    """Compare an archive's catalog, light curves and DIA sources with a simulation's truth.

    Parameters
    ----------
    archive
        The archive (read only).
    truth_path
        ``truth.ecsv``, or the survey folder holding ``truth/truth.ecsv``.
    release
        Catalog release to validate.
    survey
        The simulated survey's folder, for its ``refs/`` apcorr files (else the archive's registered ones).
    run_peer
        Run Source Extractor on every live L3 for the completeness comparison.
    max_l2
        L2 images searched for SATURATED DQ pixels near bright stars (the first ``max_l2`` by id).
    progress
        Show progress bars (standard error).

    Raises
    ------
    romanarchive.validate.matching.TruthError
        No readable truth catalogue.
    romanarchive.validate.inputs.EmptyArchiveError
        The archive has neither catalog rows nor L3 mosaics.
    """
    t0 = time.perf_counter()
    truth = load_truth(truth_path)
    with archive.engine.connect() as conn:
        objects = load_objects(conn, release)
        l3 = l3_products(conn)
        l2 = products(conn, product_types.L2)
        catalogued = catalogued_skycells(conn)
        failed, states = failed_jobs(conn), job_states(conn)
        forced, with_lc = forced_photometry_means(conn), light_curve_sources(conn)
        dia, epochs, dia_objs = dia_sources(conn), epoch_times(conn), dia_objects(conn)
        lcs, var = light_curves(conn, release), variability(conn)
        apcorr_paths = apcorr_files(survey, archive, conn)
        l2_rows = l2_sources(conn)
    n_rows = len(objects.get("ra", ()))
    if n_rows == 0 and not l3:
        raise EmptyArchiveError(f"the archive at {archive.url} has no catalog rows (release {release!r}) and no L3 "
                           "mosaics: run the pipeline first (`romanarchive worker`)")
    report = Report(archive.url, str(truth.path), release)
    figs = report.figures
    filters = {p.filter.upper() for p in l3} or set(truth.filters)
    bands = [b for b in CATALOG_BANDS if b in filters and b in truth.filters]
    ra, dec = (np.asarray(objects.get(k, np.empty(0)), dtype=float) for k in ("ra", "dec"))
    match = catalog_checks.match_catalog(truth, ra, dec)

    # L2: SATURATED pixels near bright stars, and one image's unit.
    dq_images: list[tuple[Any, np.ndarray]] = []
    l2_meta, l2_invalid = None, ""
    for i, p in enumerate(tqdm(l2[:max_l2], desc="L2 DQ", unit="image", disable=not progress or len(l2) < 2)):
        with local_file(archive, p) as path:
            image = read_image(path, with_dq=True)
            if i == 0:
                l2_meta, l2_invalid = image.meta, validate_model(path)
        if image.dq is not None:
            dq_images.append((image, image.dq))
    dq_sat = catalog_checks.dq_saturated_truth(truth, dq_images) if dq_images else None
    del dq_images

    # L3: coverage and Source Extractor.
    with tqdm(total=len(l3), desc="L3 + source-extractor" if run_peer else "L3", unit="image",
              disable=not progress or not l3) as bar:
        scan = scan_l3(archive, l3, truth, run_peer, progress=bar.update)
    covered = np.zeros(len(truth.table), dtype=bool)
    for cov in scan.coverage.values():
        covered |= cov

    saturated = catalog_checks.saturated_stars(truth, dq_sat)
    figs += catalog_checks.purity_figures(objects, match)
    figs += catalog_checks.bright_star_figures(truth, ra, dec, match, saturated, dq_sat)
    figs += catalog_checks.duplicate_figures(ra, dec, objects.get("skycell"), match, truth)
    figs += catalog_checks.skycell_figures({p.obs_id for p in l3}, catalogued, failed, states)
    figs += catalog_checks.classification_figures(objects, truth, match)
    figs += completeness_figures(truth, match.truth_row >= 0, scan, report.plot)
    if scan.peer is not None:
        figs.append(Figure("completeness", "source-extractor wall time per L3", scan.peer_wall_s / max(len(l3), 1),
                           unit="s"))

    apcorr = {}
    for band, path in apcorr_paths.items():
        apcorr[band] = photometry.read_apcorr(path, band)
    figs += photometry.image_unit_figures(2, l2_meta, l2_invalid)
    figs += photometry.image_unit_figures(3, scan.meta, scan.invalid)
    figs += photometry.catalog_unit_figures(objects, bands, {c.name: c.unit for c in OBJECTS.columns})
    figs += photometry.apcorr_figures(apcorr)
    figs += photometry.flux_figures(objects, truth, match.truth_row, bands, apcorr, forced, report.plot)
    figs += photometry.astrometry_figures(objects, truth, match.truth_row, bands, report.plot)
    figs += l2catalog.l2_catalog_figures(l2_rows, truth)

    figs += timedomain.light_curve_figures(objects, truth, match.truth_row, covered, with_lc)
    figs += timedomain.variability_figures(var, objects, truth, match.truth_row)
    figs += timedomain.flux_scale_figures(lcs, objects, truth, match.truth_row)
    figs += timedomain.dia_figures(dia, truth, covered, epochs)
    figs += timedomain.dia_object_figures(dia_objs, objects, truth, match.truth_row)

    report.plot["sky"] = {"ra": ra, "dec": dec, "real": match.row_real, "truth_ra": truth.ra[covered],
                          "truth_dec": truth.dec[covered], "sat_ra": truth.ra[saturated],
                          "sat_dec": truth.dec[saturated]}
    report.wall_time_s = time.perf_counter() - t0
    return report

