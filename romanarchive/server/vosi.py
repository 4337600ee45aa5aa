"""VOSI documents: capabilities (TAPRegExt, SCS, ObsCore, SIA2, DataLink, SODA), availability and tables,
generated from the registry."""

from __future__ import annotations

from datetime import UTC, datetime

from romanarchive.tap import formats, schema, scs
from romanarchive.tap.service import TapConfig
from romanarchive.tap.votable import xml_text

_XSI = 'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"'
_TR = "ivo://ivoa.net/std/TAPRegExt#"

_EPOCH_ARGS = ("ra DOUBLE PRECISION, dec DOUBLE PRECISION, parallax DOUBLE PRECISION, pmra DOUBLE PRECISION, "
               "pmdec DOUBLE PRECISION, radial_velocity DOUBLE PRECISION, ref_epoch DOUBLE PRECISION, "
               "out_epoch DOUBLE PRECISION")
_EPOCH_DOC = ("ra, dec [deg], parallax [mas], pmra (mu_alpha*), pmdec [mas/yr], radial_velocity [km/s] at ref_epoch "
              "propagated rigorously (Hipparcos vol. 1 sect. 1.5.5) to out_epoch (Julian years); NULL parallax or "
              "radial_velocity is taken as 0, NULL ra, dec, pmra, pmdec or epochs give NULL (IVOA UDF catalogue)")
#: User-defined functions the ADQL translator implements, as TAPRegExt declares them. An array return type is written
#: with its length in parentheses, as the CDS ADQL library (used by taplint) parses type names.
UDFS = (
    (f"ivo_epoch_prop({_EPOCH_ARGS}) -> DOUBLE PRECISION(6)",
     f"The astrometric parameters {{ra, dec, parallax, pmra, pmdec, radial_velocity}} at out_epoch: {_EPOCH_DOC}."),
    (f"ivo_epoch_prop_pos({_EPOCH_ARGS}) -> POINT",
     f"The position at out_epoch: {_EPOCH_DOC}."),
    ("ivo_healpix_index(hpxorder INTEGER, ra DOUBLE PRECISION, dec DOUBLE PRECISION) -> BIGINT",
     "HEALPix nested index at the given order of a position in degrees (IVOA UDF catalogue)."),
    ("ivo_healpix_index(hpxorder INTEGER, p POINT) -> BIGINT",
     "HEALPix nested index at the given order of a point (IVOA UDF catalogue)."),
    ("ivo_healpix_center(hpxorder INTEGER, hpxindex BIGINT) -> POINT",
     "Centre of a nested HEALPix cell (IVOA UDF catalogue)."),
)
GEOMETRY = ("POINT", "CIRCLE", "BOX", "POLYGON", "CONTAINS", "INTERSECTS", "DISTANCE", "AREA", "CENTROID", "COORD1",
            "COORD2", "COORDSYS")  # fmt: skip
ADQL_FEATURES = {
    "features-adql-string": ("LOWER", "UPPER", "ILIKE"),
    "features-adql-sets": ("UNION", "EXCEPT", "INTERSECT"),
    "features-adql-common-table": ("WITH",),
    "features-adql-type": ("CAST",),
    "features-adql-offset": ("OFFSET",),
}
_OUTPUTS = (
    ("application/x-votable+xml", "votable", "ivo://ivoa.net/std/TAPRegExt#output-votable-binary2"),
    ("application/x-votable+xml;serialization=tabledata", "votable/td",
     "ivo://ivoa.net/std/TAPRegExt#output-votable-td"),
    ("text/csv", "csv", None),
    ("text/tab-separated-values", "tsv", None),
    ("application/fits", "fits", None),
    ("application/vnd.apache.parquet", "parquet", None),
)


#: (standardID, interface version, path under the server root) of the data-access services (romanarchive.dal).
DAL_SERVICES = (
    ("ivo://ivoa.net/std/SIA#query-2.0", "2.0", "/sia2/query"),
    ("ivo://ivoa.net/std/DataLink#links-1.1", "1.1", "/datalink/links"),
    ("ivo://ivoa.net/std/SODA#sync-1.0", "1.0", "/soda/sync"),
)


def _dal_cap(standard_id: str, version: str, url: str) -> str:
    # Plain vr:Capability with a ParamHTTP interface, as for cone search.
    return (f'  <capability standardID="{standard_id}">\n'
            f'    <interface xsi:type="vs:ParamHTTP" role="std" version="{version}">'
            f'<accessURL use="base">{xml_text(url)}</accessURL></interface>\n  </capability>\n')


def _vosi_cap(base: str, kind: str, path: str) -> str:
    return (f'  <capability standardID="ivo://ivoa.net/std/VOSI#{kind}">\n'
            f'    <interface xsi:type="vs:ParamHTTP"><accessURL use="full">{xml_text(base + path)}</accessURL>'
            "</interface>\n  </capability>\n")


def capabilities(base: str, root: str, config: TapConfig) -> str:
    """The VOSI capabilities of the TAP service at ``base`` (SCS is at ``root/scs``)."""
    feats = "".join(
        f'      <languageFeatures type="{_TR}features-udf">\n'
        + "".join(f"        <feature><form>{xml_text(form)}</form><description>{xml_text(desc)}</description>"
                  "</feature>\n" for form, desc in UDFS)
        + "      </languageFeatures>\n"
        for _ in (0,)
    )
    feats += (f'      <languageFeatures type="{_TR}features-adqlgeo">\n'
              + "".join(f"        <feature><form>{g}</form></feature>\n" for g in GEOMETRY)
              + "      </languageFeatures>\n")  # fmt: skip
    for key, forms in ADQL_FEATURES.items():
        feats += (f'      <languageFeatures type="ivo://ivoa.net/std/TAPRegExt#{key}">\n'
                  + "".join(f"        <feature><form>{f}</form></feature>\n" for f in forms)
                  + "      </languageFeatures>\n")  # fmt: skip
    outputs = "".join(
        f"    <outputFormat{f' ivo-id={chr(34)}{ivo}{chr(34)}' if ivo else ''}><mime>{xml_text(mime)}</mime>"
        f"<alias>{alias}</alias></outputFormat>\n"
        for mime, alias, ivo in _OUTPUTS
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<vosi:capabilities xmlns:vosi="http://www.ivoa.net/xml/VOSICapabilities/v1.0" '
        'xmlns:vr="http://www.ivoa.net/xml/VOResource/v1.0" '
        'xmlns:vs="http://www.ivoa.net/xml/VODataService/v1.1" xmlns:tr="http://www.ivoa.net/xml/TAPRegExt/v1.0" '
        f'{_XSI}>\n'
        '  <capability standardID="ivo://ivoa.net/std/TAP" xsi:type="tr:TableAccess">\n'
        f'    <interface xsi:type="vs:ParamHTTP" role="std" version="1.1">'
        f'<accessURL use="base">{xml_text(base)}</accessURL></interface>\n'
        '    <dataModel ivo-id="ivo://ivoa.net/std/ObsCore#core-1.1">ObsCore-1.1</dataModel>\n'
        "    <language>\n      <name>ADQL</name>\n"
        '      <version ivo-id="ivo://ivoa.net/std/ADQL#v2.0">2.0</version>\n'
        '      <version ivo-id="ivo://ivoa.net/std/ADQL#v2.1">2.1</version>\n'
        "      <description>ADQL 2.1, translated to PostgreSQL with pgsphere and q3c</description>\n"
        f"{feats}    </language>\n"
        f"{outputs}"
        f'    <uploadMethod ivo-id="{_TR}upload-inline"/>\n'
        f'    <uploadMethod ivo-id="{_TR}upload-http"/>\n'
        f'    <uploadMethod ivo-id="{_TR}upload-https"/>\n'
        f"    <retentionPeriod><default>{config.destruction_s}</default>"
        f"<hard>{config.destruction_s * 4}</hard></retentionPeriod>\n"
        f"    <executionDuration><default>{config.default_duration_s}</default>"
        f"<hard>{config.max_duration_s}</hard></executionDuration>\n"
        f'    <outputLimit><default unit="row">{config.default_maxrec}</default>'
        f'<hard unit="row">{config.hard_maxrec}</hard></outputLimit>\n'
        f'    <uploadLimit><hard unit="byte">{config.upload_limit_bytes}</hard></uploadLimit>\n'
        "  </capability>\n"
        + _vosi_cap(base, "capabilities", "/capabilities")
        + _vosi_cap(base, "availability", "/availability")
        + _vosi_cap(base, "tables", "/tables")
        + '  <capability standardID="ivo://ivoa.net/std/DALI#examples">\n'
        f'    <interface xsi:type="vr:WebBrowser"><accessURL use="full">{xml_text(base)}/examples</accessURL>'
        "</interface>\n  </capability>\n"
        # Plain vr:Capability: the ConeSearch schema (cs:ConeSearch) is unknown to common validators.
        + '  <capability standardID="ivo://ivoa.net/std/ConeSearch">\n'
        f"    <description>{xml_text(_cone_description())}</description>\n"
        f'    <interface xsi:type="vs:ParamHTTP" role="std"><accessURL use="base">{xml_text(root)}/scs?'
        "</accessURL></interface>\n"
        "  </capability>\n"
        + "".join(_dal_cap(std, version, f"{root}{path}") for std, version, path in DAL_SERVICES)
        + "</vosi:capabilities>\n"
    )


def _cone_description() -> str:
    cone = scs.cone_table()
    where = f" where {cone.condition}" if cone.condition else ""
    return (f"Simple Cone Search 1.03 over {cone.table}{where}: identifier {cone.id_column}, position "
            f"({cone.ra_column}, {cone.dec_column}), SR at most {scs.MAX_SR:g} degrees.")


def availability(available: bool, note: str) -> str:
    """VOSI availability."""
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<vosi:availability xmlns:vosi="http://www.ivoa.net/xml/VOSIAvailability/v1.0">\n'
        f"  <vosi:available>{'true' if available else 'false'}</vosi:available>\n"
        f"  <vosi:upSince>{datetime.now(UTC).strftime('%Y-%m-%dT%H:%M:%SZ')}</vosi:upSince>\n"
        f"  <vosi:note>{xml_text(note)}</vosi:note>\n"
        "</vosi:availability>\n"
    )


def _column(c: schema.ColumnSpec) -> str:
    datatype, arraysize, xtype = schema.votable_type(c)
    attrs = (f' arraysize="{arraysize}"' if arraysize else "") + (f' extendedType="{xtype}"' if xtype else "")
    parts = [f"<name>{xml_text(schema.query_name(c.name))}</name>",
             f"<description>{xml_text(c.description)}</description>"]
    if schema.unit_of(c):
        parts.append(f"<unit>{xml_text(schema.unit_of(c))}</unit>")
    if c.ucd:
        parts.append(f"<ucd>{xml_text(c.ucd)}</ucd>")
    if c.utype:
        parts.append(f"<utype>{xml_text(c.utype)}</utype>")
    parts.append(f'<dataType xsi:type="vs:VOTableType"{attrs}>{datatype}</dataType>')
    if c.indexed or c.primary_key:
        parts.append("<flag>indexed</flag>")
    if c.primary_key:
        parts.append("<flag>primary</flag>")
    if c.nullable and not c.primary_key:
        parts.append("<flag>nullable</flag>")
    if c.principal:
        parts.append("<flag>principal</flag>")
    if c.std:
        parts.append("<flag>std</flag>")
    return "      <column>" + "".join(parts) + "</column>\n"


def _table(e: schema.Published, detail: bool, keys: list[tuple[str, str, str, str, str]]) -> str:
    out = (f'    <table type="{e.table_type}">\n      <name>{xml_text(e.name)}</name>\n'
           f"      <description>{xml_text(e.spec.description)}</description>\n")  # fmt: skip
    if e.utype:
        out += f"      <utype>{xml_text(e.utype)}</utype>\n"
    if detail:
        out += "".join(_column(c) for c in e.columns)
        for _key_id, frm, target, fc, tc in keys:
            if frm == e.name:
                out += (f"      <foreignKey><targetTable>{xml_text(target)}</targetTable><fkColumn>"
                        f"<fromColumn>{fc}</fromColumn><targetColumn>{tc}</targetColumn></fkColumn></foreignKey>\n")
    return out + "    </table>\n"


def tables(entries: list[schema.Published], detail: bool = True) -> str:
    """VOSI tableset of the published tables (``detail=min``: no columns)."""
    keys = schema.foreign_keys(entries)
    body = ""
    for sch in dict.fromkeys(e.schema_name for e in entries):
        body += (f"  <schema>\n    <name>{xml_text(sch)}</name>\n"
                 f"    <description>{xml_text(schema.SCHEMA_DESCRIPTIONS.get(sch, sch))}</description>\n"
                 + "".join(_table(e, detail, keys) for e in entries if e.schema_name == sch)
                 + "  </schema>\n")  # fmt: skip
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<vosi:tableset xmlns:vosi="http://www.ivoa.net/xml/VOSITables/v1.0" '
        f'xmlns:vs="http://www.ivoa.net/xml/VODataService/v1.1" {_XSI}>\n{body}</vosi:tableset>\n'
    )


def table(entry: schema.Published, entries: list[schema.Published]) -> str:
    """VOSI ``/tables/{name}``: one table with its columns."""
    doc = _table(entry, True, schema.foreign_keys(entries))
    doc = doc.replace("    <table ", "<vosi:table ", 1).rsplit("    </table>", 1)[0] + "</vosi:table>\n"
    return ('<?xml version="1.0" encoding="UTF-8"?>\n'
            + doc.replace("<vosi:table ", '<vosi:table xmlns:vosi="http://www.ivoa.net/xml/VOSITables/v1.0" '
                          f'xmlns:vs="http://www.ivoa.net/xml/VODataService/v1.1" {_XSI} ', 1))  # fmt: skip


MEDIA_TYPES = formats.MEDIA_TYPES

#: (id, title, explanation, ADQL) of the DALI examples document.
EXAMPLES = (
    ("obscore-position", "Products covering a position",
     "Every archived product (raw L1 ramps and calibrated L2 images) whose footprint contains a sky position, with "
     "its download URL. The footprint test uses the GiST index on s_region.",
     "SELECT obs_id, calib_level, dataproduct_type, access_url, s_region\nFROM ivoa.obscore\n"
     "WHERE 1 = CONTAINS(POINT('ICRS', 271.81, 66.72), s_region)"),
    ("obscore-cone", "Products near a position",
     "Products whose centre lies within 0.5 degrees of a position, nearest first.",
     "SELECT obs_id, calib_level, s_ra, s_dec,\n"
     "       DISTANCE(POINT('ICRS', s_ra, s_dec), POINT('ICRS', 271.81, 66.72)) AS dist\n"
     "FROM ivoa.obscore\nWHERE 1 = CONTAINS(POINT('ICRS', s_ra, s_dec), CIRCLE('ICRS', 271.81, 66.72, 0.5))\n"
     "ORDER BY dist"),
    ("exposures-by-filter", "Exposures per optical element",
     "How many WFI detector exposures were taken through each optical element, and their total exposure time.",
     "SELECT optical_element, COUNT(*) AS n, SUM(exposure_time) AS seconds\nFROM roman.exposures\n"
     "GROUP BY optical_element"),
    ("products-by-level", "Products per data level",
     "The number of archived products of each Roman data level (level is an ADQL reserved word: quote it).",
     'SELECT "level", COUNT(*) AS n FROM roman.products GROUP BY "level" ORDER BY "level"'),
)


def examples() -> str:
    """The DALI examples document (XHTML with RDFa)."""
    body = "".join(
        f'<div typeof="example" id="{ex_id}" resource="#{ex_id}">\n'
        f'  <h2 property="name">{xml_text(title)}</h2>\n  <p>{xml_text(text)}</p>\n'
        f'  <pre property="query">{xml_text(adql)}</pre>\n</div>\n'
        for ex_id, title, text, adql in EXAMPLES
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n<!DOCTYPE html>\n'
        '<html xmlns="http://www.w3.org/1999/xhtml" lang="en">\n'
        "<head><title>Roman WFI archive: TAP examples</title></head>\n"
        f'<body vocab="http://www.ivoa.net/rdf/examples#">\n<h1>TAP examples</h1>\n{body}</body>\n</html>\n'
    )
