"""Store rows as every reader needs them: rates in percent, and failed runs marked.

Two facts about rows that change over a store's life, normalised here and nowhere else:

- Units. Rows written before `units` existed hold `test_error` in percent and the other rates
  (`test_accuracy`, `f1`, `auc`, `digit_accuracy`) as fractions; rows with
  `"units": "percent"` hold all five in percent. After `normalise` every rate is in percent.
- Status. A row may carry `"status": "diverged"` (loss or weights became non-finite; its
  metrics are null). A row without `status` finished normally ("ok"). Tables count failed runs
  and never average them: `ok` selects the runs a mean may use.

And one fact every table groups by: a row's recipe (`recipe`), the settings its run was
trained with, rebuilt from what the row stores, so that runs of different recipes are never
one mean.
"""

from __future__ import annotations

import pandas as pd

from pairzoo.errors import PairzooError

RATES = ("test_error", "test_accuracy", "f1", "auc", "digit_accuracy")
# rates the old row convention (no "units" key) stores as fractions
_OLD_FRACTIONS = ("test_accuracy", "f1", "auc", "digit_accuracy")
UNITS = ("percent",)
OK = "ok"


def normalise(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy with every rate in percent, a `status` column ("ok" where absent) and the
    metrics of failed runs set to NaN."""
    frame = frame.copy()
    units = frame["units"] if "units" in frame else pd.Series(None, index=frame.index,
                                                              dtype=object)
    unknown = sorted({str(u) for u in units.dropna() if u not in UNITS})
    if unknown:
        raise PairzooError(f"store rows have units {', '.join(unknown)}; this pairzoo reads "
                           f"rows without `units` or with {', '.join(UNITS)}: upgrade pairzoo")
    old = units.isna()
    for metric in RATES:
        if metric in frame:
            values = pd.to_numeric(frame[metric], errors="coerce").astype(float)
            if metric in _OLD_FRACTIONS:
                values = values.where(~old, values * 100)
            frame[metric] = values
    status = frame["status"] if "status" in frame else pd.Series(None, index=frame.index,
                                                                 dtype=object)
    frame["status"] = status.fillna(OK).astype(str)
    failed = frame["status"] != OK
    present = [m for m in RATES if m in frame]
    if present and failed.any():
        frame.loc[failed, present] = float("nan")
    return frame


def ok(frame: pd.DataFrame) -> pd.DataFrame:
    """The runs that finished normally (after `normalise`)."""
    return frame[frame["status"] == OK]


def history_percent(values: list) -> list:
    """A per-epoch accuracy series in percent. Keras logs fractions, and the store keeps its
    histories as logged; a series already in percent (any value above 1) is left alone."""
    finite = [v for v in values if v is not None]
    if finite and max(finite) > 1:
        return list(values)
    return [None if v is None else v * 100 for v in values]


# --- recipes ---------------------------------------------------------------------------------


def recipe(row) -> dict:
    """The settings the row's run was trained with (pairzoo.runs.recipe_settings), rebuilt
    from what the row stores: `model`, `config` (the model's non-default fields), `recipe`
    (the training recipe) and its data. Fields added to pairzoo since the row was written take
    their defaults, as its run id does. A row this pairzoo cannot parse (a newer option) keeps
    its stored fields as they are."""
    from pairzoo.config import preset_from_dict
    from pairzoo.errors import ConfigError
    from pairzoo.runs import RECIPE_DATA, recipe_settings

    config = row.get("config") if isinstance(row.get("config"), dict) else {}
    train = row.get("recipe") if isinstance(row.get("recipe"), dict) else {}
    data = {key: _plain(row.get(key)) for key in RECIPE_DATA}
    try:
        preset = preset_from_dict(str(row["model"]), {"model": config, "train": train})
    except (ConfigError, TypeError, ValueError):
        tower = config.get("tower") if isinstance(config.get("tower"), dict) else {}
        return {"model": row["model"], **{k: v for k, v in config.items() if k != "tower"},
                **{f"tower.{k}": v for k, v in tower.items()}, **train, **data}
    return recipe_settings(preset, data)


def _plain(value):
    """A data setting as the run spec holds it, however pandas spells it: None for NaN, and
    an integer for a whole float (a column of seeds with a missing value turns float)."""
    if isinstance(value, float):
        return None if value != value else int(value) if value.is_integer() else value
    return value


def recipe_key(settings: dict) -> str:
    import json

    return json.dumps(settings, sort_keys=True, default=str)


def recipe_differences(recipes: list[dict], reference: dict | None = None) -> list[str]:
    """How each recipe differs, as `--set`-style words ("optimizer=sgd batch_size=50"): from
    `reference` when given, else from each other (the settings that vary among them). The
    model is left out: cells already name it."""
    from pairzoo.experiments.spec import format_level

    if reference is not None:
        keys = [[k for k in dict.fromkeys([*r, *reference]) if k != "model"
                 and r.get(k) != reference.get(k)] for r in recipes]
    else:
        varying = [k for k in dict.fromkeys(k for r in recipes for k in r) if k != "model"
                   and len({recipe_key({"v": r.get(k)}) for r in recipes}) > 1]
        keys = [varying] * len(recipes)
    return [" ".join(f"{k}={format_level(r.get(k))}" for k in ks)
            for r, ks in zip(recipes, keys, strict=True)]
