"""The one range of seeds pairzoo accepts, checked here for the CLI and the Python API alike.

A run's seed goes to `keras.utils.set_random_seed` (the fast loop seeds the same generators
but TensorFlow's: pairzoo.fastpath.seed_keeping_traces), which hands it to `np.random.seed`
(0 <= seed < 2**32) and `tf.random.set_seed`, and to `np.random.SeedSequence` (non-negative)
for its pairs and batch order. The tightest of these, NumPy's legacy seed, sets the range.
"""

from __future__ import annotations

import numbers

from pairzoo.errors import ConfigError

MAX_SEED = 2**32 - 1
SEED_RANGE = f"an integer from 0 to {MAX_SEED}"


def check_seed(seed, what: str = "seed") -> int:
    """`seed` as a plain int (NumPy integers too: Keras insists on an int), or a ConfigError
    naming `what` (e.g. "seed", "experiment.seed") and the range."""
    is_integer = isinstance(seed, numbers.Integral) and not isinstance(seed, bool)
    if not is_integer or not 0 <= seed <= MAX_SEED:
        raise ConfigError(f"{what} must be {SEED_RANGE}; got {seed!r}")
    return int(seed)
