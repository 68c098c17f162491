"""Random training patches of the offline MNI152 slabs, cut and augmented a whole batch at a time
(brain-tumour task version 3).

Why: up to version 2 every training item went through MONAI's dictionary transforms one at a time
(``RandSpatialCropd``, ``RandFlipd``, ``RandAffined``, ``RandScaleIntensityd``,
``RandShiftIntensityd``): 2.6 ms per item, 10 ms of a 60-70 ms training step of 4 patches, so the
harness step was 1.13-1.29x a loop over patches prepared beforehand (issue 20). Here only each item's
*parameters* are drawn one at a time (a numpy ``Generator`` seeded from ``(seed, pass, index)``, so
indexing stays deterministic and every arm of a seed sees the same patches); the crops are slices
and the flip, the affine (one ``affine_grid`` + ``grid_sample`` for the items that get one) and the
intensity changes run on the whole batch.

The augmentation is version 2's, with the same distributions: a uniform random patch position; a
left-right flip (spatial axis 0) with probability 1/2; with probability 1/2 a rotation of
U(-0.1, 0.1) rad about each axis and a scale of 1 + U(-0.1, 0.1) per axis about the patch centre
(bilinear for the image, nearest for the labels, zeros outside); the image times 1 + U(-0.1, 0.1),
then plus U(-0.1, 0.1). The random streams are not MONAI's, so the patches differ from version 2's
(hence the version). The affine is MONAI's own matrix (``create_rotate`` @ ``create_scale``) turned
into ``affine_grid``'s normalised coordinates; ``tests/test_task_brain.py`` checks the result
against ``monai.transforms.Affine`` with the same parameters.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from dendrobench.api import PermutedBatches, subset_rows

FLIP_P = 0.5
AFFINE_P = 0.5
ROTATE_RANGE = 0.1  # radians, each axis
SCALE_RANGE = 0.1  # 1 +- this, each axis
INTENSITY_FACTOR = 0.1  # image * (1 + U(-f, f)), as RandScaleIntensity(factors=f)
INTENSITY_OFFSET = 0.1  # image + U(-o, o), as RandShiftIntensity(offsets=o)


@dataclass(frozen=True)
class PatchDraw:
    """One training item's random choices."""

    record: int
    origin: tuple[int, int, int]
    flip: bool
    rotate: tuple[float, float, float] | None  # None: no affine for this item
    scale: tuple[float, float, float] | None
    factor: float
    offset: float


def affine_theta(rotate: Sequence[float], scale: Sequence[float], size: Sequence[int]) -> torch.Tensor:
    """``affine_grid``'s (3, 4) matrix for MONAI's ``Affine(rotate_params, scale_params)`` on a
    volume of spatial ``size`` (X, Y, Z).

    MONAI maps each output voxel's centred coordinate ``c`` to the input coordinate ``R S c``.
    With ``align_corners=False`` a centred voxel coordinate is ``(n / 2) u`` in normalised units
    ``u``, and ``affine_grid`` orders its coordinates (Z, Y, X), last dimension first.
    """
    from monai.transforms.utils import create_rotate, create_scale

    a = torch.as_tensor(create_rotate(3, list(rotate)), dtype=torch.float64) @ \
        torch.as_tensor(create_scale(3, list(scale)), dtype=torch.float64)
    half = torch.tensor([n / 2 for n in size], dtype=torch.float64)
    lin = a[:3, :3] * half[None, :] / half[:, None]  # D^-1 A D, D = diag(n / 2)
    lin = lin.flip(0).flip(1)  # (X, Y, Z) -> (Z, Y, X)
    return torch.cat([lin, torch.zeros(3, 1, dtype=torch.float64)], 1).float()


class SlabPatches(Dataset):
    """``length`` random, augmented ``patch``-sized items cut from ``records`` (cycled), as
    ``(image, label)`` float tensors of shape ``(1, *patch)``.

    Item ``i`` of pass ``epoch`` is a function of ``(seed, epoch, i)`` only.
    :class:`PatchBatches` (the task's training loader) sets ``seed`` from its generator and bumps
    ``epoch`` on every pass; ``batch`` builds several items at once, the same values bit for bit
    as one at a time (``tests/test_task_brain.py``).
    """

    def __init__(self, records: Sequence[tuple[torch.Tensor, torch.Tensor]], patch: Sequence[int],
                 length: int, seed: int = 0):
        self.patch = tuple(int(p) for p in patch)
        self.records = [(self._padded(x), self._padded(y)) for x, y in records]
        self.length, self.seed, self.epoch = int(length), int(seed), 0

    def _padded(self, t: torch.Tensor) -> torch.Tensor:
        """A slab smaller than the patch along an axis is zero-padded around it (as SpatialPadd)."""
        pads: list[int] = []
        for n, p in zip(reversed(t.shape[1:]), reversed(self.patch)):
            extra = max(0, p - n)
            pads += [extra // 2, extra - extra // 2]
        return F.pad(t, pads) if any(pads) else t

    def __len__(self) -> int:
        return self.length

    def draw(self, i: int) -> PatchDraw:
        rng = np.random.default_rng([int(self.seed) % 2**32, int(self.epoch), int(i)])
        record = int(i) % len(self.records)
        shape = self.records[record][0].shape[1:]
        origin = tuple(int(rng.integers(0, n - p + 1)) for n, p in zip(shape, self.patch))
        flip = bool(rng.random() < FLIP_P)
        rotate = scale = None
        if rng.random() < AFFINE_P:
            rotate = tuple(float(v) for v in rng.uniform(-ROTATE_RANGE, ROTATE_RANGE, 3))
            scale = tuple(float(v) for v in 1.0 + rng.uniform(-SCALE_RANGE, SCALE_RANGE, 3))
        factor = float(rng.uniform(-INTENSITY_FACTOR, INTENSITY_FACTOR))
        offset = float(rng.uniform(-INTENSITY_OFFSET, INTENSITY_OFFSET))
        return PatchDraw(record, origin, flip, rotate, scale, factor, offset)  # type: ignore[arg-type]

    def batch(self, indices: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor]:
        """Items ``indices`` as one ``(B, 1, *patch)`` image and label batch."""
        draws = [self.draw(int(i)) for i in indices]
        (px, py, pz) = self.patch
        xs, ys = [], []
        for d in draws:
            img, lab = self.records[d.record]
            (ox, oy, oz) = d.origin
            xs.append(img[:, ox:ox + px, oy:oy + py, oz:oz + pz])
            ys.append(lab[:, ox:ox + px, oy:oy + py, oz:oz + pz])
        x, y = torch.stack(xs), torch.stack(ys)
        flip = torch.tensor([d.flip for d in draws])
        if bool(flip.any()):
            mask = flip.view(-1, 1, 1, 1, 1)
            x, y = torch.where(mask, x.flip(2), x), torch.where(mask, y.flip(2), y)
        moved = [k for k, d in enumerate(draws) if d.rotate is not None]
        if moved:
            theta = torch.stack([affine_theta(draws[k].rotate, draws[k].scale, self.patch) for k in moved])  # type: ignore[arg-type]
            index = torch.tensor(moved)
            grid = F.affine_grid(theta, [len(moved), 1, *self.patch], align_corners=False)
            # x and y are fresh tensors (stack / where), never views of the records: safe to write into
            x[index] = F.grid_sample(x[index], grid, mode="bilinear", padding_mode="zeros", align_corners=False)
            y[index] = F.grid_sample(y[index], grid, mode="nearest", padding_mode="zeros", align_corners=False)
        factor = torch.tensor([1.0 + d.factor for d in draws], dtype=x.dtype).view(-1, 1, 1, 1, 1)
        offset = torch.tensor([d.offset for d in draws], dtype=x.dtype).view(-1, 1, 1, 1, 1)
        return (x * factor + offset).contiguous(), y.contiguous()

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        x, y = self.batch([i])
        return x[0], y[0]


class PatchBatches:
    """The training loader over :class:`SlabPatches` (or a ``Subset`` of it): a seeded
    permutation per pass (:class:`~dendrobench.api.PermutedBatches`), each batch built by
    :meth:`SlabPatches.batch`. A shuffled loader sets the items' seed from its generator, so every
    arm of a run's seed draws the same patches, and each pass draws fresh ones. An unshuffled one
    leaves the dataset's seed and pass alone (the items indexing gives), so looking at the training
    patches never moves the ones a training loader draws next."""

    def __init__(self, dataset: Dataset, batch_size: int, shuffle: bool, generator: torch.Generator | None):
        root, self.rows = subset_rows(dataset)
        if not isinstance(root, SlabPatches):
            raise TypeError(f"PatchBatches serves SlabPatches, got {type(root).__name__}")
        self.items, self.shuffle = root, shuffle
        self.sampler = PermutedBatches(len(dataset), batch_size, shuffle, generator)  # type: ignore[arg-type]
        if shuffle:
            root.seed = generator.initial_seed() % 2**32 if generator is not None else int(torch.randint(0, 2**31, (1,)))
            root.epoch = 0

    def __len__(self) -> int:
        return len(self.sampler)

    def __iter__(self) -> Iterator[list[torch.Tensor]]:
        if self.shuffle:
            self.items.epoch += 1
        for index in self.sampler:
            rows = index if self.rows is None else self.rows.index_select(0, index)
            x, y = self.items.batch(rows.tolist())
            yield [x, y]
