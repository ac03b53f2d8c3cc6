"""`tf.data` pipelines over pair sets (TensorFlow backend only; imports TensorFlow lazily)."""

from __future__ import annotations

from pairzoo.data.pairs import PairSet


def to_dataset(pairs: PairSet, batch_size: int, shuffle_seed: int | None = None,
               outputs=("compare", "digit_a", "digit_b")):
    """(pair, {compare, digit_a, digit_b}) batches; reshuffled each epoch when a seed is given.

    The whole set (1,000 pairs, 0.8 MB) is cached in memory, so an epoch costs no Python.
    """
    import tensorflow as tf

    dataset = tf.data.Dataset.from_tensor_slices((pairs.pairs, pairs.targets(outputs)))
    dataset = dataset.cache()
    if shuffle_seed is not None:
        dataset = dataset.shuffle(len(pairs), seed=shuffle_seed, reshuffle_each_iteration=True)
    return dataset.batch(batch_size).prefetch(tf.data.AUTOTUNE)
