#!/usr/bin/env python3
"""Make Debian's pgsphere 1.2.0 installable on PostgreSQL >= 15.9.

PostgreSQL back-patched a stricter check (commit 2b5154be): an operator may not name a commutator that is already
the commutator of another operator. pgsphere's legacy DaCHS compatibility operators ``@ (bigint, smoc)`` and
``@ (spoint, smoc)`` do exactly that, so ``CREATE EXTENSION pg_sphere`` fails with "commutator operator @> is already
the commutator of operator <@". Upstream removed these two obsolete operators (pgsphere PR #92, issue #85); this
script applies the same removal to the installed SQL script. It is idempotent and needs root.
"""

from __future__ import annotations

import glob
import re
import sys

_BLOCK = re.compile(
    r"CREATE OPERATOR @ \(\s*LEFTARG\s*=\s*(?:bigint|spoint),\s*RIGHTARG\s*=\s*smoc,.*?\);\n", re.S
)


def main() -> int:
    scripts = glob.glob("/usr/share/postgresql/*/extension/pg_sphere--*.sql")
    if not scripts:
        print("patch_pgsphere: no pg_sphere SQL scripts found (is postgresql-NN-pgsphere installed?)", file=sys.stderr)
        return 1
    for path in scripts:
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
        new, n = _BLOCK.subn("-- romanarchive: obsolete @ (.., smoc) operator removed as upstream PR #92\n", text)
        if n:
            with open(path, "w", encoding="utf-8") as fh:
                fh.write(new)
            print(f"patch_pgsphere: removed {n} obsolete operator(s) from {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
