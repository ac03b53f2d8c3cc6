"""A forest plot of one table's effects: each effect's estimate and 95 % CI, grouped by
factor, per model (circles) and pooled (diamonds); filled where Holm's p < 0.05."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from pairzoo.analysis.plots import save


def _header(row) -> str:
    levels = "" if row["levels"] in ("interaction", "with − without") else f" ({row['levels']})"
    return f"{row['factor']}{levels}"


def plot_forest(effects: pd.DataFrame, title: str, stem: Path,
                unit: str = "test error, points") -> list[Path]:
    """PNG and SVG of the effects table from pairzoo.analysis.effects.effects_table: one
    header line per factor, then one line per model (or model pair) and the pooled effect."""
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

    shown = effects[np.isfinite(effects["effect"].astype(float))].reset_index(drop=True)
    lines: list[tuple[str, object]] = []  # ("header", text) or ("effect", row)
    for _, row in shown.iterrows():
        if not lines or _header(row) != _header(lines[-1][1] if lines[-1][0] == "effect"
                                                else lines[-1][2]):
            lines.append(("header", _header(row), row))
        lines.append(("effect", row, row))
    fig = Figure(figsize=(9, 1.4 + 0.26 * max(len(lines), 1)), layout="constrained")
    ax = fig.subplots()
    positions = np.arange(len(lines))[::-1]  # the table's first effect at the top
    labels = []
    for position, (kind, row, _) in zip(positions, lines, strict=True):
        if kind == "header":
            labels.append(row)
            continue
        labels.append(f"    {row['scope']}")
        pooled = row["scope"] == "pooled"
        significant = bool(row["p holm"] < 0.05) if pd.notna(row["p holm"]) else False
        colour = "tab:red" if row["kind"] == "interaction" else "tab:blue"
        if pd.notna(row["ci low"]):
            ax.plot([row["ci low"], row["ci high"]], [position, position], color=colour,
                    linewidth=2.2 if pooled else 1.2)
        ax.plot([row["effect"]], [position], "D" if pooled else "o", color=colour,
                markersize=7 if pooled else 5, markerfacecolor=colour if significant else "white")
    ax.set_yticks(positions, labels, fontsize="small")
    for tick, (kind, _, _) in zip(ax.get_yticklabels(), lines, strict=True):
        if kind == "header":
            tick.set_fontweight("bold")
    ax.axvline(0, color="black", linewidth=0.8)
    ax.set_ylim(-0.8, len(lines) - 0.2)
    ax.set_xlabel(f"effect on {unit} (< 0: lower), 95 % CI")
    ax.grid(axis="x", alpha=0.3)
    legend = [Line2D([], [], marker="o", color="tab:blue", linestyle="", label="main effect"),
              Line2D([], [], marker="o", color="tab:red", linestyle="", label="interaction"),
              Line2D([], [], marker="D", color="grey", linestyle="", label="pooled over models"),
              Line2D([], [], marker="o", color="grey", markerfacecolor="white", linestyle="",
                     label="Holm p ≥ 0.05 (filled: < 0.05)")]
    fig.legend(handles=legend, fontsize="small", loc="outside lower center", ncols=4)
    fig.suptitle(title, fontsize="medium")
    return save(fig, stem)
