"""DataLink 1.1 ``links`` documents: for each product its file (#this), the products it was made from
(#progenitor) or that were made from it (#derivation), a PNG preview (#preview) and the SODA cutout service
(#cutout, described by a service descriptor). The descriptor pointing query results at this service is
`romanarchive.tap.descriptors.links_descriptor`."""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from romanarchive.dal.products import DalError, Product, did, lookup
from romanarchive.tap.descriptors import LINKS_ID
from romanarchive.tap.votable import xml_attr, xml_text

SODA_ID = "ivo://ivoa.net/std/SODA#sync-1.0"
MEDIA_TYPE = "application/x-votable+xml;content=datalink"

#: (name, datatype, arraysize, unit, ucd) of the DataLink 1.1 columns, in the standard's order.
FIELDS = (
    ("ID", "char", "*", "", "meta.id;meta.main"),
    ("access_url", "char", "*", "", "meta.ref.url"),
    ("service_def", "char", "*", "", "meta.ref"),
    ("error_message", "char", "*", "", "meta.code.error"),
    ("semantics", "char", "*", "", "meta.code"),
    ("description", "char", "*", "", "meta.note"),
    ("content_type", "char", "*", "", "meta.code.mime"),
    ("content_length", "long", "", "byte", "phys.size;meta.file"),
    ("content_qualifier", "char", "*", "", "meta.code.class"),
    ("local_semantics", "char", "*", "", "meta.code"),
    ("link_auth", "char", "*", "", "meta.code"),
    ("link_authorized", "boolean", "", "", "meta.code"),
)


@dataclass
class Link:
    """One row of a links table."""

    id: str
    access_url: str = ""
    service_def: str = ""
    error_message: str = ""
    semantics: str = "#this"
    description: str = ""
    content_type: str = ""
    content_length: int | None = None
    content_qualifier: str = ""

    def cells(self) -> list[str]:
        """TABLEDATA cells in `FIELDS` order."""
        values = [self.id, self.access_url, self.service_def, self.error_message, self.semantics, self.description,
                  self.content_type]  # fmt: skip
        out = [f"<TD>{xml_text(v)}</TD>" if v else "<TD/>" for v in values]
        out.append(f"<TD>{self.content_length}</TD>" if self.content_length is not None else "<TD/>")
        out.append(f"<TD>{xml_text(self.content_qualifier)}</TD>" if self.content_qualifier else "<TD/>")
        out += ["<TD/>", "<TD>false</TD>", "<TD>true</TD>"]
        return out


def _related(engine: sa.Engine, p: Product) -> tuple[list[tuple[int, str, int, str]], list[tuple[int, str, int, str]]]:
    """(progenitors, derivations) as (product_id, filename, size, media_type): from provenance inputs and, for
    exposures, the other levels of the same exposure."""
    sql = sa.text("""
        WITH prog AS (
            SELECT (x->>'product_id')::bigint AS pid FROM provenance pr,
                   jsonb_array_elements(CASE WHEN jsonb_typeof(pr.inputs) = 'array' THEN pr.inputs ELSE '[]' END) x
            WHERE pr.product_id = :pid AND x ? 'product_id'
            UNION SELECT product_id FROM products
            WHERE CAST(:eid AS bigint) IS NOT NULL AND exposure_id = CAST(:eid AS bigint) AND level < :lvl),
        der AS (
            SELECT pr.product_id AS pid FROM provenance pr
            WHERE pr.inputs @> CAST(:pattern AS jsonb)
            UNION SELECT product_id FROM products
            WHERE CAST(:eid AS bigint) IS NOT NULL AND exposure_id = CAST(:eid AS bigint) AND level > :lvl)
        SELECT 'p' AS kind, p.product_id, f.filename, f.size, f.media_type
          FROM prog JOIN products p ON p.product_id = prog.pid JOIN files f ON f.file_id = p.file_id
        UNION ALL
        SELECT 'd', p.product_id, f.filename, f.size, f.media_type
          FROM der JOIN products p ON p.product_id = der.pid JOIN files f ON f.file_id = p.file_id
        ORDER BY 1, 2""")
    with engine.connect() as conn:
        rows = conn.execute(sql, {"pid": p.product_id, "eid": p.exposure_id, "lvl": p.level,
                                  "pattern": f'[{{"product_id": {p.product_id}}}]'}).all()  # fmt: skip
    prog = [(r[1], r[2], r[3], r[4]) for r in rows if r[0] == "p" and r[1] != p.product_id]
    der = [(r[1], r[2], r[3], r[4]) for r in rows if r[0] == "d" and r[1] != p.product_id]
    return prog, der


def links_for(engine: sa.Engine, base_url: str, ident: str) -> list[Link]:
    """The links of one identifier (an error row, not an exception, for an unknown one)."""
    try:
        p = lookup(engine, ident)
    except DalError as exc:
        return [Link(ident, semantics="#this", error_message=f"{exc.fault}: {exc}")]
    out = [Link(ident, f"{base_url}/files/{p.product_id}", semantics="#this",
                description=f"Roman WFI level {p.level} product {p.filename}", content_type=p.media_type,
                content_length=p.size)]  # fmt: skip
    prog, der = _related(engine, p)
    for sem, rel in (("#progenitor", prog), ("#derivation", der)):
        for pid, name, size, media in rel:
            what = "input of" if sem == "#progenitor" else "made from"
            out.append(Link(ident, f"{base_url}/files/{pid}", semantics=sem, content_type=media,
                            description=f"{name}: product {pid}, {what} this product", content_length=size,
                            content_qualifier=did(pid)))  # fmt: skip
    if p.is_image:
        out.append(Link(ident, f"{base_url}/preview/{p.product_id}.png", semantics="#preview",
                        description="PNG preview (asinh stretch)", content_type="image/png"))
        out.append(Link(ident, service_def="soda", semantics="#cutout",
                        description="SODA cutout of this image (CIRCLE, POLYGON, BAND)"))
    return out


def soda_descriptor(base_url: str, ident: str | None = None, ref: str | None = None) -> str:
    """SODA sync service descriptor (``ID="soda"``); the ID parameter has a fixed value or references a FIELD."""
    id_attr = f' ref="{xml_attr(ref)}"' if ref else ""
    value = xml_attr(ident or "")
    return (
        '<RESOURCE type="meta" utype="adhoc:service" ID="soda">\n'
        f'<PARAM name="standardID" datatype="char" arraysize="*" value="{SODA_ID}"/>\n'
        f'<PARAM name="accessURL" datatype="char" arraysize="*" value="{xml_attr(base_url)}/soda/sync"/>\n'
        '<GROUP name="inputParams">\n'
        f'<PARAM name="ID" datatype="char" arraysize="*" ucd="meta.id;meta.dataset" value="{value}"{id_attr}/>\n'
        '<PARAM name="CIRCLE" datatype="double" arraysize="3" xtype="circle" unit="deg" ucd="obs.field" value="">'
        "<DESCRIPTION>Sky circle: ra dec radius (ICRS, degrees)</DESCRIPTION></PARAM>\n"
        '<PARAM name="POLYGON" datatype="double" arraysize="*" xtype="polygon" unit="deg" ucd="obs.field" value="">'
        "<DESCRIPTION>Sky polygon: ra1 dec1 ra2 dec2 ... (ICRS, degrees)</DESCRIPTION></PARAM>\n"
        '<PARAM name="BAND" datatype="double" arraysize="2" xtype="interval" unit="m" ucd="em.wl;stat.interval" '
        'value=""><DESCRIPTION>Wavelength interval lo hi (metres)</DESCRIPTION></PARAM>\n'
        '<PARAM name="RESPONSEFORMAT" datatype="char" arraysize="*" ucd="meta.code.mime" value="application/x-asdf">'
        '<VALUES><OPTION value="application/x-asdf"/><OPTION value="application/fits"/></VALUES></PARAM>\n'
        "</GROUP>\n</RESOURCE>\n"
    )


def links_votable(engine: sa.Engine, base_url: str, ids: list[str]) -> bytes:
    """The links document of ``ids`` (DataLink 1.1 VOTable, TABLEDATA)."""
    if not ids:
        raise DalError("missing ID parameter")
    rows = [link for ident in ids for link in links_for(engine, base_url, ident)]
    fields = "".join(
        f'<FIELD name="{n}" datatype="{t}"' + (f' arraysize="{a}"' if a else "") + (f' unit="{u}"' if u else "")
        + f' ucd="{ucd}"/>\n' for n, t, a, u, ucd in FIELDS
    )
    body = "".join("<TR>" + "".join(r.cells()) + "</TR>\n" for r in rows)
    soda = soda_descriptor(base_url, ref="ID_col") if any(r.service_def == "soda" for r in rows) else ""
    doc = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<VOTABLE version="1.4" xmlns="http://www.ivoa.net/xml/VOTable/v1.3" '
        'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">\n'
        '<RESOURCE type="results">\n<INFO name="standardID" value="' + LINKS_ID + '"/>\n'
        '<TABLE>\n' + fields.replace('<FIELD name="ID"', '<FIELD ID="ID_col" name="ID"', 1)
        + "<DATA><TABLEDATA>\n" + body + "</TABLEDATA></DATA>\n</TABLE>\n</RESOURCE>\n" + soda + "</VOTABLE>\n"
    )
    return doc.encode("utf-8")
