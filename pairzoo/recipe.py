"""The training recipe as Keras objects: optimizer, losses, loss weights, metrics.

One setup for every training loop: `model.fit` (compile_model) and the fast path
(pairzoo.fastpath) build them here, so the two can only differ in how batches are fed.

Loss weights are the whole story of auxiliary losses: `compare` carries `compare_weight`, each
digit output `aux_weight`. An output whose weight is 0, or whose head passes no gradient (argmax),
gets no loss at all, so it costs nothing and shows no meaningless number.
"""

from __future__ import annotations

import math

import keras

from pairzoo.config import ModelConfig, Preset, TrainConfig


def make_optimizer(recipe: TrainConfig) -> keras.optimizers.Optimizer:
    learning_rate = recipe.learning_rate
    if recipe.lr_schedule == "cosine":
        per_epoch = math.ceil(recipe.n_train / recipe.batch_size)
        steps = recipe.epochs * per_epoch
        if recipe.warmup_epochs and recipe.epochs > 1:
            # from 0 up to the rate over the warm-up, then the cosine over what is left
            warmup = min(recipe.warmup_epochs, recipe.epochs - 1) * per_epoch
            learning_rate = keras.optimizers.schedules.CosineDecay(
                0.0, steps - warmup, warmup_target=recipe.learning_rate, warmup_steps=warmup)
        else:
            learning_rate = keras.optimizers.schedules.CosineDecay(recipe.learning_rate, steps)
    common = {"weight_decay": recipe.weight_decay or None, "use_ema": recipe.ema_momentum > 0,
              "ema_momentum": recipe.ema_momentum or 0.99}
    if recipe.optimizer == "sgd":
        return keras.optimizers.SGD(learning_rate, momentum=recipe.momentum, **common)
    return keras.optimizers.Adam(learning_rate, **common)


def loss_setup(config: ModelConfig) -> tuple[dict, dict]:
    """(losses, loss_weights) keyed by output name, for the outputs that are trained."""
    losses, weights = {}, {}
    if config.trains_compare:
        losses["compare"] = keras.losses.BinaryCrossentropy()
        weights["compare"] = config.compare_weight
    if config.has_digit_outputs and config.aux_weight > 0:
        for output in ("digit_a", "digit_b"):
            losses[output] = keras.losses.SparseCategoricalCrossentropy()
            weights[output] = config.aux_weight
    return losses, weights


def metric_setup(config: ModelConfig) -> dict:
    """Accuracy on every output; logged as compare_accuracy, digit_a_accuracy, ..."""
    metrics = {"compare": [keras.metrics.BinaryAccuracy(name="accuracy")]}
    if config.has_digit_outputs:
        for output in ("digit_a", "digit_b"):
            metrics[output] = [keras.metrics.SparseCategoricalAccuracy(name="accuracy")]
    return metrics


def compile_model(model: keras.Model, preset: Preset,
                  optimizer: keras.optimizers.Optimizer | None = None) -> keras.Model:
    """Compile with the preset's recipe (or a given optimizer of it, whose state is kept)."""
    losses, weights = loss_setup(preset.model)
    model.compile(optimizer=optimizer or make_optimizer(preset.train), loss=losses,
                  loss_weights=weights, metrics=metric_setup(preset.model))
    return model
