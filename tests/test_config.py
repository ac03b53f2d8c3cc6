"""Presets, checked overrides and the registry."""

from __future__ import annotations

import pytest

from pairzoo.config import apply_overrides, parse_override
from pairzoo.errors import ConfigError
from pairzoo.registry import UnknownModelError, check_all_presets, get_preset, list_models


def test_every_preset_parses():
    assert check_all_presets() == []


def test_list_models_with_wildcards():
    everything = list_models()
    assert "siamese_fullyconv" in everything
    assert list_models("siamese_*") == [n for n in everything if n.startswith("siamese_")]
    assert list_models("no_such_*") == []


def test_unknown_name_suggests_close_matches():
    with pytest.raises(UnknownModelError, match="did you mean siamese_fullyconv"):
        get_preset("siamese_fulyconv")


def test_overrides_are_applied_and_checked():
    preset = get_preset("siamese_fullyconv", share_weights=False, head="argmax",
                        **{"tower.dropout": 0.25, "train.epochs": 2})
    assert preset.model.share_weights is False
    assert preset.model.head == "argmax"
    assert preset.model.tower.dropout == 0.25
    assert preset.train.epochs == 2
    with pytest.raises(ConfigError, match="did you mean share_weights"):
        get_preset("siamese_fullyconv", share_weight=False)
    with pytest.raises(ConfigError, match="must be bool"):
        get_preset("siamese_fullyconv", share_weights="no")
    with pytest.raises(ConfigError, match="must be int"):
        get_preset("siamese_fullyconv", **{"train.epochs": 2.5})
    with pytest.raises(ConfigError, match="head must be one of"):
        get_preset("siamese_fullyconv", head="xgboost")


def test_none_overrides_never_clobber_the_preset():
    preset = get_preset("siamese_fullyconv")
    assert apply_overrides(preset, {"head": None, "train.epochs": None}) == preset


def test_argmax_without_digit_losses_is_refused():
    with pytest.raises(ConfigError, match="aux_weight"):
        get_preset("siamese_fullyconv", head="argmax", aux_weight=0.0)


@pytest.mark.parametrize("text, expected", [
    ("tower.dropout=0.2", ("tower.dropout", 0.2)),
    ("share_weights=false", ("share_weights", False)),
    ("head=argmax", ("head", "argmax")),
    ("tower.filters=[8, 16]", ("tower.filters", [8, 16])),
])
def test_parse_override(text, expected):
    assert parse_override(text) == expected


def test_parse_override_needs_key_and_value():
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        parse_override("dropout")


def test_zoo_table_in_docs_is_current():
    """docs/ZOO.md holds `pairzoo list --markdown`; a preset change must regenerate it."""
    import contextlib
    import io
    from pathlib import Path

    from pairzoo.cli import main

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["list", "--format", "markdown", "--columns", "all"]) == 0
    docs = (Path(__file__).resolve().parents[1] / "docs" / "ZOO.md").read_text()
    assert out.getvalue().strip() in docs, "regenerate docs/ZOO.md (see its header)"
