"""ObsCore 1.1: the ``ivoa.obscore`` view over the archive's products.

The view itself is created by an Alembic migration (frozen SQL); this module documents its columns for TAP_SCHEMA
and VOTable output. A test checks the two agree, column for column.
"""

from __future__ import annotations

from romanarchive.db.registry import ColumnSpec, TableSpec

C = ColumnSpec
_OC = "obscore:"

OBSCORE = TableSpec(
    "obscore",
    "ObsCore 1.1 description of every Roman data product in the archive.",
    (
        C("dataproduct_type", "text", "Data product type (image, cube)", ucd="meta.code.class",
          utype=_OC + "ObsDataset.dataProductType", std=True, principal=True),
        C("calib_level", "smallint", "Calibration level 0-4", ucd="meta.code;obs.calib",
          utype=_OC + "ObsDataset.calibLevel", std=True, principal=True),
        C("obs_collection", "text", "Collection name", ucd="meta.id", utype=_OC + "DataID.Collection", std=True,
          principal=True),
        C("obs_id", "text", "Observation identifier", ucd="meta.id", utype=_OC + "DataID.observationID", std=True,
          principal=True),
        C("obs_publisher_did", "text", "Publisher dataset identifier", ucd="meta.ref.ivoid",
          utype=_OC + "Curation.PublisherDID", std=True, principal=True),
        C("access_url", "text", "URL to download the product", ucd="meta.ref.url",
          utype=_OC + "Access.Reference", std=True, principal=True),
        C("access_format", "text", "MIME type of the product", ucd="meta.code.mime",
          utype=_OC + "Access.Format", std=True, principal=True),
        C("access_estsize", "bigint", "Estimated size of the product", unit="kbyte", ucd="phys.size;meta.file",
          utype=_OC + "Access.Size", std=True, principal=True),
        C("target_name", "text", "Target name", ucd="meta.id;src", utype=_OC + "Target.Name", std=True),
        C("s_ra", "double", "Central right ascension, ICRS", unit="deg", ucd="pos.eq.ra",
          utype=_OC + "Char.SpatialAxis.Coverage.Location.Coord.Position2D.Value2.C1", std=True, principal=True),
        C("s_dec", "double", "Central declination, ICRS", unit="deg", ucd="pos.eq.dec",
          utype=_OC + "Char.SpatialAxis.Coverage.Location.Coord.Position2D.Value2.C2", std=True, principal=True),
        C("s_fov", "double", "Diameter of the covered region", unit="deg", ucd="phys.angSize;instr.fov",
          utype=_OC + "Char.SpatialAxis.Coverage.Bounds.Extent.diameter", std=True, principal=True),
        C("s_region", "spoly", "Sky region covered by the product", unit="deg", ucd="pos.outline;obs.field",
          utype=_OC + "Char.SpatialAxis.Coverage.Support.Area", std=True, indexed=True, principal=True),
        C("s_resolution", "double", "Spatial resolution (PSF FWHM)", unit="arcsec", ucd="pos.angResolution",
          utype=_OC + "Char.SpatialAxis.Resolution.Refval.value", std=True),
        C("s_xel1", "bigint", "Number of elements along the first spatial axis", ucd="meta.number",
          utype=_OC + "Char.SpatialAxis.numBins1", std=True),
        C("s_xel2", "bigint", "Number of elements along the second spatial axis", ucd="meta.number",
          utype=_OC + "Char.SpatialAxis.numBins2", std=True),
        C("t_xel", "bigint", "Number of elements along the time axis", ucd="meta.number",
          utype=_OC + "Char.TimeAxis.numBins", std=True),
        C("t_min", "double", "Start time (MJD)", unit="d", ucd="time.start;obs.exposure",
          utype=_OC + "Char.TimeAxis.Coverage.Bounds.Limits.StartTime", std=True, principal=True),
        C("t_max", "double", "Stop time (MJD)", unit="d", ucd="time.end;obs.exposure",
          utype=_OC + "Char.TimeAxis.Coverage.Bounds.Limits.StopTime", std=True, principal=True),
        C("t_exptime", "double", "Total exposure time", unit="s", ucd="time.duration;obs.exposure",
          utype=_OC + "Char.TimeAxis.Coverage.Support.Extent", std=True, principal=True),
        C("t_resolution", "double", "Temporal resolution", unit="s", ucd="time.resolution",
          utype=_OC + "Char.TimeAxis.Resolution.Refval.value", std=True),
        C("em_xel", "bigint", "Number of elements along the spectral axis", ucd="meta.number",
          utype=_OC + "Char.SpectralAxis.numBins", std=True),
        C("em_min", "double", "Start in spectral coordinates", unit="m", ucd="em.wl;stat.min",
          utype=_OC + "Char.SpectralAxis.Coverage.Bounds.Limits.LoLimit", std=True, principal=True),
        C("em_max", "double", "Stop in spectral coordinates", unit="m", ucd="em.wl;stat.max",
          utype=_OC + "Char.SpectralAxis.Coverage.Bounds.Limits.HiLimit", std=True, principal=True),
        C("em_res_power", "double", "Spectral resolving power", ucd="spect.resolution",
          utype=_OC + "Char.SpectralAxis.Resolution.ResolPower.refVal", std=True),
        C("o_ucd", "text", "UCD of the observable", ucd="meta.ucd", utype=_OC + "Char.ObservableAxis.ucd",
          std=True),
        C("pol_states", "text", "Polarization states", ucd="meta.code;phys.polarization",
          utype=_OC + "Char.PolarizationAxis.stateList", std=True),
        C("pol_xel", "bigint", "Number of polarization samples", ucd="meta.number",
          utype=_OC + "Char.PolarizationAxis.numBins", std=True),
        C("facility_name", "text", "Facility", ucd="meta.id;instr.tel",
          utype=_OC + "Provenance.ObsConfig.Facility.name", std=True, principal=True),
        C("instrument_name", "text", "Instrument", ucd="meta.id;instr",
          utype=_OC + "Provenance.ObsConfig.Instrument.name", std=True, principal=True),
        # Roman extensions
        C("product_id", "bigint", "Archive product identifier", ucd="meta.id", principal=True),
        C("level", "smallint", "Roman data level 0-5", ucd="meta.code.class"),
        C("filter", "text", "Optical element", ucd="instr.filter"),
        C("detector", "text", "WFI detector", ucd="instr.det"),
        C("release", "text", "Data release tag", ucd="meta.version"),
    ),
    schema="ivoa",
    published=True,
    table_type="view",
    utype="ivo://ivoa.net/std/obscore#table-1.1",
)
