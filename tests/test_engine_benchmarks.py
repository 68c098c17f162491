"""Speed targets of the dendrite engines (pytest-benchmark; left out of the default run, run with
``pytest -m benchmark tests/test_engine_benchmarks.py``).

* gd per-step time (forward + backward + Adam step) with 1 and 2 dendrites, relative to the base
  model, must stay within 1.15x of the forward-FLOP ratio: a dendrite should cost what its
  arithmetic costs, not Python overhead.
* On the bbbp GIN and data, gd's epoch (training + its per-epoch bookkeeping) must take at most
  half of perforatedai's at the same number of dendrites, measured in one run.
"""

from __future__ import annotations

import time

import pytest
import torch
from torch import nn

from dendrobench.cost import flops_per_sample
from dendrobench.dendrites.base import EngineContext
from dendrobench.dendrites.gd import GradientDendrites

BLOCKS = {
    "mlp": (lambda: nn.Sequential(nn.Linear(256, 512), nn.ReLU(), nn.Linear(512, 512), nn.ReLU(), nn.Linear(512, 10)),
            (256, 256)),
    "conv2d": (lambda: nn.Sequential(nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.Conv2d(32, 32, 3, padding=1)),
               (32, 16, 32, 32)),
    "conv3d": (lambda: nn.Sequential(nn.Conv3d(4, 16, 3, padding=1), nn.ReLU(), nn.Conv3d(16, 16, 3, padding=1)),
               (4, 4, 16, 16, 16)),
}


def ctx(tmp_path) -> EngineContext:
    return EngineContext(epochs=3, steps_per_epoch=1, higher_is_better=True, seed=0, device=torch.device("cpu"),
                         workdir=tmp_path)


def step_time(model: nn.Module, x: torch.Tensor, reps: int = 15) -> float:
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-3)

    def step():
        opt.zero_grad(set_to_none=True)
        model(x).float().pow(2).mean().backward()
        opt.step()

    for _ in range(3):
        step()
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    times.sort()
    return times[len(times) // 2]


@pytest.mark.parametrize("block", sorted(BLOCKS))
def test_gd_step_time_tracks_the_flop_ratio(benchmark, block, tmp_path):
    torch.set_num_threads(2)
    make, shape = BLOCKS[block]
    torch.manual_seed(0)
    x = torch.randn(*shape)
    base = make()
    figures = {"base_s": step_time(base, x), "base_flops": flops_per_sample(base, (x,), shape[0])}
    for n in (1, 2):
        torch.manual_seed(0)
        engine = GradientDendrites({"max_dendrites": n})
        model = engine.wrap(make(), ctx(tmp_path))
        for cycle in range(n):
            engine.add_dendrites(model, seed=cycle)
        t = step_time(model, x)
        flops = flops_per_sample(model, (x,), shape[0])
        figures[f"d{n}_time_ratio"] = t / figures["base_s"]
        figures[f"d{n}_flop_ratio"] = flops / figures["base_flops"]
    benchmark.extra_info.update(figures)
    benchmark.pedantic(lambda: None, rounds=1)
    print(block, {k: round(v, 3) if isinstance(v, float) else v for k, v in figures.items()})
    for n in (1, 2):
        assert figures[f"d{n}_time_ratio"] <= 1.15 * figures[f"d{n}_flop_ratio"], figures


def test_gd_epoch_is_at_most_half_of_perforatedai_on_bbbp(benchmark, tmp_path, monkeypatch):
    pytest.importorskip("perforatedai")
    from dendrobench.registry import get_engine_class, get_task
    from dendrobench.runner import optimizer_factory

    torch.set_num_threads(2)
    monkeypatch.chdir(tmp_path)
    task = get_task("bbbp")
    budget = task.budget("quick")
    data = task.load_data("offline", 0)
    train = torch.utils.data.Subset(data.train, range(min(2000, len(data.train))))
    loader = task.dataloader(train, 64, True, torch.Generator().manual_seed(0))
    val = task.dataloader(torch.utils.data.Subset(data.val, range(min(300, len(data.val)))), 512, False, None)
    device = torch.device("cpu")

    def run(engine_name: str, dendrites: int) -> list[float]:
        """Epoch times (training + evaluation + the engine's per-epoch bookkeeping); one cycle
        after the first epoch, so epochs 2.. run with ``dendrites`` dendrites per layer."""
        torch.manual_seed(0)
        model = task.build_model(data, 1.0)
        engine = get_engine_class(engine_name)({"max_dendrites": dendrites, "switch_epochs": 1})
        c = EngineContext(epochs=dendrites + 2, steps_per_epoch=len(loader), higher_is_better=True, seed=0,
                          device=device, workdir=tmp_path / engine_name)
        model = engine.wrap(model, c)
        build = optimizer_factory(budget)
        opt = engine.make_optimizer(model, build)

        def loss_fn(m, batch):
            return task.loss(m(*task.inputs(batch)), batch)

        times = []
        for epoch in range(1, c.epochs + 1):
            t0 = time.perf_counter()
            for batch in loader:
                engine.train_step(model, batch, loss_fn, opt, c)
            score = task.evaluate(model, val, device)[task.evaluator.name]
            c.epoch = epoch
            d = engine.on_validation(model, score, c)
            model = d.model
            if d.restructured:
                from dendrobench.runner import sync_optimizer

                opt = sync_optimizer(opt, model, build)
            times.append(time.perf_counter() - t0)
        engine.done(model)
        return times

    run("gd", 1)  # warm-up, untimed: the first pass pays for kernel and allocator warm-up, which
    run("perforatedai", 1)  # would otherwise be charged to whichever engine happens to go first
    figures = {}
    for n in (1,):
        gd = run("gd", n)
        pai = run("perforatedai", n)
        figures.update({"gd_epoch0_s": gd[0], "pai_epoch0_s": pai[0],
                        f"gd_epoch_d{n}_s": min(gd[1:]), f"pai_epoch_d{n}_s": min(pai[1:])})
    benchmark.extra_info.update(figures)
    benchmark.pedantic(lambda: None, rounds=1)
    print({k: round(v, 3) for k, v in figures.items()})
    assert figures["gd_epoch0_s"] <= 0.5 * figures["pai_epoch0_s"], figures
    assert figures["gd_epoch_d1_s"] <= 0.5 * figures["pai_epoch_d1_s"], figures
