"""The custom layers: exact values, first-index ties, serialization."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from pairzoo.layers import DigitComparison, SplitPair, TwoClassProbability


def _random_distributions(n, seed):
    logits = np.random.default_rng(seed).normal(size=(n, 10)).astype("float32")
    return np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)


def test_argmax_comparison_matches_numpy():
    a, b = _random_distributions(500, 0), _random_distributions(500, 1)
    out = np.asarray(DigitComparison("argmax")(a, b))
    np.testing.assert_array_equal(out[:, 0], (a.argmax(-1) <= b.argmax(-1)).astype("float32"))


def test_argmax_ties_go_to_the_first_index_like_argmax():
    a = np.zeros((1, 10), "float32")
    a[0, [3, 7]] = 0.5  # tie between 3 and 7 -> 3
    b = np.zeros((1, 10), "float32")
    b[0, 5] = 1.0
    assert float(np.asarray(DigitComparison("argmax")(a, b))[0, 0]) == 1.0  # 3 <= 5


def test_probabilistic_comparison_is_exact():
    a, b = _random_distributions(50, 2), _random_distributions(50, 3)
    brute = np.array([sum(a[n, i] * b[n, j] for i in range(10) for j in range(10) if i <= j)
                      for n in range(50)])
    out = np.asarray(DigitComparison("probabilistic")(a, b))[:, 0]
    np.testing.assert_allclose(out, brute, rtol=1e-5)


def test_probabilistic_certain_digits_agree_with_argmax():
    eye = np.eye(10, dtype="float32")
    a, b = np.repeat(eye, 10, axis=0), np.tile(eye, (10, 1))
    prob = np.asarray(DigitComparison("probabilistic")(a, b))
    hard = np.asarray(DigitComparison("argmax")(a, b))
    np.testing.assert_allclose(prob, hard, atol=1e-6)


def test_two_class_probability_is_softmax_second_column():
    logits = np.random.default_rng(4).normal(size=(20, 2)).astype("float32")
    expected = np.exp(logits[:, 1]) / np.exp(logits).sum(-1)
    np.testing.assert_allclose(np.asarray(TwoClassProbability()(logits))[:, 0], expected,
                               rtol=1e-5)


def test_split_pair_channels_last():
    pair = np.arange(2 * 2 * 14 * 14, dtype="float32").reshape(2, 2, 14, 14)
    first, second = SplitPair()(pair)
    np.testing.assert_array_equal(np.asarray(first)[..., 0], pair[:, 0])
    np.testing.assert_array_equal(np.asarray(second)[..., 0], pair[:, 1])


@pytest.mark.parametrize("layer", [DigitComparison("probabilistic", name="c"),
                                   DigitComparison("argmax"), TwoClassProbability(),
                                   SplitPair()])
def test_layers_round_trip_through_serialization(layer):
    clone = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer))
    assert type(clone) is type(layer)
    assert clone.get_config() == layer.get_config()


def test_bad_mode_is_rejected():
    with pytest.raises(ValueError, match="mode"):
        DigitComparison("sorted")


def test_augmentation_acts_only_when_training():
    """Keras's random layers default to training=True; a bare model(x) must not augment."""
    from pairzoo.registry import create_model

    model = create_model("siamese_vgg_aug")
    pair = np.random.default_rng(0).uniform(0, 255, (4, 2, 14, 14)).astype("float32")
    plain = [np.asarray(model(pair)["digit_a"]) for _ in range(2)]
    np.testing.assert_array_equal(plain[0], plain[1])
    np.testing.assert_array_equal(plain[0], np.asarray(model(pair, training=False)["digit_a"]))
    trained = np.asarray(model(pair, training=True)["digit_a"])
    assert not np.allclose(trained, plain[0])
