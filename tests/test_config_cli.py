"""Configuration precedence and the `db` commands of the CLI on an embedded cluster."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest
from click.testing import CliRunner

from romanarchive.cli import main
from romanarchive.config import load_settings
from romanarchive.db.engine import head_revision
from romanarchive.db.scratch import free_port


def test_defaults_toml_and_environment(tmp_path: Path) -> None:
    s = load_settings({"ROMANARCHIVE_HOME": str(tmp_path)})
    assert s.home == tmp_path and s.database_url is None and s.store_url == str(tmp_path / "store")
    (tmp_path / "config.toml").write_text('[romanarchive]\nstore = "s3://bucket/x"\nlease_seconds = 30\n')
    s = load_settings({"ROMANARCHIVE_HOME": str(tmp_path)})
    assert s.store_url == "s3://bucket/x" and s.lease_seconds == 30
    s = load_settings({"ROMANARCHIVE_HOME": str(tmp_path), "ROMANARCHIVE_STORE": "/data/store",
                       "ROMANARCHIVE_DATABASE_URL": "postgresql://u@h/db"})
    assert s.store_url == "/data/store" and s.database_url == "postgresql://u@h/db"


def test_bad_lease_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        load_settings({"ROMANARCHIVE_HOME": str(tmp_path), "ROMANARCHIVE_LEASE_SECONDS": "0"})


@pytest.mark.db
def test_db_start_status_stop_on_embedded_cluster() -> None:
    if os.environ.get("ROMANARCHIVE_TEST_DATABASE_URL"):
        pytest.skip("embedded-cluster test; this run targets an external server")
    home = Path(tempfile.mkdtemp(prefix="romanarchive-cli-"))
    os.chmod(home, 0o755)
    port = free_port()
    env = {"ROMANARCHIVE_HOME": str(home), "ROMANARCHIVE_PG_PORT": str(port), "ROMANARCHIVE_DATABASE_URL": ""}
    runner = CliRunner()
    try:
        res = runner.invoke(main, ["db", "status"], env=env)
        assert res.exit_code == 3 and "stopped" in res.output
        res = runner.invoke(main, ["status"], env=env)
        assert res.exit_code == 1 and "romanarchive db start" in res.output
        res = runner.invoke(main, ["db", "start"], env=env)
        assert res.exit_code == 0, res.output
        assert f"127.0.0.1:{port}" in res.output and f"revision {head_revision()}" in res.output
        res = runner.invoke(main, ["db", "status"], env=env)
        assert res.exit_code == 0 and "running" in res.output and f"revision {head_revision()}" in res.output
        res = runner.invoke(main, ["status", "--json"], env=env)
        assert res.exit_code == 0 and '"levels"' in res.output
    finally:
        runner.invoke(main, ["db", "stop"], env=env)
        shutil.rmtree(home, ignore_errors=True)
