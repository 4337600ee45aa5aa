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


def configure_offline(crds_path: Path) -> None:
    """Configure CRDS and stpipe for fully offline use.

    Idempotent and cheap: it may be called before every calibration.  It must
    run before ``romancal.pipeline`` (or any step module) is imported for the
    first time in a process, because stpipe reads some settings at import.

    Parameters
    ----------
    crds_path
        Directory used as the CRDS cache (``CRDS_PATH``); created if missing.
        Only ``<crds_path>/config/roman/server_config`` is written there.
    """
    crds_path = Path(crds_path).resolve()
    cfg = crds_path / "config" / "roman" / "server_config"
    cfg.parent.mkdir(parents=True, exist_ok=True)
    text = server_config_text()
    # Rewrite only when different so concurrent workers do not race on the file;
    # write-then-rename keeps readers from ever seeing a half-written file.
    if not cfg.exists() or cfg.read_text() != text:
        tmp = cfg.with_name(f".server_config.{os.getpid()}.tmp")
        tmp.write_text(text)
        os.replace(tmp, cfg)

    os.environ["CRDS_PATH"] = str(crds_path)
    os.environ["CRDS_SERVER_URL"] = OFFLINE_SERVER_URL
    os.environ["CRDS_OBSERVATORY"] = "roman"
    # stpipe would otherwise fetch per-step parameter reference files from CRDS.
    os.environ["STPIPE_DISABLE_CRDS_STEPPARS"] = "True"
