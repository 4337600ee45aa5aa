"""Binary COPY encoding round-trips every supported type exactly."""

from __future__ import annotations

import numpy as np
import psycopg
import pytest

from romanarchive.db.bulk import copy_arrays, encode_binary_copy
from romanarchive.db.engine import libpq_url

pytestmark = pytest.mark.db


def test_copy_arrays_roundtrip(empty_db: str) -> None:
    rng = np.random.default_rng(3)
    n = 25_000
    cols = {
        "a": rng.integers(-2**62, 2**62, n, dtype=np.int64),
        "b": rng.integers(-2**31, 2**31 - 1, n, dtype=np.int32),
        "c": rng.integers(-2**15, 2**15 - 1, n, dtype=np.int16),
        "d": rng.normal(size=n),
        "e": rng.normal(size=n).astype(np.float32),
        "f": rng.random(n) > 0.5,
    }
    with psycopg.connect(libpq_url(empty_db)) as conn:
        conn.execute("CREATE TABLE t (a bigint, b integer, c smallint, d double precision, e real, f boolean)")
        assert copy_arrays(conn, "t", cols, chunk_rows=7_000) == n
        rows = conn.execute("SELECT a, b, c, d, e, f FROM t ORDER BY ctid").fetchall()
    got = list(zip(*rows, strict=True))
    for i, key in enumerate("abcdef"):
        np.testing.assert_array_equal(np.asarray(got[i], dtype=cols[key].dtype), cols[key])


def test_refuses_unsupported_or_ragged_columns() -> None:
    with pytest.raises(TypeError):
        encode_binary_copy({"s": np.array(["x"])})
    with pytest.raises(ValueError):
        encode_binary_copy({"a": np.zeros(2), "b": np.zeros(3)})
