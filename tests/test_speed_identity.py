"""The speed paths change no number: PermutedBatches against PyTorch's own samplers (the same
batches, the same generator state), and the multi-tensor optimizers against the per-parameter loop.

Published records were trained with ``BatchSampler(RandomSampler(...))``; the faster sampler is only
allowed because it changes no number (issue 20: a change that alters results bumps the version).
"""

from __future__ import annotations

import pytest
import torch
from torch.utils.data import BatchSampler, DataLoader, RandomSampler, SequentialSampler, TensorDataset
from toy_task import SpiralTask

from dendrobench.contract.batching import PermutedBatches
from dendrobench.contract.task import Task


def _torch_loader(ds, bs, shuffle, gen):
    sampler = RandomSampler(ds, generator=gen) if shuffle else SequentialSampler(ds)
    return DataLoader(ds, batch_size=None, sampler=BatchSampler(sampler, bs, drop_last=False), generator=gen)


def _passes(loader, passes, cut=None):
    """Batches of ``passes`` full passes, then ``cut`` batches of one more (a pass left unfinished)."""
    out = [[b for b in loader] for _ in range(passes)]
    if cut is not None:
        it = iter(loader)
        out.append([next(it) for _ in range(cut)])
    return out


@pytest.mark.parametrize("n,bs", [(10, 3), (12, 4), (5, 8), (1, 1), (1000, 512), (1024, 512)])
@pytest.mark.parametrize("shape", [(3,), (2, 2, 3)])
@pytest.mark.parametrize("shuffle", [True, False])
def test_same_batches_and_generator_state_as_torchs_samplers(n, bs, shuffle, shape):
    ds = TensorDataset(torch.randn(n, *shape, generator=torch.Generator().manual_seed(n)), torch.arange(n),
                       torch.randint(0, 255, (n, 4), dtype=torch.uint8))
    g_old, g_new = torch.Generator().manual_seed(7), torch.Generator().manual_seed(7)
    old = _passes(_torch_loader(ds, bs, shuffle, g_old), 3, cut=1)
    new = _passes(Task.dataloader(None, ds, bs, shuffle, g_new), 3, cut=1)  # type: ignore[arg-type]
    assert [len(p) for p in old] == [len(p) for p in new]
    for p_old, p_new in zip(old, new):
        for bo, bn in zip(p_old, p_new):
            assert type(bo) is type(bn) and len(bo) == len(bn) == 3
            assert all(to.dtype == tn.dtype and torch.equal(to, tn) for to, tn in zip(bo, bn))
    # the generator is left where PyTorch's loader leaves it, so whatever draws next is unchanged
    assert torch.equal(torch.randint(0, 2**30, (4,), generator=g_old), torch.randint(0, 2**30, (4,), generator=g_new))
    if shuffle and n > 1:  # and the passes really are shuffled, differently each time
        firsts = [torch.cat([b[1] for b in p]) for p in new[:3]]
        assert not torch.equal(firsts[0], torch.arange(n)) or not torch.equal(firsts[1], torch.arange(n))


def test_without_a_generator_it_draws_from_the_global_one_as_random_sampler_does():
    ds = TensorDataset(torch.arange(20))
    torch.manual_seed(3)
    old = [b for b in BatchSampler(RandomSampler(ds), 6, drop_last=False)]
    after_old = torch.rand(2)
    torch.manual_seed(3)
    new = [b.tolist() for b in PermutedBatches(20, 6, True, None)]
    assert new == old and torch.equal(torch.rand(2), after_old)


@pytest.mark.parametrize("n,bs", [(10, 3), (12, 4), (5, 8)])
@pytest.mark.parametrize("shuffle", [True, False])
def test_drop_last_draws_and_drops_as_batch_sampler(n, bs, shuffle):
    g_old, g_new = torch.Generator().manual_seed(2), torch.Generator().manual_seed(2)
    ds = list(range(n))
    inner = RandomSampler(ds, generator=g_old) if shuffle else SequentialSampler(ds)
    sampler = PermutedBatches(n, bs, shuffle, g_new, drop_last=True)
    for _ in range(3):
        assert [b.tolist() for b in sampler] == list(BatchSampler(inner, bs, drop_last=True))
    assert len(sampler) == n // bs
    assert torch.equal(torch.rand(2, generator=g_old), torch.rand(2, generator=g_new))


def test_length_and_bad_batch_size():
    assert len(PermutedBatches(10, 3, True)) == 4 == len(list(PermutedBatches(10, 3, True)))
    assert len(PermutedBatches(0, 3, False)) == 0 == len(list(PermutedBatches(0, 3, True)))
    with pytest.raises(ValueError, match="batch_size must be a positive integer, got 0"):
        PermutedBatches(10, 0, True)


@pytest.mark.parametrize("optimizer,wd", [("adam", 1e-4), ("adamw", 0.01), ("sgd", 5e-4)])
def test_foreach_optimizer_gives_the_parameters_of_the_per_parameter_loop(optimizer, wd):
    """The runner's optimizers use PyTorch's multi-tensor path on CPU too; the per-parameter loop
    (PyTorch's CPU default, which trained the published records) must give the same bits, through
    gradient clipping and a parameter group added mid-run, as a dendrite cycle adds one."""
    from dendrobench.contract.task import Budget
    from dendrobench.running.training import optimizer_factory

    budget = Budget(epochs=1, batch_size=8, lr=3e-3, optimizer=optimizer, weight_decay=wd)

    def train(foreach: bool) -> torch.Tensor:
        torch.manual_seed(0)
        net = torch.nn.Sequential(torch.nn.Linear(5, 16), torch.nn.BatchNorm1d(16), torch.nn.ReLU(),
                                  torch.nn.Linear(16, 1))
        extra = torch.nn.Linear(5, 1)
        opt = optimizer_factory(budget)(list(net.parameters()))
        for group in opt.param_groups:
            group["foreach"] = foreach
        g = torch.Generator().manual_seed(1)
        for step in range(40):
            if step == 20:
                opt.add_param_group({"params": list(extra.parameters()), "foreach": foreach})
            x, y = torch.randn(8, 5, generator=g), torch.randn(8, 1, generator=g)
            opt.zero_grad(set_to_none=True)
            loss = ((net(x) + (extra(x) if step >= 20 else 0) - y) ** 2).mean()
            loss.backward()
            torch.nn.utils.clip_grad_norm_([p for gr in opt.param_groups for p in gr["params"]], 0.5)
            opt.step()
        return torch.cat([p.detach().flatten() for p in (*net.parameters(), *extra.parameters())])

    assert optimizer_factory(budget)([torch.nn.Parameter(torch.zeros(1))]).param_groups[0]["foreach"] is True
    assert torch.equal(train(True), train(False))


def test_an_unseeded_loader_draws_from_the_global_generator_as_the_dataloader_does():
    """Evaluation loaders have no generator: PyTorch's DataLoader still draws its base seed from the
    global generator on every pass, and dropout in the next epoch draws after it, so the faster
    loader must make that draw too."""
    ds = TensorDataset(torch.randn(9, 2), torch.arange(9))
    torch.manual_seed(5)
    old = [[t.clone() for t in b] for b in _torch_loader(ds, 4, False, None)]
    after_old = torch.rand(3)
    torch.manual_seed(5)
    new = list(Task.dataloader(None, ds, 4, False, None))  # type: ignore[arg-type]
    assert all(torch.equal(a, b) for bo, bn in zip(old, new) for a, b in zip(bo, bn))
    assert torch.equal(torch.rand(3), after_old)


class _NormedSpirals(SpiralTask):
    """Spirals through an MLP with batch norm and dropout: a model whose output depends on its mode
    (and dropout on the generator), so a step left in the wrong mode would show."""

    def build_model(self, data, width=1.0):
        h = max(1, int(round(8 * width)))
        return torch.nn.Sequential(torch.nn.Linear(2, h), torch.nn.BatchNorm1d(h), torch.nn.Tanh(),
                                   torch.nn.Dropout(0.1), torch.nn.Linear(h, 2))


def _old_sync_optimizer(optimizer, model, build):
    """sync_optimizer as the published records were trained: a new group per dendrite cycle."""
    known = {id(p) for g in optimizer.param_groups for p in g["params"]}
    if known - {id(p) for p in model.parameters()}:
        return build([p for p in model.parameters() if p.requires_grad])
    new = [p for p in model.parameters() if id(p) not in known and p.requires_grad]
    if new:
        optimizer.add_param_group({"params": new, **{k: v for k, v in optimizer.param_groups[0].items()
                                                     if k != "params"}})
    return optimizer


def _old_train_step(self, model, batch, loss_fn, optimizer, ctx, grad_clip=None):
    model.train()  # every step, as before issue 20
    optimizer.zero_grad(set_to_none=True)
    loss = loss_fn(model, batch)
    loss.backward()
    if grad_clip:
        torch.nn.utils.clip_grad_norm_([p for g in optimizer.param_groups for p in g["params"]], grad_clip)
    optimizer.step()
    return float(loss.detach())


@pytest.mark.parametrize("schedule", ["cosine", "reduce_on_plateau"])
@pytest.mark.parametrize("optimizer", ["adamw", "sgd"])
def test_one_optimizer_group_and_mode_set_once_train_the_same_run(monkeypatch, schedule, optimizer):
    """A gd run of two dendrite cycles (gradient clipping, weight decay, a schedule) trained with the
    merged optimizer group and the step that sets training mode only after validation gives the
    record the old code gives: every epoch's training loss and validation score, the test metric
    and the selected epoch, bit for bit."""
    import dendrobench.running.training as training
    from dendrobench.contract.engine import DendriteEngine
    from dendrobench.contract.task import Budget
    from dendrobench.dendrites.gd import GradientDendrites
    from dendrobench.running.results import Record
    from dendrobench.running.training import ArmSpec, train_arm

    torch.set_num_threads(1)
    task = _NormedSpirals()
    data = task.load_data("offline", 0)
    budget = Budget(epochs=6, batch_size=64, lr=0.02, steps_per_epoch=8, optimizer=optimizer, weight_decay=1e-3,
                    schedule=schedule, grad_clip=0.5, plateau_patience=0)

    def run() -> Record:
        rec = Record(config_hash="x", task="spirals", dataset=None, data_source="offline", arm="dendrites",
                     engine="gd", seed=0, budget="t", metric={}, config={}, env={}, started="")
        engine = GradientDendrites({"max_dendrites": 2, "switch_epochs": 2})
        return train_arm(task, data, budget, ArmSpec("dendrites", 3, engine=engine), torch.device("cpu"), rec)

    new = run()
    with monkeypatch.context() as m:
        m.setattr(training, "sync_optimizer", _old_sync_optimizer)
        m.setattr(DendriteEngine, "train_step", _old_train_step)
        old = run()
    assert new.dendrites["added"] == old.dendrites["added"] > 0
    assert new.history == old.history and new.test == old.test and new.error == old.error
    assert new.cost["steps"] == old.cost["steps"] == 48
