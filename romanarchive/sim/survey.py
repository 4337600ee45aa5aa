"""Plan and simulate a small multi-epoch WFI survey.

A survey is a grid of pointings, each visited in every epoch with a few small dithers,
in every filter, on every requested detector.  Each exposure is an `L1Spec` rendered by
`make_l1`; the sky comes from the truth catalogue in `romanarchive.sim.truth`.

Geometry follows `make_l1` (romanisim with ``usecrds=False``, galsim.roman's Cycle-6 focal plane):
``L1Spec.ra/dec`` is the centre of the (cut-out) detector image.  The survey says where the *first*
detector's image lands (`SurveyConfig.ra/dec`); the other detectors of the same exposure are placed
at their real offsets (~0.1–0.5 deg) from it through the common focal-plane pointing.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import pydantic

from romanarchive.sim import truth as truthmod
from romanarchive.sim.l1 import l1_filename, make_l1
from romanarchive.sim.plan import (  # noqa: F401  (re-exported: the survey's public names)
    DEMO_FIELD,
    PIXEL_SCALE,
    SurveyConfig,
    detector_centers,
    dither_offsets,
    plan_exposures,
    pointing_offsets,
    spec_wcs,
    tangent_offset,
)
from romanarchive.sim.references import write_reference_set


class SurveyManifest(pydantic.BaseModel):
    """What `simulate_survey` wrote; saved as ``manifest.json``."""

    config: SurveyConfig
    l1: list[dict[str, Any]]
    refs: dict[str, dict[str, str]]
    truth: dict[str, str]
    elapsed_s: float


# --------------------------------------------------------------------------- geometry


def simulate_survey(config: SurveyConfig, out_dir: Path | str, progress: bool = True) -> SurveyManifest:
    """Simulate `config` into `out_dir`.

    Writes ``l1/*.asdf`` (one per exposure, via `make_l1`), ``refs/<detector>_<filter>/`` (via
    `write_reference_set`), ``truth/truth.ecsv`` and ``truth/exposure_truth.ecsv``, and
    ``manifest.json``.  The result depends only on `config` (including its seed).

    Parameters
    ----------
    config
        Survey description.
    out_dir
        Output directory (created).
    progress
        Show a tqdm bar over exposures.

    Returns
    -------
    SurveyManifest
        Also saved as ``out_dir/manifest.json``.
    """
    from tqdm.auto import tqdm


    t0 = time.perf_counter()
    out = Path(out_dir).resolve()

    def rel(p: Path | str) -> str:
        return str(Path(p).resolve().relative_to(out))

    (out / "l1").mkdir(parents=True, exist_ok=True)
    specs = plan_exposures(config)
    truth = truthmod.truth_table(config, specs=specs)
    truth_files = truthmod.write_truth(truth, specs, out / "truth")

    refs: dict[str, dict[str, str]] = {}
    for det in config.detectors:
        first = next(s for s in specs if s.detector == det)  # where this detector looks
        for filt in config.filters:
            ref_dir = out / "refs" / f"{det}_{filt}"
            written = write_reference_set(
                ref_dir, detector=det, optical_element=filt, size=config.size,
                ma_table_number=config.ma_table_number, ra=first.ra, dec=first.dec,
            )
            refs[f"{det}_{filt}"] = {k: rel(p) for k, p in written.items()}

    l1_entries: list[dict[str, Any]] = []
    for spec in tqdm(specs, desc="L1 exposures", unit="exp", disable=not progress):
        cat = truthmod.catalog_for_exposure(truth, spec)
        path = make_l1(spec, cat, out / "l1" / l1_filename(spec))
        l1_entries.append(
            {
                "path": rel(path),
                "spec": spec.model_dump(),
                "n_sources": len(cat),
            }
        )

    manifest = SurveyManifest(
        config=config,
        l1=l1_entries,
        refs=refs,
        truth={k: rel(p) for k, p in truth_files.items()},
        elapsed_s=time.perf_counter() - t0,
    )
    (out / "manifest.json").write_text(json.dumps(manifest.model_dump(), indent=1, default=_json_default))
    return manifest


def load_manifest(out_dir: Path | str) -> SurveyManifest:
    """Read ``manifest.json`` written by `simulate_survey`."""
    return SurveyManifest.model_validate_json((Path(out_dir) / "manifest.json").read_text())


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"cannot serialise {type(obj)}")
