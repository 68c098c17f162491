"""The cifar10 task: offline digits, the model, and the CIFAR-10 loader on a fixture in the real
pickled batch format (no network: conftest forbids sockets, DENDROBENCH_OFFLINE is set here)."""

from __future__ import annotations

import hashlib
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from dendrobench.baselines.resnet import RESNET18_CIFAR, build_resnet, torchvision_resnet18_cifar
from dendrobench.tasks import cifar10 as mod
from dendrobench.tasks.cifar10 import Cifar10Task
from tasktools import fit_batch, shared_data, unzipped

from dendrobench.contract.registry import get_task
from dendrobench.errors import DataUnavailableError
from dendrobench.running.cost import count_params


@pytest.fixture(autouse=True)
def offline_cache(private_cache):
    """Every test here: a private cache folder, downloads forbidden."""


@pytest.fixture(scope="module")
def digits():
    return Cifar10Task().load_data("offline", 0)


def labels(ds) -> list[int]:
    return ds.labels.tolist()


# -- offline data ---------------------------------------------------------------------------------
def test_registered_and_described():
    task = get_task("cifar10")
    assert isinstance(task, Cifar10Task)
    assert task.metric == "accuracy" and task.modality == "image"
    assert set(task.budgets) == {"smoke", "quick", "standard", "full"}


def test_offline_digits_splits(digits):
    assert digits.dataset == "sklearn-digits" and digits.source == "offline"
    sizes = (len(digits.train), len(digits.val), len(digits.test))
    assert sum(sizes) == 1797 and sizes == (1079, 359, 359)
    x, y = digits.train[0]
    assert x.shape == (1, 8, 8) and x.dtype == torch.float32 and 0 <= int(y) < 10
    # every class in every split (stratified), and standardised training images
    for part in (digits.train, digits.val, digits.test):
        assert set(labels(part)) == set(range(10))
    train_x = torch.stack([digits.train[i][0] for i in range(len(digits.train))])
    assert abs(float(train_x.mean())) < 1e-3 and abs(float(train_x.std()) - 1) < 1e-2


def test_offline_split_deterministic_and_disjoint(digits):
    again = Cifar10Task().load_data("offline", 1)  # another seed: the same fixed split

    def rows(ds) -> set[bytes]:
        return {ds.images[i].numpy().tobytes() + bytes([int(ds.labels[i])]) for i in range(len(ds))}

    for a, b in ((digits.train, again.train), (digits.val, again.val), (digits.test, again.test)):
        assert torch.equal(a.images, b.images) and torch.equal(a.labels, b.labels)
    train, val, test = rows(digits.train), rows(digits.val), rows(digits.test)
    # digits holds a few exact duplicate images; the index split is disjoint, so overlaps are rare
    assert len(train & test) <= 3 and len(train & val) <= 3 and len(val & test) <= 3


# -- model --------------------------------------------------------------------------------------
def test_model_shapes_and_width(digits):
    task = Cifar10Task()
    model = task.build_model(digits)
    batch = next(iter(task.dataloader(digits.val, 16, False, None)))
    assert model(*task.inputs(batch)).shape == (16, 10)
    assert count_params(task.build_model(digits, 1.5)) > count_params(model) > count_params(task.build_model(digits, 0.5))
    assert count_params(task.build_model(digits, 0.001)) > 0  # min 1 channel


def test_resnet18_layout_matches_torchvision():
    ours = build_resnet(RESNET18_CIFAR, 3, 10)
    assert count_params(ours) == count_params(torchvision_resnet18_cifar(10)) == 11_173_962
    task = Cifar10Task()
    task.configure("full")
    assert task.model_config == RESNET18_CIFAR


def test_channels_last_is_the_same_network_in_nhwc_order():
    """The task's ResNet runs in channels_last order (task version 2): the same initial weights,
    the same outputs and gradients up to rounding, NHWC weights and activations; and the gd engine's
    dendrites train on it."""
    from dendrobench.baselines.resnet import SMALL_RESNET

    torch.manual_seed(0)
    plain = build_resnet(SMALL_RESNET, 3, 10)
    torch.manual_seed(0)
    nhwc = build_resnet(SMALL_RESNET, 3, 10, channels_last=True)
    assert Cifar10Task().build_model(mod.TaskData(None, None, None, "x", "offline", {}, {"in_channels": 3, "num_classes": 10})).channels_last
    for (name, a), (_, b) in zip(plain.named_parameters(), nhwc.named_parameters()):
        assert torch.equal(a, b), name
        if b.dim() == 4:
            assert b.is_contiguous(memory_format=torch.channels_last), name
            if b.shape[-1] > 1:  # a 1x1 kernel is contiguous in both orders
                assert not a.is_contiguous(memory_format=torch.channels_last), name
    x = torch.randn(8, 3, 32, 32)
    out_a, out_b = plain(x), nhwc(x)
    assert torch.allclose(out_a, out_b, atol=1e-4, rtol=1e-4)
    out_a.square().sum().backward()
    out_b.square().sum().backward()
    for (name, a), (_, b) in zip(plain.named_parameters(), nhwc.named_parameters()):
        assert torch.allclose(a.grad, b.grad, atol=1e-3, rtol=1e-3), name
    feats = nhwc.layers(nhwc.relu(nhwc.bn1(nhwc.conv1(x.contiguous(memory_format=torch.channels_last)))))
    assert feats.is_contiguous(memory_format=torch.channels_last)

    from dendrobench.contract.engine import EngineContext
    from dendrobench.dendrites.gd import GradientDendrites

    engine = GradientDendrites({"max_dendrites": 1})
    ctx = EngineContext(epochs=2, steps_per_epoch=1, higher_is_better=True, seed=0, device=torch.device("cpu"),
                        workdir=None)  # type: ignore[arg-type]
    model = engine.wrap(nhwc, ctx)
    engine.add_dendrites(model, seed=1)
    model(x).sum().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters() if p.requires_grad)


def test_a_few_steps_reduce_the_loss(digits):
    task = Cifar10Task()
    torch.manual_seed(0)
    model = task.build_model(digits)
    batch = next(iter(task.dataloader(digits.train, 128, True, torch.Generator().manual_seed(0))))
    first = fit_batch(task, model, batch, steps=15, lr=2e-3)[0]
    assert task.loss(model(*task.inputs(batch)), batch).item() < 0.5 * first
    scores = task.evaluate(model, task.dataloader(digits.val, 256, False, None), torch.device("cpu"))
    assert set(scores) == {"accuracy"} and 0 <= scores["accuracy"] <= 1


# -- online loader on a fixture in CIFAR-10's real file format ----------------------------------
ROWS_PER_BATCH = 20  # 100 training images, 20 test images


def write_cifar_fixture(root: Path, rows: int = ROWS_PER_BATCH) -> dict[str, str]:
    """A ``cifar-10-batches-py`` folder of real-format pickles (latin1-readable dicts with
    ``data`` (N, 3072) uint8 and ``labels``); returns each file's MD5."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    for k, name in enumerate(names):
        entry = {"batch_label": f"fixture {k}", "labels": [int(i % 10) for i in range(k, k + rows)],
                 "data": rng.integers(0, 256, (rows, 3072), dtype=np.uint8),
                 "filenames": [f"img_{k}_{i}.png" for i in range(rows)]}
        (folder / name).write_bytes(pickle.dumps(entry, protocol=2))
    meta = {"label_names": ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
                            "truck"], "num_cases_per_batch": rows, "num_vis": 3072}
    (folder / "batches.meta").write_bytes(pickle.dumps(meta, protocol=2))
    return {p.name: hashlib.md5(p.read_bytes()).hexdigest() for p in folder.iterdir()}


@pytest.fixture
def cifar_fixture(tmp_path, monkeypatch):
    """The fixture folder, with torchvision's expected MD5s pointed at its files so the real
    ``torchvision.datasets.CIFAR10`` integrity check and reader run unchanged."""
    from torchvision.datasets import CIFAR10

    root = tmp_path / "cifar"
    md5 = write_cifar_fixture(root)
    monkeypatch.setattr(CIFAR10, "train_list", [[n, md5[n]] for n, _ in CIFAR10.train_list])
    monkeypatch.setattr(CIFAR10, "test_list", [["test_batch", md5["test_batch"]]])
    monkeypatch.setattr(CIFAR10, "meta", {**CIFAR10.meta, "md5": md5["batches.meta"]})
    return root


def test_online_cifar10_from_fixture(cifar_fixture):
    data = Cifar10Task().load_data("online", 0, root=cifar_fixture)
    assert data.dataset == "cifar10" and data.source == "online"
    assert (len(data.train), len(data.val), len(data.test)) == (50, 50, 20)  # val capped at half of train
    x, y = data.test[0]
    assert x.shape == (3, 32, 32) and x.dtype == torch.float32
    # the first test image, read back through the task, matches the pickled bytes (NCHW order)
    raw = pickle.loads((cifar_fixture / "cifar-10-batches-py" / "test_batch").read_bytes())
    expected = torch.from_numpy(raw["data"][0].reshape(3, 32, 32)).float()
    assert torch.allclose(x * data.test.std + data.test.mean, expected, atol=1e-3)
    assert int(y) == raw["labels"][0]
    again = Cifar10Task().load_data("online", 3, root=cifar_fixture)
    assert torch.equal(again.val.images, data.val.images)  # fixed split
    task = Cifar10Task()
    model = task.build_model(data)
    batch = next(iter(task.dataloader(data.train, 8, True, torch.Generator().manual_seed(0))))
    assert model(*task.inputs(batch)).shape == (8, 10)


def test_augmentation_is_seeded_per_loader(cifar_fixture):
    data = Cifar10Task().load_data("online", 0, root=cifar_fixture)
    task = Cifar10Task()

    def first_batch(seed: int) -> torch.Tensor:
        return next(iter(task.dataloader(data.train, 16, True, torch.Generator().manual_seed(seed))))[0]

    a, b, c = first_batch(0), first_batch(0), first_batch(1)
    assert torch.equal(a, b) and not torch.equal(a, c)
    plain = torch.stack([data.train[i][0] for i in range(len(data.train))])
    assert not any(torch.equal(a[0], p) for p in plain)  # crops / flips change the images
    val = next(iter(task.dataloader(data.val, 16, False, None)))[0]
    assert torch.equal(val[0], data.val[0][0])  # evaluation batches are not augmented


def test_missing_cifar10_names_url_and_folder(tmp_path):
    root = tmp_path / "nothing-here"
    with pytest.raises(DataUnavailableError) as err:
        Cifar10Task().load_data("online", 0, root=root)
    msg = str(err.value)
    assert "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz" in msg
    assert str(root) in msg and "cifar-10-batches-py" in msg


def test_default_root_follows_dendrobench_cache(tmp_path):
    with pytest.raises(DataUnavailableError, match=str(tmp_path / "cache" / "cifar10")):
        Cifar10Task().load_data("online", 0)


def test_download_failure_is_fast_and_clear(tmp_path, monkeypatch):
    """With downloads allowed but no network, the error comes at once and names the URL."""
    monkeypatch.delenv("DENDROBENCH_OFFLINE")

    def refuse(url, dest, timeout=mod.DOWNLOAD_TIMEOUT_S):
        raise OSError("network unreachable")

    monkeypatch.setattr(mod.downloads, "download", refuse)
    with pytest.raises(DataUnavailableError, match="downloading .*cifar-10-python.tar.gz failed"):
        Cifar10Task().load_data("online", 0, root=tmp_path / "c")


def test_corrupt_batch_file_is_named(cifar_fixture):
    bad = cifar_fixture / "cifar-10-batches-py" / "data_batch_3"
    bad.write_bytes(bad.read_bytes()[:1000])  # a partial file
    with pytest.raises(DataUnavailableError, match="data_batch_3.*corrupt or partial"):
        Cifar10Task().load_data("online", 0, root=cifar_fixture)


def test_partial_folder_names_missing_files(cifar_fixture):
    (cifar_fixture / "cifar-10-batches-py" / "test_batch").unlink()
    with pytest.raises(DataUnavailableError, match="missing: test_batch"):
        Cifar10Task().load_data("online", 0, root=cifar_fixture)


# -- issue 10: an image folder in data.root (torchvision ImageFolder) ----------------------------
def write_image_folder(root: Path, suffix: str, per_class: tuple[int, int] = (12, 3)) -> np.ndarray:
    """``train/<class>/NNNN<suffix>`` and ``test/<class>/...``: the layout of the shared JPEG copy.
    Returns the test images as written (N, 32, 32, 3), in ImageFolder's order."""
    from dendrobench.tasks.cifar10 import CIFAR10_CLASSES
    from PIL import Image

    rng = np.random.default_rng(0)
    written = []
    for split, n in zip(("train", "test"), per_class):
        for c, name in enumerate(CIFAR10_CLASSES):
            folder = root / split / name
            folder.mkdir(parents=True)
            for i in range(n):
                pixels = np.clip(rng.normal(25 * c, 30, (32, 32, 3)), 0, 255).astype(np.uint8)
                Image.fromarray(pixels).save(folder / f"{i:04d}{suffix}")
                if split == "test":
                    written.append(pixels)
    return np.stack(written)


@pytest.mark.parametrize("suffix, dataset", [(".jpg", "cifar10-jpeg"), (".png", "cifar10-imagefolder")])
def test_image_folder_in_data_root(tmp_path, suffix, dataset):
    pixels = write_image_folder(tmp_path / "imgs", suffix)
    data = Cifar10Task().load_data("online", 0, root=tmp_path / "imgs")
    assert data.dataset == dataset and data.source == "online"
    assert data.info["split_sizes"] == {"train": 60, "val": 60, "test": 30}  # val: half of train at most
    assert labels(data.test) == [c for c in range(10) for _ in range(3)]
    assert sorted(labels(data.val)) == [c for c in range(10) for _ in range(6)]  # stratified
    if suffix == ".png":  # lossless: exactly the pixels written
        assert torch.equal(data.test.images, torch.from_numpy(pixels).permute(0, 3, 1, 2))
    else:  # JPEG: close, not equal -- why it is its own dataset
        diff = (data.test.images.float() - torch.from_numpy(pixels).permute(0, 3, 1, 2).float()).abs().mean()
        assert 0 < diff < 40
    again = Cifar10Task().load_data("online", 0, root=tmp_path / "imgs")  # from the decoded cache
    assert torch.equal(again.train.images, data.train.images) and again.dataset == dataset


def test_image_folder_with_wrong_classes_or_sizes(tmp_path):
    from PIL import Image

    write_image_folder(tmp_path / "a", ".png", per_class=(2, 1))
    (tmp_path / "a" / "test" / "truck").rename(tmp_path / "a" / "test" / "lorry")
    with pytest.raises(DataUnavailableError, match="ten CIFAR-10 class folders"):
        Cifar10Task().load_data("online", 0, root=tmp_path / "a")
    write_image_folder(tmp_path / "b", ".png", per_class=(2, 1))
    Image.new("RGB", (64, 64)).save(tmp_path / "b" / "train" / "cat" / "big.png")
    with pytest.raises(DataUnavailableError, match="64x64, not CIFAR-10's 32x32"):
        Cifar10Task().load_data("online", 0, root=tmp_path / "b")


def test_resnet_options():
    from dendrobench.contract.options import parse_options
    from dendrobench.errors import ConfigError

    task = Cifar10Task()
    task.configure("quick")
    task.set_options(parse_options(task, {"stem": 8, "widths": [8, 16], "blocks": [2, 2]}))
    assert (task.model_config.stem, task.model_config.widths, task.model_config.blocks) == (8, (8, 16), (2, 2))
    with pytest.raises(ConfigError, match="one entry per stage"):
        parse_options(task, {"widths": [8, 16], "blocks": [1]})
    other = Cifar10Task()
    other.configure("quick")
    with pytest.raises(ConfigError, match="must be non-empty and equally long"):
        other.set_options(parse_options(other, {"widths": [8, 16]}))  # the budget's ResNet has 3 stages


@pytest.mark.slow
def test_real_cifar10_jpeg_counts(tmp_path_factory):
    root = unzipped(shared_data("cifar10-jpeg.zip"), tmp_path_factory.mktemp("cifar10-jpeg"))
    data = Cifar10Task().load_data("online", 0, root=root)
    assert data.dataset == "cifar10-jpeg"
    assert data.info["split_sizes"] == {"train": 45_000, "val": 5_000, "test": 10_000}
    assert sorted(labels(data.test)) == [c for c in range(10) for _ in range(1000)]


def _per_image_loader(dataset, batch_size, shuffle, generator, augment_seed=None):
    """The loader the published cifar10 records were trained with: PyTorch's DataLoader, one
    ``__getitem__`` per image, augmentation in the collate function."""
    from dendrobench.tasks.cifar10 import AugmentCollate, _root_dataset
    from torch.utils.data import DataLoader

    if augment_seed is None:
        return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, generator=generator)
    base = _root_dataset(dataset)
    collate = AugmentCollate(4, True, base.fill, torch.Generator().manual_seed(augment_seed))
    return DataLoader(dataset, batch_size=batch_size, shuffle=True, generator=generator, collate_fn=collate)


@pytest.mark.parametrize("n,bs", [(50, 16), (48, 16), (7, 64)])
@pytest.mark.parametrize("subset", [False, True])
def test_whole_batch_images_are_the_per_image_loaders_batches(n, bs, subset):
    """ImageBatches against PyTorch's DataLoader over the same ImageTensors (nested Subsets as the
    runner's max_train_examples makes them): the same batches bit for bit over three passes, labels
    and dtypes included, and the loader's and the augmentation's generators left in the same state."""
    from dendrobench.tasks.cifar10 import _cifar_part
    from torch.utils.data import Subset

    g = torch.Generator().manual_seed(n)
    images = torch.randint(0, 256, (n + 9, 32, 32, 3), dtype=torch.uint8, generator=g).numpy()
    train = _cifar_part(images, torch.randint(0, 10, (n + 9,), generator=g).numpy(), {"pad": 4, "flip": True})
    ds = Subset(Subset(train, list(range(n + 9))[::-1]), list(range(3, n + 3))) if subset else \
        Subset(train, list(range(n)))
    task = Cifar10Task()
    for shuffle, augmented in ((True, True), (False, False)):
        g_old, g_new = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
        new_loader = task.dataloader(ds, bs, shuffle, g_new)
        old_loader = _per_image_loader(ds, bs, shuffle, g_old, (5 + 0x5EED) if augmented else None)
        assert len(new_loader) == len(old_loader)
        for _ in range(3):
            old, new = list(old_loader), list(new_loader)
            assert len(old) == len(new)
            for (xo, yo), (xn, yn) in zip(old, new):
                assert xo.dtype == xn.dtype == torch.float32 and yo.dtype == yn.dtype == torch.int64
                assert torch.equal(xo, xn) and torch.equal(yo, yn)
        assert torch.equal(torch.rand(3, generator=g_old), torch.rand(3, generator=g_new))
        if augmented:
            assert torch.equal(torch.rand(3, generator=old_loader.collate_fn.generator),
                               torch.rand(3, generator=new_loader.augment.generator))
    # an evaluation loader without a generator draws its base seed from the global generator
    torch.manual_seed(1)
    old = [b[0] for b in _per_image_loader(ds, bs, False, None)]
    after = torch.rand(2)
    torch.manual_seed(1)
    assert all(torch.equal(a, b[0]) for a, b in zip(old, task.dataloader(ds, bs, False, None)))
    assert torch.equal(torch.rand(2), after)
