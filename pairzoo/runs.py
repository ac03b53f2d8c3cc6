"""Reading back what `pairzoo train` wrote: a run folder or a bare `.keras` file."""

from __future__ import annotations

import json
from pathlib import Path

from pairzoo.errors import PairzooError


def model_path(run_or_model: str | Path) -> Path:
    path = Path(run_or_model)
    if path.is_dir():
        path = path / "model.keras"
    if not path.is_file():
        raise PairzooError(f"no model at {run_or_model}: give a run folder (with model.keras) "
                           "or a .keras file")
    return path


def run_config(run_or_model: str | Path) -> dict:
    """The run's config.json, or {} for a bare model file."""
    path = Path(run_or_model)
    config_file = (path if path.is_dir() else path.parent) / "config.json"
    if not config_file.is_file():
        return {}
    try:
        return json.loads(config_file.read_text())
    except json.JSONDecodeError as e:
        raise PairzooError(f"{config_file} is corrupt ({e}); re-run the training") from e


def load_model(run_or_model: str | Path):
    """A trained pairzoo model from a run folder or a `.keras` file."""
    import keras

    import pairzoo.models  # noqa: F401  (registers PairModel and the custom layers)

    path = model_path(run_or_model)
    try:
        return keras.models.load_model(path)
    except Exception as e:  # keras raises ValueError, OSError, zipfile.BadZipFile, ...
        raise PairzooError(f"cannot load {path}: it is not a valid .keras model "
                           f"({type(e).__name__}); re-export or re-train it") from e
