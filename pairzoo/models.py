"""Assembly: tower(s) + head -> one multi-output functional model.

    pair (N, 2, 14, 14) raw 0-255 pixels
      -> normalise (inside the model, so an exported model takes what an app has)
      -> siamese:     split -> tower(s) -> digit logits a, b -> softmax -> digit_a, digit_b
                                                            -> head -> compare
      -> two_channel: channels-last (N, 14, 14, 2) -> one network -> compare

`PairModel` is a functional model whose config *is* the `ModelConfig`: saving stores that
config and `from_config` rebuilds the graph from it (keras-hub's pattern), which also sidesteps
the serialization of nested shared sub-models that broke in early Keras 3 (keras#19326).
"""

from __future__ import annotations

import dataclasses
import math

import keras
from keras import layers

from pairzoo.config import ModelConfig, model_from_dict
from pairzoo.interface import INPUT_NAME, KERAS_PACKAGE, MNIST_MEAN, MNIST_STD, PAIR_SHAPE
from pairzoo.towers import build_tower

# pairzoo.layers and pairzoo.heads are imported where they are used: `import pairzoo` imports
# this module the moment Keras is first imported (pairzoo._startup), which can happen halfway
# through importing pairzoo.layers; importing it at the top here would then find it half-done.

# model-file keys that older pairzoo versions saved and this one no longer has
_RETIRED_KEYS = ("expected_params",)  # now SourceInfo's (a golden count, not a model option)


@keras.saving.register_keras_serializable(package=KERAS_PACKAGE)
class PairModel(keras.Model):
    """A pair-comparison network with outputs {compare, digit_a, digit_b} (siamese) or
    {compare} (two_channel). Build it from a `ModelConfig` or its dict."""

    def __init__(self, config: ModelConfig | dict, name: str = "pair_model", **kwargs):
        if isinstance(config, dict):
            config = model_from_dict({k: v for k, v in config.items()
                                      if k not in _RETIRED_KEYS})
        pair = keras.Input(PAIR_SHAPE, name=INPUT_NAME)
        x = layers.Rescaling(1 / (255 * MNIST_STD), offset=-MNIST_MEAN / MNIST_STD,
                             name="normalize")(pair)
        outputs = _two_channel(config, x) if config.family == "two_channel" else _siamese(config, x)
        super().__init__(inputs=pair, outputs=outputs, name=name, **kwargs)
        self.model_config = config
        if config.init == "torch":
            torch_style_init(self)

    def get_config(self):
        return {"config": dataclasses.asdict(self.model_config), "name": self.name,
                "trainable": self.trainable}

    @classmethod
    def from_config(cls, config, custom_objects=None):
        return cls(**config)

    @property
    def towers(self) -> list[keras.Model]:
        """The digit tower sub-models: one when weights are shared, else two."""
        return [layer for layer in self.layers if isinstance(layer, keras.Model)]


def torch_style_init(model: keras.Model) -> None:
    """Redraw the weights as PyTorch initialises them: Linear and Conv kernels and biases from
    U(+-1/sqrt(fan_in)) (kaiming_uniform with a=sqrt(5) has exactly that bound), every weight
    of an Elman RNN from U(+-1/sqrt(units)); batch norm starts at 1 and 0 in both. Keras's
    Glorot-uniform kernels are about 1.7x wider, which matters for recipes tuned at the edge of
    stability (report 003's SGD at rate 1). Draws follow the global seed, like Keras's own."""
    seeds = keras.random.SeedGenerator()
    for layer in all_layers(model):
        if isinstance(layer, (layers.Dense, layers.Conv2D)):
            bound = 1 / math.prod(layer.kernel.shape[:-1]) ** 0.5
            weights = [layer.kernel, *([layer.bias] if layer.use_bias else [])]
        elif isinstance(layer, layers.SimpleRNN):
            bound = 1 / layer.units ** 0.5
            weights = layer.weights
        else:
            continue
        for weight in weights:
            weight.assign(keras.random.uniform(weight.shape, -bound, bound, seed=seeds))


def all_layers(model: keras.Model, seen: set | None = None):
    """Every layer, inside sub-models (towers) too, each once (a shared tower is one)."""
    seen = set() if seen is None else seen
    for layer in model.layers:
        if id(layer) in seen:
            continue
        seen.add(id(layer))
        if isinstance(layer, keras.Model):
            yield from all_layers(layer, seen)
        else:
            yield layer


def augmentation_steps(config: ModelConfig, raw_pixels: bool = False) -> list:
    """The label-preserving distortions of a digit while training, each wrapped to act only
    when training (Keras's random layers act whenever called). Called once per digit: each
    digit gets its own draw. Inside a model they see normalised pixels; with `raw_pixels` they
    act on 0-255 pixels (a distilling trainer distorts before its models) alike.

    Shift and rotation alone are Keras's RandomTranslation and RandomRotation (the first
    augmented presets' releases were trained so; they fill with 0 after normalisation, a faint
    grey). Zoom, shear or elastic fields bring pairzoo's RandomDistortion instead, which draws
    every distortion of the preset and applies them in one resampling, filling black."""
    from pairzoo.layers import RandomDistortion, TrainingOnly

    black = 0.0 if raw_pixels else -MNIST_MEAN / MNIST_STD
    if config.augment_zoom or config.augment_shear or config.augment_elastic:
        return [TrainingOnly(RandomDistortion(
            config.augment_shift, config.augment_rotation, config.augment_zoom,
            config.augment_shear, config.augment_elastic, config.augment_elastic_sigma,
            fill=black), name="augment_distortion")]
    fill = {"fill_mode": "constant", "fill_value": 255 * MNIST_MEAN if raw_pixels else 0.0}
    steps = []
    if config.augment_shift:
        factor = config.augment_shift / 14
        steps.append(TrainingOnly(layers.RandomTranslation(factor, factor, **fill),
                                  name="augment_shift"))
    if config.augment_rotation:
        steps.append(TrainingOnly(layers.RandomRotation(config.augment_rotation / 360, **fill),
                                  name="augment_rotation"))
    return steps


def _augment(steps, image):
    for step in steps:
        image = step(image)
    return image


def _siamese(config: ModelConfig, x) -> dict:
    from pairzoo.heads import apply_head
    from pairzoo.layers import SplitPair

    first, second = SplitPair(name="split_pair")(x)  # (N, 14, 14, 1) each
    steps = augmentation_steps(config)
    first, second = _augment(steps, first), _augment(steps, second)
    digit_units = 10 if config.has_digit_outputs else None  # None: towers give features
    if config.share_weights:
        tower = build_tower(config.tower, (14, 14, 1), digit_units, name="tower")
        towers = (tower, tower)
    else:
        towers = tuple(build_tower(config.tower, (14, 14, 1), digit_units, name=f"tower_{side}")
                       for side in "ab")
    out_a, out_b = towers[0](first), towers[1](second)  # (N, 10) logits each, or features
    if not config.has_digit_outputs:
        return {"compare": apply_head(config, out_a, out_b)}
    probs_a = layers.Softmax(name="digit_a")(out_a)
    probs_b = layers.Softmax(name="digit_b")(out_b)
    compare = apply_head(config, out_a, out_b, probs_a, probs_b)
    return {"compare": compare, "digit_a": probs_a, "digit_b": probs_b}


def _two_channel(config: ModelConfig, x) -> dict:
    """One network on both digits as channels; its dense layers are the decision layers."""
    from pairzoo.layers import TwoClassProbability

    image = layers.Permute((2, 3, 1), name="channels_last")(x)  # (N, 14, 14, 2)
    image = _augment(augmentation_steps(config), image)  # the same draw for both digits
    logits = build_tower(config.tower, (14, 14, 2), 2, name="network")(image)  # (N, 2)
    return {"compare": TwoClassProbability(name="compare")(logits)}


def build_model(config: ModelConfig, name: str = "pair_model") -> PairModel:
    return PairModel(config, name=name)


def count_trainable_params(model: keras.Model) -> int:
    """Trainable parameters, as PyTorch's `sum(p.numel() for p in parameters())` counts them
    (batch-norm running statistics are buffers there and non-trainable weights here)."""
    return int(sum(keras.ops.size(w) for w in model.trainable_weights))
