"""One harness over every registered model (timm's and keras-hub's rule).

Each zoo entry: builds; has its golden parameter count (and the report's, within 2 % or exactly
where a layer table fixes it); a training step leaves no NaN; every active loss sends gradient to
the tower; save and reload give identical outputs; shared weights are really shared.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from pairzoo.models import count_trainable_params
from pairzoo.recipe import compile_model, loss_setup
from pairzoo.registry import create_model, get_preset, list_models

NAMES = list_models()


@pytest.fixture(scope="module")
def batch(tiny_pairs):
    train, _ = tiny_pairs
    return train.take(16)


@pytest.mark.parametrize("name", NAMES)
def test_model_harness(name, batch, tmp_path):
    preset = get_preset(name)
    keras.utils.set_random_seed(0)
    model = create_model(name)
    config = preset.model

    # golden counts
    params = count_trainable_params(model)
    assert params == preset.source.expected_params, f"{name}: {params} trainable parameters"
    if preset.source.params:
        if preset.source.params_exact:
            assert params == preset.source.params
        else:
            assert abs(params - preset.source.params) <= 0.02 * preset.source.params

    # outputs
    outputs = model(batch.pairs)
    expected = {"compare", "digit_a", "digit_b"} if config.has_digit_outputs else {"compare"}
    assert set(outputs) == expected
    assert outputs["compare"].shape == (16, 1)

    # sharing: one tower instance called on both digits, or two
    if config.family == "siamese":
        assert len(model.towers) == (1 if config.share_weights else 2)

    # every active loss sends gradient to every tower; together they reach every weight
    losses, _ = loss_setup(config)
    targets = batch.targets(model.output_names)
    with tf.GradientTape(persistent=True) as tape:  # one forward pass, a gradient per loss
        training_outputs = model(batch.pairs, training=True)
        values = {output: loss_fn(targets[output], training_outputs[output])
                  for output, loss_fn in losses.items()}
    reached = set()
    for output, value in values.items():
        grads = tape.gradient(value, model.trainable_weights)
        touched = {w.path for w, g in zip(model.trainable_weights, grads, strict=True)
                   if g is not None and float(tf.reduce_max(tf.abs(g))) > 0}
        reached |= touched
        tower_paths = {w.path for t in model.towers for w in t.trainable_weights
                       if output == "compare" or t.name in ("tower", f"tower_{output[-1]}")}
        assert tower_paths & touched, f"{name}: loss {output} reaches no tower weight"
    assert reached == {w.path for w in model.trainable_weights}, (
        f"{name}: no gradient for {sorted({w.path for w in model.trainable_weights} - reached)}")

    # one training step, no NaN; eagerly: tracing a train function costs 1-20 s per entry and
    # checks nothing this step does not (the traced loops: test_training, test_export, -m slow)
    compile_model(model, preset)
    model.run_eagerly = True
    model.train_on_batch(batch.pairs, targets)
    for weight in model.weights:
        assert np.isfinite(np.asarray(weight)).all(), f"{name}: {weight.path} is not finite"

    # save and reload: identical outputs, identical config
    path = tmp_path / f"{name}.keras"
    model.save(path)
    reloaded = keras.models.load_model(path)
    assert reloaded.model_config == config
    before, after = model(batch.pairs), reloaded(batch.pairs)  # eager: no predict tracing
    assert set(after) == set(before)
    for key in before:
        np.testing.assert_array_equal(np.asarray(before[key]), np.asarray(after[key]))
    assert count_trainable_params(reloaded) == params


def test_two_channel_baseline_has_exactly_70906_parameters():
    """Report 000's Table 1 fixes every layer: 608 + 18,496 + 51,400 + 402."""
    assert count_trainable_params(create_model("two_channel_baseline")) == 70_906


def test_shared_tower_is_one_set_of_weights():
    model = create_model("siamese_fullyconv")
    unshared = create_model("siamese_fullyconv", share_weights=False)
    assert len(model.towers) == 1
    tower = count_trainable_params(model.towers[0])
    assert count_trainable_params(unshared) - count_trainable_params(model) == tower


@pytest.mark.parametrize("name", ["siamese_convnet_joint_loss", "siamese_rnn",
                                  "two_tower_convnet4", "siamese_resnet"])
def test_torch_style_init_draws_pytorchs_bounds_from_the_seed(name):
    from pairzoo.models import all_layers

    keras.utils.set_random_seed(3)
    model = create_model(name, init="torch")
    keras.utils.set_random_seed(3)
    again = create_model(name, init="torch")
    for weight, twin in zip(model.weights, again.weights, strict=True):
        np.testing.assert_array_equal(weight.numpy(), twin.numpy())  # seeded
    checked = 0
    for layer in all_layers(model):
        if isinstance(layer, (keras.layers.Dense, keras.layers.Conv2D)):
            bound = 1 / np.sqrt(np.prod(layer.kernel.shape[:-1]))  # 1/sqrt(fan_in)
        elif isinstance(layer, keras.layers.SimpleRNN):
            bound = 1 / np.sqrt(layer.units)  # nn.RNN: every weight from U(+-1/sqrt(h))
        else:
            continue
        for weight in layer.weights:
            assert np.abs(weight.numpy()).max() <= bound + 1e-6, weight.path
        kernel = layer.weights[0].numpy()
        assert np.abs(kernel).max() > bound / 2, layer.name  # drawn across the range
        checked += 1
    assert checked >= 3
    assert model.model_config.init == "torch"
