"""Seed exposure columns from the ``archive_catalog`` annotations in ``rad``'s schemas.

``rad`` marks each metadata keyword that belongs in the archive's ``WFIExposure`` table with its SQL Server
datatype. :func:`scan_rad` collects the ones we keep; ``python -m romanarchive.db.rad_seed`` regenerates
``rad_columns.py`` (checked in, so a ``rad`` upgrade shows up as a reviewed diff and a new migration, never as
silent DDL drift); a test asserts the two agree.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

# rad schema stem -> where that block lives in a WFI datamodel's meta.
_META_KEY = {
    "observation": "observation",
    "exposure": "exposure",
    "wfi_mode": "instrument",
    "pointing": "pointing",
    "wcsinfo": "wcsinfo",
    "program": "program",
    "visit": "visit",
}

# WFIExposure columns kept in the archive's exposure table.
KEEP = (
    "observation_id", "visit_id", "program", "execution_plan", "pass", "segment", "observation", "visit",
    "visit_file_group", "visit_file_sequence", "visit_file_activity", "observation_exposure",
    "exposure_type", "exposure_start_time", "exposure_end_time", "exposure_time", "effective_exposure_time",
    "exposure_nresultants", "ma_table_number", "ma_table_name", "exposure_frame_time",
    "instrument_name", "detector", "optical_element",
    "ra_v1", "dec_v1", "pa_v3", "target_ra", "target_dec", "target_aperture",
    "aperture_name", "ra_ref", "dec_ref", "roll_ref", "v2_ref", "v3_ref",
    "program_title", "investigator_name", "science_category",
    "visit_type", "dither_primary_name",
)

_UNITS = {"deg": "deg", "s": "s", "arcsec": "arcsec", "radians": "rad", "pixels": "pix", "km": "km"}
# Titles that omit their unit in rad.
_UNIT_OVERRIDES = {"target_dec": "deg", "roll_ref": "deg"}
_UCDS = {
    "program": "meta.id", "observation_id": "meta.id;obs", "visit_id": "meta.id", "exposure_type": "meta.code",
    "exposure_start_time": "time.start", "exposure_end_time": "time.end", "exposure_time": "time.duration;obs.exposure",
    "effective_exposure_time": "time.duration;obs.exposure", "detector": "instr.det", "optical_element": "instr.filter",
    "instrument_name": "instr", "ra_v1": "pos.eq.ra", "dec_v1": "pos.eq.dec", "pa_v3": "pos.posAng",
    "target_ra": "pos.eq.ra", "target_dec": "pos.eq.dec", "ra_ref": "pos.eq.ra", "dec_ref": "pos.eq.dec",
    "roll_ref": "pos.posAng", "ma_table_number": "meta.id;instr.setup",
    "execution_plan": "meta.id", "pass": "meta.id", "segment": "meta.id", "observation": "meta.id",
    "visit": "meta.id", "visit_file_group": "meta.id", "visit_file_sequence": "meta.id",
    "visit_file_activity": "meta.id", "observation_exposure": "meta.id", "exposure_nresultants": "meta.number",
    "ma_table_name": "meta.id;instr.setup", "exposure_frame_time": "time.interval", "target_aperture": "instr.setup",
    "aperture_name": "instr.setup", "v2_ref": "pos.cartesian.x;instr", "v3_ref": "pos.cartesian.y;instr",
    "program_title": "meta.title", "investigator_name": "meta.bib.author", "science_category": "meta.code.class",
    "visit_type": "meta.code", "dither_primary_name": "meta.code;instr.setup",
}


def _logical_type(datatype: str) -> str:
    dt = datatype.strip().lower()
    if m := re.fullmatch(r"n?varchar\((\d+)\)", dt):
        return f"varchar({m.group(1)})"
    if re.fullmatch(r"n?varchar\(max\)", dt):
        return "text"
    if m := re.fullmatch(r"n?char\((\d+)\)", dt):
        return f"char({m.group(1)})"
    return {"smallint": "smallint", "tinyint": "smallint", "int": "integer", "bigint": "bigint",
            "float": "double", "real": "real", "datetime2": "timestamp", "datetime": "timestamp",
            "bit": "boolean"}[dt]


def _walk(node: Any, path: list[str], found: dict[str, dict[str, Any]], stem: str) -> None:
    if isinstance(node, dict):
        ac = node.get("archive_catalog")
        if isinstance(ac, dict) and stem in _META_KEY:
            for dest in ac.get("destination") or []:
                table, _, col = dest.partition(".")
                if table == "WFIExposure" and col in KEEP:
                    title = node.get("title", "").strip()
                    unit = re.search(r"\(([^()]+)\)\s*$", title)
                    found[col] = {
                        "name": col,
                        "type": _logical_type(ac["datatype"]),
                        "description": " ".join((node.get("description") or title or col).split())[:400],
                        "unit": _UNIT_OVERRIDES.get(col) or (_UNITS.get(unit.group(1), "") if unit else ""),
                        "ucd": _UCDS.get(col, ""),
                        "source": "meta." + ".".join([_META_KEY[stem], *[p for p in path if p != "properties"]]),
                    }
        for key, val in node.items():
            _walk(val, [*path, key] if key not in ("archive_catalog",) and isinstance(val, dict) else path,
                  found, stem)


def scan_rad() -> list[dict[str, Any]]:
    """Collect the kept ``WFIExposure`` columns from the newest version of each rad schema.

    Returns
    -------
    list of dict
        Column descriptions in the order of :data:`KEEP`.
    """
    import rad

    root = Path(rad.__file__).parent / "resources" / "schemas"
    newest: dict[str, Path] = {}
    for f in sorted(root.glob("*.yaml"), key=lambda p: [int(x) for x in re.findall(r"\d+", p.stem)]):
        newest[re.sub(r"-\d+\.\d+\.\d+$", "", f.stem)] = f
    found: dict[str, dict[str, Any]] = {}
    for stem, f in newest.items():
        schema = yaml.safe_load(f.read_text())
        _walk(schema.get("properties", {}), [], found, stem)
    return [found[c] for c in KEEP if c in found]


def render() -> str:
    """Python source of ``rad_columns.py``."""
    import rad

    lines = [
        f'"""Exposure columns generated from rad {rad.__version__} by ``python -m romanarchive.db.rad_seed``.',
        "",
        "Do not edit by hand: regenerate, review the diff, and add an Alembic migration.",
        '"""',
        "",
        "RAD_VERSION = " + repr(rad.__version__),
        "",
        "RAD_EXPOSURE_COLUMNS = [",
    ]
    lines += [f"    {c!r}," for c in scan_rad()]
    lines.append("]")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    out = Path(__file__).with_name("rad_columns.py")
    out.write_text(render())
    print(f"wrote {out}")
