"""Store rows as every reader needs them: rates in percent, and failed runs marked.

Two facts about rows that change over a store's life, normalised here and nowhere else:

- Units. Rows written before `units` existed hold `test_error` in percent and the other rates
  (`test_accuracy`, `f1`, `auc`, `digit_accuracy`) as fractions; rows with
  `"units": "percent"` hold all five in percent. After `normalise` every rate is in percent.
- Status. A row may carry `"status": "diverged"` (loss or weights became non-finite; its
  metrics are null). A row without `status` finished normally ("ok"). Tables count failed runs
  and never average them: `ok` selects the runs a mean may use.
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
