"""What a tower family is: its config dataclass and the builder that turns one into a Keras
sub-model. Configs are plain data (reading a preset imports no Keras); builders import Keras
when a model is built."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class TowerFamily:
    """`build(config, input_shape, output_units, name)` -> a functional keras.Model taking one
    (H, W, C) image: `output_units` logits, or (None) flattened features for a head that reads
    them."""

    kind: str
    config: type
    build: Callable
