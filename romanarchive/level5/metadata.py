"""Checks of a product declaration: its format version, product name, and CCSP metadata against rad's schemas.

The CCSP block is validated with asdf's own schema machinery (``asdf.schema``, offline: the schemas are resources
of the installed ``rad`` package), collecting every error with its path in the tree.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import Any

from romanarchive.level5.contract import (
    COLUMN_NAME,
    COLUMN_TYPES,
    DECLARATION_KEY,
    FORMAT_VERSION,
    PRODUCT_NAME,
    Issues,
    ccsp_schemas,
    schema_short_name,
)
from romanarchive.tap.schema import RESERVED

# Where the CCSP schemas expect asdf time tags; sidecars (plain YAML) give ISO strings there.
_TIME_PATHS = (("file_date",), ("exposure", "start_time"), ("exposure", "end_time"))


def _path(where: str, parts: Any) -> str:
    dotted = ".".join(str(p) for p in parts)
    # file:path.in.tree (file names cannot hold ':', see FILE_NAME)
    return f"{where}{'.' if ':' in where else ':'}{dotted}" if dotted else where


def _with_times(meta: dict[str, Any]) -> dict[str, Any]:
    """Copy of ``meta`` with ISO strings at the schema's time paths turned into astropy Times (others untouched)."""
    from astropy.time import Time

    out = dict(meta)
    for path in _TIME_PATHS:
        parent: Any = out
        for key in path[:-1]:
            child = parent.get(key) if isinstance(parent, Mapping) else None
            if not isinstance(child, Mapping):
                parent = None
                break
            parent[key] = dict(child)
            parent = parent[key]
        if isinstance(parent, dict) and isinstance(parent.get(path[-1]), str):
            # An unparseable string stays a string: the schema reports the tag mismatch at this path.
            with contextlib.suppress(ValueError):
                parent[path[-1]] = Time(parent[path[-1]], format="isot", scale="utc")
    return out


def check_ccsp(meta: Any, schema_name: str, where: str, issues: Issues) -> None:
    """Validate the CCSP metadata block against a rad CCSP schema, reporting every error with its path.

    Parameters
    ----------
    meta
        The ``meta`` mapping of the declaration (ASDF trees may already hold tagged objects such as Times).
    schema_name
        Short name (``ccsp_custom_product-2.0.0``) or URI of the schema.
    where
        Location prefix (file name and path of ``meta`` in it).
    issues
        Where errors go.
    """
    import asdf
    import asdf.schema
    from asdf import yamlutil

    uri = ccsp_schemas()[schema_short_name(schema_name)]
    schema = _load(uri)
    ctx = asdf.AsdfFile()
    tagged = yamlutil.custom_tree_to_tagged_tree(_with_times(dict(meta)), ctx)
    validator = asdf.schema.get_validator(schema, ctx=ctx)
    errors = sorted(validator.iter_errors(tagged), key=lambda e: [str(p) for p in e.absolute_path])
    for err in errors:
        message = err.message
        if err.validator == "anyOf" or err.validator == "oneOf":
            message = f"{err.instance!r} matches none of the allowed forms ({_forms(err.validator_value)})"
        issues.add("ccsp.schema", _path(where, list(err.absolute_path)), f"{message} (schema {schema_short_name(uri)})")


def _forms(options: Any) -> str:
    parts = []
    for opt in options or []:
        if isinstance(opt, Mapping):
            text = str(opt.get("type", "?"))
            if "maxLength" in opt:
                text += f" of at most {opt['maxLength']} characters"
            if opt.get("type") == "array" and isinstance(opt.get("items"), Mapping):
                text += f" of {opt['items'].get('type', '?')}"
            parts.append(text)
    return ", ".join(parts) or "see the schema"


_SCHEMAS: dict[str, Any] = {}


def _load(uri: str) -> Any:
    import asdf.schema

    if uri not in _SCHEMAS:
        _SCHEMAS[uri] = asdf.schema.load_schema(uri, resolve_references=True)
    return _SCHEMAS[uri]


def check_declaration(decl: Any, where: str, issues: Issues, catalog: bool) -> str | None:
    """Check a declaration block; returns the product name when it is usable.

    Parameters
    ----------
    decl
        The parsed declaration.
    where
        Location prefix (the file holding it).
    issues
        Where errors go.
    catalog
        Whether a ``table`` section is required.
    """
    if not isinstance(decl, Mapping):
        issues.add("declaration.missing", where, f"no {DECLARATION_KEY} declaration (a mapping) found")
        return None
    version = decl.get(DECLARATION_KEY)
    if str(version) != FORMAT_VERSION:
        issues.add("declaration.version", _path(where, [DECLARATION_KEY]),
                   f"declaration format version {version!r} is not supported; use {FORMAT_VERSION!r}")  # fmt: skip
    name = decl.get("product")
    if not isinstance(name, str) or not PRODUCT_NAME.match(name):
        issues.add("declaration.product", _path(where, ["product"]),
                   f"product name {name!r} must match {PRODUCT_NAME.pattern}")  # fmt: skip
        name = None
    schema = decl.get("ccsp_schema")
    known = ccsp_schemas()
    if not isinstance(schema, str) or schema_short_name(schema) not in known:
        issues.add("ccsp.version", _path(where, ["ccsp_schema"]),
                   f"unknown CCSP schema {schema!r}; rad ships {', '.join(known)}")  # fmt: skip
    elif not isinstance(decl.get("meta"), Mapping):
        issues.add("ccsp.schema", _path(where, ["meta"]), "the CCSP metadata block 'meta' (a mapping) is missing")
    else:
        check_ccsp(decl["meta"], schema, _path(where, ["meta"]), issues)
    if catalog:
        check_table_section(decl.get("table"), _path(where, ["table"]), issues)
    return name


def check_table_section(table: Any, where: str, issues: Issues) -> None:
    """Check the declared table schema itself (not the data): columns, primary key, position or link."""
    if not isinstance(table, Mapping):
        issues.add("table.declaration", where, "a catalog needs a 'table' section (columns, primary_key, position)")
        return
    cols = table.get("columns")
    if not isinstance(cols, list) or not cols:
        issues.add("table.declaration", f"{where}.columns", "'columns' must be a non-empty list")
        return
    names: list[str] = []
    for i, col in enumerate(cols):
        at = f"{where}.columns.{i}"
        if not isinstance(col, Mapping):
            issues.add("table.declaration", at, "each column must be a mapping with name, type, description")
            continue
        name = col.get("name")
        if not isinstance(name, str) or not COLUMN_NAME.match(name) or _reserved(name):
            why = "an ADQL/SQL reserved word" if isinstance(name, str) and _reserved(name) else \
                f"not a safe SQL identifier ({COLUMN_NAME.pattern})"
            issues.add("table.column_name", f"{at}.name", f"column name {name!r} is {why}", column=str(name))
        elif name in names:
            issues.add("table.column_name", f"{at}.name", f"column {name!r} is declared twice", column=name)
        names.append(str(name))
        if col.get("type") not in COLUMN_TYPES:
            issues.add("table.declared_type", f"{at}.type",
                       f"type {col.get('type')!r} is not one of {', '.join(COLUMN_TYPES)}", column=str(name))
        if not isinstance(col.get("description"), str) or not col["description"].strip():
            issues.add("table.description", f"{at}.description", "every column needs a description",
                       column=str(name))  # fmt: skip
        unit = col.get("unit", "")
        if unit not in (None, ""):
            _check_unit(str(unit), f"{at}.unit", str(name), issues)
        ucd = col.get("ucd", "")
        if ucd not in (None, ""):
            _check_ucd(str(ucd), f"{at}.ucd", str(name), issues)
    pk = table.get("primary_key")
    pk_list = [pk] if isinstance(pk, str) else pk
    if not isinstance(pk_list, list) or not pk_list:
        issues.add("table.primary_key", f"{where}.primary_key", "a primary key (column or list of columns) is required")
    else:
        for c in pk_list:
            if c not in names:
                issues.add("table.primary_key", f"{where}.primary_key", f"primary key column {c!r} is not declared")
    pos, link = table.get("position"), table.get("link")
    if pos is None and link is None:
        issues.add("table.position", where, "declare 'position' (ra/dec columns) or 'link' (to an archive catalog)")
    if pos is not None:
        if not isinstance(pos, Mapping) or not {"ra", "dec"} <= set(pos):
            issues.add("table.position", f"{where}.position", "'position' must name its 'ra' and 'dec' columns")
        else:
            for k in ("ra", "dec"):
                if pos[k] not in names:
                    issues.add("table.position", f"{where}.position.{k}", f"{k} column {pos[k]!r} is not declared")
    if link is not None:
        if not isinstance(link, Mapping) or not {"column", "table"} <= set(link):
            issues.add("table.link", f"{where}.link", "'link' must give 'column' and 'table' (and 'target_column')")
        elif link["column"] not in names:
            issues.add("table.link", f"{where}.link.column", f"link column {link['column']!r} is not declared")


def _reserved(name: str) -> bool:
    return name.upper() in RESERVED


def _check_unit(unit: str, at: str, column: str, issues: Issues) -> None:
    import warnings

    from astropy import units as u

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", u.UnitsWarning)
            u.Unit(unit, format="vounit")
    except (ValueError, u.UnitsWarning) as exc:
        issues.add("table.unit", at, f"unit {unit!r} is not a valid VOUnit: {str(exc).splitlines()[0]}",
                   column=column)  # fmt: skip


def _check_ucd(ucd: str, at: str, column: str, issues: Issues) -> None:
    from astropy.io.votable.ucd import parse_ucd

    try:
        parse_ucd(ucd, check_controlled_vocabulary=True, has_colon=True)
    except ValueError as exc:
        issues.add("table.ucd", at, f"UCD {ucd!r} is not valid UCD1+: {exc}", column=column)
