"""Configs as dataclasses: the model, the training recipe, the source (each tower family's
config lives with its builder in pairzoo/towers/).

A preset (zoo_configs/NAME.toml) is these dataclasses as TOML. Overrides may only name fields
that exist, and their values are type-checked, so a typo fails loudly instead of being ignored
(nanoGPT's rule). Choices are validated in `__post_init__`, so a bad preset fails at load time.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import tomllib
import typing
from dataclasses import dataclass, field
from typing import Any

from pairzoo.errors import ConfigError, check_choice
from pairzoo.towers import CNNTower, TowerConfig, tower_family

FAMILIES = ("siamese", "two_channel")
EVAL_PROTOCOLS = ("inference", "training_mode")
HEADS = ("mlp", "argmax", "probabilistic")
HEAD_INPUTS = ("logits", "probabilities", "features")


@dataclass
class ModelConfig:
    """One architecture: tower x weight sharing x head x loss weights."""

    family: str = "siamese"  # siamese: a tower per digit | two_channel: one net on 2x14x14
    tower: TowerConfig = field(default_factory=CNNTower)
    share_weights: bool = True  # siamese: one tower called twice, or two towers
    head: str = "mlp"  # mlp (learned) | argmax | probabilistic (hard-coded comparisons)
    head_units: list[int] = field(default_factory=lambda: [72])  # hidden layers of the mlp head
    # what the mlp head reads: the digit logits, their probabilities, or the towers' features
    # (then the towers have no digit layer and the model no digit outputs)
    head_input: str = "logits"
    head_batchnorm: bool = False  # ReLU -> BN in each hidden layer (report 001's code)
    head_dropout: float = 0.0
    # label-preserving augmentation of each digit while training (identity at inference)
    augment_shift: float = 0.0  # random translation, up to this many pixels each way
    augment_rotation: float = 0.0  # random rotation, up to this many degrees each way
    augment_zoom: float = 0.0  # random zoom, up to this fraction each way (0.1: 90-110 %)
    augment_shear: float = 0.0  # random shear, up to this factor along each axis
    augment_elastic: float = 0.0  # elastic distortion (Simard et al. 2003): alpha, in pixels
    augment_elastic_sigma: float = 2.0  # its smoothing, in pixels
    aux_weight: float = 1.0  # weight of each digit loss; 0 turns the auxiliary losses off
    compare_weight: float = 1.0  # weight of the comparison loss
    # initial weights: Keras's defaults (Glorot-uniform kernels, zero biases) or PyTorch's
    # (U(+-1/sqrt(fan_in)) for kernels and biases), which the reports' recipes were tuned on
    init: str = "keras"

    def __post_init__(self):
        check_choice("family", self.family, FAMILIES)
        check_choice("init", self.init, ("keras", "torch"))
        check_choice("head", self.head, HEADS)
        check_choice("head_input", self.head_input, HEAD_INPUTS)
        augments = ("augment_shift", "augment_rotation", "augment_zoom", "augment_shear",
                    "augment_elastic")
        negative = [name for name in augments if getattr(self, name) < 0]
        if negative:
            raise ConfigError(f"{', '.join(negative)} must be >= 0")
        if not 0 <= self.augment_zoom < 1:
            raise ConfigError(f"augment_zoom must be in [0, 1); got {self.augment_zoom}")
        if self.augment_elastic_sigma <= 0:
            raise ConfigError("augment_elastic_sigma must be > 0")
        if self.aux_weight < 0 or self.compare_weight < 0:
            raise ConfigError("loss weights must be >= 0")
        if self.family == "two_channel" and self.head != "mlp":
            raise ConfigError(
                "a two_channel network has no separate digits to compare: use head='mlp' "
                "(or a siamese model for the hard-coded heads)"
            )
        if self.family == "two_channel" and self.head_units:
            raise ConfigError("a two_channel network decides with its own dense layers: put "
                              "them in tower.dense_units and set head_units = []")
        if not self.has_digit_outputs and self.aux_weight > 0:
            raise ConfigError(f"this {self.family} model has no digit outputs (head_input="
                              f"{self.head_input!r}): set aux_weight = 0")
        if self.family == "siamese" and self.head == "argmax" and self.aux_weight == 0:
            raise ConfigError(
                "the argmax head passes no gradient: it learns only through the digit losses; "
                "set aux_weight > 0"
            )
        if self.aux_weight == 0 and self.compare_weight == 0:
            raise ConfigError("all loss weights are 0: nothing would be trained")

    @property
    def trains_compare(self) -> bool:
        """Whether the comparison loss can pass a gradient (argmax cannot)."""
        return self.compare_weight > 0 and self.head != "argmax"

    @property
    def has_digit_outputs(self) -> bool:
        """Siamese models classify each digit, unless a learned head reads raw tower features
        (a hard-coded head always needs the digits)."""
        return self.family == "siamese" and not (self.head == "mlp"
                                                 and self.head_input == "features")


@dataclass
class TrainConfig:
    """The training recipe."""

    optimizer: str = "adam"  # adam | sgd
    learning_rate: float = 1e-3
    momentum: float = 0.0  # sgd only
    weight_decay: float = 0.0
    lr_schedule: str = "constant"  # constant | cosine (decay to 0 over the run)
    ema_momentum: float = 0.0  # > 0: evaluate an exponential moving average of the weights
    # cosine schedule only: rise linearly from 0 over these epochs (at most all but the last,
    # so a shortened run, --epochs 1 say, still decays)
    warmup_epochs: int = 0
    # distillation (pairzoo.distillation): a teacher preset's name turns it on; the student
    # then learns from `teachers` runs of it as well as from the labels
    teacher: str = ""
    teachers: int = 3
    distill_temperature: float = 4.0  # softens both digit distributions (Hinton et al. 2015)
    distill_weight: float = 0.5  # the distillation term's share of the loss; labels get the rest
    # > 0: "function matching" (Beyer et al. 2022): each distorted digit is blended with
    # another of its batch, lambda ~ Beta(a, a), and the student learns the teachers' answers
    # on the blends; a blend has no label, so it needs distill_weight = 1
    distill_mixup: float = 0.0
    epochs: int = 25
    batch_size: int = 100
    n_train: int = 1000
    n_test: int = 1000
    # evaluate the test pairs after every epoch (the learning curve: history's val_ columns);
    # off, a run evaluates them once, at the end, and trains faster
    eval_each_epoch: bool = True
    # how the final test metrics are measured: "inference" (batch norm's moving statistics,
    # dropout off: the right way), or "training_mode": the model called with training=True on
    # test batches of batch_size, so batch norm normalises each batch by its own statistics
    # and dropout drops, which is what report 001's authors measured (they never called
    # model.eval()); its runs also record inference_test_error beside it
    eval_protocol: str = "inference"

    def __post_init__(self):
        check_choice("optimizer", self.optimizer, ("adam", "sgd"))
        check_choice("lr_schedule", self.lr_schedule, ("constant", "cosine"))
        check_choice("eval_protocol", self.eval_protocol, EVAL_PROTOCOLS)
        if not 0 <= self.ema_momentum < 1:
            raise ConfigError(f"ema_momentum must be in [0, 1); got {self.ema_momentum}")
        for name in ("epochs", "batch_size", "n_train", "n_test"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be at least 1; got {getattr(self, name)}")
        if self.learning_rate <= 0:
            raise ConfigError(f"learning_rate must be > 0; got {self.learning_rate}")
        if self.warmup_epochs < 0:
            raise ConfigError(f"warmup_epochs must be >= 0; got {self.warmup_epochs}")
        if self.warmup_epochs and self.lr_schedule != "cosine":
            raise ConfigError("warmup_epochs needs lr_schedule = 'cosine'")
        if self.teachers < 1 or self.distill_temperature <= 0:
            raise ConfigError("teachers must be at least 1 and distill_temperature > 0")
        if not 0 <= self.distill_weight <= 1:
            raise ConfigError(f"distill_weight must be in [0, 1]; got {self.distill_weight}")
        if self.distill_mixup < 0 or (self.distill_mixup and self.distill_weight != 1):
            raise ConfigError("distill_mixup must be >= 0, and blended digits have no label: "
                              "set distill_weight = 1 with it")


@dataclass
class SourceInfo:
    """Where a zoo entry comes from, and what its report measured."""

    report: str = ""  # file name in the seeds folder
    model: str = ""  # the report's own name for the model
    params: int = 0  # the report's parameter count (0 = not given)
    params_exact: bool = False  # a layer table fixes the count: ours must equal it
    figure: str = ""  # the report's headline result, as written
    test_error: float = 0.0  # its mean test error in percent (0 = not given)
    test_error_std: float = 0.0
    notes: str = ""  # reading choices where the report is vague
    # our trainable parameter count, which a golden test holds (0 = not pinned); it describes
    # the entry, not the model, so it is no model option and is not saved in model files
    expected_params: int = 0


@dataclass
class Preset:
    name: str
    model: ModelConfig
    train: TrainConfig
    source: SourceInfo

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, **dataclasses.asdict(self)}


# --- parsing and overrides -------------------------------------------------------------------


def _check_type(key: str, value: Any, hint: Any) -> Any:
    """Return `value` if it fits `hint` (ints are accepted for floats), else raise ConfigError."""
    origin = typing.get_origin(hint)
    if origin is list:
        (item,) = typing.get_args(hint)
        if not isinstance(value, list):
            value = [value]  # a scalar where a list is expected means "one for all"
        return [_check_type(key, v, item) for v in value]
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if hint is int and isinstance(value, bool) or not isinstance(value, hint):
        raise ConfigError(f"{key} must be {hint.__name__}; got {value!r} ({type(value).__name__})")
    if hint is float and not math.isfinite(value):  # nan, inf: never a usable setting
        raise ConfigError(f"{key} must be a finite number; got {value!r}")
    return value


def _build(cls: type, values: dict[str, Any], where: str):
    """Instantiate dataclass `cls` from `values`, rejecting unknown keys and wrong types."""
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    kwargs = {}
    for key, value in values.items():
        if key not in known:
            close = difflib.get_close_matches(key, known, n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else f"; known: {sorted(known)}"
            raise ConfigError(f"unknown key {where}{key}{hint}")
        kwargs[key] = value if key == "tower" else _check_type(where + key, value, hints[key])
    try:
        return cls(**kwargs)
    except TypeError as e:
        raise ConfigError(f"bad {where.rstrip('.') or 'config'}: {e}") from e


def tower_from_dict(values: dict[str, Any]) -> TowerConfig:
    return _build(tower_family(values.get("kind", "cnn")).config, values, "tower.")


def model_from_dict(values: dict[str, Any]) -> ModelConfig:
    values = dict(values)
    values["tower"] = tower_from_dict(values.get("tower", {}))
    return _build(ModelConfig, values, "model.")


def preset_from_dict(name: str, data: dict[str, Any]) -> Preset:
    unknown = set(data) - {"model", "train", "source"}
    if unknown:
        raise ConfigError(f"preset {name}: unknown sections {sorted(unknown)}")
    for section in ("model", "train", "source"):
        if not isinstance(data.get(section, {}), dict):
            raise ConfigError(f"preset {name}: [{section}] must be a table; got "
                              f"{data[section]!r}")
    if not isinstance(data.get("model", {}).get("tower", {}), dict):
        raise ConfigError(f"preset {name}: [model.tower] must be a table")
    return Preset(
        name=name,
        model=model_from_dict(data.get("model", {})),
        train=_build(TrainConfig, data.get("train", {}), "train."),
        source=_build(SourceInfo, data.get("source", {}), "source."),
    )


def preset_from_toml(name: str, text: str) -> Preset:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"preset {name} is not valid TOML: {e}") from e
    return preset_from_dict(name, data)


def apply_overrides(preset: Preset, overrides: dict[str, Any]) -> Preset:
    """A copy of `preset` with overrides applied; `None` values are dropped (CLI defaults).

    Keys are field names: `share_weights`, `head`, `tower.dropout`, `train.epochs`, ... A bare
    key is looked up in the model, then the training recipe. Changing `tower.kind` starts the
    tower from that family's defaults.
    """
    data = preset.to_dict()
    for key, value in overrides.items():
        if value is None:
            continue
        section, _, leaf = key.rpartition(".")
        if not section:
            section = "model" if leaf in data["model"] or leaf not in data["train"] else "train"
        target = {"model": data["model"], "train": data["train"], "tower": data["model"]["tower"],
                  "model.tower": data["model"]["tower"], "source": data["source"]}.get(section)
        if target is None:
            raise ConfigError(f"unknown override section {section!r} in {key!r}; "
                              "use model., tower. or train.")
        if section in ("tower", "model.tower") and leaf == "kind" and value != target["kind"]:
            target.clear()
        target[leaf] = value
    name = data.pop("name")
    return preset_from_dict(name, data)


def parse_override(text: str) -> tuple[str, Any]:
    """`key=value` from the command line; the value is read as TOML (true, 0.5, [32, 64], 'x')."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"--set takes KEY=VALUE (e.g. tower.dropout=0.2); got {text!r}")
    try:
        value = tomllib.loads(f"v = {raw.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw.strip()  # a bare word: a string such as head=argmax
    return key.strip(), value


def settable_keys(preset: Preset) -> list[tuple[str, str, Any, Any]]:
    """(key, type, default, this preset's value) for every key `--set` and overrides accept:
    model fields bare, the tower's as `tower.NAME`, the recipe's as `train.NAME`."""
    keys = []
    for prefix, config in (("", preset.model), ("tower.", preset.model.tower),
                           ("train.", preset.train)):
        hints = typing.get_type_hints(type(config))
        for f in dataclasses.fields(config):
            if f.name == "tower" or (prefix == "tower." and f.name == "kind"):
                continue
            default = (f.default if f.default is not dataclasses.MISSING
                       else f.default_factory())
            hint = hints[f.name]
            kind = getattr(hint, "__name__", None) or str(hint).replace("typing.", "")
            keys.append((prefix + f.name, kind, default, getattr(config, f.name)))
    keys.append(("tower.kind", "str", preset.model.tower.kind, preset.model.tower.kind))
    return keys

