"""Selection rules: which grid point of a recipe search each model keeps.

The reports chose their recipes three ways, each a small function of finished runs:
- `lowest_train_loss` (report 001): the learning rate whose final training loss is lowest,
  averaged over the repetitions. It never looks at test data.
- `best_accuracy` (report 004): the grid point with the best mean *test* accuracy. This is
  what the report did; it selects on the test set, so the chosen cell's mean is optimistic.
- `cross_validation` (report 003's text): the best mean accuracy on held-out folds of the
  training pairs; the test pairs are never used.

Input: a DataFrame with one row per finished search run and the columns `model`, `label` (the
grid point), `history` (per-epoch lists) and `test_accuracy` (on the validation fold for
cross-validation runs).
"""

from __future__ import annotations

import pandas as pd

from pairzoo.errors import PairzooError


def final_train_loss(history: dict) -> float:
    losses = [v for v in (history or {}).get("loss", []) if v is not None]
    # a run that diverged (NaN loss, stored as null) is the worst possible choice, not absent
    return losses[-1] if losses and len(losses) == len(history["loss"]) else float("inf")


def run_scores(rows: pd.DataFrame, rule: str) -> pd.Series:
    """One number per run; what the rule averages (accuracies in percent, whichever row
    convention stored them; a failed run scores worst)."""
    if rule == "lowest_train_loss":
        return rows["history"].map(final_train_loss)
    if rule in ("best_accuracy", "cross_validation"):
        from pairzoo.analysis import rows as row_conventions

        accuracy = row_conventions.normalise(rows)["test_accuracy"]
        return accuracy.astype(float).fillna(float("-inf"))
    raise PairzooError(f"unknown selection rule {rule!r}")


def choose(rows: pd.DataFrame, rule: str) -> pd.DataFrame:
    """Mean, std and count of the score per (model, grid point); `chosen` marks each model's
    best (ties: the first in grid order)."""
    frame = rows.assign(score=run_scores(rows, rule))
    table = (frame.groupby(["model", "label"], sort=False)["score"]
             .agg(["mean", "std", "count"]).reset_index())
    lower_is_better = rule == "lowest_train_loss"
    best = table.groupby("model", sort=False)["mean"].transform("min" if lower_is_better
                                                                else "max")
    table["chosen"] = table["mean"] == best
    # keep only the first of tied best points per model
    table["chosen"] &= ~table.duplicated(subset=["model", "chosen"])
    return table


def chosen_labels(table: pd.DataFrame) -> dict[str, str]:
    """model -> the label of its chosen grid point."""
    picked = table[table["chosen"]]
    return dict(zip(picked["model"], picked["label"], strict=True))
