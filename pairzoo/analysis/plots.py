"""Learning curves from store rows: train and test loss and comparison error per epoch, the
mean over a cell's runs with a +-1 std band (like the reports' figures), with the report's
final figure marked, as PNG and SVG.

The error panels plot 100 - accuracy, so a curve ends where the table's figure is and the
report's mean (dashed, with its +-1 std band where the report gives one) reads on the same
axis. The overview is small multiples: one panel per model (or, for one model, per level of
its first axis), each cell a line in a colour that means the same levels in every panel.

Figures are built with `matplotlib.figure.Figure` rather than pyplot: no global state and no
GUI backend, so plotting works the same in a headless background job.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import pandas as pd

from pairzoo.analysis import rows
from pairzoo.wording import plural

ERROR = "comparison error (%)"
# panel -> the history keys for (train, test); the first one present is used, since
# single-output (two-channel) models log `accuracy` where siamese ones log `compare_accuracy`
PANELS = {
    "loss": (("loss",), ("val_loss",)),
    ERROR: (("compare_accuracy", "accuracy"), ("val_compare_accuracy", "val_accuracy")),
}
FORMATS = ("png", "svg")
DPI = 120


def _first(history: dict, keys: tuple[str, ...]) -> list | None:
    return next((history[k] for k in keys if k in history), None)


def curves(frame: pd.DataFrame) -> pd.DataFrame:
    """Long form: one row per (run, panel, split, epoch) with its value; failed runs (status
    other than ok) are left out."""
    records = []
    frame = rows.ok(rows.normalise(frame)) if len(frame) else frame
    for row in frame.itertuples(index=False):
        history = row.history if isinstance(row.history, dict) else {}
        for panel, keys in PANELS.items():
            for split, split_keys in zip(("train", "test"), keys, strict=True):
                values = _first(history, split_keys) or []
                if panel == ERROR:
                    values = [None if v is None else 100 - v
                              for v in rows.history_percent(values)]
                records += [{"cell_label": row.cell_label, "run_id": row.run_id, "panel": panel,
                             "split": split, "epoch": epoch, "value": v}
                            for epoch, v in enumerate(values, start=1)]
    return pd.DataFrame(records, columns=["cell_label", "run_id", "panel", "split", "epoch",
                                          "value"])


def bands(long: pd.DataFrame) -> pd.DataFrame:
    """Mean and std per (cell, panel, split, epoch)."""
    return (long.groupby(["cell_label", "panel", "split", "epoch"], sort=False)["value"]
            .agg(["mean", "std", "count"]).reset_index())


def _draw(ax, stats: pd.DataFrame, label: str, color, style: str = "-") -> None:
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # epochs are whole numbers
    ax.plot(stats["epoch"], stats["mean"], style, color=color, label=label)
    ax.fill_between(stats["epoch"], stats["mean"] - stats["std"].fillna(0),
                    stats["mean"] + stats["std"].fillna(0), color=color, alpha=0.2, linewidth=0)


def _mark_report(ax, mark: tuple | None, color="black", label=True) -> None:
    """The report's final test error: a dashed line, and its +-1 std as a hatched band."""
    if not mark or mark[0] is None or (isinstance(mark[0], float) and math.isnan(mark[0])):
        return
    mean, std = mark
    text = f"report: {mean:.2f}" + ("" if std is None or math.isnan(std) else f" ± {std:.2f}")
    ax.axhline(mean, color=color, linestyle="--", linewidth=1,
               label=text + " %" if label else None)
    if std is not None and not math.isnan(std):
        ax.axhspan(mean - std, mean + std, facecolor="none", edgecolor=color, hatch="///",
                   linewidth=0, alpha=0.35)


# SVG text stays text (smaller, searchable, editable in a paper's figure); a fixed salt and no
# date keep a regenerated figure byte-identical when its data has not changed
_SVG = {"svg.fonttype": "none", "svg.hashsalt": "pairzoo"}


def save(fig, stem: Path) -> list[Path]:
    """The figure as PNG and SVG beside each other."""
    import matplotlib

    paths = [stem.parent / f"{stem.name}.{fmt}" for fmt in FORMATS]  # names hold dots
    with matplotlib.rc_context(_SVG):
        for path in paths:
            fig.savefig(path, dpi=DPI, metadata={"Date": None} if path.suffix == ".svg"
                        else None)
    return paths


def plot_cell(stats: pd.DataFrame, title: str, stem: Path, mark: tuple | None = None
              ) -> list[Path]:
    """Two panels (loss, comparison error), train and test, for one cell."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(9, 3.6), layout="constrained")
    for ax, panel in zip(fig.subplots(1, 2), PANELS, strict=True):
        for split, color in (("train", "tab:blue"), ("test", "tab:orange")):
            part = stats[(stats["panel"] == panel) & (stats["split"] == split)]
            if len(part):
                _draw(ax, part, split, color)
        if panel == ERROR:
            _mark_report(ax, mark)
        ax.set_ylim(bottom=0)  # neither loss nor error goes below 0, whatever the band says
        ax.set_xlabel("epoch")
        ax.set_ylabel(panel)
        ax.set_title(panel)
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
    runs = int(stats["count"].max()) if len(stats) else 0
    fig.suptitle(f"{title} (mean ± 1 std over {plural(runs, 'run')})")
    return save(fig, stem)


def _panel_key(cells: dict[str, dict]) -> str | None:
    """Panels by model when there are several, else by the first axis, else none."""
    models = {cell.get("model") for cell in cells.values()}
    if len(models) > 1:
        return "model"
    axes = [k for cell in cells.values() for k in cell if k != "model"]
    return axes[0] if axes else None


def _rest(cell: dict, key: str | None) -> str:
    from pairzoo.experiments.spec import format_level

    parts = [f"{k}={format_level(v)}" for k, v in cell.items() if k not in (key, "model")]
    return " ".join(parts) or str(cell.get("model", ""))


def plot_overview(stats: pd.DataFrame, cells: dict[str, dict], title: str, stem: Path,
                  marks: dict | None = None) -> list[Path]:
    """Small multiples of the test comparison error per epoch, the report's figure as an
    error bar (mean ± 1 std) just after each cell's last epoch."""
    from matplotlib.figure import Figure

    from pairzoo.experiments.spec import format_level

    marks = marks or {}
    test = stats[(stats["split"] == "test") & (stats["panel"] == ERROR)]
    key = _panel_key(cells)
    panels: dict[str, list[str]] = {}
    for label in dict.fromkeys(test["cell_label"]):
        cell = cells.get(label, {})
        name = (str(cell.get(key)) if key == "model" else f"{key}={format_level(cell.get(key))}"
                ) if key else ""
        panels.setdefault(name, []).append(label)
    columns = min(len(panels), 3) or 1
    grid_rows = math.ceil(len(panels) / columns) or 1
    fig = Figure(figsize=(4.2 * columns, 3.2 * grid_rows + 0.8), layout="constrained")
    axes = fig.subplots(grid_rows, columns, squeeze=False, sharex=True, sharey=True)
    colours = {rest: f"C{i % 10}" for i, rest in enumerate(
        dict.fromkeys(_rest(cells.get(lbl, {}), key) for lbl in test["cell_label"]))}
    for ax, (name, labels) in zip(axes.flat, panels.items(), strict=False):
        for index, label in enumerate(labels):
            rest = _rest(cells.get(label, {}), key)
            part = test[test["cell_label"] == label]
            _draw(ax, part, rest, colours[rest])
            last = int(part["epoch"].max())  # this cell's own length (25, 30, 50, 100 ...)
            mark = marks.get(label)
            if mark and mark[0] is not None and not math.isnan(mark[0]):
                std = mark[1] if mark[1] is not None and not math.isnan(mark[1]) else None
                # staggered after the cell's last epoch, so bars do not hide each other
                span = float(test["epoch"].max())
                ax.errorbar([last + span * (0.03 + 0.025 * index)], [mark[0]],
                            yerr=None if std is None else [[std], [std]], fmt="D",
                            color=colours[rest], markersize=4, capsize=3)
        ax.set_title(name, fontsize="medium")
        ax.grid(alpha=0.3)
    axes.flat[0].set_ylim(bottom=0)  # shared: once every panel's data is in
    for ax in axes.flat[len(panels):]:
        ax.set_visible(False)
    for ax in axes[-1]:
        ax.set_xlabel("epoch")
    for ax in axes[:, 0]:
        ax.set_ylabel("test comparison error (%)")
    handles, names = axes.flat[0].get_legend_handles_labels()
    has_levels = any(k not in (key, "model") for cell in cells.values() for k in cell)
    if has_levels:  # a legend for the levels inside each panel, not for the panels' names
        wide = max(map(len, names)) > 28
        fig.legend(handles, names, loc="outside lower center",
                   ncols=min(len(names), 2 if wide else 4), fontsize="small")
    fig.suptitle(f"{title}\ntest comparison error per epoch, mean ± 1 std; "
                 "◆ after a cell's last epoch: the report's mean ± std", fontsize="medium")
    return save(fig, stem)


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._=-]+", "_", text).strip("_") or "cell"


def write_learning_curves(frame: pd.DataFrame, out_dir: str | Path, title: str,
                          marks: dict | None = None) -> list[Path]:
    """One PNG and one SVG per cell plus an overview; returns the files written.

    `marks` maps a cell label to the report's (mean, std or None) test error, in percent."""
    stats = bands(curves(frame))
    if stats.empty:
        return []
    marks = marks or {}
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    cells = dict(zip(frame["cell_label"], frame["cell"], strict=True))
    written = plot_overview(stats, cells, title, out_dir / "overview", marks)
    for label, part in stats.groupby("cell_label", sort=False):
        written += plot_cell(part, label, out_dir / slug(label), marks.get(label))
    return written
