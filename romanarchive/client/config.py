"""Client configuration through astropy's configuration system.

Set the server once in ``romanarchive.cfg`` in astropy's configuration folder, next to ``astroquery.cfg``
(``$XDG_CONFIG_HOME/astropy/`` or ``~/.astropy/config/``)::

    [client]
    server = http://archive.example:8000

or at run time with ``conf.set_temp("server", url)`` / ``conf.server = url``.
"""

from __future__ import annotations

from astropy import config as _config


class Conf(_config.ConfigNamespace):
    """Configuration of `romanarchive.client`."""

    # module= pins the section to [client] whatever module defines the namespace.
    server = _config.ConfigItem("http://127.0.0.1:8000", "Base URL of the Roman WFI archive server.",
                                module="romanarchive.client")
    timeout = _config.ConfigItem(600, "Seconds to wait for one request.", module="romanarchive.client")


conf = Conf()
