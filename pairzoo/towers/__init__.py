"""Digit towers: one image (H, W, C) -> `output_units` logits (or, with None, the flattened
features for a head that reads them). One module per family, holding its config dataclass and
its builder; this is the one registry, keyed by the config's `kind`.

`build_tower` returns a functional sub-model; calling that one instance on both digits is what
weight sharing means. Importing this package imports no Keras (presets parse without it).
"""

from __future__ import annotations

from typing import Union

from pairzoo.errors import ConfigError
from pairzoo.towers import cnn, mlp, resnet, rnn
from pairzoo.towers.base import TowerFamily
from pairzoo.towers.cnn import CNNTower
from pairzoo.towers.mlp import MLPTower
from pairzoo.towers.resnet import ResNetTower
from pairzoo.towers.rnn import RNNTower

TOWERS: dict[str, TowerFamily] = {family.kind: family for family in
                                  (cnn.FAMILY, resnet.FAMILY, rnn.FAMILY, mlp.FAMILY)}
TowerConfig = Union[CNNTower, ResNetTower, RNNTower, MLPTower]  # noqa: UP007 (runtime use)


def tower_family(kind: str) -> TowerFamily:
    if kind not in TOWERS:
        raise ConfigError(f"unknown tower kind {kind!r}; use one of {', '.join(TOWERS)}")
    return TOWERS[kind]


def build_tower(config: TowerConfig, input_shape: tuple[int, int, int],
                output_units: int | None, name: str):
    return tower_family(config.kind).build(config, input_shape, output_units, name=name)


__all__ = ["TOWERS", "CNNTower", "MLPTower", "ResNetTower", "RNNTower", "TowerConfig",
           "TowerFamily", "build_tower", "tower_family"]
