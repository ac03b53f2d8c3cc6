"""The pair protocol of the reports (the course's `generate_pair_sets`), in numpy.

For each set: 2x2 average pooling (28x28 -> 14x14), a random permutation of the set's pool, and
its first 2N images paired in order (image 2i with image 2i+1), so no image is used twice in a
set. `compare` is 1 when the first digit is <= the second. Train pairs come from a source's train
pool and test pairs from a test pool, which never share an image.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pairzoo.data.sources import DEFAULT_SOURCE, Digits, Pools, load_source
from pairzoo.errors import DataError
from pairzoo.seeds import check_seed


@dataclass(frozen=True)
class PairSet:
    """N pairs: `pairs` (N, 2, 14, 14) float32 raw 0-255 pixels; `digits` (N, 2) classes."""

    pairs: np.ndarray
    digits: np.ndarray
    source: str = ""

    @property
    def compare(self) -> np.ndarray:
        """(N,) int: 1 where the first digit is <= the second."""
        return (self.digits[:, 0] <= self.digits[:, 1]).astype(np.int64)

    def __len__(self) -> int:
        return len(self.pairs)

    def targets(self, outputs=("compare", "digit_a", "digit_b")) -> dict[str, np.ndarray]:
        """Targets keyed by model output name, shaped as the losses expect; `outputs` picks
        those a model has (two-channel models have only `compare`)."""
        every = {
            "compare": self.compare.astype(np.float32)[:, None],  # (N, 1), like the output
            "digit_a": self.digits[:, 0],
            "digit_b": self.digits[:, 1],
        }
        return {name: every[name] for name in outputs}

    def take(self, n: int) -> PairSet:
        return PairSet(self.pairs[:n], self.digits[:n], self.source)


def downsample(images: np.ndarray) -> np.ndarray:
    """(N, 28, 28) -> (N, 14, 14) float32 by 2x2 average pooling, as `F.avg_pool2d(x, 2)`."""
    n = len(images)
    return images.reshape(n, 14, 2, 14, 2).astype(np.float32).mean(axis=(2, 4))


def make_pairs(pool: Digits, n_pairs: int, rng: np.random.Generator, source: str = "") -> PairSet:
    """Pair the first 2N images of a random permutation of `pool`, in order."""
    if n_pairs < 1:
        raise DataError(f"the number of pairs must be at least 1; got {n_pairs}")
    if 2 * n_pairs > len(pool):
        raise DataError(
            f"{n_pairs} pairs need {2 * n_pairs} distinct digits but the pool holds {len(pool)}; "
            f"ask for at most {len(pool) // 2} pairs or use a larger source (tfds, idx:DIR)"
        )
    chosen = rng.permutation(len(pool))[: 2 * n_pairs].reshape(n_pairs, 2)
    images = downsample(pool.images[chosen.ravel()]).reshape(n_pairs, 2, 14, 14)
    return PairSet(images, pool.labels[chosen], source)


def _streams(seed: int) -> tuple[np.random.Generator, np.random.Generator]:
    """A run's two independent random streams, spawned from its one seed: train, test."""
    train, test = np.random.SeedSequence(check_seed(seed)).spawn(2)
    return np.random.default_rng(train), np.random.default_rng(test)


def load_train_pairs(n: int, seed: int, source: str = DEFAULT_SOURCE) -> PairSet:
    """A run's training pairs: its seed's permutation of the source's train pool."""
    pool = _cached_pools(source).train
    return make_pairs(pool, n, _streams(seed)[0], f"{source} train pool")


def load_test_pairs(n: int | None, seed: int, source: str = DEFAULT_SOURCE,
               whole_split: bool = False) -> PairSet:
    """A run's test pairs, reading only the test source. `n=None` pairs every digit of the
    pool; `whole_split` draws from the source's whole test split where it is one (an idx folder
    of t10k alone: 10,000 digits, where its test pool is half of them), for models that never
    trained on that source (model cards, `pairzoo evaluate`)."""
    pools = _cached_pools(source)
    pool = pools.evaluation if whole_split else pools.test
    where = "whole test split" if whole_split and pools.whole_test_split is not None else \
        "test pool"
    return make_pairs(pool, len(pool) // 2 if n is None else n, _streams(seed)[1],
                      f"{source} {where}")


def load_pairs(
    n_train: int = 1000,
    n_test: int = 1000,
    seed: int = 0,
    train_data: str = DEFAULT_SOURCE,
    test_data: str | None = None,
) -> tuple[PairSet, PairSet]:
    """Train and test pairs for one run, deterministic for a seed.

    `test_data` defaults to `train_data`; then the two sets come from that source's disjoint
    pools. Train and test permutations use independent streams spawned from the one seed.
    """
    return (load_train_pairs(n_train, seed, train_data),
            load_test_pairs(n_test, seed, test_data or train_data))


_POOLS: dict[str, Pools] = {}


def _cached_pools(spec: str) -> Pools:
    """Sources are read once per process: repeated runs re-pair, they do not re-read files."""
    if spec not in _POOLS:
        _POOLS[spec] = load_source(spec)
    return _POOLS[spec]
