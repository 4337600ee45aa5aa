"""Level 5 end to end: a team token from the CLI, a catalog submitted by the CLI to a live server, read with pyvo."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import requests
import sqlalchemy as sa
from click.testing import CliRunner
from support.server import live_server

from romanarchive.archive import Archive
from romanarchive.cli import main
from romanarchive.level5 import client

sys.path.insert(0, str(Path(__file__).parent / "level5_corpus"))
import make_corpus as mc  # noqa: E402

pytestmark = pytest.mark.db


def _env(archive: Archive) -> dict[str, str]:
    return {"ROMANARCHIVE_HOME": str(archive.settings.home), "ROMANARCHIVE_DATABASE_URL": archive.url,
            "ROMANARCHIVE_STORE": archive.settings.store_url}


def test_cli_submit_to_live_server_then_pyvo(archive: Archive, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                             ) -> None:
    import pyvo

    monkeypatch.setenv("ROMANARCHIVE_LEVEL5_MAX_FILE_BYTES", "100000")  # the server's configured size limit

    runner = CliRunner()
    made = runner.invoke(main, ["level5", "token", "create", "--team", "deep"], env=_env(archive))
    assert made.exit_code == 0, made.output
    token = made.stdout.strip().splitlines()[0]
    assert token.startswith("l5_")
    files = mc.catalog(tmp_path / "cat", mc.declaration("deep_photoz"), mc.columns())
    with live_server(archive, workers=0) as url:
        # Malformed first: the server answers with the same report the CLI prints, and publishes nothing.
        shifted = {**mc.columns(), "ra": mc.columns()["ra"] + 200}
        bad = mc.catalog(tmp_path / "bad", mc.declaration("deep_photoz"), shifted)
        out = runner.invoke(main, ["level5", "submit", str(bad[0]), "--server", url, "--token", token, "--json"])
        assert out.exit_code == 1
        report = json.loads(out.output)
        assert report["state"] == "rejected" and {e["code"] for e in report["errors"]} == {"table.coord_range"}
        # The valid catalog (its sidecar is picked up next to it).
        out = runner.invoke(main, ["level5", "submit", str(files[0]), "--server", url, "--token", token])
        assert out.exit_code == 0, out.output
        assert "published deep_photoz version 1 as level5.deep_photoz_v1" in out.output
        tap = pyvo.dal.TAPService(url + "/tap")
        result = tap.search("SELECT object_id, ra, dec, mag_f158, z_phot, is_star, label "
                            "FROM level5.deep_photoz_v1 ORDER BY object_id")
        assert len(result) == mc.N
        fields = {f.name: f for f in result.to_table().columns.values()}
        assert str(fields["ra"].unit) == "deg" and str(fields["mag_f158"].unit) == "mag"
        ucds = {f.name: f.ucd for f in result.votable.get_first_table().fields}
        assert ucds["ra"] == "pos.eq.ra;meta.main" and ucds["z_phot"] == "src.redshift.phot"
        assert list(result["object_id"]) == list(range(1, mc.N + 1))
        tables = {t.name for t in tap.tables}
        assert "level5.deep_photoz_v1" in tables
        assert tap.tables["level5.deep_photoz_v1"].columns[1].unit == "deg"
        # ObsCore lists the new product.
        oc = tap.search("SELECT obs_id, calib_level FROM ivoa.obscore WHERE level = 5")
        assert [r["obs_id"] for r in oc] == ["deep_photoz/v1"]
        # Status and report by id; list of the team's submissions.
        sid = report["submission_id"]
        st = client.status(url, sid, token)
        assert st["http_status"] == 200 and st["state"] == "rejected"
        listing = requests.get(url + "/level5/submissions", headers={"Authorization": f"Bearer {token}"}, timeout=30)
        assert [s["state"] for s in listing.json()["submissions"]] == ["published", "rejected"]
        # Hostile upload names and missing tokens over real HTTP.
        with files[0].open("rb") as fh, files[1].open("rb") as side:
            resp = requests.post(url + "/level5/submissions", headers={"Authorization": f"Bearer {token}"},
                                 files=[("file", ("../../../../tmp/x.parquet", fh)), ("file", (files[1].name, side))],
                                 timeout=60)
        assert resp.status_code == 422 and resp.json()["errors"][0]["code"] == "file.name"
        assert not Path("/tmp/x.parquet").exists()
        big = tmp_path / "big.parquet"
        big.write_bytes(bytes(200_000))
        rep = client.submit([big], url, token)
        assert rep["http_status"] == 422 and rep["errors"][0]["code"] == "file.too_large"
        resp = requests.post(url + "/level5/submissions", files=[("file", ("a.parquet", b"x"))], timeout=60)
        assert resp.status_code == 401 and resp.json()["errors"][0]["code"] == "auth.missing"
        assert requests.get(f"{url}/level5/submissions/{sid}", timeout=30).status_code == 401
    listed = runner.invoke(main, ["level5", "list", "--json"], env=_env(archive))
    assert listed.exit_code == 0, listed.output
    assert [(v["name"], v["version"], v["team"]) for v in json.loads(listed.output)["versions"]] == [
        ("deep_photoz", 1, "deep")]
    with archive.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM level5_audit WHERE action = 'submit'")).scalar_one() == 5


def test_another_server_process_sees_a_new_table_a_moment_later(archive: Archive, tmp_path: Path) -> None:
    """A server in its own process (as in production) picks up a table another process published."""
    import io
    import os
    import subprocess
    import time

    import pyvo

    from romanarchive.db.scratch import free_port
    from romanarchive.level5 import service

    port = free_port()
    env = {**os.environ, **_env(archive)}
    proc = subprocess.Popen([sys.executable, "-m", "romanarchive.cli", "serve", "--port", str(port), "-n", "0"],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 90
        while True:
            try:
                if requests.get(url + "/tap/availability", timeout=2).ok:
                    break
            except requests.RequestException:
                pass
            assert proc.poll() is None and time.monotonic() < deadline, "server did not start"
            time.sleep(0.3)
        tap = pyvo.dal.TAPService(url + "/tap")
        assert tap.search("SELECT COUNT(*) AS n FROM ivoa.obscore")["n"][0] == 0  # its catalog is now cached
        token = service.create_token(archive, "deep")
        files = mc.catalog(tmp_path, mc.declaration("elsewhere"), mc.columns())
        status, body = service.submit(archive, token, [(p.name, io.BytesIO(p.read_bytes())) for p in files])
        assert status == 201, body
        t0 = time.monotonic()
        while True:
            try:
                n = tap.search("SELECT COUNT(*) AS n FROM level5.elsewhere_v1")["n"][0]
                break
            except pyvo.DALQueryError:
                assert time.monotonic() - t0 < 5, "the other process did not notice the new table"
                time.sleep(0.2)
        assert n == mc.N
    finally:
        proc.terminate()
        proc.wait(timeout=30)
