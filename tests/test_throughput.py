"""How close a training step comes to what the machine can do (issue 20; pytest-benchmark, left
out of the default run: ``pytest -m benchmark tests/test_throughput.py -s`` prints the table).

Measured in one process, one thread, so the ratios hold even on a loaded machine:

* the limit: single-thread fp32 throughput of a 1024x1024 matmul and of a 64-channel 3x3 Conv2d
  forward + backward, the faster of NCHW and channels_last order (FLOPs from ``torch.utils.flop_counter``);
* the harness: each task's arms (baseline and ``gd`` dendrites) trained by the real runner
  (:class:`dendrobench.running.runner.Suite`) for 3 short epochs of its converged budget (``budget=converged``;
  cifar10, which has none, at quick; credit-default also at standard, its budget before; wikitext2
  also at quick, most of the quick suite's clock), dendrites switching every epoch so the run
  holds 0, 1 and 2 dendrites in turn as the real run does; the step figure is the record's own
  ``cost.step_s`` (optimizer steps with their data, validation excluded);
* the minimal loop: the same model (same seed, same dendrites per phase), the same batches taken
  from the task's loader beforehand and held in memory, and a bare ``zero_grad / loss / backward /
  step`` loop with the same optimizer: what the step costs without the harness.

Training FLOPs per step are ``3 x forward FLOPs per sample x batch`` (backward ~ 2x forward), the
figure the records and issue 20 use. Data: each task's offline data (B3DB, German credit, MNI152, Python's
pydoc topics for wikitext2: words at converged, bytes at quick),
except cifar10, whose offline stand-in is 8x8 digits: its images are random 32x32 uint8 tensors in
the CIFAR-10 format (same tensors, augmentation and model as the real data, no files needed).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import pytest
import torch
from torch import nn

from dendrobench.contract.engine import EngineContext
from dendrobench.dendrites.gd import GradientDendrites
from dendrobench.running.config import RunConfig
from dendrobench.running.cost import flops_per_sample
from dendrobench.running.runner import Suite, optimizer_factory, seed_everything

EPOCHS = 3  # phases of 0, 1 and 2 dendrites (gd, switch_epochs=1)
GD = {"engine": "gd", "max_dendrites": 2, "switch_epochs": 1}


@dataclass
class Case:
    task: str
    budget: str
    steps: int  # steps per epoch: a few seconds per arm
    rows: list[dict] = field(default_factory=list)


CASES = {
    "cifar10": Case("cifar10", "quick", 20),  # its quick budget's own steps per epoch; no converged budget yet
    "bbbp": Case("bbbp", "converged", 20),
    "brain-tumour": Case("brain-tumour", "converged", 10),
    "credit-default": Case("credit-default", "converged", 200),  # 1.4 ms steps: 600 of them for a steady ratio
    "wikitext2": Case("wikitext2", "converged", 20),
    # the byte-level transformer of the quick suite: most of the 10-seed quick suite's clock
    "wikitext2-quick": Case("wikitext2", "quick", 10),
    # the budget credit's published rows used before: the converged budget's examples/s against it
    # is issue 20's "5x today's" target for the tiny-MLP task (larger batches, printed below)
    "credit-default-standard": Case("credit-default", "standard", 300),
}
LIMIT_OF = {"cifar10": "conv", "brain-tumour": "conv", "bbbp": "matmul", "credit-default": "matmul",
            "wikitext2": "matmul"}


def limit_gflops() -> dict[str, float]:
    """Best-of single-thread GFLOP/s of a 1024^2 matmul and a 64-channel Conv2d fwd+bwd (the faster memory order)."""
    from torch.utils.flop_counter import FlopCounterMode

    a, b = torch.randn(1024, 1024), torch.randn(1024, 1024)
    conv = nn.Conv2d(64, 64, 3, padding=1)
    x = torch.randn(32, 64, 32, 32, requires_grad=True)
    conv_nhwc = nn.Conv2d(64, 64, 3, padding=1).to(memory_format=torch.channels_last)
    x_nhwc = torch.randn(32, 64, 32, 32).to(memory_format=torch.channels_last).requires_grad_()

    def conv_step():
        conv(x).sum().backward()

    def conv_nhwc_step():  # the memory order cifar10 trains in (task version 2)
        conv_nhwc(x_nhwc).sum().backward()

    counter = FlopCounterMode(display=False)
    with counter:
        conv_step()
    out: dict[str, float] = {}
    for name, fn, flops in (("matmul", lambda: a @ b, 2 * 1024**3), ("conv", conv_step, counter.get_total_flops()),
                            ("conv", conv_nhwc_step, counter.get_total_flops())):
        for _ in range(2):
            fn()
        best = min(_timed(fn) for _ in range(8))
        out[name] = max(out.get(name, 0.0), flops / best / 1e9)  # conv: the faster memory order
    return out


def _timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def task_data(suite: Suite):
    if suite.task.name != "cifar10":
        return suite.task.load_data("offline", 0, None)
    from dendrobench.contract.task import TaskData
    from tasks.cifar10 import _cifar_part

    g = torch.Generator().manual_seed(0)

    def part(n: int, augment):
        x = torch.randint(0, 256, (n, 32, 32, 3), dtype=torch.uint8, generator=g).numpy()
        return _cifar_part(x, torch.randint(0, 10, (n,), generator=g).numpy(), augment)

    return TaskData(train=part(4096, {"pad": 4, "flip": True}), val=part(512, None), test=part(512, None),
                    dataset="cifar10-format-random", source="offline", info={},
                    meta={"in_channels": 3, "num_classes": 10, "image_size": 32})


def make_suite(case: Case, tmp_path) -> Suite:
    run = RunConfig(task=case.task, budget=case.budget, arms=["baseline", "dendrites"], seed=0, seeds=1,
                    budget_overrides={"epochs": EPOCHS, "steps_per_epoch": case.steps, "max_eval_examples": 64},
                    results_dir=str(tmp_path / case.task), progress=False, threads=1, dendrites=dict(GD))
    return Suite(run, echo=lambda s: None)


def harness(suite: Suite, data) -> dict[str, dict]:
    """The runner's own figures for each arm: steps and the seconds its optimizer steps took."""
    suite._data_cache[0] = data
    return {r["arm"]: r for r in suite.run_seed(0)}


def minimal(suite: Suite, data, arm: str, steps: int) -> tuple[float, float, int]:
    """(seconds for EPOCHS x steps bare steps, mean training FLOPs per step, batch size)."""
    task, budget = suite.task, suite.budget
    loader = task.dataloader(data.train, budget.batch_size, True, torch.Generator().manual_seed(0))
    batches = []
    while len(batches) < steps:
        batches.extend(b for _, b in zip(range(steps - len(batches)), loader))
    seed_everything(0)
    model = task.build_model(data, 1.0)
    engine = GradientDendrites({k: v for k, v in GD.items() if k != "engine"}) if arm == "dendrites" else None
    if engine is not None:
        ctx = EngineContext(epochs=EPOCHS, steps_per_epoch=steps, higher_is_better=True, seed=0,
                            device=torch.device("cpu"), workdir=None)  # type: ignore[arg-type]
        model = engine.wrap(model, ctx)
    build = optimizer_factory(budget)
    total_s, flops = 0.0, 0.0
    for phase in range(EPOCHS):
        if engine is not None and phase:
            engine.add_dendrites(model, seed=phase)
        opt = build([p for p in model.parameters() if p.requires_grad])
        flops += 3 * flops_per_sample(model, task.inputs(batches[0]), task.batch_size(batches[0])) * \
            task.batch_size(batches[0])
        model.train()

        def step(batch, opt=opt):
            opt.zero_grad(set_to_none=True)
            loss = task.loss(model(*task.inputs(batch)), batch)
            loss.backward()
            opt.step()

        step(batches[0])  # as the runner's warm-up: first use of this shape outside the clock
        t0 = time.perf_counter()
        for batch in batches:
            step(batch)
        total_s += time.perf_counter() - t0
    return total_s, flops / EPOCHS, task.batch_size(batches[0])


def as_filed_examples_per_s(arm: str, steps: int = 300) -> float:
    """credit-default's step for ``arm`` as it was when issue 20 was filed, in the same run: the
    standard budget (batch 64), PyTorch's per-example loader (``DataLoader(shuffle=True)``: a
    ``__getitem__`` per row and a collate per batch), the per-parameter Adam loop PyTorch picks on
    CPU, ``model.train()`` every step and, for the dendritic arm, a new optimizer group per dendrite
    cycle (the ``gd`` phases of 0, 1 and 2 dendrites the harness case trains). A bare loop, no
    harness: the ratio against it understates the gain since then. Each arm is compared with its
    own step as filed, so the dendrites' own FLOPs are not counted as a slowdown of the code."""
    from torch.utils.data import DataLoader

    from dendrobench.contract.registry import get_task

    task = get_task("credit-default")
    budget = task.budgets["standard"]
    data = task.load_data("offline", 0, None)
    seed_everything(0)
    model = task.build_model(data, 1.0)
    engine = GradientDendrites({k: v for k, v in GD.items() if k != "engine"}) if arm == "dendrites" else None
    if engine is not None:
        ctx = EngineContext(epochs=EPOCHS, steps_per_epoch=steps // EPOCHS, higher_is_better=True, seed=0,
                            device=torch.device("cpu"), workdir=None)  # type: ignore[arg-type]
        model = engine.wrap(model, ctx)
    opt = torch.optim.Adam(model.parameters(), lr=budget.lr, weight_decay=budget.weight_decay, foreach=False)
    loader = DataLoader(data.train, batch_size=budget.batch_size, shuffle=True,
                        generator=torch.Generator().manual_seed(0))
    done, n, t0 = 0, 0, time.perf_counter()
    while done < steps:
        for batch in loader:
            if engine is not None and done and done % (steps // EPOCHS) == 0:
                known = {id(p) for g in opt.param_groups for p in g["params"]}
                engine.add_dendrites(model, seed=done)
                opt.add_param_group({"params": [p for p in model.parameters() if id(p) not in known]})
            model.train()
            opt.zero_grad(set_to_none=True)
            task.loss(model(*task.inputs(batch)), batch).backward()
            opt.step()
            done, n = done + 1, n + task.batch_size(batch)
            if done == steps:
                break
    return n / (time.perf_counter() - t0)


def measure(case: Case, tmp_path, limits: dict[str, float]) -> list[dict]:
    torch.set_num_threads(1)
    suite = make_suite(case, tmp_path)
    data = task_data(suite)
    records = harness(suite, data)
    rows = []
    for arm in ("baseline", "dendrites"):
        rec = records[arm]
        assert rec["status"] == "ok", rec["message"]
        min_s, flops_step, bs = minimal(suite, data, arm, case.steps)
        n = rec["cost"]["steps"]
        assert n == EPOCHS * case.steps
        step_s = rec["cost"]["step_s"]
        gflops = flops_step * n / step_s / 1e9
        rows.append({"task": case.task, "budget": case.budget, "arm": arm, "batch": bs,
                     "ms_per_step": 1e3 * step_s / n, "steps_per_s": n / step_s, "examples_per_s": n * bs / step_s,
                     "gflops": gflops, "vs_limit": gflops / limits[LIMIT_OF[case.task]],
                     "limit": LIMIT_OF[case.task], "vs_minimal": step_s / min_s,
                     "minimal_gflops": flops_step * n / min_s / 1e9})
    return rows


def format_table(limits: dict[str, float], rows: list[dict]) -> str:
    head = (f"single thread: matmul 1024^2 {limits['matmul']:.1f} GFLOP/s, conv2d 64ch fwd+bwd "
            f"{limits['conv']:.1f} GFLOP/s")
    cols = "| task | arm | batch | ms/step | steps/s | examples/s | GFLOP/s | vs limit | harness / minimal | minimal GFLOP/s |"
    lines = [head, "", cols, "|---" * (cols.count("|") - 1) + "|"]
    for r in rows:
        lines.append(f"| {r['task']} ({r['budget']}) | {r['arm']} | {r['batch']} | {r['ms_per_step']:.2f} | "
                     f"{r['steps_per_s']:.1f} | {r['examples_per_s']:.0f} | {r['gflops']:.2f} | "
                     f"{r['vs_limit']:.0%} of {r['limit']} | {r['vs_minimal']:.2f}x | {r['minimal_gflops']:.2f} |")
    return "\n".join(lines)


_LIMITS: dict[str, float] = {}
_ROWS: dict[str, list[dict]] = {}


@pytest.mark.parametrize("name", list(CASES))
def test_training_step_throughput(benchmark, name, tmp_path):
    """Each task's harness step against the same-run limit and the minimal loop; prints the table
    after the last task. The target asserted is the one a loaded machine can still hold: the
    harness step within 1.5x of the minimal loop (issue 20's 1.10x holds on an idle machine;
    docs/scaling.md has the measured table)."""
    torch.set_num_threads(1)
    if not _LIMITS:
        _LIMITS.update(limit_gflops())
    rows = benchmark.pedantic(measure, args=(CASES[name], tmp_path, _LIMITS), rounds=1, iterations=1)
    _ROWS[name] = rows
    benchmark.extra_info.update({f"{r['arm']}_{k}": v for r in rows for k, v in r.items()
                                 if isinstance(v, float)})
    if len(_ROWS) == len(CASES):
        print("\n" + format_table(_LIMITS, [r for n in CASES if n in _ROWS for r in _ROWS[n]]))
    if name in ("credit-default", "credit-default-standard") and {"credit-default", "credit-default-standard"} <= set(_ROWS):
        for arm in ("baseline", "dendrites"):
            new, old = (next(r for r in _ROWS[n] if r["arm"] == arm) for n in ("credit-default", "credit-default-standard"))
            print(f"credit-default {arm}: converged / standard examples per second = "
                  f"{new['examples_per_s'] / old['examples_per_s']:.1f}x")
        for arm in ("baseline", "dendrites"):
            filed = as_filed_examples_per_s(arm)
            new = next(r for r in _ROWS["credit-default"] if r["arm"] == arm)
            print(f"credit-default {arm}: converged harness / its step as filed (standard, per-example loader, "
                  f"per-parameter Adam; {filed:,.0f} examples/s) = {new['examples_per_s'] / filed:.1f}x (target 5x)")
    for r in rows:
        assert r["gflops"] > 0 and r["examples_per_s"] > 0
        assert r["vs_minimal"] < 1.5, f"{name} {r['arm']}: harness step {r['vs_minimal']:.2f}x the minimal loop"
