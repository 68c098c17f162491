"""Whole batches of indices for in-memory tensor data, drawn exactly as PyTorch's per-item samplers
draw them.

``BatchSampler(RandomSampler(...))`` yields a Python list of ``batch_size`` ints per batch, one
``yield`` per example, and ``TensorDataset`` then indexes every tensor with that list. For a small
model on tabular data that is a large share of the step: 0.7 of 3.4 ms per batch of 512 credit rows
in a cProfile of the harness (issue 20). :class:`PermutedBatches` makes the same generator draws in
the same order (one ``randperm`` per pass, plus the trailing one ``RandomSampler`` makes for its
``num_samples % n`` remainder) and yields slices of the permutation as index tensors, so the batches
are the same bit for bit (``tests/test_speed_identity.py`` compares them with PyTorch's samplers)
and published records keep their numbers. :class:`TensorBatches` then gathers each batch with
``index_select`` and makes the DataLoader's own draw, without the DataLoader.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch.utils.data import Dataset, Sampler, Subset, TensorDataset


def subset_rows(ds: Dataset) -> tuple[Dataset, torch.Tensor | None]:
    """The dataset under any ``Subset`` layers of ``ds``, and the rows of it that ``ds`` holds, in
    ``ds``'s order (None: all of them): what a whole-batch loader gathers from, so it can serve a
    ``Subset`` (e.g. ``max_train_examples``) as the DataLoader would."""
    rows: torch.Tensor | None = None
    while isinstance(ds, Subset):
        index = torch.as_tensor(list(ds.indices), dtype=torch.long)
        rows = index if rows is None else index.index_select(0, rows)
        ds = ds.dataset
    return ds, rows


class PermutedBatches(Sampler[torch.Tensor]):
    """Index tensors of ``batch_size`` over ``n`` examples, a seeded permutation when ``shuffle``,
    else ``0..n-1`` in order; the last, shorter one is dropped when ``drop_last`` (as
    ``BatchSampler(drop_last=True)``)."""

    def __init__(self, n: int, batch_size: int, shuffle: bool, generator: torch.Generator | None = None,
                 drop_last: bool = False):
        if batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size}")
        self.n, self.batch_size, self.shuffle, self.generator = int(n), int(batch_size), shuffle, generator
        self.drop_last = drop_last

    def __len__(self) -> int:
        return self.n // self.batch_size if self.drop_last else -(-self.n // self.batch_size)

    def __iter__(self) -> Iterator[torch.Tensor]:
        n, bs = self.n, self.batch_size
        if not self.shuffle:
            order = torch.arange(n)
            for i in range(0, n // bs * bs if self.drop_last else n, bs):
                yield order[i:i + bs]
            return
        generator = self.generator
        if generator is None:  # as RandomSampler: a fresh generator seeded from the global one
            generator = torch.Generator()
            generator.manual_seed(int(torch.empty((), dtype=torch.int64).random_().item()))
        perm = torch.randperm(n, generator=generator)
        full = n // bs * bs
        for i in range(0, full, bs):
            yield perm[i:i + bs]
        # RandomSampler's second draw, for its ``[: num_samples % n]`` remainder (empty here): made at
        # the same point of the pass, so the generator is where PyTorch's samplers leave it
        torch.randperm(n, generator=generator)
        if full < n and not self.drop_last:
            yield perm[full:]



class TensorBatches:
    """The batches ``DataLoader(dataset, batch_size=None, sampler=PermutedBatches(...))`` yields for a
    ``TensorDataset``, without the DataLoader: each pass makes the loader's own draw (its base seed,
    from ``generator``, the global generator when None) and then the sampler's, and each batch is
    the list of every tensor's rows gathered by ``index_select`` (the same copy as
    ``tensor[index]`` at a fifth of its cost: 6 against 29 us for 512 of 30,000 credit rows)."""

    def __init__(self, dataset: TensorDataset, batch_size: int, shuffle: bool, generator: torch.Generator | None):
        self.dataset, self.tensors, self.generator = dataset, dataset.tensors, generator
        self.sampler = PermutedBatches(len(dataset), batch_size, shuffle, generator)

    def __len__(self) -> int:
        return len(self.sampler)

    def __iter__(self) -> Iterator[list[torch.Tensor]]:
        torch.empty((), dtype=torch.int64).random_(generator=self.generator)  # DataLoader's base seed
        for index in self.sampler:
            yield [t.index_select(0, index) for t in self.tensors]
