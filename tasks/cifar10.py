"""The ``cifar10`` task: image classification with a small ResNet-style CNN, accuracy.

Data
  * ``offline`` (default): scikit-learn's bundled handwritten digits (``sklearn.datasets.load_digits``:
    1,797 real 8x8 grey-scale images, 10 classes, shipped inside scikit-learn, no download). It is a
    stand-in for CIFAR-10 in the same format (small images, 10 classes, the same CNN), so records say
    ``dataset: sklearn-digits``. Split 60/20/20 (1,079 / 359 / 359), stratified by class.
  * ``online``: CIFAR-10 (50,000 train + 10,000 test 32x32 colour images) through
    ``torchvision.datasets.CIFAR10``. ``root`` (``data.root``) is the folder that holds
    ``cifar-10-batches-py/`` (torchvision's convention); it defaults to
    ``$DENDROBENCH_CACHE/cifar10``, i.e. ``~/.cache/dendrobench/cifar10``. Validation is 5,000 images
    carved from the official training set (500 per class); test is the official test batch.
    An image folder in ``data.root`` is used instead when present: ``train/<class>/*`` and
    ``test/<class>/*`` (read with ``torchvision.datasets.ImageFolder``; 32x32 RGB images, the ten
    CIFAR-10 classes as folder names), with the same 5,000-image validation carve-out. Its files decide
    the dataset name: any JPEG makes it ``cifar10-jpeg`` (a lossy re-encoding, not the benchmark's
    pixels), lossless files (PNG, BMP) ``cifar10-imagefolder``. Decoded images are cached under
    ``$DENDROBENCH_CACHE/cifar10-folders``, keyed by every file's path, size and mtime.

Splits do *not* depend on the seed, on purpose (as in the ``bbbp`` task): every seed sees the same
validation and test images, so seeds measure the spread due to initial weights, data order and
augmentation, and results stay comparable with published fixed-split numbers. Both splits are
stratified and come from a fixed ``random_state``.

Preprocessing: per-channel standardisation (digits: mean/std of the training split; CIFAR-10: the
usual training-set channel statistics). CIFAR-10 training batches get the standard augmentation
(4-pixel zero-padded random crop and horizontal flip), applied per batch with a generator seeded from
the runner's loader generator, so every arm of a seed sees the same augmented images. Digits get no
augmentation: flips change a digit's identity, and 8x8 images have no room for crops.

Offline failure modes: a missing CIFAR-10 folder is downloaded only for ``data.source=online`` and
only if ``DENDROBENCH_OFFLINE`` is unset, with a timeout, so a closed network fails in seconds with a
:class:`DataUnavailableError` saying which URL to fetch and which folder to put it in. Every batch
file is checked against torchvision's MD5 before loading, so a corrupt or partial file is named.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from dendrobench.baselines.resnet import (
    RESNET18_CIFAR,
    RESNET20_CIFAR,
    SMALL_RESNET,
    ResNetConfig,
    build_resnet,
)
from torch import nn
from torch.utils.data import DataLoader, Dataset, Subset
from torch.utils.data.dataloader import default_collate

from dendrobench.api import Budget, PermutedBatches, Task, TaskData, cache_dir, downloads, subset_rows
from dendrobench.errors import ConfigError, DataUnavailableError, UserError

DOWNLOAD_TIMEOUT_S = 30.0
SPLIT_RANDOM_STATE = 0  # fixed: splits are seed-independent (see the module docstring)
CIFAR10_VAL_SIZE = 5000
# Channel statistics of the CIFAR-10 training set (0..1 scale), as used by most CIFAR ResNet code.
CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2470, 0.2435, 0.2616)


# -- locations ------------------------------------------------------------------------------------
def default_cifar10_root() -> Path:
    return cache_dir() / "cifar10"



# -- image tensors and batch augmentation ---------------------------------------------------------
class ImageTensors(Dataset):
    """Images held as one tensor ``(N, C, H, W)`` (uint8 or float) plus integer labels.

    ``__getitem__`` standardises per channel (``(x - mean) / std``, in the stored units), so items
    are ready for the model; keeping CIFAR-10 as uint8 costs 150 MB instead of 600 MB of float32.
    ``augment`` (``{"pad": 4, "flip": True}`` or None) is read by :meth:`Cifar10Task.dataloader`
    for training batches.
    """

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, mean: Sequence[float], std: Sequence[float],
                 augment: dict[str, Any] | None = None):
        if images.ndim != 4 or images.shape[0] != labels.shape[0]:
            raise ValueError(f"images must be (N, C, H, W) matching labels, got {tuple(images.shape)} / {tuple(labels.shape)}")
        self.images = images
        self.labels = labels.long()
        channels = images.shape[1]
        self.mean = torch.tensor(mean, dtype=torch.float32).view(channels, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32).view(channels, 1, 1)
        self.augment = augment

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return (self.images[i].float() - self.mean) / self.std, self.labels[i]

    @property
    def fill(self) -> torch.Tensor:
        """The standardised value of a zero (black) pixel per channel: the padding of random crops."""
        return (-self.mean / self.std).view(-1)


def _root_dataset(ds: Dataset) -> Dataset:
    """The dataset under any ``Subset`` wrappers (the runner subsets splits for small budgets)."""
    while isinstance(ds, Subset):
        ds = ds.dataset
    return ds


class ImageBatches:
    """The batches ``DataLoader(dataset, batch_size, shuffle, generator, collate_fn=collate)`` yields
    for :class:`ImageTensors` (or a ``Subset`` of it), gathered and standardised a whole batch at a
    time.

    The DataLoader calls ``__getitem__`` once per image (a ``float()``, a subtraction and a division
    on one 3 x 32 x 32 image) and stacks the results: 0.6 of its 1.3 ms per batch of 64 training
    images, where the whole augmentation takes 0.6 (issue 20). Here one ``index_select`` gathers
    the uint8 rows and the same elementwise ``(x - mean) / std`` runs on the batch, so every value
    is the one the per-image path computes. The generator draws are the DataLoader's own, in its
    order: its base seed at the start of each pass, then the sampler's permutation
    (:class:`~dendrobench.api.PermutedBatches`), then the augmentation's draws for each batch from
    its own generator (``tests/test_task_cifar10.py`` compares batches and generator states).
    """

    def __init__(self, dataset: Dataset, batch_size: int, shuffle: bool, generator: torch.Generator | None,
                 augment: AugmentCollate | None = None):
        self.base = _root_dataset(dataset)
        if not isinstance(self.base, ImageTensors):
            raise TypeError(f"ImageBatches serves ImageTensors, got {type(self.base).__name__}")
        self.rows, self.generator, self.augment = subset_rows(dataset)[1], generator, augment
        self.sampler = PermutedBatches(len(dataset), batch_size, shuffle, generator)  # type: ignore[arg-type]

    def __len__(self) -> int:
        return len(self.sampler)

    def __iter__(self) -> Iterator[list[torch.Tensor]]:
        base = self.base
        torch.empty((), dtype=torch.int64).random_(generator=self.generator)  # the DataLoader's base seed
        for index in self.sampler:
            rows = index if self.rows is None else self.rows.index_select(0, index)
            x = (base.images.index_select(0, rows).float() - base.mean) / base.std
            y = base.labels.index_select(0, rows)
            yield [x if self.augment is None else self.augment.apply(x), y]


class AugmentCollate:
    """Default collation, then the standard CIFAR augmentation on the whole batch.

    Random crop: pad by ``pad`` pixels with ``fill`` and cut a random ``H x W`` window per image;
    flip: mirror each image horizontally with probability 1/2. Randomness comes only from
    ``generator``, so it is reproducible and identical for every arm given the same seed.
    """

    def __init__(self, pad: int, flip: bool, fill: torch.Tensor, generator: torch.Generator):
        self.pad, self.flip, self.fill, self.generator = int(pad), bool(flip), fill, generator

    def __call__(self, items: list) -> list[torch.Tensor]:
        x, y = default_collate(items)
        return [self.apply(x), y]

    def apply(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        if self.pad > 0:
            p = self.pad
            padded = self.fill.view(1, c, 1, 1).expand(n, c, h + 2 * p, w + 2 * p).clone()
            padded[:, :, p:p + h, p:p + w] = x
            offsets = torch.randint(0, 2 * p + 1, (n, 2), generator=self.generator).tolist()
            x = torch.stack([padded[i, :, dy:dy + h, dx:dx + w] for i, (dy, dx) in enumerate(offsets)])
        if self.flip:
            mask = torch.rand(n, generator=self.generator) < 0.5
            x = torch.where(mask.view(n, 1, 1, 1), x.flip(-1), x)
        return x


# -- offline: scikit-learn digits -----------------------------------------------------------------
def stratified_three_way(labels: np.ndarray, val: float | int, test: float | int,
                         random_state: int = SPLIT_RANDOM_STATE) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sorted (train, val, test) indices: two stratified ``train_test_split`` calls, fixed state.

    ``val`` / ``test`` are fractions of the whole set or absolute counts.
    """
    from sklearn.model_selection import train_test_split

    n = len(labels)
    n_test = int(round(test * n)) if isinstance(test, float) else int(test)
    n_val = int(round(val * n)) if isinstance(val, float) else int(val)
    idx = np.arange(n)
    rest, test_idx = (idx, idx[:0]) if n_test == 0 else train_test_split(
        idx, test_size=n_test, stratify=labels, random_state=random_state)
    train_idx, val_idx = train_test_split(rest, test_size=n_val, stratify=labels[rest], random_state=random_state)
    return np.sort(train_idx), np.sort(val_idx), np.sort(test_idx)


def load_digits_data() -> TaskData:
    """scikit-learn's digits: 1,797 8x8 images (values 0..16), split 60/20/20 by class."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = torch.tensor(bunch.images, dtype=torch.float32).unsqueeze(1)  # (N, 1, 8, 8)
    labels = np.asarray(bunch.target, dtype=np.int64)
    train, val, test = stratified_three_way(labels, 0.2, 0.2)
    mean = float(images[train].mean())
    std = float(images[train].std())
    y = torch.from_numpy(labels)

    def part(idx: np.ndarray) -> ImageTensors:
        t = torch.from_numpy(idx)
        return ImageTensors(images[t], y[t], [mean], [std], augment=None)

    info = {"split": f"stratified 60/20/20, random_state={SPLIT_RANDOM_STATE} (seed-independent)",
            "split_sizes": {"train": len(train), "val": len(val), "test": len(test)},
            "image_shape": [1, 8, 8], "augmentation": None,
            "standardisation": {"mean": [round(mean, 4)], "std": [round(std, 4)], "from": "train split"}}
    return TaskData(train=part(train), val=part(val), test=part(test), dataset="sklearn-digits",
                    source="offline", info=info, meta={"in_channels": 1, "num_classes": 10, "image_size": 8})


# -- online: CIFAR-10 through torchvision ---------------------------------------------------------
def _cifar10_class():
    from torchvision.datasets import CIFAR10

    return CIFAR10


def cifar10_files() -> list[tuple[str, str]]:
    """(file name, MD5) of every file torchvision's ``CIFAR10`` reads, from torchvision itself."""
    cls = _cifar10_class()
    return [(name, md5) for name, md5 in cls.train_list + cls.test_list] + [(cls.meta["filename"], cls.meta["md5"])]


_MD5_OK: set[tuple[str, int, int, str]] = set()


def md5_matches(path: Path, md5: str) -> bool:
    """Whether ``path`` has MD5 ``md5``; remembered per (path, size, mtime) within the process."""
    st = path.stat()
    key = (str(path), st.st_size, st.st_mtime_ns, md5)
    if key in _MD5_OK:
        return True
    h = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    if h.hexdigest() != md5:
        return False
    _MD5_OK.add(key)
    return True


def _how_to_get(root: Path) -> str:
    cls = _cifar10_class()
    return (f"download {cls.url} and put {cls.filename} in {root} (it is extracted there on the next run), "
            f"or extract it yourself so that {root / cls.base_folder} holds data_batch_1..5, test_batch "
            f"and batches.meta (or pass data.root=DIR to use DIR/{cls.base_folder})")



def ensure_cifar10(root: Path, download: bool = True) -> Path:
    """Make sure ``root/cifar-10-batches-py`` holds intact CIFAR-10 files; returns that folder.

    Order: intact batch files are used as they are; else an intact ``cifar-10-python.tar.gz`` in
    ``root`` is extracted (by torchvision, no network); else, if ``download`` and
    ``DENDROBENCH_OFFLINE`` is unset, the archive is fetched with a timeout. Anything else raises
    :class:`DataUnavailableError` naming the URL, the folder and, for a bad file, the file.
    """
    cls = _cifar10_class()
    root = Path(root).expanduser()
    folder = root / cls.base_folder
    archive = root / cls.filename
    files = cifar10_files()
    present = [(folder / name, md5) for name, md5 in files if (folder / name).is_file()]
    for path, md5 in present:
        if not md5_matches(path, md5):
            raise DataUnavailableError(f"CIFAR-10 file {path} is corrupt or partial (its MD5 is not torchvision's "
                                       f"{md5}); delete it and {_how_to_get(root)}")
    if len(present) == len(files):
        return folder
    missing = [name for name, _ in files if not (folder / name).is_file()]
    if not archive.is_file():
        if not download or downloads.offline_forced():
            why = "DENDROBENCH_OFFLINE is set" if download else "downloading was not asked for"
            raise DataUnavailableError(f"CIFAR-10 is not in {folder} (missing: {', '.join(missing)}) and {why}; "
                                       f"{_how_to_get(root)}")
        try:
            downloads.download(cls.url, archive, timeout=DOWNLOAD_TIMEOUT_S)
        except Exception as exc:  # noqa: BLE001 - any network failure becomes one actionable message
            raise DataUnavailableError(f"CIFAR-10 is not in {folder} and downloading {cls.url} failed "
                                       f"({type(exc).__name__}: {exc}); {_how_to_get(root)}") from exc
    if not md5_matches(archive, cls.tgz_md5):
        raise DataUnavailableError(f"CIFAR-10 archive {archive} is corrupt or partial (its MD5 is not "
                                   f"{cls.tgz_md5}); delete it and {_how_to_get(root)}")
    try:
        cls(str(root), train=False, download=True)  # archive intact: torchvision only extracts it
    except Exception as exc:  # noqa: BLE001
        raise DataUnavailableError(f"could not extract {archive} into {folder} ({type(exc).__name__}: {exc}); "
                                   f"delete both and {_how_to_get(root)}") from exc
    return ensure_cifar10(root, download=False)


def _read_split(root: Path, train: bool) -> tuple[np.ndarray, np.ndarray]:
    """Images ``(N, 32, 32, 3)`` uint8 and labels through ``torchvision.datasets.CIFAR10``."""
    cls = _cifar10_class()
    try:
        ds = cls(str(root), train=train, download=False)
    except Exception as exc:  # noqa: BLE001 - files passed the MD5 check, so this is unexpected
        names = [n for n, _ in (cls.train_list if train else cls.test_list)]
        raise DataUnavailableError(f"torchvision could not read CIFAR-10 {'/'.join(names)} in "
                                   f"{Path(root) / cls.base_folder} ({type(exc).__name__}: {exc}); "
                                   f"delete the folder and {_how_to_get(Path(root))}") from exc
    return np.asarray(ds.data, dtype=np.uint8), np.asarray(ds.targets, dtype=np.int64)


def load_cifar10_data(root: Path | None = None, download: bool = True, val_size: int = CIFAR10_VAL_SIZE) -> TaskData:
    """CIFAR-10 train/val/test; validation is carved from the training set, stratified, fixed."""
    root = Path(root).expanduser() if root is not None else default_cifar10_root()
    ensure_cifar10(root, download=download)
    x_train, y_train = _read_split(root, train=True)
    x_test, y_test = _read_split(root, train=False)
    n_val = min(val_size, len(y_train) // 2)
    train_idx, val_idx, _ = stratified_three_way(y_train, n_val, 0)

    def part(x: np.ndarray, y: np.ndarray, augment: dict[str, Any] | None) -> ImageTensors:
        images = torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))  # NHWC -> NCHW, uint8
        return ImageTensors(images, torch.from_numpy(y), [255 * m for m in CIFAR10_MEAN],
                            [255 * s for s in CIFAR10_STD], augment=augment)

    augment = {"pad": 4, "flip": True}
    info = {"split": f"official test batch; {n_val} validation images carved from train, stratified, "
                     f"random_state={SPLIT_RANDOM_STATE} (seed-independent)",
            "split_sizes": {"train": len(train_idx), "val": len(val_idx), "test": len(y_test)},
            "image_shape": [3, 32, 32], "augmentation": "random crop (pad 4) + horizontal flip",
            "root": str(root)}
    return TaskData(train=part(x_train[train_idx], y_train[train_idx], augment),
                    val=part(x_train[val_idx], y_train[val_idx], None), test=part(x_test, y_test, None),
                    dataset="cifar10", source="online", info=info,
                    meta={"in_channels": 3, "num_classes": 10, "image_size": 32})


# -- online: an image folder (e.g. the JPEG re-encoding) ------------------------------------------
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
JPEG_SUFFIXES = (".jpg", ".jpeg")


def has_image_folder(root: Path) -> bool:
    return (root / "train").is_dir() and (root / "test").is_dir()


def _folder_listing(folder: Path) -> list[tuple[str, int, int]]:
    out = []
    for dirpath, _, names in os.walk(folder):
        for name in names:
            st = (Path(dirpath) / name).stat()
            out.append((os.path.relpath(os.path.join(dirpath, name), folder), st.st_size, st.st_mtime_ns))
    return sorted(out)


def read_image_folder(folder: Path) -> tuple[np.ndarray, np.ndarray, list[str], bool]:
    """``torchvision.datasets.ImageFolder(folder)`` decoded: images (N, 32, 32, 3) uint8, labels,
    class names, whether any file is a JPEG. Decoded arrays are cached (see the module docstring)."""
    from torchvision.datasets import ImageFolder

    listing = _folder_listing(folder)
    key = hashlib.sha256(repr((str(folder.resolve()), listing)).encode()).hexdigest()[:20]
    cache = cache_dir("cifar10-folders") / f"{folder.name}-{key}.npz"
    if cache.is_file():
        try:
            with np.load(cache, allow_pickle=False) as z:
                return z["x"], z["y"], [str(c) for c in z["classes"]], bool(z["jpeg"])
        except Exception:  # noqa: BLE001 - a bad cache is rebuilt
            pass
    try:
        ds = ImageFolder(str(folder))
    except Exception as exc:  # noqa: BLE001
        raise DataUnavailableError(f"{folder} is not an image folder with one sub-folder of images per class "
                                   f"({type(exc).__name__}: {exc})") from exc
    x = np.empty((len(ds), 32, 32, 3), dtype=np.uint8)
    for i, (path, _) in enumerate(ds.samples):
        try:
            img = ds.loader(path)  # PIL, converted to RGB
        except Exception as exc:  # noqa: BLE001
            raise DataUnavailableError(f"image {path} is unreadable ({type(exc).__name__}: {exc}); the folder is "
                                       "corrupt or partial") from exc
        if img.size != (32, 32):
            raise DataUnavailableError(f"image {path} is {img.size[0]}x{img.size[1]}, not CIFAR-10's 32x32")
        x[i] = np.asarray(img, dtype=np.uint8)
    y = np.asarray(ds.targets, dtype=np.int64)
    jpeg = any(p.lower().endswith(JPEG_SUFFIXES) for p, _ in ds.samples)
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=cache.name, suffix=".tmp.npz", dir=cache.parent)
        os.close(fd)
        np.savez(tmp, x=x, y=y, classes=np.array(ds.classes), jpeg=np.array(jpeg))
        os.replace(tmp, cache)
    except OSError:
        pass  # an unwritable cache only costs time
    return x, y, list(ds.classes), jpeg


def load_image_folder_data(root: Path, val_size: int = CIFAR10_VAL_SIZE) -> TaskData:
    """CIFAR-10 from ``root/train/<class>/*`` and ``root/test/<class>/*`` (see the module docstring)."""
    x_train, y_train, classes, jpeg_train = read_image_folder(root / "train")
    x_test, y_test, test_classes, jpeg_test = read_image_folder(root / "test")
    if classes != test_classes or sorted(classes) != sorted(CIFAR10_CLASSES):
        raise DataUnavailableError(f"{root}: train/ and test/ must each hold the ten CIFAR-10 class folders "
                                   f"({', '.join(CIFAR10_CLASSES)}); found {classes} and {test_classes}")
    n_val = min(val_size, len(y_train) // 2)
    train_idx, val_idx, _ = stratified_three_way(y_train, n_val, 0)
    dataset = "cifar10-jpeg" if (jpeg_train or jpeg_test) else "cifar10-imagefolder"
    info = {"split": f"the folder's test/; {n_val} validation images carved from train/, stratified, "
                     f"random_state={SPLIT_RANDOM_STATE} (seed-independent)",
            "split_sizes": {"train": len(train_idx), "val": len(val_idx), "test": len(y_test)},
            "image_shape": [3, 32, 32], "augmentation": "random crop (pad 4) + horizontal flip",
            "root": str(root), "format": "JPEG (lossy re-encoding)" if dataset == "cifar10-jpeg" else "lossless files",
            "classes": classes}
    return TaskData(train=_cifar_part(x_train[train_idx], y_train[train_idx], {"pad": 4, "flip": True}),
                    val=_cifar_part(x_train[val_idx], y_train[val_idx], None), test=_cifar_part(x_test, y_test, None),
                    dataset=dataset, source="online", info=info,
                    meta={"in_channels": 3, "num_classes": 10, "image_size": 32})


def _cifar_part(x: np.ndarray, y: np.ndarray, augment: dict[str, Any] | None) -> ImageTensors:
    images = torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))  # NHWC -> NCHW, uint8
    return ImageTensors(images, torch.from_numpy(y), [255 * m for m in CIFAR10_MEAN],
                        [255 * s for s in CIFAR10_STD], augment=augment)


# -- the task -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Cifar10Options:
    """The cifar10 model options (``task_options.KEY=VALUE``): the ResNet's ``stem`` channels, stage
    ``widths`` and ``blocks`` per stage (None: the budget's ResNet)."""

    stem: int | None = None
    widths: tuple[int, ...] | None = None
    blocks: tuple[int, ...] | None = None

    def validate(self) -> None:
        if self.stem is not None and self.stem < 1:
            raise ConfigError(f"task_options.stem must be >= 1, got {self.stem}")
        for name in ("widths", "blocks"):
            value = getattr(self, name)
            if value is not None and (not value or any(v < 1 for v in value)):
                raise ConfigError(f"task_options.{name} must be a non-empty list of integers >= 1, got {list(value)}")
        if self.widths is not None and self.blocks is not None and len(self.widths) != len(self.blocks):
            raise ConfigError(f"task_options.widths and blocks need one entry per stage, got {list(self.widths)} "
                              f"and {list(self.blocks)}")


class Cifar10Task(Task):
    """Ten-class image classification, ResNet-style CNN (torchvision blocks), accuracy."""

    name = "cifar10"
    modality = "image"
    description = "Image classification: CIFAR-stem ResNet of torchvision BasicBlocks, accuracy"
    metric = "accuracy"
    # 2: the ResNet runs in channels_last memory order (1.6x faster steps on CPU; the sums round
    # differently, so results are not bit for bit version 1's)
    version = "2"
    Options = Cifar10Options
    datasets = {
        "offline": "scikit-learn's bundled digits (load_digits: 1,797 real 8x8 images, 10 classes), a "
                   "stand-in for CIFAR-10 in the same format (records say dataset=sklearn-digits)",
        "online": "CIFAR-10 (50,000 + 10,000 32x32 images) via torchvision.datasets.CIFAR10, "
                  "in $DENDROBENCH_CACHE/cifar10 (default ~/.cache/dendrobench/cifar10); or an image folder "
                  "train/<class>/*, test/<class>/* in data.root via ImageFolder (dataset=cifar10-jpeg for JPEGs)",
    }
    budgets = {
        # seconds: a few dozen steps on a fixed subset, for tests and the smoke CLI run
        "smoke": Budget(epochs=2, batch_size=32, lr=2e-3, steps_per_epoch=8, eval_batch_size=256,
                        max_train_examples=256, max_eval_examples=128),
        # ~10-30 s per arm on 2 CPU cores with digits: 300 steps (about 18 passes over 1,079 images),
        # small ResNet (SMALL_RESNET). A fixed step count, so online CIFAR-10 quick is bounded too.
        "quick": Budget(epochs=15, batch_size=64, lr=2e-3, steps_per_epoch=20, optimizer="adamw",
                        weight_decay=5e-4, schedule="cosine", eval_batch_size=512),
        # a paper-like CPU run: He et al. 2016's ResNet-20 layout (RESNET20_CIFAR), SGD 0.1 with
        # momentum 0.9 and weight decay 5e-4, cosine schedule, 30 passes over the training split
        "standard": Budget(epochs=30, batch_size=128, lr=0.1, optimizer="sgd", weight_decay=5e-4,
                           schedule="cosine", eval_batch_size=1000),
        # the common ResNet-18-on-CIFAR-10 recipe (RESNET18_CIFAR = torchvision resnet18 with the
        # CIFAR stem; e.g. kuangliu/pytorch-cifar): SGD 0.1, momentum 0.9 (Nesterov in our runner),
        # weight decay 5e-4, batch 128, 200 epochs with cosine annealing. GPU scale.
        "full": Budget(epochs=200, batch_size=128, lr=0.1, optimizer="sgd", weight_decay=5e-4,
                       schedule="cosine", eval_batch_size=1000),
    }
    # The architecture each budget trains; see configure().
    models: dict[str, ResNetConfig] = {"smoke": SMALL_RESNET, "quick": SMALL_RESNET,
                                       "standard": RESNET20_CIFAR, "full": RESNET18_CIFAR}

    def __init__(self, model: ResNetConfig | None = None, download: bool = True):
        self.model_config: ResNetConfig = model or self.models["quick"]
        self.download = download

    def set_options(self, options: Cifar10Options) -> None:
        """Model options override the budget's ResNet (``configure`` ran first); a stage count that
        changes needs both ``widths`` and ``blocks``, which ResNetConfig checks."""
        super().set_options(options)
        chosen = {"stem": options.stem, "widths": options.widths, "blocks": options.blocks}
        try:
            self.model_config = replace(self.model_config, **{k: v for k, v in chosen.items() if v is not None})
        except ValueError as exc:
            raise ConfigError(f"task_options for cifar10: {exc}") from None

    # -- data -------------------------------------------------------------------------------
    def load_data(self, source: str, seed: int, root: Path | None = None) -> TaskData:
        if source == "offline":
            return load_digits_data()
        if source == "online":
            if root is not None and has_image_folder(Path(root).expanduser()):
                return load_image_folder_data(Path(root).expanduser())
            return load_cifar10_data(root, download=self.download)
        raise UserError(f"unknown data source {source!r}; valid data sources: offline, online")

    def dataloader(self, dataset: Dataset, batch_size: int, shuffle: bool, generator: torch.Generator | None):
        """Plain loader; shuffled (training) loaders of augmented data augment each batch.

        The augmentation generator is seeded from the loader's generator (which the runner seeds
        with the run's seed), so arms of one seed see identical augmented batches.
        """
        base = _root_dataset(dataset)
        if not isinstance(base, ImageTensors):
            return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, generator=generator)
        spec = base.augment
        if not (shuffle and spec):
            return ImageBatches(dataset, batch_size, shuffle, generator)
        seed = generator.initial_seed() if generator is not None else int(torch.randint(0, 2**62, (1,)).item())
        aug_gen = torch.Generator().manual_seed((seed + 0x5EED) % 2**63)
        collate = AugmentCollate(spec.get("pad", 0), spec.get("flip", False), base.fill, aug_gen)
        return ImageBatches(dataset, batch_size, True, generator, collate)

    # -- model ------------------------------------------------------------------------------
    def build_model(self, data: TaskData, width: float = 1.0) -> nn.Module:
        return build_resnet(self.model_config, int(data.meta["in_channels"]), int(data.meta["num_classes"]), width,
                            channels_last=True)

    def inputs(self, batch: Any) -> Sequence[torch.Tensor]:
        return (batch[0],)

    def targets(self, batch: Any) -> torch.Tensor:
        return batch[1]

    def loss(self, output: torch.Tensor, batch: Any) -> torch.Tensor:
        return F.cross_entropy(output, self.targets(batch))
