"""The validation report: text next to the goals, JSON, and PNG plots (matplotlib, Agg)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from romanarchive.validate.stats import Completeness, Figure


@dataclass
class Report:
    """Every figure of one validation run, the data of its plots, and where it came from."""

    archive: str
    truth: str
    release: str
    figures: list[Figure] = field(default_factory=list)
    plot: dict[str, Any] = field(default_factory=dict)
    wall_time_s: float = 0.0

    @property
    def n_failed(self) -> int:
        return sum(1 for f in self.figures if f.passed is False)

    @property
    def n_passed(self) -> int:
        return sum(1 for f in self.figures if f.passed is True)

    def as_dict(self) -> dict[str, Any]:
        return {"archive": self.archive, "truth": self.truth, "release": self.release,
                "wall_time_s": self.wall_time_s, "passed": self.n_passed, "failed": self.n_failed,
                "figures": [f.as_dict() for f in self.figures]}

    def text(self) -> str:
        """The report as aligned text: one line per figure, grouped by section."""
        lines = [f"validation of {self.archive} (release {self.release}) against {self.truth}"]
        width = min(max((len(f.name) for f in self.figures), default=20), 60)
        section = None
        for f in self.figures:
            if f.section != section:
                section = f.section
                lines.append(f"\n== {section} ==")
            value = f.formatted() + (f" {f.unit}" if f.unit and f.value is not None else "")
            line = f"  {f.name:<{width}}  {value:>14}  {f.goal.text:<14} {f.verdict:<4}"
            lines.append(line.rstrip() + (f"  {f.note}" if f.note else ""))
        lines.append(f"\n{self.n_passed} passed, {self.n_failed} failed ({self.wall_time_s:.0f} s)")
        return "\n".join(lines)

    def write(self, folder: Path) -> list[Path]:
        """Write ``report.json``, ``report.txt`` and the PNG plots into ``folder``; return the files written."""
        folder.mkdir(parents=True, exist_ok=True)
        out = [folder / "report.json", folder / "report.txt"]
        out[0].write_text(json.dumps(self.as_dict(), indent=1))
        out[1].write_text(self.text() + "\n")
        return out + write_plots(self.plot, folder)


def write_plots(plot: dict[str, Any], folder: Path) -> list[Path]:
    """Completeness, flux ratios, astrometric offsets and the catalog's sky map, from the report's plot data."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written: list[Path] = []

    def save(fig: Any, name: str) -> None:
        fig.tight_layout()
        fig.savefig(folder / name, dpi=110)
        plt.close(fig)
        written.append(folder / name)

    comp = plot.get("completeness") or {}
    if comp:
        fig, axes = plt.subplots(1, len(comp), figsize=(5 * len(comp), 4), squeeze=False)
        for ax, (band, entry) in zip(axes[0], sorted(comp.items()), strict=True):
            for key, label, style in (("ours", "archive", "o-"), ("peer", "source-extractor", "s--")):
                c: Completeness | None = entry.get(key)
                if c is not None:
                    centre = 0.5 * (c.edges[1:] + c.edges[:-1])
                    ok = c.n > 0
                    ax.plot(centre[ok], c.fraction[ok], style, label=label)
            ax.set(xlabel=f"truth {band} [AB mag]", ylabel="completeness", ylim=(-0.02, 1.05), title=band)
            ax.legend()
        save(fig, "completeness.png")
    flux = plot.get("flux") or {}
    if flux:
        fig, axes = plt.subplots(1, len(flux), figsize=(5 * len(flux), 4), squeeze=False)
        for ax, (band, entry) in zip(axes[0], sorted(flux.items()), strict=True):
            for label, ratio in entry.items():
                if label != "mag":  # outliers drawn on the frame: the goals are at the per-cent level
                    ax.plot(entry["mag"], np.clip(ratio, 0.71, 1.29), ".", label=label)
            ax.axhline(1.0, color="k", lw=0.8)
            ax.set(xlabel=f"truth {band} [AB mag]", ylabel="measured / truth", title=f"{band} isolated stars",
                   ylim=(0.7, 1.3))
            ax.legend()
        save(fig, "photometry.png")
    astro = plot.get("astrometry")
    if astro is not None and len(astro["dra"]):
        fig, ax = plt.subplots(figsize=(5, 5))
        ax.plot(astro["dra"], astro["ddec"], ".")
        ax.axhline(0, color="k", lw=0.8)
        ax.axvline(0, color="k", lw=0.8)
        lim = float(np.nanmax(np.abs(np.concatenate([astro["dra"], astro["ddec"]])))) * 1.1 or 1.0
        ax.set(xlabel="ΔRA cos Dec [mas]", ylabel="ΔDec [mas]", xlim=(-lim, lim), ylim=(-lim, lim),
               title="best positions − truth (S/N > 50 stars)")
        save(fig, "astrometry.png")
    sky = plot.get("sky")
    if sky is not None:
        fig, ax = plt.subplots(figsize=(7, 7))
        real = sky["real"]
        ax.plot(sky["truth_ra"], sky["truth_dec"], "o", mfc="none", color="0.6", ms=7, label="truth")
        ax.plot(sky["ra"][real], sky["dec"][real], ".", color="tab:blue", ms=3, label="matched rows")
        ax.plot(sky["ra"][~real], sky["dec"][~real], "x", color="tab:red", ms=3, label="rows without truth")
        ax.plot(sky["sat_ra"], sky["sat_dec"], "*", color="k", ms=14, label="saturated stars")
        ax.invert_xaxis()
        ax.set(xlabel="RA [deg]", ylabel="Dec [deg]", title="catalog rows vs truth")
        ax.legend(loc="best", fontsize=8)
        save(fig, "sky.png")
    return written

