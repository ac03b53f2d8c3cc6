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


def list_models(pattern: str = "*", pretrained: bool = False) -> list[str]:
    """Sorted names of the zoo entries matching `pattern` (wildcards `*`, `?`, `[...]`);
    `pretrained=True`: only those with release weights in this install."""
    names = sorted(name for name in _preset_texts() if fnmatch.fnmatchcase(name, pattern))
    if pretrained:
        from pairzoo.zoo import has_release

        names = [name for name in names if has_release(name)]
    return names


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


def create_model(name: str, weights: str | None = None, **overrides: Any):
    """Build the named zoo model, with overrides checked against the preset.

    `weights` follows keras.applications: None (the default) for fresh random weights;
    "zoo" for the entry's trained release weights (pairzoo.zoo: packaged, or from the
    PAIRZOO_WEIGHTS_URL mirror), or a mirror's base URL or folder. Release weights come with
    the release's own config, so they take no model overrides."""
    from pairzoo.models import build_model

    if weights is not None:
        if overrides:
            raise ConfigError(f"weights={weights!r} loads {name}'s release as trained; drop the "
                              f"overrides {sorted(overrides)} (or train your own variant)")
        from pairzoo.zoo import load_release_model

        return load_release_model(name, weights)
    preset = get_preset(name, **overrides)
    return build_model(preset.model, name=name)


def zoo_rows(pattern: str = "*") -> list[dict[str, Any]]:
    """One row per zoo entry: what `pairzoo list` and docs/ZOO.md show (TOML only, no TF)."""
    from pairzoo.zoo import card_figure, has_release

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
            "params": source.expected_params,
            "report params": source.params or None,
            "report": source.report[:3],
            "recipe": f"{recipe.optimizer} lr={recipe.learning_rate:g} "
                      f"{recipe.epochs}ep bs={recipe.batch_size}",
            "report figure": source.figure,
            "weights": "yes" if has_release(name) else "-",
            "our error": card_figure(name),  # release weights on the MNIST test split
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
