"""Digit towers: one image (H, W, C) -> `output_units` logits (or, with None, the flattened
features for a head that reads them). One module per family.

`build_tower` returns a functional sub-model; calling that one instance on both digits is what
weight sharing means.
"""

from __future__ import annotations

from pairzoo.config import TowerConfig
from pairzoo.towers.cnn import build_cnn_tower
from pairzoo.towers.mlp import build_mlp_tower
from pairzoo.towers.resnet import build_resnet_tower
from pairzoo.towers.rnn import build_rnn_tower

_BUILDERS = {"cnn": build_cnn_tower, "resnet": build_resnet_tower, "rnn": build_rnn_tower,
             "mlp": build_mlp_tower}


def build_tower(config: TowerConfig, input_shape: tuple[int, int, int],
                output_units: int | None, name: str):
    return _BUILDERS[config.kind](config, input_shape, output_units, name=name)


__all__ = ["build_tower"]
