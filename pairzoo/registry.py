"""Names and presets: zoo_configs/*.toml -> configs -> untrained models.

    list_models("siamese_*")             names matching a shell-style pattern
    get_preset("siamese_fullyconv")      the parsed preset (model, recipe, source report)
    create_model("siamese_fullyconv", share_weights=False, **{"tower.dropout": 0.2})

An unknown name fails with the closest names suggested. Overrides set to None are dropped, so
a CLI flag left at its default never clobbers a preset's value (timm's rule). Listing reads only
the TOML files: `pairzoo list` needs no TensorFlow.

The registry knows nothing of release weights: pairzoo.zoo composes presets with releases
(`pairzoo.create_model(name, weights="zoo")`, `pairzoo.list_models(pretrained=True)`) and
imports this module, never the other way round.
"""

from __future__ import annotations

import difflib
import fnmatch
import functools
from importlib import resources
from typing import Any

from pairzoo.config import Preset, apply_overrides, preset_from_toml
from pairzoo.errors import ConfigError, PairzooError

PRESETS_PACKAGE = "pairzoo.zoo_configs"  # the repository's zoo_configs/ folder, as package data


class UnknownModelError(PairzooError, KeyError):
    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


@functools.cache
def _preset_texts() -> dict[str, str]:
    folder = resources.files(PRESETS_PACKAGE)
    return {entry.name.removesuffix(".toml"): entry.read_text(encoding="utf-8")
            for entry in folder.iterdir() if entry.name.endswith(".toml")}


def list_models(pattern: str = "*") -> list[str]:
    """Sorted names of the zoo entries matching `pattern` (wildcards `*`, `?`, `[...]`)."""
    return sorted(name for name in _preset_texts() if fnmatch.fnmatchcase(name, pattern))


def preset_description(name: str) -> str:
    """The prose a preset file opens with (its leading comment lines)."""
    get_preset(name)
    lines = []
    for line in _preset_texts()[name].splitlines():
        if not line.startswith("#"):
            break
        lines.append(line.lstrip("#").strip())
    return " ".join(lines)


def get_preset(name: str, **overrides: Any) -> Preset:
    texts = _preset_texts()
    if name not in texts:
        close = difflib.get_close_matches(name, texts, n=3, cutoff=0.5)
        hint = f"; did you mean {', '.join(close)}?" if close else "; see `pairzoo list`"
        raise UnknownModelError(f"unknown model {name!r}{hint}")
    preset = preset_from_toml(name, texts[name])
    return apply_overrides(preset, overrides) if overrides else preset


def create_model(name: str, **overrides: Any):
    """Build the named zoo model with fresh random weights, overrides checked against the
    preset (trained weights: pairzoo.zoo.create_model)."""
    from pairzoo.models import build_model

    preset = get_preset(name, **overrides)
    return build_model(preset.model, name=name)


def check_all_presets() -> list[str]:
    """Parse every preset; a list of 'name: problem' lines (empty when all are valid)."""
    problems = []
    for name in list_models():
        try:
            get_preset(name)
        except ConfigError as e:
            problems.append(f"{name}: {e}")
    return problems
