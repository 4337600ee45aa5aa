"""Keep CRDS (and therefore stpipe/romancal) strictly offline.

CRDS ends the interpreter with ``sys.exit`` when it cannot reach its server and
has no cached server configuration.  That is not catchable, so before romancal's
pipeline modules are imported (they query CRDS for step parameters and context
names) we point CRDS at a local cache holding a minimal ``server_config`` and at
a server URL that refuses connections immediately.  CRDS then raises ordinary
exceptions, and every reference file is supplied through step overrides.

See ``shared/notes/roman-offline.md`` for the measurements behind this recipe.
"""

from __future__ import annotations

import os
import pprint
from pathlib import Path

__all__ = ["OFFLINE_SERVER_URL", "configure_offline", "server_config_text"]

#: A local port nothing listens on: connections fail at once instead of timing out.
OFFLINE_SERVER_URL = "http://127.0.0.1:9"

_CRDS_VERSION = "14.0.3"
_CONTEXT = "roman_0000.pmap"


def server_config_text(crds_version: str = _CRDS_VERSION) -> str:
    """Return the text of the cached ``server_config`` CRDS needs to run offline.

    Parameters
    ----------
    crds_version
        Version string recorded as the "server" CRDS version.

    Returns
    -------
    str
        A Python-literal dict, as CRDS itself writes it with ``pprint``.
    """
    info = {
        "observatory": "roman",
        "operational_context": _CONTEXT,
        "edit_context": _CONTEXT,
        "force_remote_mode": False,
        "mappings": [],
        "bad_files": "",
        "bad_files_list": [],
        "crds_version": {"str": crds_version},
        # CRDS logs this when it falls back to the cache; missing -> AttributeError.
        "last_synced": "1970-01-01 00:00:00",
    }
    return pprint.pformat(info) + "\n"


#: An empty pipeline mapping for the context: CRDS then answers "unknown instrument" from the cache for anything
#: not supplied through step overrides (romancal's SFD dust maps for the catalog's ``dust_ebv``), instead of trying
#: to download the context, which prints a four-exception traceback per lookup. The checksum is CRDS's own (the
#: ``sha1sum`` field blanked; ``crds.refactoring.checksum``) of exactly this text.
_EMPTY_CONTEXT = """header = {
    'derived_from' : 'romanarchive offline: no rules',
    'mapping' : 'PIPELINE',
    'name' : 'roman_0000.pmap',
    'observatory' : 'ROMAN',
    'parkey' : ('META.INSTRUMENT.NAME',),
    'sha1sum' : 'a03041e3de3106a53f63e1cd904cd575846da32a',
}

selector = {
}
"""


def _write_if_changed(path: Path, text: str) -> None:
    """Write ``text`` unless the file holds it; write-then-rename so concurrent readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists() or path.read_text() != text:
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(text)
        os.replace(tmp, path)


def configure_offline(crds_path: Path) -> None:
    """Configure CRDS and stpipe for fully offline use.

    Idempotent and cheap: it may be called before every calibration.  It must
    run before ``romancal.pipeline`` (or any step module) is imported for the
    first time in a process, because stpipe reads some settings at import.

    Parameters
    ----------
    crds_path
        Directory used as the CRDS cache (``CRDS_PATH``); created if missing.
        Only ``<crds_path>/config/roman/server_config`` and the empty context
        ``<crds_path>/mappings/roman/roman_0000.pmap`` are written there.
    """
    crds_path = Path(crds_path).resolve()
    # Rewritten only when different, so concurrent workers do not race on the files.
    _write_if_changed(crds_path / "config" / "roman" / "server_config", server_config_text())
    _write_if_changed(crds_path / "mappings" / "roman" / _CONTEXT, _EMPTY_CONTEXT)

    os.environ["CRDS_PATH"] = str(crds_path)
    os.environ["CRDS_SERVER_URL"] = OFFLINE_SERVER_URL
    os.environ["CRDS_OBSERVATORY"] = "roman"
    # stpipe would otherwise fetch per-step parameter reference files from CRDS.
    os.environ["STPIPE_DISABLE_CRDS_STEPPARS"] = "True"
