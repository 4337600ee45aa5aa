"""A simulated survey calibrated to L2 outside the archive: inputs for mosaic, catalog and time-series work.

``calibrated_survey`` simulates a survey (L1 + references + truth), then runs the same calibration the archive's
jobs run on every L1 and writes ``l2/*_cal.asdf`` next to ``l1/``. The result depends only on the configuration,
so it can be kept in a cache folder keyed by the configuration's hash (tests and benchmarks reuse it; a stale
entry is impossible because the key changes with any field).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

from tqdm.auto import tqdm

from romanarchive.calib.pipeline import CalibConfig, calibrate
from romanarchive.sim.l1 import SIMULATION_VERSION
from romanarchive.sim.survey import SurveyConfig, SurveyManifest, load_manifest, simulate_survey

#: Bumped when the calibration code changes what a cached survey would contain.  The key also holds
#: `SIMULATION_VERSION` (the simulated pixels) and the default calibration options (e.g. FluxStep on/off).
CACHE_VERSION = 4
# Options that cannot change the L2 pixels stay out of the key.
_NEUTRAL_CALIB_OPTIONS = {"maximum_cores", "crds_path", "sample_interval_s"}


def science_config(**overrides: object) -> SurveyConfig:
    """The survey the science tests use: one pointing, 2 dithers, 4 epochs, 2 filters (16 exposures of 512²).

    Enough overlapping images per filter to co-add, enough epochs for light curves and a difference-imaging
    template, and two bands for colours.
    """
    kw: dict[str, object] = dict(
        n_pointings=1, dithers=2, epochs=4, epoch_spacing_days=2.0, filters=["F087", "F158"], n_stars=40,
        n_variables=8, n_galaxies=20, n_transients=3, n_moving=1,
    )
    return SurveyConfig(**(kw | overrides))  # type: ignore[arg-type]


def config_key(config: SurveyConfig) -> str:
    """Stable hash of a configuration, of this module's cache version and of the simulation version."""
    calib = CalibConfig().model_dump(mode="json", exclude=_NEUTRAL_CALIB_OPTIONS)
    blob = json.dumps(
        {"v": CACHE_VERSION, "sim": SIMULATION_VERSION, "calib": calib, "config": config.model_dump(mode="json")},
        sort_keys=True,
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def l2_files(out_dir: Path | str) -> list[Path]:
    """The calibrated images of a survey folder, in exposure order."""
    return sorted((Path(out_dir) / "l2").glob("*_cal.asdf"))


def calibrate_survey(out_dir: Path | str, progress: bool = True) -> list[Path]:
    """Calibrate every L1 of a simulated survey folder into ``l2/``; returns the L2 paths."""
    out = Path(out_dir)
    manifest = load_manifest(out)
    (out / "l2").mkdir(exist_ok=True)
    done: list[Path] = []
    for entry in tqdm(manifest.l1, desc="L2 calibration", unit="exp", disable=not progress):
        spec = entry["spec"]
        refs = {k: out / p for k, p in manifest.refs[f"{spec['detector']}_{spec['bandpass']}"].items()}
        l1 = out / entry["path"]
        target = out / "l2" / f"{l1.stem.removesuffix('_uncal')}_cal.asdf"
        if not target.exists():
            calibrate(l1, refs, target, CalibConfig())
        done.append(target)
    return done


def calibrated_survey(config: SurveyConfig, out_dir: Path | str | None = None, cache: Path | str | None = None,
                      progress: bool = True) -> Path:
    """Simulate and calibrate ``config``; returns the folder (``l1/``, ``l2/``, ``refs/``, ``truth/``).

    Parameters
    ----------
    config
        The survey.
    out_dir
        Where to build it when there is no cache.
    cache
        A cache root (default ``$ROMANARCHIVE_SIM_CACHE`` if set): the survey is built once under
        ``<cache>/<config_key>`` and reused.
    progress
        Show progress bars.
    """
    cache = cache or os.environ.get("ROMANARCHIVE_SIM_CACHE")
    if cache:
        folder = Path(cache) / config_key(config)
        if (folder / "complete").exists():
            return folder
    elif out_dir is not None:
        folder = Path(out_dir)
    else:
        raise ValueError("calibrated_survey needs out_dir or a cache folder")
    building = folder.with_name(folder.name + f".building-{os.getpid()}")
    shutil.rmtree(building, ignore_errors=True)
    simulate_survey(config, building, progress=progress)
    calibrate_survey(building, progress=progress)
    (building / "complete").write_text(config.model_dump_json())
    if folder.exists():
        shutil.rmtree(folder)
    building.rename(folder)
    return folder


def manifest_of(folder: Path | str) -> SurveyManifest:
    """The simulation manifest of a calibrated survey folder."""
    return load_manifest(folder)
