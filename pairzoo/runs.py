"""A run: what determines its result (RunSpec), its id, its pairs, and its folder on disk.

    spec = RunSpec(get_preset("siamese_fullyconv"), seed=3)
    train_pairs, test_pairs = spec.pairs()
    spec.run_id                      # content-derived: the same run has the same id anywhere
    RunSpec.from_config(spec.to_config())  == spec

Training (pairzoo.training), experiments, `pairzoo evaluate` and export all take a RunSpec, so
which pairs a run sees, and what its config.json holds, is decided here once. Importing this
module imports no Keras.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pairzoo.config import Preset, preset_from_dict
from pairzoo.data.sources import DEFAULT_SOURCE
from pairzoo.destinations import check_writable
from pairzoo.errors import ConfigError, PairzooError
from pairzoo.seeds import check_seed

RUN_FILES = ("model.keras", "config.json", "history.csv", "metrics.json")


@dataclass(frozen=True)
class RunSpec:
    """One training run: the resolved preset (model and recipe), the seed, and its data."""

    preset: Preset
    seed: int = 0  # the pairs (unless pairs_seed), initial weights, batch order, dropout
    train_data: str = DEFAULT_SOURCE
    test_data: str | None = None  # None: the same source as train_data (its other pool)
    pairs_seed: int | None = None  # train on this seed's pairs instead of the run's own
    fold: int | None = None  # cross-validation: validate on this fold of the training pairs
    folds: int | None = None
    init_from: str | None = None  # fine-tuning: the run folder or release it started from

    def __post_init__(self):
        object.__setattr__(self, "seed", check_seed(self.seed))
        if self.pairs_seed is not None:
            object.__setattr__(self, "pairs_seed", check_seed(self.pairs_seed, "pairs_seed"))
        if (self.fold is None) != (self.folds is None):
            raise ConfigError("a cross-validation run needs both fold and folds")
        if self.folds is not None and not 0 <= self.fold < self.folds:
            raise ConfigError(f"fold must be in 0..{self.folds - 1}; got {self.fold}")

    @property
    def name(self) -> str:
        return self.preset.name

    @property
    def test_source(self) -> str:
        return self.test_data or self.train_data

    @property
    def data(self) -> dict:
        """What the run's pairs depend on (part of its id)."""
        return {"train_data": self.train_data, "test_data": self.test_source,
                "pairs_seed": self.pairs_seed, "fold": self.fold, "folds": self.folds}

    @property
    def run_id(self) -> str:
        return run_id(self.preset, self.seed, self.data, self.init_from)

    @property
    def stackable(self) -> bool:
        """Whether the run can share a traced step with other runs of its preset
        (pairzoo.stacked): not distilled (its teachers train first) and not fine-tuned."""
        return not self.preset.train.teacher and self.init_from is None

    @property
    def steps(self) -> int:
        """Optimizer steps: what a run's time scales with."""
        recipe = self.preset.train
        n_train = recipe.n_train * (self.folds - 1) / self.folds if self.folds else recipe.n_train
        return recipe.epochs * math.ceil(n_train / recipe.batch_size)

    def replace(self, **changes) -> RunSpec:
        return dataclasses.replace(self, **changes)

    # --- pairs -----------------------------------------------------------------------------

    def pairs(self):
        """(train, test) PairSets. A cross-validation run gets its training pairs minus one
        fold, and that fold as its test set: it never touches the test pool."""
        from pairzoo.data import load_pairs

        recipe = self.preset.train
        data_seed = self.seed if self.pairs_seed is None else self.pairs_seed
        if self.fold is not None:
            train, _ = load_pairs(recipe.n_train, 1, data_seed, self.train_data, self.test_data)
            return split_folds(train, self.folds, self.fold)
        return load_pairs(recipe.n_train, recipe.n_test, data_seed, self.train_data,
                          self.test_data)

    def test_pairs(self, n: int | None = -1, test_data: str | None = None,
                   seed: int | None = None, whole_split: bool = False):
        """The run's test pairs (or those of another source or seed) without reading its
        training source: evaluating a run never needs the data it trained on. n=-1: the
        recipe's n_test; None: every digit of the pool, paired."""
        from pairzoo.data import load_test_pairs

        data_seed = self.seed if self.pairs_seed is None else self.pairs_seed
        n = self.preset.train.n_test if n == -1 else n
        return load_test_pairs(n, data_seed if seed is None else seed,
                               test_data or self.test_source, whole_split=whole_split)

    def train_pairs(self, n: int | None = None):
        """The run's first `n` training pairs (all of them by default), reading only its
        training source (int8 calibration)."""
        from pairzoo.data import load_train_pairs

        data_seed = self.seed if self.pairs_seed is None else self.pairs_seed
        n_train = self.preset.train.n_train
        return load_train_pairs(min(n or n_train, n_train), data_seed, self.train_data)

    # --- config.json -------------------------------------------------------------------------

    def to_config(self, **extra: Any) -> dict:
        """The run folder's config.json: the resolved preset, seed, data, id, and `extra`
        (package versions, where the pairs came from)."""
        config = {**self.preset.to_dict(), "seed": self.seed, "data": self.data,
                  "run_id": self.run_id}
        if self.init_from is not None:
            config["init_from"] = self.init_from
        return {**config, **extra}

    @classmethod
    def from_config(cls, config: dict, where: str = "config.json") -> RunSpec:
        """Parse a config.json back into the typed RunSpec; a wrong field is a ConfigError
        naming `where`. Older files (data.train_pool/test_pool, no pairs_seed) read too."""
        if not isinstance(config, dict) or not isinstance(config.get("name"), str):
            raise ConfigError(f"{where} is not a pairzoo run config (no model name)")
        try:
            preset = preset_from_dict(config["name"], {k: config.get(k, {})
                                                       for k in ("model", "train", "source")})
        except (ConfigError, TypeError) as e:
            raise ConfigError(f"{where}: {e}") from None
        data = config.get("data", {})
        if not isinstance(data, dict):
            raise ConfigError(f"{where}: data must be a table; got {data!r}")
        values = {"seed": config.get("seed", 0), "train_data": data.get("train_data",
                                                                        DEFAULT_SOURCE),
                  "test_data": data.get("test_data"), "pairs_seed": data.get("pairs_seed"),
                  "fold": data.get("fold"), "folds": data.get("folds"),
                  "init_from": config.get("init_from")}
        for key, value in values.items():
            wanted = str if key in ("train_data", "test_data", "init_from") else int
            if value is not None and (not isinstance(value, wanted) or isinstance(value, bool)):
                raise ConfigError(f"{where}: {key} must be {wanted.__name__}; got {value!r}")
        if values["test_data"] == values["train_data"]:
            values["test_data"] = None  # stored resolved; None means "the same source"
        try:
            return cls(preset, **values)
        except ConfigError as e:
            raise ConfigError(f"{where}: {e}") from None


def split_folds(pairs, folds: int, fold: int):
    """(train, validation) PairSets: fold `fold` of `folds` contiguous slices is held out.
    Pairs are already in random order (the pair protocol permutes the pool)."""
    import numpy as np

    from pairzoo.data import PairSet

    n = len(pairs)
    start, stop = fold * n // folds, (fold + 1) * n // folds
    held = np.zeros(n, dtype=bool)
    held[start:stop] = True
    source = f"{pairs.source}, fold {fold + 1}/{folds}"
    return (PairSet(pairs.pairs[~held], pairs.digits[~held], source + " (train)"),
            PairSet(pairs.pairs[held], pairs.digits[held], source + " (validation)"))


# --- run ids -------------------------------------------------------------------------------


def explicit_fields(config) -> dict:
    """A config dataclass's fields that differ from their defaults, nested ones recursively
    (a tower keeps its `kind`). Hashing only these means a new config option, added at a
    default that keeps the old behaviour, leaves every stored run valid."""
    values = {}
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        if dataclasses.is_dataclass(value):
            values[f.name] = explicit_fields(value)
            continue
        default = (f.default if f.default is not dataclasses.MISSING
                   else f.default_factory() if f.default_factory is not dataclasses.MISSING
                   else dataclasses.MISSING)
        if f.name == "kind" or value != default:
            values[f.name] = value
    return values


def run_id(preset: Preset, seed: int, data: dict, init_from: str | None = None) -> str:
    """What determines a run's result, hashed: the model and recipe (fields at their defaults
    left out), the seed, the data and, for fine-tuning only, the starting weights. The
    experiment's name is deliberately left out, so a stored run serves every table that
    plans it."""
    content = {"model": preset.name, "config": explicit_fields(preset.model),
               "train": explicit_fields(preset.train), "seed": seed, "data": data}
    if init_from is not None:
        content["init_from"] = init_from
    text = json.dumps(content, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


# what a run's data settings are called in recipe_settings; `fold` is left out: the folds of
# a cross-validation cell are its repetitions, as seeds are
RECIPE_DATA = ("train_data", "test_data", "pairs_seed", "folds")


def recipe_settings(preset: Preset, data: dict) -> dict[str, Any]:
    """What a run's result depends on besides its seed (and fold), as `--set` keys: `model`,
    every model field (`tower.*` for the tower's), every recipe field, and the data. Every
    field, defaults included, so that two runs have equal settings exactly when run_id hashes
    the same model, config, recipe and data for them. Tables group runs by these: runs that
    differ in any of them are never averaged together."""
    settings: dict[str, Any] = {"model": preset.name}
    for key, value in dataclasses.asdict(preset.model).items():
        if key == "tower":
            settings.update({f"tower.{k}": v for k, v in value.items()})
        else:
            settings[key] = value
    settings.update(dataclasses.asdict(preset.train))
    settings.update({key: data.get(key) for key in RECIPE_DATA})
    return settings


# --- run folders ---------------------------------------------------------------------------

def default_run_dir(spec: RunSpec, root: str | Path = "runs") -> Path:
    """runs/NAME/YYYYmmdd-HHMMSS-seedS: sorts by time. Two runs started in the same second
    get -2, -3, ... when saved (save_run never overwrites)."""
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    return Path(root) / spec.name / f"{stamp}-seed{spec.seed}"


def check_run_dir(out_dir: str | Path, must_be_free: bool = True) -> Path:
    """Fail before training, not after, when a run could not be saved at `out_dir`: an existing
    non-empty folder (unless a free name next to it will do), or a place this process cannot
    write (read-only, no space)."""
    out_dir = Path(out_dir)
    if must_be_free and out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())):
        raise PairzooError(f"{out_dir} already exists and is not an empty folder; choose "
                           "another --out (a finished run is never overwritten)")
    return check_writable(out_dir, "a run folder", "--out")


def move_into_place(staging: Path, out_dir: Path, may_rename: bool) -> Path:
    """Rename the finished folder into place. rename(2) replaces an empty folder and refuses a
    non-empty one, so a folder another process filled meanwhile is never overwritten."""
    for attempt in range(1, 1000):
        target = out_dir if attempt == 1 else out_dir.with_name(f"{out_dir.name}-{attempt}")
        try:
            os.replace(staging, target)
            return target
        except OSError as e:
            if not (target.exists() and any(target.iterdir())) or not may_rename:
                if target.exists():
                    raise PairzooError(f"{target} was filled by another process while this "
                                       "run trained; choose another --out") from None
                raise e
    raise PairzooError(f"no free run folder name next to {out_dir}")




def model_path(run_or_model: str | Path) -> Path:
    path = Path(run_or_model)
    if path.is_dir():
        path = path / "model.keras"
    if not path.is_file():
        raise PairzooError(f"no model at {run_or_model}: give a run folder (with model.keras) "
                           "or a .keras file")
    return path


def run_config(run_or_model: str | Path) -> dict:
    """The run's config.json as a dict, or {} for a bare model file."""
    path = Path(run_or_model)
    config_file = (path if path.is_dir() else path.parent) / "config.json"
    if not config_file.is_file():
        return {}
    try:
        config = json.loads(config_file.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise PairzooError(f"{config_file} is corrupt ({e}); re-run the training") from None
    if not isinstance(config, dict):
        raise PairzooError(f"{config_file} is not a run config (a JSON object); re-run the "
                           "training")
    return config


def read_run_spec(run_or_model: str | Path) -> RunSpec | None:
    """The RunSpec of a run folder (or of the folder a model.keras lies in); None for a bare
    model file without a config.json."""
    path = Path(run_or_model)
    config = run_config(path)
    if not config:
        return None
    return RunSpec.from_config(config, where=str((path if path.is_dir() else path.parent)
                                                / "config.json"))


def load_model(run_or_model: str | Path, compile: bool = True):
    """A trained pairzoo model from a run folder or a `.keras` file (compiled, with its
    optimizer state, when the file holds them)."""
    import keras

    import pairzoo.models  # noqa: F401  (registers PairModel and the custom layers)

    path = model_path(run_or_model)
    try:
        return keras.models.load_model(path, compile=compile)
    except Exception as e:  # keras raises ValueError, OSError, zipfile.BadZipFile, ...
        unsafe = "safe_mode" in str(e) and code_layers(path)
        if unsafe:
            raise PairzooError(
                f"cannot load {path}: its layer{'s' * (len(unsafe) > 1)} "
                f"{', '.join(map(repr, unsafe))} hold{'s' * (len(unsafe) == 1)} Python code "
                "(a Lambda), which Keras's safe mode will not run, since loading it could run "
                "anything; rebuild the model without Lambda layers") from None
        raise PairzooError(f"cannot load {path}: it is not a valid .keras model "
                           f"({type(e).__name__}); re-export or re-train it") from e


def code_layers(path: Path) -> list[str]:
    """Names of the layers in a .keras file's config.json that carry Python code (Lambda
    layers; any layer with a serialized `__lambda__` function): what safe mode refuses."""
    import zipfile

    try:
        with zipfile.ZipFile(path) as archive:
            config = json.loads(archive.read("config.json"))
    except (OSError, KeyError, ValueError, zipfile.BadZipFile):
        return []
    names: list[str] = []

    def walk(node, layer: str | None) -> None:
        if isinstance(node, dict):
            name = node.get("config", {}).get("name") if isinstance(node.get("config"),
                                                                     dict) else None
            if node.get("class_name") == "__lambda__" and layer and layer not in names:
                names.append(layer)
            is_layer = isinstance(name, str) and "module" in node
            for value in node.values():
                walk(value, name if is_layer else layer)
        elif isinstance(node, list):
            for value in node:
                walk(value, layer)

    walk(config, None)
    return names


def list_runs(root: str | Path = "runs", pattern: str = "*") -> list[dict]:
    """Run folders under root/NAME/ for names matching `pattern`, newest first: name, date,
    seed, test error, folder. Folders without a readable config.json are left out."""
    import fnmatch

    rows = []
    for config_file in Path(root).glob("*/*/config.json"):
        folder = config_file.parent
        if folder.name.startswith(".") or not fnmatch.fnmatchcase(folder.parent.name, pattern):
            continue
        try:
            config = json.loads(config_file.read_text(encoding="utf-8"))
            metrics = json.loads((folder / "metrics.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        finished = datetime.fromtimestamp((folder / "metrics.json").stat().st_mtime, UTC)
        rows.append({"name": config.get("name", folder.parent.name),
                     "date": finished.astimezone().strftime("%Y-%m-%d %H:%M"),
                     "seed": config.get("seed"), "test error": metrics.get("test_error"),
                     "folder": str(folder), "finished": finished})
    rows.sort(key=lambda row: row["finished"], reverse=True)
    return [{k: v for k, v in row.items() if k != "finished"} for row in rows]

