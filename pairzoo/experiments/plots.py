"""Learning curves from store rows: train and test loss and accuracy per epoch, the mean over a
cell's runs with a +-1 std band (like the reports' figures), as PNG.

Figures are built with `matplotlib.figure.Figure` rather than pyplot: no global state and no
GUI backend, so plotting works the same in a headless background job.
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

# panel -> the history keys for (train, test); the first one present is used, since
# single-output (two-channel) models log `accuracy` where siamese ones log `compare_accuracy`
PANELS = {
    "loss": (("loss",), ("val_loss",)),
    "comparison accuracy (%)": (("compare_accuracy", "accuracy"),
                                ("val_compare_accuracy", "val_accuracy")),
}


def _first(history: dict, keys: tuple[str, ...]) -> list | None:
    return next((history[k] for k in keys if k in history), None)


def curves(frame: pd.DataFrame) -> pd.DataFrame:
    """Long form: one row per (run, panel, split, epoch) with its value."""
    records = []
    for row in frame.itertuples(index=False):
        history = row.history or {}
        for panel, keys in PANELS.items():
            scale = 100 if "%" in panel else 1
            for split, split_keys in zip(("train", "test"), keys, strict=True):
                values = _first(history, split_keys) or []
                records += [{"cell_label": row.cell_label, "run_id": row.run_id, "panel": panel,
                             "split": split, "epoch": epoch, "value": None if v is None
                             else v * scale} for epoch, v in enumerate(values, start=1)]
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


def plot_cell(stats: pd.DataFrame, title: str, path: Path) -> Path:
    """Two panels (loss, accuracy), train and test, for one cell."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(9, 3.4), layout="constrained")
    for ax, panel in zip(fig.subplots(1, 2), PANELS, strict=True):
        for split, color in (("train", "tab:blue"), ("test", "tab:orange")):
            part = stats[(stats["panel"] == panel) & (stats["split"] == split)]
            if len(part):
                _draw(ax, part, split, color)
        ax.set_xlabel("epoch")
        ax.set_title(panel)
        ax.grid(alpha=0.3)
        ax.legend()
    runs = int(stats["count"].max()) if len(stats) else 0
    fig.suptitle(f"{title} (mean ± 1 std over {runs} runs)")
    fig.savefig(path, dpi=100)
    return path


def plot_overview(stats: pd.DataFrame, title: str, path: Path) -> Path:
    """Test accuracy of every cell on one axis (report 004's Figure 4)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8, 4.5), layout="constrained")
    ax = fig.subplots()
    test = stats[(stats["split"] == "test") & (stats["panel"] != "loss")]
    for i, (label, part) in enumerate(test.groupby("cell_label", sort=False)):
        # ten colours, then the same ten dashed: report 001's tables have 16 cells
        _draw(ax, part, label, f"C{i % 10}", "-" if i < 10 else "--")
    ax.set_xlabel("epoch")
    ax.set_ylabel("test comparison accuracy (%)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    fig.savefig(path, dpi=100)
    return path


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._=-]+", "_", text).strip("_") or "cell"


def write_learning_curves(frame: pd.DataFrame, out_dir: str | Path, title: str) -> list[Path]:
    """One PNG per cell plus an overview; returns the files written."""
    stats = bands(curves(frame))
    if stats.empty:
        return []
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = [plot_overview(stats, title, out_dir / "overview.png")]
    for label, part in stats.groupby("cell_label", sort=False):
        written.append(plot_cell(part, label, out_dir / f"{slug(label)}.png"))
    return written
