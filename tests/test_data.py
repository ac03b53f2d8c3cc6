"""The pair protocol and the digit sources."""

from __future__ import annotations

import gzip
import time

import numpy as np
import pytest

from pairzoo.data import downsample, load_pairs, load_source, make_pairs, sources
from pairzoo.data.sources import Digits
from pairzoo.errors import DataError


def test_pairs_shapes_and_labels():
    train, test = load_pairs(1000, 1000, seed=0)
    for pairs in (train, test):
        assert pairs.pairs.shape == (1000, 2, 14, 14)
        assert pairs.pairs.dtype == np.float32
        assert pairs.pairs.min() >= 0 and pairs.pairs.max() <= 255
        assert pairs.digits.shape == (1000, 2)
        assert set(np.unique(pairs.digits)) <= set(range(10))
        np.testing.assert_array_equal(pairs.compare, pairs.digits[:, 0] <= pairs.digits[:, 1])
        targets = pairs.targets()
        assert targets["compare"].shape == (1000, 1)
    # about 55 % of random digit pairs have a <= b
    assert 0.45 < train.compare.mean() < 0.65


def test_pairs_are_deterministic_and_seed_dependent():
    a_train, a_test = load_pairs(200, 200, seed=3)
    b_train, b_test = load_pairs(200, 200, seed=3)
    c_train, _ = load_pairs(200, 200, seed=4)
    np.testing.assert_array_equal(a_train.pairs, b_train.pairs)
    np.testing.assert_array_equal(a_test.digits, b_test.digits)
    assert not np.array_equal(a_train.pairs, c_train.pairs)


def _image_keys(pairs) -> set[bytes]:
    return {image.tobytes() for image in pairs.pairs.reshape(-1, 14, 14)}


def test_no_image_reused_and_pools_disjoint():
    pools = load_source("embedded")
    train_keys = {img.tobytes() for img in pools.train.images}
    test_keys = {img.tobytes() for img in pools.test.images}
    assert not train_keys & test_keys  # the two halves share no image
    train, test = load_pairs(1000, 1000, seed=0)
    assert len(_image_keys(train)) == 2000  # 2N distinct images in a set
    assert len(_image_keys(test)) == 2000
    assert not _image_keys(train) & _image_keys(test)


def test_pairing_follows_the_course_protocol():
    """perm[:2N].view(N, 2): image 2i is the first of pair i, image 2i+1 the second."""
    pool = Digits(np.arange(20 * 784, dtype=np.uint8).reshape(20, 28, 28) % 251,
                  np.arange(20) % 10)
    rng = np.random.default_rng(7)
    expected = np.random.default_rng(7).permutation(20)[:10].reshape(5, 2)
    pairs = make_pairs(pool, 5, rng)
    np.testing.assert_array_equal(pairs.digits, pool.labels[expected])
    np.testing.assert_allclose(pairs.pairs[2, 1], downsample(pool.images[[expected[2, 1]]])[0])


def test_downsample_is_2x2_average():
    image = np.arange(784, dtype=np.uint8).reshape(1, 28, 28)
    out = downsample(image)
    assert out.shape == (1, 14, 14)
    assert out[0, 0, 0] == np.mean([0, 1, 28, 29])


def test_too_many_pairs_is_a_clear_error():
    with pytest.raises(DataError, match="distinct digits"):
        load_pairs(2000, 10, seed=0)


def test_idx_loader_on_the_real_test_split(t10k):
    pools = load_source(f"idx:{t10k}")
    assert len(pools.train) + len(pools.test) == 10_000
    assert "halves" in pools.description
    train, test = load_pairs(1000, 1000, seed=0, test_data=f"idx:{t10k}")
    assert test.source.startswith("idx:")
    assert 0.45 < test.compare.mean() < 0.65


def _write_idx(path, array, magic_type=0x08, compress=False):
    header = bytes([0, 0, magic_type, array.ndim]) + np.array(array.shape, ">i4").tobytes()
    data = header + array.astype(np.uint8).tobytes()
    (gzip.open if compress else open)(path, "wb").write(data)


def test_idx_names_both_splits_and_torchvision_layout(tmp_path):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    images = np.random.default_rng(0).integers(0, 255, (40, 28, 28))
    labels = np.arange(40) % 10
    _write_idx(raw / "train-images-idx3-ubyte", images)
    _write_idx(raw / "train-labels-idx1-ubyte", labels)
    _write_idx(raw / "t10k-images-idx3-ubyte.gz", images[:30], compress=True)
    _write_idx(raw / "t10k-labels-idx1-ubyte.gz", labels[:30], compress=True)
    pools = load_source(f"idx:{tmp_path}")
    assert (len(pools.train), len(pools.test)) == (40, 30)
    np.testing.assert_array_equal(pools.test.labels, labels[:30])


@pytest.mark.parametrize("damage", ["truncate", "magic", "missing_labels", "bad_labels"])
def test_corrupt_idx_files_give_clear_errors(tmp_path, damage):
    images = np.zeros((10, 28, 28))
    _write_idx(tmp_path / "t10k-images-idx3-ubyte", images)
    labels = np.arange(10) % 10 if damage != "bad_labels" else np.full(10, 42)
    if damage != "missing_labels":
        _write_idx(tmp_path / "t10k-labels-idx1-ubyte", labels)
    path = tmp_path / "t10k-images-idx3-ubyte"
    if damage == "truncate":
        path.write_bytes(path.read_bytes()[:-100])
    if damage == "magic":
        path.write_bytes(b"\x12\x34" + path.read_bytes()[2:])
    with pytest.raises(DataError) as info:
        load_source(f"idx:{tmp_path}")
    assert "\n" not in str(info.value)


def test_unknown_source_and_missing_folder():
    with pytest.raises(DataError, match="unknown data source"):
        load_source("mnist")
    with pytest.raises(DataError, match="does not exist"):
        load_source("idx:/nonexistent/folder")


def test_keras_cache_missing_then_present(tmp_path, monkeypatch):
    with pytest.raises(DataError, match="no Keras MNIST cache"):
        load_source("keras")
    home = tmp_path / "keras_home" / "datasets"
    home.mkdir(parents=True)
    rng = np.random.default_rng(0)
    np.savez(home / "mnist.npz", x_train=rng.integers(0, 255, (30, 28, 28), dtype=np.uint8),
             y_train=np.arange(30) % 10, x_test=rng.integers(0, 255, (20, 28, 28), dtype=np.uint8),
             y_test=np.arange(20) % 10)
    pools = load_source("keras")
    assert (len(pools.train), len(pools.test)) == (30, 20)


def test_tfds_through_tfds_mocking():
    tfds = pytest.importorskip("tensorflow_datasets")
    with tfds.testing.mock_data(num_examples=24):
        pools = load_source("tfds")
    assert pools.train.images.shape == (24, 28, 28)
    assert pools.test.labels.dtype == np.int64


def test_tfds_offline_fails_fast():
    pytest.importorskip("tensorflow_datasets")
    start = time.perf_counter()
    with pytest.raises(DataError, match="not prepared") as info:
        load_source("tfds")
    assert time.perf_counter() - start < 10
    assert "embedded" in str(info.value)


def test_network_probe_says_no_for_a_closed_port():
    """Loopback only: a port nobody listens on is refused at once."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        free_port = probe.getsockname()[1]
    start = time.perf_counter()
    assert sources._network_reachable("127.0.0.1", free_port, timeout=1.0) is False
    assert time.perf_counter() - start < 2
