"""The empirical PSF library: one ``epsf`` row per ePSF (one focal-plane grid point of one library product).

A library product (``products.product_type = 'wfi_epsf'``, level 2) is one ASDF file holding the ePSFs of one
detector, filter and time window on a grid of detector positions, as a roman_datamodels ``EpsfRefModel`` (so
romancal can use it through ``override_epsf``). Each grid point is a row here, with the selection keys (detector,
filter, position, time range) and its quality figures; the selection API
(:mod:`romanarchive.ingest.epsf_library`) reads the rows and the file.

Stamps follow romancal's ``epsf`` reference convention: oversampled, pixel-integrated, centred on the central
fine pixel and scaled by ``oversample**2``, so that a stamp sums to ``oversample**2`` times the share of a point
source's total flux inside it.
"""

from __future__ import annotations

from romanarchive.db.registry import ColumnSpec, TableSpec

C = ColumnSpec

EPSF = TableSpec(
    "epsf",
    "Empirical PSF library: one row per ePSF (a grid point of the detector of one library product), built from "
    "isolated stars on dithered L2 images of one detector, filter and time window.",
    (
        C("product_id", "bigint", "Library product holding the ePSF (products.product_id)", ucd="meta.id;meta.main",
          primary_key=True, principal=True, foreign_key="products.product_id"),
        C("position", "smallint", "Index of the grid point in the product's EpsfRefModel (psf[0, 0, position])",
          ucd="meta.number", primary_key=True, principal=True),
        C("detector", "varchar(8)", "WFI detector (WFI01..WFI18)", ucd="instr.det", nullable=False, principal=True,
          indexed=True),
        C("filter", "varchar(20)", "Optical element", ucd="instr.filter", nullable=False, principal=True),
        C("x", "double", "Detector column of the grid point (0-based pixel of the L2 image)", unit="pix",
          ucd="pos.cartesian.x;instr.det", nullable=False, principal=True),
        C("y", "double", "Detector row of the grid point (0-based pixel of the L2 image)", unit="pix",
          ucd="pos.cartesian.y;instr.det", nullable=False, principal=True),
        C("v2", "double", "Field position of the grid point: V2 of the telescope frame (NULL when unknown)",
          unit="arcsec", ucd="pos.cartesian.x;instr.fov"),
        C("v3", "double", "Field position of the grid point: V3 of the telescope frame (NULL when unknown)",
          unit="arcsec", ucd="pos.cartesian.y;instr.fov"),
        C("t_min", "double", "Start of the time window the ePSF applies to (MJD)", unit="d", ucd="time.start",
          nullable=False, principal=True, indexed=True),
        C("t_max", "double", "End of the time window the ePSF applies to (MJD)", unit="d", ucd="time.end",
          nullable=False, principal=True),
        C("oversample", "smallint", "Fine samples per native pixel along each axis", ucd="meta.number",
          nullable=False),
        C("stamp_size", "smallint", "Side of the stamp in fine samples (odd)", unit="pix", ucd="meta.number",
          nullable=False),
        C("n_images", "integer", "L2 images the stars came from", ucd="meta.number", nullable=False),
        C("n_stars", "integer", "Star images used in the fit (after rejection)", ucd="meta.number", nullable=False,
          principal=True),
        C("n_rejected", "integer", "Candidate star images rejected by the fit (outliers, neighbours, galaxies)",
          ucd="meta.number", nullable=False),
        C("snr", "double", "Combined signal-to-noise ratio of the stars used (quadrature sum)", ucd="stat.snr",
          principal=True),
        C("fwhm", "double", "FWHM of the ePSF (mean of the major and minor axes)", unit="pix",
          ucd="phys.angSize;instr.fov", principal=True),
        C("residual_rms", "double", "Median over the stars used of the RMS of (star - fitted ePSF) within 3 pix, "
          "as a fraction of the fitted peak", ucd="stat.fit.residual"),
        C("norm_fraction", "double", "Share of the total flux inside r = 4 pix (the model PSF's encircled energy), "
          "to which the ePSF's core is scaled so that PSF fits give total fluxes", ucd="arith.factor"),
        C("temperature", "double", "Detector temperature (engineering key; NULL until known)", unit="K",
          ucd="phys.temperature;instr.det"),
        C("jitter", "double", "RMS pointing jitter during the inputs (engineering key; NULL until known)",
          unit="mas", ucd="pos.posAng;stat.stdev"),
        C("created_at", "timestamptz", "When the ePSF was registered", ucd="time.creation", nullable=False,
          server_default="now()"),
    ),
    published=True,
)

TABLES: tuple[TableSpec, ...] = (EPSF,)
