"""Digit sources -> the pair protocol -> (on TensorFlow) tf.data pipelines."""

from pairzoo.data.pairs import PairSet, downsample, load_pairs, make_pairs
from pairzoo.data.sources import SOURCE_HELP, Digits, Pools, load_source

__all__ = ["SOURCE_HELP", "Digits", "PairSet", "Pools", "downsample", "load_pairs", "load_source",
           "make_pairs"]
