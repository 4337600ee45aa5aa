"""The DataLink service descriptor that query results carry (DataLink 1.1 section 4).

TAP results (sync and async) and SIA results holding ``obs_publisher_did`` point at the DataLink ``links`` service
through this RESOURCE, so pyvo finds each row's links. It is pure text: the DataLink service itself is in
`romanarchive.dal.datalink`, which builds on this module (``tap`` imports nothing from ``dal``).
"""

from __future__ import annotations

from romanarchive.tap.votable import xml_attr

LINKS_ID = "ivo://ivoa.net/std/DataLink#links-1.1"


def links_descriptor(base_url: str, ref: str) -> str:
    """DataLink service descriptor for query results: the ID input references the ``ref`` FIELD.

    Parameters
    ----------
    base_url
        Public URL of the server root (the service is at ``<base_url>/datalink/links``).
    ref
        ID of the result FIELD holding the identifiers.

    Returns
    -------
    str
        A ``<RESOURCE type="meta" utype="adhoc:service">`` element.
    """
    return (
        '<RESOURCE type="meta" utype="adhoc:service" ID="datalink">\n'
        f'<PARAM name="standardID" datatype="char" arraysize="*" value="{LINKS_ID}"/>\n'
        f'<PARAM name="accessURL" datatype="char" arraysize="*" value="{xml_attr(base_url)}/datalink/links"/>\n'
        '<GROUP name="inputParams">\n'
        f'<PARAM name="ID" datatype="char" arraysize="*" ucd="meta.id;meta.main" value="" ref="{xml_attr(ref)}"/>\n'
        "</GROUP>\n</RESOURCE>\n"
    )
