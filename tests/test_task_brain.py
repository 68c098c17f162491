"""The brain-tumour task: offline MNI152 grey/white-matter slabs, MONAI's 3D UNet, and the
Task01_BrainTumour loader on a tiny Decathlon-layout folder of NIfTI files written here. No network:
conftest forbids sockets; DENDROBENCH_CACHE is a fresh folder, so nilearn's bundled files are read."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from dendrobench.baselines.unet3d import TINY_UNET, build_unet3d
from dendrobench.tasks import brain_tumour as mod
from dendrobench.tasks.brain_tumour import BrainTumourTask
from tasktools import fit_batch

from dendrobench.contract.registry import get_task
from dendrobench.errors import DataUnavailableError
from dendrobench.running.cost import count_params

CPU = torch.device("cpu")


@pytest.fixture(autouse=True)
def offline_cache(private_cache):
    """Every test here: a private cache folder, downloads forbidden."""


@pytest.fixture(scope="module")
def mni(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    mp.setenv("DENDROBENCH_CACHE", str(tmp_path_factory.mktemp("mni-cache")))
    try:
        task = BrainTumourTask(budget="smoke")
        return task, task.load_data("offline", 0)
    finally:
        mp.undo()


def test_registered_and_described():
    task = get_task("brain-tumour")
    assert isinstance(task, BrainTumourTask)
    assert task.metric == "mean_dice" and task.modality == "3d-volume"
    assert set(task.budgets) == {"smoke", "quick", "standard", "converged", "full"}
    assert task.evaluator.error(0.8) == pytest.approx(0.2)


# -- offline data ---------------------------------------------------------------------------------
def test_offline_mni152_data(mni):
    task, data = mni
    assert data.dataset == "mni152-gm-wm" and data.source == "offline"
    x, y = data.train[0]
    assert x.shape == y.shape == (1, 16, 16, 16) and x.dtype == torch.float32
    assert set(torch.unique(y).tolist()) <= {0.0, 1.0, 2.0}
    assert len(data.val) == len(data.test) == 4
    vx, vy = data.val[0]
    assert vx.shape == vy.shape == (1, 40, 16, 40)
    for part in (data.val, data.test):  # every held-out split holds both tissues
        assert set(torch.unique(part.labels).tolist()) == {0, 1, 2}
    gm, wm = data.info["voxels"]["test"][1:]
    assert gm > 5000 and wm > 5000


def test_offline_slabs_disjoint_and_deterministic(mni):
    _, data = mni
    slabs = [*mod.TRAIN_Y, mod.VAL_Y, mod.TEST_Y]
    covered = [set(range(a, b)) for a, b in slabs]
    assert sum(map(len, covered)) == len(set().union(*covered))  # no y index in two splits
    again = BrainTumourTask(budget="smoke").load_data("offline", 0)
    assert torch.equal(data.val.images, again.val.images) and torch.equal(data.test.labels, again.test.labels)
    for i in (0, 3, 5):  # random patches are a function of (seed, pass, index): indexing is deterministic
        assert torch.equal(data.train[i][0], again.train[i][0])
    assert not torch.equal(data.train[0][0], data.train[1][0])


def test_training_loader_same_per_seed_fresh_per_pass(mni):
    task, data = mni

    def first_batches(seed: int) -> list[torch.Tensor]:
        loader = task.dataloader(data.train, 2, True, torch.Generator().manual_seed(seed))
        return [next(iter(loader))[0] for _ in range(2)]  # two passes

    a, b, c = first_batches(0), first_batches(0), first_batches(1)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])  # every arm of a seed: the same patches
    assert not torch.equal(a[0], a[1])  # each pass draws fresh patches
    assert not torch.equal(a[0], c[0])


def test_offline_patches_without_monai_metadata_are_the_same_bits(mni, monkeypatch):
    """The training items are built with MONAI's metadata tracking off (issue 20: a quarter of the
    batch's cost); the patches must be exactly those built with it on, and tracking is left as it
    was found."""
    from monai.data import get_track_meta

    task, data = mni

    def passes(track: bool) -> list[list[torch.Tensor]]:
        monkeypatch.setattr(mod.TransformDataset, "track_meta", track)
        loader = task.dataloader(data.train, 3, True, torch.Generator().manual_seed(4))
        return [[t for batch in loader for t in batch] for _ in range(2)]

    with_meta, without = passes(True), passes(False)
    assert get_track_meta() is True
    for p, q in zip(with_meta, without):
        assert len(p) == len(q) > 0
        assert all(type(a) is type(b) is torch.Tensor and a.dtype == b.dtype and torch.equal(a, b) for a, b in zip(p, q))


def _generator_states(compose) -> list[tuple]:
    seen = {id(compose)}
    objs = [compose] + [o for t in compose.transforms for o in mod._randomizables(t, seen)]
    return [(type(o).__name__, o.R.get_state()[1].tobytes(), o.R.get_state()[2]) for o in objs]


@pytest.mark.parametrize("pipeline", ["offline", "decathlon-train", "decathlon-eval"])
def test_in_place_reseeding_is_monais_set_random_state(pipeline):
    """Re-seeding in place (issue 20: a third of a training item's cost) leaves every random
    transform's generator exactly where MONAI's ``set_random_state`` puts it, for each pipeline the
    task uses, on seeds the probes did not try."""
    def build():
        if pipeline == "offline":
            return mod.offline_train_transform((16, 12, 16))
        return mod.decathlon_transforms(pipeline == "decathlon-train", (1.0, 1.0, 1.0), (16, 16, 16))

    ours, monai = build(), build()
    reseed = mod.InPlaceReseeder(ours)
    assert reseed.exact
    monai.set_random_state(seed=0)
    for seed in (1, 12345, 2**31 + 7, 4_000_000_000):
        reseed(seed)
        monai.set_random_state(seed=seed)
        assert _generator_states(ours) == _generator_states(monai)


def test_in_place_reseeding_gives_monais_patches(mni):
    """The training items themselves: the same bits as with MONAI's own re-seeding, over two passes."""
    _, data = mni
    train = data.train

    def items(exact: bool) -> list[torch.Tensor]:
        train._reseeder = mod.InPlaceReseeder(train.transform)
        train._reseeder.exact = train._reseeder.exact and exact
        out = []
        for epoch in (1, 2):
            train.epoch = epoch
            out += [t for i in range(len(train)) for t in train[i]]
        return out

    fast, slow = items(True), items(False)
    assert len(fast) == len(slow) > 0
    assert all(torch.equal(a, b) for a, b in zip(fast, slow))


def test_in_place_reseeding_falls_back_where_its_rule_fails():
    """A transform listed twice breaks the one-seed-per-child rule (MONAI's second seed wins): the
    reseeder notices on its probes and hands every call to MONAI."""
    from monai.transforms import Compose, RandFlipd

    flip = RandFlipd(["image"], prob=0.5)
    compose = Compose([flip, flip])
    reseed = mod.InPlaceReseeder(compose)
    assert not reseed.exact
    twin_flip = RandFlipd(["image"], prob=0.5)
    twin = Compose([twin_flip, twin_flip])
    reseed(99)
    twin.set_random_state(seed=99)
    assert _generator_states(compose) == _generator_states(twin)


# -- model --------------------------------------------------------------------------------------
def test_channels_last_3d_is_the_same_unet_in_ndhwc_order(mni):
    """The task's UNet and inputs are NDHWC (task version 2): the same initial weights as the plain
    UNet, outputs and gradients equal up to rounding."""
    task, data = mni
    torch.manual_seed(0)
    plain = build_unet3d(TINY_UNET, 1, 3)
    torch.manual_seed(0)
    nhwc = build_unet3d(TINY_UNET, 1, 3, channels_last=True)
    for (name, a), (_, b) in zip(plain.named_parameters(), nhwc.named_parameters()):
        assert torch.equal(a, b), name
        if b.dim() == 5:
            assert b.is_contiguous(memory_format=torch.channels_last_3d), name
    assert any(p.dim() == 5 and p.shape[-1] > 1 and not p.is_contiguous(memory_format=torch.channels_last_3d)
               for p in plain.parameters())
    x = torch.randn(2, 1, 16, 16, 16)
    out_a, out_b = plain(x), nhwc(x.contiguous(memory_format=torch.channels_last_3d))
    assert torch.allclose(out_a, out_b, atol=1e-4, rtol=1e-4)
    out_a.square().sum().backward()
    out_b.square().sum().backward()
    # the whole gradient, not each tensor: a bias's gradient sums thousands of voxels that nearly
    # cancel, so its few float32 roundings are large against it and small against the gradient
    ga = torch.cat([p.grad.flatten() for p in plain.parameters()])
    gb = torch.cat([p.grad.flatten() for p in nhwc.parameters()])
    assert (ga - gb).norm() <= 1e-4 * ga.norm()
    model = task.build_model(data)
    assert all(p.is_contiguous(memory_format=torch.channels_last_3d) for p in model.parameters() if p.dim() == 5)
    batch = next(iter(task.dataloader(data.train, 2, True, torch.Generator().manual_seed(0))))
    (inp,) = task.inputs(batch)
    assert inp.is_contiguous(memory_format=torch.channels_last_3d) and torch.equal(inp, batch[0])


def test_model_shapes_and_width(mni):
    task, data = mni
    model = task.build_model(data)
    batch = next(iter(task.dataloader(data.val, 2, False, None)))
    assert model(*task.inputs(batch)).shape == (2, 3, 40, 16, 40)
    assert count_params(task.build_model(data, 1.5)) > count_params(model) > count_params(task.build_model(data, 0.5))
    assert count_params(build_unet3d(TINY_UNET, 1, 3, 0.01)) > 0  # every level keeps at least one channel
    assert any(isinstance(m, torch.nn.Conv3d) for m in model.modules())


def test_training_reduces_loss_and_evaluates(mni):
    task, data = mni
    torch.manual_seed(0)
    model = task.build_model(data)
    batch = next(iter(task.dataloader(data.train, 2, True, torch.Generator().manual_seed(0))))
    losses = fit_batch(task, model, batch, steps=8, lr=1e-2)
    assert losses[-1] < losses[0]
    scores = task.evaluate(model, task.dataloader(data.val, 4, False, None), CPU)
    assert set(scores) == {"mean_dice", "dice_0", "dice_1"}
    assert 0.0 <= scores["mean_dice"] <= 1.0


# -- online: MSD Task01_BrainTumour ----------------------------------------------------------------
def write_decathlon(root, cases: int = 3, shape=(16, 16, 12)) -> None:
    """A tiny Task01_BrainTumour: dataset.json, imagesTr (4-channel, channel last as in MSD) and
    labelsTr (MSD's values: 1 oedema around a core of 3 with 2 inside, read as the MONAI tutorial does:
    TC = 2|3, WT = 1|2|3, ET = 2)."""
    import nibabel as nib

    folder = root / mod.DECATHLON_TASK
    (folder / "imagesTr").mkdir(parents=True)
    (folder / "labelsTr").mkdir()
    rng = np.random.default_rng(0)
    training = []
    for i in range(cases):
        image = rng.normal(size=(*shape, 4)).astype(np.float32) + 2.0
        label = np.zeros(shape, dtype=np.uint8)
        label[4:12, 4:12, 3:9] = 1
        label[6:10, 6:10, 4:8] = 3
        label[7:9, 7:9, 5:7] = 2
        name = f"BRATS_{i + 1:03d}.nii.gz"
        nib.save(nib.Nifti1Image(image, np.eye(4)), folder / "imagesTr" / name)
        nib.save(nib.Nifti1Image(label, np.eye(4)), folder / "labelsTr" / name)
        training.append({"image": f"./imagesTr/{name}", "label": f"./labelsTr/{name}"})
    manifest = {"name": "BRATS", "description": "fixture", "reference": "test", "licence": "CC-BY-SA 4.0",
                "tensorImageSize": "4D", "modality": {"0": "FLAIR", "1": "T1w", "2": "t1gd", "3": "T2w"},
                "labels": {"0": "background", "1": "edema", "2": "non-enhancing tumor", "3": "enhancing tumour"},
                "numTraining": cases, "numTest": 0, "training": training, "test": []}
    (folder / "dataset.json").write_text(json.dumps(manifest))


def test_online_decathlon_fixture(tmp_path):
    write_decathlon(tmp_path)
    task = BrainTumourTask(budget="smoke")
    task.setup.update(pixdim=(1.0, 1.0, 1.0), roi=(16, 16, 8))
    data = task.load_data("online", 0, root=tmp_path)
    assert data.dataset == "msd-task01-braintumour" and data.source == "online"
    assert (len(data.train), len(data.val), len(data.test)) == (1, 1, 1)
    x, y = data.train[0]
    assert type(x) is torch.Tensor and x.shape == (4, 16, 16, 8) and y.shape == (3, 16, 16, 8)  # random ROI crop
    vx, vy = data.val[0]
    assert vx.shape == (4, 16, 16, 12) and vy.shape == (3, 16, 16, 12)  # whole volume
    assert set(torch.unique(vy).tolist()) == {0.0, 1.0}
    tc, wt, et = vy  # whole tumour = labels 1, 2, 3; tumour core = 2, 3; enhancing = 2
    assert (int(wt.sum()), int(tc.sum()), int(et.sum())) == (8 * 8 * 6, 4 * 4 * 4, 2 * 2 * 2)
    assert abs(float(vx[0][vx[0] != 0].mean())) < 0.2  # non-zero normalisation, channel-wise
    model = task.build_model(data)
    batch = next(iter(task.dataloader(data.train, 1, True, torch.Generator().manual_seed(0))))
    out = model(*task.inputs(batch))
    assert out.shape == (1, 3, 16, 16, 8) and torch.isfinite(task.loss(out, batch))
    scores = task.evaluate(model, task.dataloader(data.test, 1, False, None), CPU)  # sliding window (12 > 8)
    assert set(scores) == {"mean_dice", "dice_0", "dice_1", "dice_2"} and 0.0 <= scores["mean_dice"] <= 1.0


def test_online_missing_names_url_and_folder(tmp_path):
    with pytest.raises(DataUnavailableError) as err:
        BrainTumourTask(budget="smoke").load_data("online", 0, root=tmp_path)
    message = str(err.value)
    assert mod.DECATHLON_URL in message and str(tmp_path / "Task01_BrainTumour") in message


def test_online_missing_volume_is_named(tmp_path):
    write_decathlon(tmp_path)
    victim = tmp_path / mod.DECATHLON_TASK / "labelsTr" / "BRATS_002.nii.gz"
    victim.unlink()
    with pytest.raises(DataUnavailableError, match="BRATS_002.nii.gz"):
        BrainTumourTask(budget="smoke").load_data("online", 0, root=tmp_path)
