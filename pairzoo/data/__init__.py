"""Digit sources -> the pair protocol -> (on TensorFlow) tf.data pipelines."""

from pairzoo.data.pairs import (
    PairSet,
    downsample,
    load_pairs,
    load_test_pairs,
    load_train_pairs,
    make_pairs,
)
from pairzoo.data.sources import DEFAULT_SOURCE, SOURCE_HELP, Digits, Pools, load_source

__all__ = ["DEFAULT_SOURCE", "SOURCE_HELP", "Digits", "PairSet", "Pools", "downsample",
           "load_pairs", "load_source", "load_test_pairs", "load_train_pairs", "make_pairs"]
