"""The zoo: named presets (zoo_configs/*.toml) -> configs -> models.

    list_models("siamese_*")             names matching a shell-style pattern
    get_preset("siamese_fullyconv")      the parsed preset (model, recipe, source report)
    create_model("siamese_fullyconv", share_weights=False, **{"tower.dropout": 0.2})

An unknown name fails with the closest names suggested. Overrides set to None are dropped, so
a CLI flag left at its default never clobbers a preset's value (timm's rule). Listing reads only
the TOML files: `pairzoo list` needs no TensorFlow.
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


def get_preset(name: str, **overrides: Any) -> Preset:
    texts = _preset_texts()
    if name not in texts:
        close = difflib.get_close_matches(name, texts, n=3, cutoff=0.5)
        hint = f"; did you mean {', '.join(close)}?" if close else "; see `pairzoo list`"
        raise UnknownModelError(f"unknown model {name!r}{hint}")
    preset = preset_from_toml(name, texts[name])
    return apply_overrides(preset, overrides) if overrides else preset


def create_model(name: str, **overrides: Any):
    """Build the named zoo model (untrained), with overrides checked against the preset."""
    from pairzoo.models import build_model

    preset = get_preset(name, **overrides)
    return build_model(preset.model, name=name)


def zoo_rows(pattern: str = "*") -> list[dict[str, Any]]:
    """One row per zoo entry: what `pairzoo list` and docs/ZOO.md show (TOML only, no TF)."""
    rows = []
    for name in list_models(pattern):
        preset = get_preset(name)
        model, recipe, source = preset.model, preset.train, preset.source
        sharing = "-" if model.family != "siamese" else ("shared" if model.share_weights
                                                          else "two towers")
        rows.append({
            "name": name,
            "family": f"{model.family}/{model.tower.kind}",
            "sharing": sharing,
            "head": model.head,
            "aux": f"{model.aux_weight:g}" if model.has_digit_outputs else "-",
            "params": model.expected_params,
            "report params": source.params or None,
            "report": source.report[:3],
            "recipe": f"{recipe.optimizer} lr={recipe.learning_rate:g} "
                      f"{recipe.epochs}ep bs={recipe.batch_size}",
            "report figure": source.figure,
            "notes": source.notes,
        })
    return rows


def check_all_presets() -> list[str]:
    """Parse every preset; a list of 'name: problem' lines (empty when all are valid)."""
    problems = []
    for name in list_models():
        try:
            get_preset(name)
        except ConfigError as e:
            problems.append(f"{name}: {e}")
    return problems
