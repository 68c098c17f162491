"""The ``brain-tumour`` task: 3D segmentation with MONAI's UNet, mean Dice.

Data
  * ``offline`` (default): real MRI anatomy with no download. nilearn ships the MNI152 (2009) T1
    template and its grey- and white-matter probability maps inside the package
    (``load_mni152_template`` / ``load_mni152_gm_template`` / ``load_mni152_wm_template``, 2 mm,
    99 x 117 x 95 voxels). The label map is the argmax of (background = 1 - GM - WM clipped at 0,
    GM, WM), i.e. a voxel is grey or white matter where that tissue's probability beats both the other
    tissue and everything else. The task is background / grey / white matter segmentation (softmax,
    three classes, Dice over the two tissues). It stands in for BraTS in the same format (3D MRI
    volume in, voxel labels out, the same UNet), so records say ``dataset: mni152-gm-wm``.

    Splits are disjoint slabs along the anterior-posterior (y) axis of the brain's bounding box,
    because there is one brain: ``train`` = the posterior slab y in [10, 43) and the anterior slab
    y in [75, 108); ``val`` = y in [43, 59); ``test`` = y in [59, 75) (voxel indices, 2 mm). The
    held-out slabs are central (deep grey matter, ventricles and cortex alike), with training anatomy
    on both sides; no voxel is in two splits. x is cropped to [9, 89) and z to [0, 80).
    Validation and test are fixed: each slab is cut into 2 x 2 tiles of 40 x 16 x 40 voxels
    (4 samples per split). Training draws random patches (default 32 x 24 x 32) from the two
    training slabs, cut and augmented a whole batch at a time (:mod:`~dendrobench.tasks.brain_patches`,
    version 3): random crop, left-right flip, a small random affine (rotation up to ~6 degrees,
    scale +-10 %, MONAI's matrices) and random intensity scale / shift. Intensities are
    standardised with the mean / std of the training slabs' non-zero voxels. Splits do not depend on
    the seed (as in every built-in task); the seed changes patch sampling and initial weights.
    One "epoch" is ``steps_per_epoch`` patch batches (a validation interval).

  * ``online``: the Medical Segmentation Decathlon's Task01_BrainTumour (BraTS 2016/17, 484 labelled
    cases, 4 MRI channels FLAIR/T1w/T1gd/T2w) through ``monai.apps.DecathlonDataset(download=False)``
    in ``root`` (``data.root``; default ``$DENDROBENCH_CACHE/brain-tumour``, i.e.
    ``~/.cache/dendrobench/brain-tumour``), which must hold ``Task01_BrainTumour/``. Labels become the
    three overlapping tumour sub-regions of the MONAI BraTS tutorial (tumour core, whole tumour,
    enhancing tumour; :class:`MsdBratsToMultiChannel`, the tutorial's conversion for MSD's label
    numbering), sigmoid outputs, Dice over the three. Split: MONAI's own ``val_frac=0.2`` held-out part of the training cases (``seed=0``) is
    halved into validation and test (MSD's test cases have no labels). Preprocessing follows the
    tutorial (RAS orientation, resampling, per-channel non-zero normalisation; training: random
    crop, flips, intensity scale / shift); evaluation uses sliding-window inference over whole
    volumes. Missing data raises :class:`DataUnavailableError` naming the tar URL and the folder; the
    loader never downloads (the archive is 7 GB), so it never hangs.

Every random draw is seeded from the runner's loader generator, so all arms of one seed see the
same patches.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from dendrobench.baselines.unet3d import (
    MEDIUM_UNET,
    MONAI_TUTORIAL_UNET,
    SMALL_UNET,
    TINY_UNET,
    UNet3DConfig,
    build_unet3d,
)
from dendrobench.tasks.brain_patches import PatchBatches, SlabPatches
from torch import nn
from torch.utils.data import DataLoader, Dataset, Subset

from dendrobench.api import Budget, Task, TaskData, cache_dir, move_to
from dendrobench.errors import DataUnavailableError, UserError

DECATHLON_TASK = "Task01_BrainTumour"
DECATHLON_URL = "https://msd-for-monai.s3-us-west-2.amazonaws.com/Task01_BrainTumour.tar"

# Offline geometry (voxel indices in nilearn's 2 mm MNI152 grid, 99 x 117 x 95); see the docstring.
X_RANGE = (9, 89)
Z_RANGE = (0, 80)
TRAIN_Y = ((10, 43), (75, 108))
VAL_Y = (43, 59)
TEST_Y = (59, 75)
TILE_XZ = 40  # held-out slabs are cut into 2 x 2 tiles of 40 x 16 x 40
CLASSES = ("background", "grey_matter", "white_matter")


def default_root() -> Path:
    return cache_dir("brain-tumour")


# -- datasets -------------------------------------------------------------------------------------
class VolumeTensors(Dataset):
    """Fixed samples: images ``(N, C, X, Y, Z)`` float and labels ``(N, L, X, Y, Z)``."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor):
        if images.ndim != 5 or labels.ndim != 5 or images.shape[0] != labels.shape[0]:
            raise ValueError(f"expected (N, C, X, Y, Z) images and labels, got {tuple(images.shape)} / {tuple(labels.shape)}")
        self.images, self.labels = images.float(), labels

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.images[i], self.labels[i]


class SeededItems:
    """Per-item seeding of a dataset's MONAI random transforms.

    Item ``i`` in pass ``epoch`` draws its random crop / augmentation from a random state derived
    from ``(seed, epoch, i)`` only, so indexing the dataset is deterministic (two loads give the
    same items, whatever was drawn before) and each pass draws fresh patches.
    :class:`BrainTumourTask.dataloader` sets ``seed`` from the loader generator and bumps ``epoch``
    every time the training loader is iterated.
    """

    seed: int = 0
    epoch: int = 0
    transform: Any = None
    _reseeder: Any = None

    def reseed(self, i: int) -> None:
        if self.transform is not None and hasattr(self.transform, "set_random_state"):
            mixed = np.random.SeedSequence([int(self.seed) % 2**32, int(self.epoch), int(i)]).generate_state(1)[0]
            if self._reseeder is None or self._reseeder.compose is not self.transform:
                self._reseeder = InPlaceReseeder(self.transform)
            self._reseeder(int(mixed))


def _randomizables(obj: Any, seen: set[int]) -> list[Any]:
    """Every MONAI ``Randomizable`` reachable from ``obj`` through its attributes, lists and dicts."""
    from monai.transforms import Randomizable, Transform

    if id(obj) in seen:
        return []
    seen.add(id(obj))
    if isinstance(obj, (list, tuple)):
        return [r for o in obj for r in _randomizables(o, seen)]
    if isinstance(obj, dict):
        return [r for o in obj.values() for r in _randomizables(o, seen)]
    if not isinstance(obj, (Randomizable, Transform)):
        return []
    found = [obj] if isinstance(obj, Randomizable) else []
    return found + [r for o in vars(obj).values() for r in _randomizables(o, seen)]


class InPlaceReseeder:
    """``compose.set_random_state(seed=s)``, re-seeding the transforms' random states in place.

    Why: MONAI's ``set_random_state`` builds a new ``np.random.RandomState`` for every random
    transform and every transform it wraps (11 for the offline patches before task version 3;
    it now serves the Decathlon pipelines), about 0.1 ms each, so seeding each training item cost
    a third of building it (issue 20). ``RandomState.seed(s)``
    puts an existing generator in exactly the state ``RandomState(s)`` starts in, at about 2 us.
    The seeds are MONAI's: the Compose's own generator draws one per random child, and a child
    passes its seed to everything it wraps. The reseeder checks that on two probe seeds against
    MONAI's own call (every generator's state alike) and falls back to MONAI's call for a pipeline
    where it does not hold (``exact`` False); tests/test_task_brain.py compares the items too.
    """

    PROBES = (0, 2**32 - 1)

    def __init__(self, compose: Any):
        from monai.transforms import Compose, Randomizable

        self.compose = compose
        self.groups: list[list[Any]] = []
        self.exact = False
        if not isinstance(compose, Compose):
            return
        compose.set_random_state(seed=0)  # every transform gets a generator of its own (not the class's)
        seen = {id(compose)}
        self.groups = [_randomizables(t, seen) for t in compose.transforms if isinstance(t, Randomizable)]
        gens = [compose.R] + [o.R for g in self.groups for o in g]
        if len({id(r) for r in gens}) != len(gens):
            return
        self.exact = True
        for s in self.PROBES:
            self(s)
            ours = self._states()
            compose.set_random_state(seed=s)
            self.exact = self.exact and self._states() == ours
        compose.set_random_state(seed=0)

    def _states(self) -> list[Any]:
        def state(r: np.random.RandomState) -> tuple:
            name, keys, pos, has_gauss, gauss = r.get_state()
            return name, keys.tobytes(), pos, has_gauss, gauss

        return [state(self.compose.R)] + [state(o.R) for g in self.groups for o in g]

    def __call__(self, seed: int) -> None:
        from monai.utils import MAX_SEED

        if not self.exact:
            self.compose.set_random_state(seed=seed)
            return
        self.compose.R.seed(int(seed) % MAX_SEED)
        for group in self.groups:
            child = int(self.compose.R.randint(MAX_SEED, dtype="uint32"))
            for obj in group:
                obj.R.seed(child)


class DictToTuple(SeededItems, Dataset):
    """A MONAI dataset of dicts (e.g. ``DecathlonDataset``) seen as ``(image, label)`` plain tensors,
    its random transforms seeded per item (see :class:`SeededItems`)."""

    def __init__(self, base: Dataset, seed: int = 0):
        self.base = base
        self.transform = getattr(base, "transform", None)
        self.seed, self.epoch = int(seed), 0

    def __len__(self) -> int:
        return len(self.base)  # type: ignore[arg-type]

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        self.reseed(i)
        item = self.base[i]
        return as_plain(item["image"]), as_plain(item["label"])


class EpochLoader:
    """A DataLoader that bumps its dataset's pass counter each time it is iterated."""

    def __init__(self, loader: DataLoader, items: SeededItems):
        self.loader, self.items = loader, items

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self) -> Iterator[Any]:
        self.items.epoch += 1
        return iter(self.loader)


def as_plain(x: Any) -> torch.Tensor:
    """A plain ``torch.Tensor`` (MONAI's MetaTensor carries metadata that breaks export and FLOP counting)."""
    if hasattr(x, "as_tensor"):
        x = x.as_tensor()
    return torch.as_tensor(np.asarray(x) if not isinstance(x, torch.Tensor) else x)


def _root_dataset(ds: Dataset) -> Dataset:
    while isinstance(ds, Subset):
        ds = ds.dataset
    return ds


# -- offline: MNI152 grey / white matter ----------------------------------------------------------
def mni152_arrays() -> tuple[np.ndarray, np.ndarray]:
    """The 2 mm MNI152 T1 template and its label map (0 background, 1 GM, 2 WM), from nilearn's
    bundled files (no network). Cached as ``.npz`` under the dendrobench cache (nilearn resamples
    its 1 mm files on every call, ~2 s)."""
    import nilearn

    path = cache_dir("brain-tumour", f"mni152-gm-wm-2mm-nilearn{nilearn.__version__}.npz")
    if path.is_file():
        try:
            with np.load(path) as f:
                return f["t1"], f["label"]
        except Exception:  # noqa: BLE001 - a corrupt cache file is rebuilt below
            pass
    from nilearn import datasets as nd

    t1 = np.asarray(nd.load_mni152_template(resolution=2).get_fdata(), dtype=np.float32)
    gm = np.asarray(nd.load_mni152_gm_template(resolution=2).get_fdata(), dtype=np.float32)
    wm = np.asarray(nd.load_mni152_wm_template(resolution=2).get_fdata(), dtype=np.float32)
    bg = np.clip(1.0 - gm - wm, 0.0, 1.0)
    label = np.argmax(np.stack([bg, gm, wm]), axis=0).astype(np.uint8)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp.npz")
        np.savez_compressed(tmp, t1=t1, label=label)
        os.replace(tmp, path)
    except OSError:
        pass  # a read-only cache only costs time
    return t1, label


def load_mni152_data(patch: Sequence[int] = (32, 24, 32), train_items: int = 64, seed: int = 0) -> TaskData:
    """Offline background / grey / white-matter segmentation on the MNI152 template (see the
    module docstring for the slab split). ``train_items`` is the length of one pass over the
    training set (each item a fresh random patch)."""
    t1, label = mni152_arrays()
    x0, x1 = X_RANGE
    z0, z1 = Z_RANGE
    train_slabs = [(t1[x0:x1, a:b, z0:z1], label[x0:x1, a:b, z0:z1]) for a, b in TRAIN_Y]
    nonzero = np.concatenate([img[img > 0] for img, _ in train_slabs])
    mean, std = float(nonzero.mean()), float(nonzero.std())

    def norm(img: np.ndarray) -> np.ndarray:
        return ((img - mean) / std).astype(np.float32)

    records = [(torch.from_numpy(norm(img)[None]), torch.from_numpy(lab[None].astype(np.float32)))
               for img, lab in train_slabs]
    train = SlabPatches(records, patch, length=train_items, seed=seed)

    def tiles(y: tuple[int, int]) -> VolumeTensors:
        img = norm(t1[x0:x1, y[0]:y[1], z0:z1])
        lab = label[x0:x1, y[0]:y[1], z0:z1]
        ims, las = [], []
        for i in range(0, x1 - x0, TILE_XZ):
            for k in range(0, z1 - z0, TILE_XZ):
                ims.append(img[None, i:i + TILE_XZ, :, k:k + TILE_XZ])
                las.append(lab[None, i:i + TILE_XZ, :, k:k + TILE_XZ])
        return VolumeTensors(torch.from_numpy(np.stack(ims)), torch.from_numpy(np.stack(las).astype(np.int64)))

    val, test = tiles(VAL_Y), tiles(TEST_Y)

    def counts(lab: np.ndarray) -> list[int]:
        return np.bincount(lab.ravel(), minlength=3).tolist()

    info = {
        "split": "disjoint anterior-posterior slabs of the 2 mm MNI152 grid (seed-independent): train y "
                 f"{list(TRAIN_Y)}, val y {list(VAL_Y)}, test y {list(TEST_Y)}; x {list(X_RANGE)}, z {list(Z_RANGE)}",
        "labels": "argmax(1-GM-WM, GM, WM) of nilearn's MNI152 probability maps",
        "classes": list(CLASSES),
        "patch": list(patch), "train_items_per_pass": int(train_items),
        "eval_tiles": f"2 x 2 tiles of {TILE_XZ} x 16 x {TILE_XZ} per held-out slab",
        "voxels": {"train": [counts(lab) for _, lab in train_slabs], "val": counts(val.labels.numpy()),
                   "test": counts(test.labels.numpy())},
        "split_sizes": {"train": int(train_items), "val": len(val), "test": len(test)},
        "standardisation": {"mean": round(mean, 4), "std": round(std, 4), "from": "train slabs, non-zero voxels"},
    }
    meta = {"in_channels": 1, "out_channels": 3, "mode": "softmax", "roi": list(patch)}
    return TaskData(train=train, val=val, test=test, dataset="mni152-gm-wm", source="offline", info=info, meta=meta)


# -- online: MSD Task01_BrainTumour through DecathlonDataset --------------------------------------
def _how_to_get(root: Path) -> str:
    return (f"download {DECATHLON_URL} (7 GB), extract it so that {root / DECATHLON_TASK} holds dataset.json, "
            f"imagesTr/ and labelsTr/ (or pass data.root=DIR with DIR/{DECATHLON_TASK})")


class MsdBratsToMultiChannel:
    """MSD Task01 labels to the three overlapping BraTS sub-regions, as in the MONAI BraTS tutorial
    (``brats_segmentation_3d``): tumour core = labels 2 or 3, whole tumour = 1, 2 or 3, enhancing
    tumour = 2. (MONAI's built-in ``ConvertToMultiChannelBasedOnBratsClassesd`` expects the original
    BraTS values 1 / 2 / 4, which MSD renumbered to 1..3, so the tutorial defines its own; so do we.)
    """

    def __init__(self, key: str = "label"):
        self.key = key

    def __call__(self, data: dict[str, Any]) -> dict[str, Any]:
        d = dict(data)
        lab = torch.as_tensor(d[self.key])
        if lab.ndim == 4 and lab.shape[0] == 1:
            lab = lab[0]
        tc = (lab == 2) | (lab == 3)
        d[self.key] = torch.stack([tc, tc | (lab == 1), lab == 2]).float()
        return d


def decathlon_transforms(train: bool, pixdim: Sequence[float], roi: Sequence[int]) -> Any:
    """The MONAI BraTS tutorial's preprocessing, resampled to ``pixdim`` mm; training adds a random
    ``roi`` crop, flips on every axis and intensity scale / shift."""
    from monai.transforms import (
        Compose,
        EnsureChannelFirstd,
        EnsureTyped,
        LoadImaged,
        NormalizeIntensityd,
        Orientationd,
        RandFlipd,
        RandScaleIntensityd,
        RandShiftIntensityd,
        RandSpatialCropd,
        Spacingd,
        SpatialPadd,
    )

    keys = ["image", "label"]
    steps: list[Any] = [
        LoadImaged(keys, image_only=True),
        EnsureChannelFirstd("image"),
        EnsureTyped(keys),
        MsdBratsToMultiChannel("label"),
        Orientationd(keys, axcodes="RAS", labels=None),
        Spacingd(keys, pixdim=tuple(pixdim), mode=("bilinear", "nearest")),
        NormalizeIntensityd("image", nonzero=True, channel_wise=True),
    ]
    if train:
        steps += [
            SpatialPadd(keys, spatial_size=roi),
            RandSpatialCropd(keys, roi_size=roi, random_size=False),
            RandFlipd(keys, prob=0.5, spatial_axis=0),
            RandFlipd(keys, prob=0.5, spatial_axis=1),
            RandFlipd(keys, prob=0.5, spatial_axis=2),
            RandScaleIntensityd("image", factors=0.1, prob=1.0),
            RandShiftIntensityd("image", offsets=0.1, prob=1.0),
        ]
    steps.append(EnsureTyped(keys, track_meta=False))
    return Compose(steps)


def check_decathlon_folder(root: Path) -> int:
    """Number of labelled training cases in ``root/Task01_BrainTumour``; a clear error if absent,
    and a named file if dataset.json or a listed volume is missing or unreadable."""
    folder = root / DECATHLON_TASK
    manifest = folder / "dataset.json"
    if not manifest.is_file():
        raise DataUnavailableError(f"MSD {DECATHLON_TASK} is not in {folder} (no dataset.json); {_how_to_get(root)}")
    try:
        training = json.loads(manifest.read_text())["training"]
        files = [folder / item[key] for item in training for key in ("image", "label")]
    except Exception as exc:  # noqa: BLE001 - any malformed manifest is one actionable message
        raise DataUnavailableError(f"{manifest} is corrupt or not a Decathlon manifest ({type(exc).__name__}: {exc}); "
                                   f"{_how_to_get(root)}") from exc
    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        raise DataUnavailableError(f"{len(missing)} file(s) listed in {manifest} are missing, e.g. {missing[0]}; "
                                   f"{_how_to_get(root)}")
    if len(training) < 3:
        raise DataUnavailableError(f"{manifest} lists {len(training)} training case(s); at least 3 are needed "
                                   "for train / validation / test")
    return len(training)


def load_decathlon_data(root: Path | None = None, pixdim: Sequence[float] = (1.0, 1.0, 1.0),
                        roi: Sequence[int] = (224, 224, 144)) -> TaskData:
    """Task01_BrainTumour through ``monai.apps.DecathlonDataset`` (never downloads)."""
    from monai.apps import DecathlonDataset

    root = Path(root).expanduser() if root is not None else default_root()
    n = check_decathlon_folder(root)
    # MONAI's split: val_frac of the training cases held out (at least 2, one each for val and test).
    val_frac = max(0.2, 2.0 / n + 1e-9)
    common = {"root_dir": str(root), "task": DECATHLON_TASK, "download": False, "seed": 0, "val_frac": val_frac,
              "cache_rate": 0.0, "num_workers": 0, "progress": False}
    try:
        train = DecathlonDataset(section="training", transform=decathlon_transforms(True, pixdim, roi), **common)
        held = DecathlonDataset(section="validation", transform=decathlon_transforms(False, pixdim, roi), **common)
    except Exception as exc:  # noqa: BLE001
        raise DataUnavailableError(f"MONAI could not open {root / DECATHLON_TASK} ({type(exc).__name__}: {exc}); "
                                   f"{_how_to_get(root)}") from exc
    half = len(held) // 2
    val = Subset(DictToTuple(held), list(range(half)))
    test = Subset(DictToTuple(held), list(range(half, len(held))))
    info = {"split": f"MONAI DecathlonDataset val_frac={val_frac:.3f} seed=0 held-out cases, halved into val / test",
            "split_sizes": {"train": len(train), "val": len(val), "test": len(test)},
            "labels": "tumour core (2|3), whole tumour (1|2|3), enhancing tumour (2), as in the MONAI BraTS tutorial",
            "pixdim": list(pixdim), "roi": list(roi), "root": str(root)}
    meta = {"in_channels": 4, "out_channels": 3, "mode": "sigmoid", "roi": list(roi)}
    return TaskData(train=DictToTuple(train, seed=0), val=val, test=test, dataset="msd-task01-braintumour",
                    source="online", info=info, meta=meta)


# -- the task -------------------------------------------------------------------------------------
class BrainTumourTask(Task):
    """3D segmentation with MONAI's UNet: MNI152 tissues offline, BraTS tumour sub-regions online."""

    name = "brain-tumour"
    modality = "3d-volume"
    description = "3D MRI segmentation: MONAI 3D UNet, Dice+CE loss, mean Dice (MONAI DiceMetric)"
    metric = "mean_dice"
    # 2: the UNet's weights and inputs in channels_last_3d memory order (about 1.7x faster training
    # steps on CPU; the sums round differently, so results are not bit for bit version 1's)
    # 3: offline training patches cut and augmented a whole batch at a time (brain_patches: the same
    # augmentation and distributions as MONAI's per-item transforms, other random streams)
    version = "3"
    datasets = {
        "offline": "nilearn's bundled MNI152 T1 template with grey/white-matter maps: background/GM/WM "
                   "segmentation on disjoint slabs (records say dataset=mni152-gm-wm)",
        "online": "MSD Task01_BrainTumour (484 4-channel MRI cases, TC/WT/ET) via monai.apps.DecathlonDataset, "
                  "in $DENDROBENCH_CACHE/brain-tumour/Task01_BrainTumour",
    }
    budgets = {
        # seconds: tiny UNet (38 k), 16^3 patches, 6 steps
        "smoke": Budget(epochs=2, batch_size=2, lr=3e-3, steps_per_epoch=3, eval_batch_size=4),
        # well under a minute per arm on 2 CPU cores (offline): small UNet (151 k), 32x24x32 patches,
        # 200 steps (~0.1 s each uncontended)
        "quick": Budget(epochs=8, batch_size=4, lr=3e-3, steps_per_epoch=25, optimizer="adamw",
                        weight_decay=1e-5, schedule="cosine", eval_batch_size=4),
        # a paper-like CPU run: a 1.2 M-parameter UNet (two residual units), 1,000 steps of batch 4
        "standard": Budget(epochs=20, batch_size=4, lr=2e-3, steps_per_epoch=50, optimizer="adamw",
                           weight_decay=1e-5, schedule="cosine", eval_batch_size=4),
        # the MONAI BraTS tutorial's setup: batch 1, 224x224x144 random crops at 1 mm, Adam 1e-4,
        # weight decay 1e-5, cosine, 300 epochs over the 388 training cases; the tutorials' UNet.
        "full": Budget(epochs=300, batch_size=1, lr=1e-4, weight_decay=1e-5, schedule="cosine", eval_batch_size=1),
        # quick's UNet and patches until Dice has plateaued: 800 steps (~80 s per baseline arm on one
        # core). Chosen from 3 baseline seeds at 200 / 400 / 800 / 1,600 steps (test error 0.168 /
        # 0.136 / 0.1245 / 0.1240, seed SD 0.004 at 800): doubling 800 steps gains 0.0005.
        "converged": Budget(epochs=32, batch_size=4, lr=3e-3, steps_per_epoch=25, optimizer="adamw",
                            weight_decay=1e-5, schedule="cosine", eval_batch_size=4),
    }
    # per budget: (model, offline patch, offline items per pass, online pixdim, online roi)
    setups: dict[str, dict[str, Any]] = {
        "smoke": {"model": TINY_UNET, "patch": (16, 16, 16), "train_items": 8, "pixdim": (3.0, 3.0, 3.0), "roi": (32, 32, 32)},
        "quick": {"model": SMALL_UNET, "patch": (32, 24, 32), "train_items": 64, "pixdim": (2.0, 2.0, 2.0), "roi": (64, 64, 64)},
        "standard": {"model": MEDIUM_UNET, "patch": (32, 24, 32), "train_items": 64, "pixdim": (2.0, 2.0, 2.0), "roi": (96, 96, 64)},
        "converged": {"model": SMALL_UNET, "patch": (32, 24, 32), "train_items": 64, "pixdim": (2.0, 2.0, 2.0), "roi": (64, 64, 64)},
        "full": {"model": MONAI_TUTORIAL_UNET, "patch": (32, 32, 32), "train_items": 64, "pixdim": (1.0, 1.0, 1.0), "roi": (224, 224, 144)},
    }

    def __init__(self, model: UNet3DConfig | None = None, budget: str = "quick"):
        self.setup: dict[str, Any] = dict(self.setups[budget])
        if model is not None:
            self.setup["model"] = model

    def configure(self, budget: str) -> None:
        """Pick the budget's UNet, patch size and online resolution (see ``setups``)."""
        if budget in self.setups:
            self.setup = dict(self.setups[budget])

    # -- data -------------------------------------------------------------------------------
    def load_data(self, source: str, seed: int, root: Path | None = None) -> TaskData:
        if source == "offline":
            return load_mni152_data(self.setup["patch"], self.setup["train_items"], seed)
        if source == "online":
            return load_decathlon_data(root, self.setup["pixdim"], self.setup["roi"])
        raise UserError(f"unknown data source {source!r}; valid data sources: offline, online")

    def dataloader(self, dataset: Dataset, batch_size: int, shuffle: bool, generator: torch.Generator | None):
        """Offline training patches: :class:`~dendrobench.tasks.brain_patches.PatchBatches`, whole
        batches at a time. Otherwise a plain loader (one process); a shuffled loader over randomly
        augmented data seeds the per-item transform randomness from its generator. Either way every
        arm of a seed draws the same patches, and fresh ones on every pass."""
        items = _root_dataset(dataset)
        if isinstance(items, SlabPatches):
            return PatchBatches(dataset, batch_size, shuffle, generator)
        loader = DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, generator=generator)
        if not (shuffle and isinstance(items, SeededItems)):
            return loader
        items.seed = generator.initial_seed() % 2**32 if generator is not None else int(torch.randint(0, 2**31, (1,)))
        items.epoch = 0
        return EpochLoader(loader, items)

    # -- model ------------------------------------------------------------------------------
    def build_model(self, data: TaskData, width: float = 1.0) -> nn.Module:
        return build_unet3d(self.setup["model"], data.meta["in_channels"], data.meta["out_channels"], width,
                            channels_last=True)

    def inputs(self, batch: Any) -> Sequence[torch.Tensor]:
        # NDHWC, the order the model's weights are in (version 2); the values are the batch's own
        return (batch[0].contiguous(memory_format=torch.channels_last_3d),)

    def targets(self, batch: Any) -> torch.Tensor:
        return batch[1]

    def _loss_fn(self, mode: str) -> nn.Module:
        from monai.losses import DiceCELoss, DiceLoss

        cache = self.__dict__.setdefault("_losses", {})
        if mode not in cache:
            cache[mode] = (DiceCELoss(to_onehot_y=True, softmax=True) if mode == "softmax" else
                           DiceLoss(smooth_nr=0, smooth_dr=1e-5, squared_pred=True, sigmoid=True))
        return cache[mode]

    def loss(self, output: torch.Tensor, batch: Any) -> torch.Tensor:
        target = self.targets(batch)
        mode = "softmax" if target.shape[1] == 1 else "sigmoid"  # one label channel vs BraTS multi-channel
        return self._loss_fn(mode)(output, target.to(output.dtype) if mode == "sigmoid" else target)

    # -- evaluation -------------------------------------------------------------------------
    @torch.no_grad()
    def evaluate(self, model: nn.Module, loader: Any, device: torch.device) -> dict[str, float]:
        """Per-sample Dice of every foreground class (MONAI ``DiceMetric``, empty classes ignored),
        averaged by the ``mean_dice`` evaluator. Volumes larger than the training ROI go through
        sliding-window inference."""
        from monai.inferers import sliding_window_inference
        from monai.metrics import DiceMetric
        from monai.networks.utils import one_hot

        roi = tuple(int(r) for r in self.setup["roi"])  # the online training ROI (offline tiles are smaller)
        model.eval()
        rows = []
        for batch in loader:
            batch = move_to(batch, device)
            x, y = self.inputs(batch)[0], self.targets(batch)
            if any(s > r for s, r in zip(x.shape[2:], roi)):
                out = sliding_window_inference(x, roi, 1, model, overlap=0.5)
                out = as_plain(out)
            else:
                out = model(x)
            if y.shape[1] == 1:  # softmax classes: Dice of classes 1.. (background excluded)
                n = out.shape[1]
                pred = one_hot(out.argmax(1, keepdim=True), n)
                true = one_hot(y.long(), n)
                metric = DiceMetric(include_background=False, reduction="none", ignore_empty=True)
            else:  # multi-label sigmoid (BraTS sub-regions): every channel is foreground
                pred, true = (out.sigmoid() > 0.5).float(), y.float()
                metric = DiceMetric(include_background=True, reduction="none", ignore_empty=True)
            rows.append(metric(pred, true).detach().float().cpu())
        dice = torch.cat(rows)
        return self.evaluator.eval({"y_true": torch.ones(dice.shape[0]), "y_pred": dice})
