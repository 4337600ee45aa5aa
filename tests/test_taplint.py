"""STILTS taplint over every stage (incl. UWS, MDQ, OBS, UPL) against a live server: 0 errors.

taplint's exit code is 0 whatever it finds, so the test reads the report: lines ``E-XXX-...`` (errors) and
``F-XXX-...`` (failures) per stage.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.server import live_server, populated_archive

pytestmark = [
    pytest.mark.db,
    pytest.mark.slow,
    # CI installs stilts (scripts/install-system-deps.sh) and must run this; elsewhere a missing stilts skips it.
    pytest.mark.skipif(shutil.which("stilts") is None and not os.environ.get("CI"),
                       reason="stilts is missing: run scripts/install-system-deps.sh"),
]

STAGES = ("TMV", "TME", "TMS", "TMC", "CPV", "CAP", "AVV", "QGE", "QPO", "QAS", "UWS", "MDQ", "OBS", "UPL")
_LINE = re.compile(r"^([EWF])-([A-Z]{3})-")


@pytest.fixture(scope="module")
def server(pg_server: str, tiny_survey: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Base URL of a server over the tiny survey, ingested and calibrated."""
    with populated_archive(pg_server, tmp_path_factory.mktemp("taplint"), tiny_survey) as archive, \
            live_server(archive) as base:
        yield base


def taplint(tap_url: str, timeout: int = 1200) -> str:
    """Run taplint with errors, warnings and failures reported; returns the report text."""
    proc = subprocess.run(["stilts", "taplint", f"tapurl={tap_url}", "report=EWF", "maxrepeat=20"],
                          capture_output=True, text=True, timeout=timeout)  # fmt: skip
    return proc.stdout + proc.stderr


def totals(report: str) -> dict[str, Counter[str]]:
    """Errors/warnings/failures counted per stage."""
    out: dict[str, Counter[str]] = {}
    for line in report.splitlines():
        m = _LINE.match(line)
        if m:
            out.setdefault(m.group(2), Counter())[m.group(1)] += 1
    return out


def test_taplint_reports_no_errors(server: str, tmp_path: Path) -> None:
    report = taplint(server + "/tap")
    (tmp_path / "taplint.txt").write_text(report)
    ran = set(re.findall(r"^Section ([A-Z]{3})", report, re.MULTILINE))
    per_stage = totals(report)
    print("taplint totals per stage:", {s: dict(per_stage.get(s, Counter())) for s in sorted(ran)})
    assert ran >= set(STAGES), f"stages missing from the report: {set(STAGES) - ran}\n{report[-3000:]}"
    # Failures of LOC (ObsLocTAP, a standard this service does not implement) only say that it is absent.
    problems = [line for line in report.splitlines() if line.startswith("E-") or
                (line.startswith("F-") and not line.startswith("F-LOC-"))]
    assert problems == [], "\n".join(problems)
