"""Run romancal's ExposurePipeline (L1 ramp -> L2 calibrated image) offline.

Every reference file is passed as a step override, CRDS is shimmed offline
(:mod:`romanarchive.crds_offline`), and the steps that cannot work on a
synthetic cut-out are skipped: ``refpix`` and ``dark_decay`` assume a
4096x4096 frame, TweakReg needs an absolute reference catalogue and the source
catalogue is optional.  romancal's ``FluxStep`` (not part of ExposurePipeline in
romancal 1.1; MosaicPipeline runs it first) is applied to the result, so the L2's
``data``, ``err`` and ``var_*`` are surface brightness in MJy/sr (``meta.cal_step.flux``
COMPLETE; ``meta.photometry`` keeps the DN/s -> MJy/sr factor and the pixel area).
:func:`bare_pipeline_call` is the plain ``ExposurePipeline.call`` followed by
``FluxStep.call`` with the same settings, used to check that the wrapper changes no
pixel.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import asdf
import psutil
import pydantic

from romanarchive.crds_offline import configure_offline
from romanarchive.software import CALIBRATION_PACKAGES, package_versions

__all__ = ["CalibConfig", "CalibResult", "bare_pipeline_call", "calibrate", "pipeline_kwargs"]

_FULL_SIZE = 4088
# (pipeline step, its reference types) — override_<reftype> goes on that step.
_STEP_REFTYPES: dict[str, tuple[str, ...]] = {
    "dq_init": ("mask",),
    "saturation": ("saturation",),
    "refpix": ("refpix",),
    "dark_decay": ("darkdecaysignal",),
    "linearity": ("linearity", "inverselinearity"),
    "dark_current": ("dark",),
    "rampfit": ("readnoise", "gain"),
    "assign_wcs": ("distortion",),
    "photom": ("photom",),
    "flatfield": ("flat",),
    "source_catalog": ("apcorr",),
}


def _default_crds_path() -> Path:
    return Path(os.environ.get("ROMANARCHIVE_CRDS_PATH", Path.home() / ".cache" / "romanarchive" / "crds"))


class CalibConfig(pydantic.BaseModel):
    """Options of one calibration run.

    ``skip_refpix`` / ``skip_dark_decay`` default to "skip unless the image is the
    full 4088x4088 detector"; TweakReg and the source catalogue are off unless asked.
    """

    model_config = pydantic.ConfigDict(extra="forbid")

    ramp_fit_algorithm: Literal["likely", "ols_cas22"] = "likely"
    maximum_cores: str = "1"
    skip_refpix: bool | None = None
    skip_dark_decay: bool | None = None
    skip_steps: tuple[str, ...] = ()  # "flux" keeps the L2 in DN/s
    run_source_catalog: bool = False
    fit_psf: bool = True
    run_tweakreg: bool = False
    abs_refcat: Path | None = None  # local ECSV (ra, dec) for TweakReg; required with run_tweakreg
    crds_path: Path = pydantic.Field(default_factory=_default_crds_path)
    sample_interval_s: float = 0.05  # RSS sampling period for CalibResult.peak_rss_mb

    @property
    def run_flux(self) -> bool:
        """Whether FluxStep converts the L2 to MJy/sr (on unless ``"flux"`` is in ``skip_steps``)."""
        return "flux" not in self.skip_steps

    @pydantic.model_validator(mode="after")
    def _tweakreg_needs_catalog(self) -> CalibConfig:
        if self.run_tweakreg and (self.abs_refcat is None or not self.run_source_catalog):
            raise ValueError("run_tweakreg needs run_source_catalog=True and a local abs_refcat")
        unknown = set(self.skip_steps) - set(_STEP_REFTYPES) - {"wfi18_transient", "tweakreg", "flux"}
        if unknown:
            raise ValueError(f"unknown steps {sorted(unknown)}")
        return self


@dataclass
class CalibResult:
    """What one calibration did: output, steps, settings, software, references, cost."""

    out_path: Path
    steps: list[str]  # pipeline order; "name (SKIPPED)" for skipped ones
    parameters: dict[str, Any]
    software: dict[str, str]
    reference_files: dict[str, str]  # reftype -> file name ("N/A" where deliberately none)
    wall_time_s: float
    peak_rss_mb: float  # max RSS of this process sampled by a psutil thread during the call
    catalog_path: Path | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def software_versions() -> dict[str, str]:
    """Installed versions of the packages that determine the calibrated pixels."""
    return package_versions(CALIBRATION_PACKAGES, missing="not installed")


def l1_science_size(l1_path: Path) -> int:
    """Side of the science area of an L1 file (array side minus the 2x4 reference border)."""
    with asdf.open(l1_path, lazy_load=True, memmap=False) as af:
        return int(af["roman"]["data"].shape[-1]) - 8


def pipeline_kwargs(
    refs: dict[str, Path], size: int, config: CalibConfig | None = None
) -> dict[str, Any]:
    """Keyword arguments for ``ExposurePipeline.call`` / ``build_config``.

    Parameters
    ----------
    refs
        ``{reftype: path}``; every reftype the enabled steps need must be present.
    size
        Science size of the exposure (decides the refpix / dark_decay skips).
    config
        Options.

    Returns
    -------
    dict
        ``{"steps": {step: {...}}, "save_results": False}``.
    """
    cfg = config or CalibConfig()
    skip = set(cfg.skip_steps)
    # Both steps index a 4096x4096 frame (refpix channels, dark-decay read times).
    if cfg.skip_refpix if cfg.skip_refpix is not None else size != _FULL_SIZE:
        skip.add("refpix")
    if cfg.skip_dark_decay if cfg.skip_dark_decay is not None else size != _FULL_SIZE:
        skip.add("dark_decay")
    if not cfg.run_source_catalog:
        skip.add("source_catalog")
    if not cfg.run_tweakreg:
        skip.add("tweakreg")

    steps: dict[str, dict[str, Any]] = {}
    for step, reftypes in _STEP_REFTYPES.items():
        opts: dict[str, Any] = {"skip": step in skip}
        if step not in skip:
            for reftype in reftypes:
                if reftype not in refs:
                    raise KeyError(f"no {reftype} reference file for step {step}")
                opts[f"override_{reftype}"] = str(refs[reftype])
        steps[step] = opts
    # No INL reference exists for synthetic data; 'N/A' makes the step not ask CRDS.
    steps["linearity"]["override_integralnonlinearity"] = "N/A"
    steps["rampfit"].update(algorithm=cfg.ramp_fit_algorithm, maximum_cores=cfg.maximum_cores)
    steps["source_catalog"]["fit_psf"] = cfg.fit_psf
    steps["wfi18_transient"] = {"skip": "wfi18_transient" in skip}
    steps["tweakreg"] = {"skip": "tweakreg" in skip}
    if cfg.run_tweakreg:
        steps["tweakreg"].update(abs_refcat=str(cfg.abs_refcat))
    return {"steps": steps, "save_results": False}


@contextmanager
def _peak_rss(interval: float) -> Iterator[dict[str, float]]:
    """Sample this process's RSS in a thread; yields a dict whose ``peak_mb`` is set on exit."""
    proc = psutil.Process()
    out = {"peak_mb": proc.memory_info().rss / 2**20}
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(interval):
            out["peak_mb"] = max(out["peak_mb"], proc.memory_info().rss / 2**20)

    thread = threading.Thread(target=sample, daemon=True, name="rss-sampler")
    thread.start()
    try:
        yield out
    finally:
        stop.set()
        thread.join()
        out["peak_mb"] = max(out["peak_mb"], proc.memory_info().rss / 2**20)


def _step_status(model: Any) -> list[str]:
    order = ["dq_init", "saturation", "refpix", "dark_decay", "wfi18_transient", "linearity", "ramp_fit",
             "dark", "assign_wcs", "photom", "flat_field", "source_catalog", "tweakreg", "flux"]
    cal = dict(model.meta.cal_step)
    names = [n for n in order if n in cal]  # cal_step also lists L3 steps (skymatch, ...)
    return [n if cal[n] == "COMPLETE" else f"{n} ({cal[n]})" for n in names]


def _apply_flux(model: Any) -> Any:
    """romancal's FluxStep on an in-memory L2: DN/s -> MJy/sr (data, err, var_*), ``cal_step.flux`` COMPLETE.

    The L2 source catalogue (if any) was measured before, on DN/s, as romancal's own L2 catalogue expects.
    """
    from romancal.flux import FluxStep

    return FluxStep.call(model)


def calibrate(
    l1_path: Path, refs: dict[str, Path], out_path: Path, config: CalibConfig | None = None
) -> CalibResult:
    """Calibrate one L1 exposure to an L2 ``ImageModel`` (``_cal.asdf``), offline.

    Parameters
    ----------
    l1_path
        ScienceRawModel ASDF (e.g. from :func:`romanarchive.sim.l1.make_l1`).
    refs
        ``{reftype: path}`` from :func:`romanarchive.sim.references.write_reference_set`.
    out_path
        Where to write the L2 file.
    config
        Options; default :class:`CalibConfig`.

    Returns
    -------
    CalibResult
        Output path, steps run/skipped, parameters, versions, references, wall time
        and peak RSS (psutil sampling thread, whole process, every
        ``config.sample_interval_s``).
    """
    cfg = config or CalibConfig()
    configure_offline(cfg.crds_path)
    from romancal.pipeline import ExposurePipeline  # only after the CRDS shim is in place

    l1_path, out_path = Path(l1_path), Path(out_path)
    size = l1_science_size(l1_path)
    kwargs = pipeline_kwargs(refs, size, cfg)
    t0 = time.perf_counter()
    with _peak_rss(cfg.sample_interval_s) as rss:
        # What ExposurePipeline.call does, minus its log set-up, keeping the instance
        # so that override_epsf (not a declared parameter) can be set on the step.
        config_obj, config_file = ExposurePipeline.build_config(str(l1_path), **kwargs)
        config_obj.pop("class", None)
        pipe = ExposurePipeline.from_config_section(config_obj, name=config_obj.get("name"), config_file=config_file)
        if cfg.run_source_catalog and cfg.fit_psf:
            pipe.source_catalog.override_epsf = str(refs["epsf"])
        model, catalog, _segm = pipe.run(str(l1_path))
        if cfg.run_flux:
            model = _apply_flux(model)
        out_path.parent.mkdir(parents=True, exist_ok=True)
        # Save under the final name in a private directory, then rename into place:
        # readers never see a partial file and meta.filename stays the final name.
        tmp_dir = Path(tempfile.mkdtemp(prefix=".calib-", dir=out_path.parent))
        try:
            model.save(tmp_dir / out_path.name)
            (tmp_dir / out_path.name).replace(out_path)
        finally:
            shutil.rmtree(tmp_dir, ignore_errors=True)
        catalog_path = None
        if catalog is not None:
            catalog_path = out_path.with_name(out_path.name.replace("_cal.asdf", "") + "_cat.ecsv")
            catalog.source_catalog.write(catalog_path, overwrite=True)
    wall = time.perf_counter() - t0

    used = {rt: Path(p).name for rt, p in refs.items()}
    ref_used: dict[str, str] = {}
    for step, reftypes in _STEP_REFTYPES.items():
        if not kwargs["steps"][step]["skip"]:
            ref_used.update({rt: used[rt] for rt in reftypes})
    ref_used["integralnonlinearity"] = "N/A"
    if cfg.run_source_catalog and cfg.fit_psf:
        ref_used["epsf"] = used["epsf"]
    steps = _step_status(model)
    model.close()
    return CalibResult(
        out_path=out_path,
        steps=steps,
        parameters={"config": cfg.model_dump(mode="json"), "pipeline": kwargs, "flux_step": cfg.run_flux,
                    "science_size": size},
        software=software_versions(),
        reference_files=ref_used,
        wall_time_s=wall,
        peak_rss_mb=rss["peak_mb"],
        catalog_path=catalog_path,
    )


def bare_pipeline_call(
    l1_path: Path, refs: dict[str, Path], out_dir: Path, crds_path: Path | None = None
) -> Path:
    """Calibrate with a plain ``ExposurePipeline.call`` and ``FluxStep.call`` (romancal's own saving).

    Same overrides and skips as :func:`calibrate` with the default config.  The
    CRDS shim is applied first (without it romancal cannot run here at all).
    ``FluxStep`` rewrites romancal's ``*_cal.asdf`` in place (romancal names its
    output by suffix, and the L2 keeps the ``cal`` one).

    Parameters
    ----------
    l1_path, refs, out_dir
        As for :func:`calibrate` (``out_dir`` receives romancal's own file name).
    crds_path
        CRDS cache for the offline shim (default as in :class:`CalibConfig`).

    Returns
    -------
    Path
        The ``*_cal.asdf`` romancal wrote into ``out_dir``.
    """
    cfg = CalibConfig() if crds_path is None else CalibConfig(crds_path=crds_path)
    configure_offline(cfg.crds_path)
    from romancal.pipeline import ExposurePipeline

    l1_path, out_dir = Path(l1_path), Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    kwargs = pipeline_kwargs(refs, l1_science_size(l1_path), cfg)
    kwargs.update(save_results=True, output_dir=str(out_dir))
    ExposurePipeline.call(str(l1_path), **kwargs)
    stem = l1_path.name.removesuffix(".asdf").removesuffix("_uncal")
    out = out_dir / f"{stem}_cal.asdf"
    if not out.exists():
        found = sorted(out_dir.glob("*_cal.asdf"))
        if len(found) != 1:
            raise FileNotFoundError(f"romancal wrote no single *_cal.asdf in {out_dir}: {found}")
        out = found[0]
    from romancal.flux import FluxStep

    FluxStep.call(str(out), save_results=True, output_dir=str(out_dir), output_file=out.name, suffix="cal")
    return out
