"""Object store: atomic, verified, content-addressed writes on a local folder and on a real S3 endpoint."""

from __future__ import annotations

import hashlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from romanarchive.db.scratch import free_port
from romanarchive.store.objectstore import ObjectStore, StoreError, content_key


def _blob(tmp_path: Path, name: str = "x.asdf", n: int = 3_000_000) -> tuple[Path, str]:
    data = os.urandom(n)
    p = tmp_path / name
    p.write_bytes(data)
    return p, hashlib.sha256(data).hexdigest()


def _roundtrip(store: ObjectStore, tmp_path: Path) -> None:
    src, sha = _blob(tmp_path)
    obj = store.put_file(src, "l1")
    assert obj.created and obj.sha256 == sha and obj.key == content_key("l1", sha, "x.asdf")
    assert store.exists(obj.key) and store.size(obj.key) == src.stat().st_size
    assert store.sha256(obj.key) == sha
    again = store.put_file(src, "l1")
    assert not again.created and again.key == obj.key
    out = store.get_file(obj.key, tmp_path / "back.asdf")
    assert out.read_bytes() == src.read_bytes()
    assert b"".join(store.iter_bytes(obj.key, 1 << 20)) == src.read_bytes()
    assert store.list_keys() == [obj.key]
    store.delete(obj.key)
    assert not store.exists(obj.key) and store.list_keys() == []


def test_local_store_roundtrip(tmp_path: Path) -> None:
    _roundtrip(ObjectStore(str(tmp_path / "store")), tmp_path)


def test_local_write_leaves_no_temporary_on_failure(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = ObjectStore(str(tmp_path / "store"))
    src, _ = _blob(tmp_path)

    def broken_replace(a: str, b: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        store.put_file(src, "l1")
    assert list((tmp_path / "store").rglob("*.tmp-*")) == []
    assert store.list_keys() == []


def test_rejects_unsafe_names(tmp_path: Path) -> None:
    with pytest.raises(StoreError):
        content_key("l1", "ab" * 32, "..")



@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    """A real S3 API (moto in server mode) on loopback."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            break
        except OSError:
            if time.monotonic() > deadline:
                proc.kill()
                raise
            time.sleep(0.2)
    yield url
    proc.terminate()
    proc.wait(10)


def test_s3_store_roundtrip(s3_endpoint: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import boto3

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    boto3.client("s3", endpoint_url=s3_endpoint).create_bucket(Bucket="roman")
    store = ObjectStore("s3://roman/archive", {"client_kwargs": {"endpoint_url": s3_endpoint}})
    assert not store.local
    _roundtrip(store, tmp_path)
