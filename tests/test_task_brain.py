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


def test_batched_patches_are_the_items_one_at_a_time(mni):
    """The training loader builds whole batches (task version 3); each row is bit for bit the item
    indexing gives, the loader follows a Subset's rows, and its seed comes from the generator."""
    task, data = mni
    train = data.train
    train.seed, train.epoch = 11, 2
    xb, yb = train.batch(list(range(8)))
    for i in range(8):
        x, y = train[i]
        assert torch.equal(x, xb[i]) and torch.equal(y, yb[i])
    draws = [train.draw(i) for i in range(8)]
    assert any(d.rotate is not None for d in draws) and any(d.rotate is None for d in draws)
    sub = torch.utils.data.Subset(torch.utils.data.Subset(train, [7, 6, 5, 4, 3]), [4, 0, 2])  # rows 3, 7, 5
    (x, y), = list(task.dataloader(sub, 3, False, None))
    assert (train.seed, train.epoch) == (11, 2)  # an unshuffled look leaves the training draws alone
    for k, row in enumerate((3, 7, 5)):
        assert torch.equal(x[k], train[row][0]) and torch.equal(y[k], train[row][1])
    shuffled = task.dataloader(sub, 3, True, torch.Generator().manual_seed(5))
    (x, _), = list(shuffled)
    assert (train.seed, train.epoch) == (5, 1)  # seeded by the generator, one pass drawn
    assert sorted(x.sum(dim=(1, 2, 3, 4)).tolist()) == sorted(train[r][0].sum().item() for r in (3, 7, 5))


def test_patch_affine_is_monais_affine():
    """The batched affine is MONAI's ``Affine`` with the same rotation and scale: the image to float
    rounding, the nearest-neighbour labels on all but ties."""
    from dendrobench.tasks.brain_patches import affine_theta
    from monai.transforms import Affine

    g = torch.Generator().manual_seed(0)
    size = (20, 12, 16)  # anisotropic, as the task's 32 x 24 x 32
    smooth = torch.nn.functional.avg_pool3d(torch.randn(1, 1, 28, 20, 24, generator=g), 5, 1, 2)
    img = smooth[0, :, 4:24, 4:16, 4:20].contiguous()
    lab = (img > 0).float() + (img > 0.1).float()
    rng = np.random.default_rng(1)
    for _ in range(4):
        rot, sc = rng.uniform(-0.1, 0.1, 3).tolist(), (1 + rng.uniform(-0.1, 0.1, 3)).tolist()
        grid = torch.nn.functional.affine_grid(affine_theta(rot, sc, size)[None], [1, 1, *size], align_corners=False)
        ours = torch.nn.functional.grid_sample(img[None], grid, mode="bilinear", padding_mode="zeros",
                                               align_corners=False)[0]
        ours_lab = torch.nn.functional.grid_sample(lab[None], grid, mode="nearest", padding_mode="zeros",
                                                   align_corners=False)[0]
        ref = torch.as_tensor(Affine(rotate_params=rot, scale_params=sc, mode="bilinear", padding_mode="zeros",
                                     image_only=True)(img))
        ref_lab = torch.as_tensor(Affine(rotate_params=rot, scale_params=sc, mode="nearest", padding_mode="zeros",
                                         image_only=True)(lab))
        assert (ours - ref).abs().max() < 1e-5 * img.abs().max() + 1e-6
        assert (ours_lab == ref_lab).float().mean() > 0.995
        assert not torch.allclose(ours, img, atol=1e-3)  # the check is not of an identity


def test_patch_draws_have_version_2s_distributions(mni):
    """Crops anywhere in the slab, flip and affine each with probability 1/2, rotations within
    +-0.1 rad, scales and intensity factors within 1 +- 0.1, offsets within +-0.1; and an item
    without an affine is its crop, mirrored when flipped, scaled and shifted."""
    _, data = mni
    train = data.train
    train.seed, train.epoch = 3, 1
    draws = [train.draw(i) for i in range(4000)]
    n = len(draws)
    for rate in (sum(d.flip for d in draws) / n, sum(d.rotate is not None for d in draws) / n):
        assert abs(rate - 0.5) < 0.04  # 5 standard errors
    moved = [d for d in draws if d.rotate is not None]
    assert all(abs(a) <= 0.1 for d in moved for a in d.rotate) and all(abs(s - 1) <= 0.1 for d in moved for s in d.scale)
    assert all(abs(d.factor) <= 0.1 and abs(d.offset) <= 0.1 for d in draws)
    assert max(abs(d.factor) for d in draws) > 0.09
    for record in (0, 1):
        shape = train.records[record][0].shape[1:]
        ends = [(n_ - p) for n_, p in zip(shape, train.patch)]
        origins = [d.origin for d in draws if d.record == record]
        for axis, end in enumerate(ends):
            assert {o[axis] for o in origins} == set(range(end + 1))
    i = next(k for k, d in enumerate(draws) if d.rotate is None and d.flip)
    d = draws[i]
    img, _ = train.records[d.record]
    (ox, oy, oz), (px, py, pz) = d.origin, train.patch
    crop = img[:, ox:ox + px, oy:oy + py, oz:oz + pz].flip(1)
    assert torch.allclose(train[i][0], crop * (1 + d.factor) + d.offset, atol=1e-6)


def _generator_states(compose) -> list[tuple]:
    seen = {id(compose)}
    objs = [compose] + [o for t in compose.transforms for o in mod._randomizables(t, seen)]
    return [(type(o).__name__, o.R.get_state()[1].tobytes(), o.R.get_state()[2]) for o in objs]


@pytest.mark.parametrize("pipeline", ["decathlon-train", "decathlon-eval"])
def test_in_place_reseeding_is_monais_set_random_state(pipeline):
    """Re-seeding in place (issue 20: a third of a training item's cost) leaves every random
    transform's generator exactly where MONAI's ``set_random_state`` puts it, for each pipeline the
    task uses, on seeds the probes did not try."""
    def build():
        return mod.decathlon_transforms(pipeline == "decathlon-train", (1.0, 1.0, 1.0), (16, 16, 16))

    ours, monai = build(), build()
    reseed = mod.InPlaceReseeder(ours)
    assert reseed.exact
    monai.set_random_state(seed=0)
    for seed in (1, 12345, 2**31 + 7, 4_000_000_000):
        reseed(seed)
        monai.set_random_state(seed=seed)
        assert _generator_states(ours) == _generator_states(monai)


def test_in_place_reseeding_gives_monais_patches(tmp_path):
    """The training items themselves (the Decathlon pipeline on the NIfTI fixture): the same bits as
    with MONAI's own re-seeding, over two passes."""
    write_decathlon(tmp_path)
    task = BrainTumourTask(budget="smoke")
    task.setup.update(pixdim=(1.0, 1.0, 1.0), roi=(8, 8, 8))
    train = task.load_data("online", 0, root=tmp_path).train

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
    assert not torch.equal(fast[0], fast[2])  # the two passes drew different crops and flips


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
