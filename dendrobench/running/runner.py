"""The runner: one training loop for every arm of every task.

Rules that make arms comparable (DESIGN.md "Arms and budgets"):

* every arm takes exactly ``epochs * steps_per_epoch`` optimizer steps; dendrite cycles happen
  inside them;
* seed ``s`` gives every arm the same split, the same data order (a loader generator seeded with
  ``s``) and the same initial base weights (the model is built right after ``torch.manual_seed(s)``);
* the model is selected on the validation split and the test metric is that model's;
* ``wide`` widens the base until its parameter count matches the final dendritic model's.

A run that raises (anything, ``SystemExit`` from a plugin included) or passes ``run_timeout_s``
is recorded as ``failed``; a NaN/inf loss or score as ``diverged``; the suite goes on either way.
Only a real Ctrl-C / SIGTERM stops it (:mod:`dendrobench.running.interrupts`). An offline run loads and
trains under the network guard (:mod:`dendrobench.running.netguard`).
"""

from __future__ import annotations

import copy
import logging
import math
import os
import platform
import random
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterable, Iterator
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset, Subset

import dendrobench
from dendrobench.contract.diagnostics import plugin_location
from dendrobench.contract.engine import DendriteEngine, EngineContext
from dendrobench.contract.options import as_dict as options_dict
from dendrobench.contract.options import identity_options, parse_options
from dendrobench.contract.registry import get_engine_class, get_task
from dendrobench.contract.task import Budget, Task, TaskData, move_to, require_task_data
from dendrobench.errors import UserError
from dendrobench.running import interrupts, watchdog
from dendrobench.running.config import RunConfig, effective_timeout
from dendrobench.running.cost import count_params, flops_per_sample, peak_memory_mb, reset_peak_memory
from dendrobench.running.energy import EnergyMeter
from dendrobench.running.netguard import NetworkBlocked, no_network
from dendrobench.running.results import (
    Record,
    RecordError,
    clean_stale_files,
    config_hash,
    pid_alive,
    read_record,
    record_path,
    write_record,
)
from dendrobench.running.runlock import claim_path, describe, is_stale, try_claim
from dendrobench.running.schedules import LRSchedule, lr_factor  # noqa: F401 - lr_factor re-exported for plugins' checks

log = logging.getLogger("dendrobench")

ARM_ORDER = ("baseline", "dendrites", "wide", "compressed", "base_more_training")
RUN_TMP_PREFIX = "dendrobench-run-"  # + pid: a run's scratch folder in the system temp directory
DENDRITIC_ARMS = ("dendrites", "compressed")
CLAIM_POLL_S = 2.0  # how often a run waiting for another process's claim looks again


class Diverged(Exception):
    """Training produced a non-finite loss or validation score."""


# -- environment ------------------------------------------------------------------------------
def utcnow() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        from dendrobench.errors import ConfigError

        raise ConfigError("device=cuda asked for but no CUDA device is available; valid here: auto, cpu")
    return torch.device(name)


def git_commit() -> str | None:
    """The dendrobench source commit when running from a checkout (None for an installed wheel)."""
    here = Path(dendrobench.__file__).resolve().parent.parent
    if not (here / ".git").exists():
        return None
    try:
        out = subprocess.run(["git", "-C", str(here), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def package_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for name in ("torch", "torch_geometric", "monai", "torchvision", "scikit-learn", "numpy", "datasets", "perforatedai"):
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            continue
    return found


def environment(device: torch.device) -> dict[str, Any]:
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "dendrobench": dendrobench.__version__,
        "device": device.type,
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or platform.machine(),
        "threads": torch.get_num_threads(),
        "platform": platform.platform(),
        "packages": package_versions(),
        "git_commit": git_commit(),
    }


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


# -- data -------------------------------------------------------------------------------------
def subset(ds: Dataset, n: int | None) -> Dataset:
    """First ``n`` examples of a fixed (seed-independent) permutation: the same subset for every arm and seed."""
    if n is None or n >= len(ds):  # type: ignore[arg-type]
        return ds
    order = torch.randperm(len(ds), generator=torch.Generator().manual_seed(12345))[:n]  # type: ignore[arg-type]
    return Subset(ds, sorted(order.tolist()))


def cycle_batches(make: Callable[[], Iterable]) -> Iterator:
    """Endless batches: a fresh pass (fresh shuffle from the same generator) each time one ends."""
    while True:
        empty = True
        for batch in make():
            empty = False
            yield batch
        if empty:
            raise ValueError("the training split yields no batch")


@dataclass
class Loaders:
    train: Callable[[], Iterable]
    val: Iterable
    test: Iterable
    steps_per_epoch: int


def check_splits(task: Task, data: TaskData) -> None:
    """An empty split would fail deep inside torch (``torch.cat(): expected a non-empty list``);
    name the task and the split instead."""
    for split in ("train", "val", "test"):
        try:
            n = len(getattr(data, split))
        except TypeError:  # an iterable dataset: its length is unknown
            continue
        if n == 0:
            raise ValueError(f"task {task.name!r}: the {split} split of {data.dataset!r} ({data.source}) is empty "
                             f"(0 examples); load_data must return at least one example per split")


def make_loaders(task: Task, data: TaskData, budget: Budget, seed: int) -> Loaders:
    check_splits(task, data)
    train = subset(data.train, budget.max_train_examples)
    val = subset(data.val, budget.max_eval_examples)
    test = subset(data.test, budget.max_eval_examples)
    gen = torch.Generator().manual_seed(seed)
    loader = task.dataloader(train, budget.batch_size, True, gen)
    eval_bs = budget.eval_batch_size or budget.batch_size
    spe = budget.steps_per_epoch or len(loader)  # type: ignore[arg-type]
    return Loaders(
        train=lambda: loader,
        val=task.dataloader(val, eval_bs, False, None),
        test=task.dataloader(test, eval_bs, False, None),
        steps_per_epoch=int(spe),
    )


# -- optimisation -----------------------------------------------------------------------------
def optimizer_factory(budget: Budget) -> Callable[[list[nn.Parameter]], torch.optim.Optimizer]:
    def build(params: list[nn.Parameter]) -> torch.optim.Optimizer:
        kw = {"lr": budget.lr, "weight_decay": budget.weight_decay}
        if budget.optimizer == "sgd":
            return torch.optim.SGD(params, momentum=0.9, nesterov=True, **kw)
        if budget.optimizer == "adamw":
            return torch.optim.AdamW(params, **kw)
        return torch.optim.Adam(params, **kw)

    return build


def sync_optimizer(optimizer: torch.optim.Optimizer, model: nn.Module,
                   build: Callable[[list[nn.Parameter]], torch.optim.Optimizer]) -> torch.optim.Optimizer:
    """After a restructure: new parameters join as a new group (old state kept); if parameters
    vanished (an engine replaced modules) the optimizer is rebuilt."""
    current = {id(p) for p in model.parameters()}
    known = {id(p) for g in optimizer.param_groups for p in g["params"]}
    if known - current:
        return build([p for p in model.parameters() if p.requires_grad])
    new = [p for p in model.parameters() if id(p) not in known and p.requires_grad]
    if new:
        group = {k: v for k, v in optimizer.param_groups[0].items() if k != "params"}
        optimizer.add_param_group({"params": new, **group})
    return optimizer


# -- widths for the control arms --------------------------------------------------------------
def match_width(task: Task, data: TaskData, target: int, tolerance: float) -> tuple[float, int]:
    """The width whose base model has the parameter count closest to ``target`` (bisection over
    width, parameters grow with width); the caller checks the tolerance."""

    def params(w: float) -> int:
        return count_params(task.build_model(data, w))

    lo, hi = 1.0, 1.0
    while params(hi) < target and hi < 64:
        lo, hi = hi, hi * 2
    best = min((lo, hi), key=lambda w: abs(params(w) - target))
    for _ in range(30):
        mid = (lo + hi) / 2
        p = params(mid)
        if abs(p - target) < abs(params(best) - target):
            best = mid
        if abs(p - target) / target <= tolerance / 4:
            break
        lo, hi = (mid, hi) if p < target else (lo, mid)
    return best, params(best)


# -- one run ----------------------------------------------------------------------------------
@dataclass
class ArmSpec:
    arm: str
    seed: int
    width: float = 1.0
    engine: DendriteEngine | None = None
    target_params: int | None = None  # wide: the dendritic model's parameter count
    target_source: str | None = None  # wide: "dendrites record" or "planned by the engine" (no training needed)
    report: str = "test"  # the split whose error the record reports (a published protocol may report validation)


def warm_up(task: Task, model: nn.Module, build: Callable[[list[nn.Parameter]], torch.optim.Optimizer],
            loaders: Loaders, device: torch.device) -> float:
    """One untimed optimizer step and one evaluation batch on a throwaway copy of ``model``; returns
    the seconds it took.

    Why: the first arm of a process used to pay for every one-time cost (lazy imports, kernel and
    allocator set-up, first use of each layer shape), 2.5-15 s that made whichever arm ran first look
    slow (issue 9). Each arm now pays its own warm-up outside the clock, so ``wall_s`` does not depend
    on arm order. The copy, a validation batch (the training order is untouched) and restored RNG
    states (torch, numpy, random) keep the run's results exactly what they were without it.
    A warm-up that fails is ignored: the real step will fail the same way and be recorded.
    """
    t0 = time.perf_counter()
    py_state, np_state = random.getstate(), np.random.get_state()
    try:
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            scratch = copy.deepcopy(model)
            scratch.train()
            opt = build([p for p in scratch.parameters() if p.requires_grad])
            batch = move_to(next(iter(loaders.val)), device)
            loss = task.loss(scratch(*task.inputs(batch)), batch)
            opt.zero_grad()
            loss.backward()
            opt.step()
            with torch.no_grad():
                task.evaluate(scratch, [batch], device)
    except Exception:  # noqa: BLE001 - see the docstring
        log.debug("warm-up failed", exc_info=True)
    finally:
        random.setstate(py_state)
        np.random.set_state(np_state)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - t0


def null_arm_reason(added: Any, at_selected: int, final: int, selected_epoch: int) -> str | None:
    """Why a dendritic run has no dendrites where it matters, or None (issue 9 item 5).

    An engine that added dendrites but cannot count them (``dendrite_count`` left at 0) is not
    flagged: the count is unknown, not zero.
    """
    if not added and final == 0:
        return "added no dendrites: this arm trained the base model"
    if final > 0 and at_selected == 0:
        return (f"the selected model (epoch {selected_epoch}) has 0 dendrites (the final model has {final} in total, "
                "summed over its layers; max_dendrites counts per layer): "
                "its test metric is the base model's")
    return None


def train_arm(task: Task, data: TaskData, budget: Budget, spec: ArmSpec, device: torch.device,
              record: Record, progress: Any | None = None) -> Record:
    """Train one arm under the budget and fill ``record``; raises Diverged on NaN/inf."""
    evaluator = task.evaluator
    metric = evaluator.name
    seed_everything(spec.seed)
    model = task.build_model(data, spec.width)  # same seed -> same initial base weights
    engine = spec.engine or DendriteEngine()
    loaders = make_loaders(task, data, budget, spec.seed)
    workdir = Path(tempfile.mkdtemp(prefix=f"{RUN_TMP_PREFIX}{os.getpid()}-"))
    ctx = EngineContext(epochs=budget.epochs, steps_per_epoch=loaders.steps_per_epoch,
                        higher_is_better=evaluator.higher_is_better, seed=spec.seed, device=device, workdir=workdir)
    try:
        model = engine.wrap(model, ctx).to(device)
        build = optimizer_factory(budget)
        optimizer = engine.make_optimizer(model, build)
        total = ctx.total_steps
        if progress is not None:  # a tqdm bar: its length is known only once the loaders exist
            progress.total = total
            progress.refresh()

        def loss_fn(m: nn.Module, batch: Any) -> torch.Tensor:
            return task.loss(m(*task.inputs(batch)), batch)

        schedule = LRSchedule(budget, total, loaders.steps_per_epoch, evaluator.higher_is_better)
        schedule.attach(optimizer)
        record.extra["warmup_s"] = round(warm_up(task, model, build, loaders, device), 3)
        batches = cycle_batches(loaders.train)
        best_score, best_model, best_epoch = float("nan"), copy.deepcopy(model), 0
        stale = 0  # epochs since the validation score last improved (early stopping)
        first_cycle_best: dict[str, Any] | None = None  # what the run had before its first dendrites
        stopped: str | None = None
        reset_peak_memory(device)
        step = 0
        # the arm's training clock: optimizer steps, per-epoch validation and dendrite cycles; not the
        # warm-up, model building, the final test evaluation, FLOP counting or the export check
        t_train = time.perf_counter()
        epoch_end_s = [0.0]
        step_s = eval_s = 0.0  # the clock split: optimizer steps (with data) vs per-epoch validation
        for epoch in range(1, budget.epochs + 1):
            losses = []
            t_steps = time.perf_counter()
            for _ in range(loaders.steps_per_epoch):
                batch = move_to(next(batches), device)
                loss = engine.train_step(model, batch, loss_fn, optimizer, ctx, budget.grad_clip)
                step += 1
                ctx.step = step
                schedule.after_step()
                if not math.isfinite(loss):
                    raise Diverged(f"non-finite training loss {loss} at step {step} (epoch {epoch})")
                losses.append(loss)
                if progress is not None:
                    progress.update(1)
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            t_eval = time.perf_counter()
            step_s += t_eval - t_steps
            val = task.evaluate(model, loaders.val, device)
            eval_s += time.perf_counter() - t_eval
            score = val[metric]
            if not math.isfinite(score):
                raise Diverged(f"non-finite validation {metric} {score} after epoch {epoch}")
            lr_used = schedule.lr()
            if evaluator.better(score, best_score):
                best_score, best_model, best_epoch, stale = score, copy.deepcopy(model), epoch, 0
            else:
                stale += 1
            schedule.after_epoch(score)
            ctx.epoch = epoch
            decision = engine.on_validation(model, score, ctx)
            model = decision.model
            if decision.event == "dendrites_added" and first_cycle_best is None:
                first_cycle_best = {"epoch": best_epoch, "val": dict(record.history[best_epoch - 1]["val"])
                                    if best_epoch <= len(record.history) else dict(val)}
            if decision.restructured:
                if budget.reset_optimizer_on_cycle:  # as PAI's examples do: new optimizer, new schedule
                    optimizer = engine.make_optimizer(model, build)
                    schedule.attach(optimizer, fresh=True)
                else:
                    optimizer = sync_optimizer(optimizer, model, build)
                    schedule.attach(optimizer)
                stale = 0  # a new phase starts: early stopping counts from here
            record.history.append({"epoch": epoch, "step": step, "train_loss": float(np.mean(losses)),
                                   "val": val, "event": decision.event, "lr": lr_used})
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            epoch_end_s.append(time.perf_counter() - t_train)
            if budget.until_engine_complete and decision.training_complete:
                stopped = "engine_complete"
                break
            if budget.early_stopping is not None and stale >= budget.early_stopping:
                stopped = "early_stopping"
                break
        model = engine.done(model)
        train_s = time.perf_counter() - t_train
        test = task.evaluate(best_model, loaders.test, device)
        record.val = dict(record.history[best_epoch - 1]["val"])  # the selected model's own validation
        record.test = test
        record.error = evaluator.error((test if spec.report == "test" else record.val)[metric])
        record.extra["reported_split"] = spec.report
        sample = move_to(next(iter(loaders.val)), device)
        # params and FLOPs of the selected model (the one whose test metric is reported), the final
        # model's beside them; they differ when the selected checkpoint predates a dendrite cycle
        flops_sel = flops_per_sample(best_model, task.inputs(sample), task.batch_size(sample))
        final_inf, sel_inf = engine.inference_params(model), engine.inference_params(best_model)
        sel_count, final_count = engine.dendrite_count(best_model), engine.dendrite_count(model)
        same = final_inf == sel_inf and sel_count == final_count
        record.params = {"train": count_params(best_model, trainable_only=True), "inference": sel_inf,
                         "final_train": count_params(model, trainable_only=True), "final_inference": final_inf}
        record.cost.update({
            "steps": step, "epochs": len(record.history), "steps_per_epoch": loaders.steps_per_epoch,
            "max_steps": total, "max_epochs": budget.epochs, "stopped": stopped,
            "wall_s": round(train_s, 3), "wall_s_selected": round(epoch_end_s[best_epoch], 3),
            # where the training clock went: optimizer steps (data included) and validation passes;
            # steps_per_s: the arm's optimizer steps per second of step time (validation passes excluded)
            "step_s": round(step_s, 3), "eval_s": round(eval_s, 3),
            "steps_per_s": round(step / step_s, 3) if step_s > 0 else None,
            "flops_per_sample": flops_sel,
            "flops_per_sample_final": flops_sel if same else flops_per_sample(
                model, task.inputs(sample), task.batch_size(sample)),
            "peak_mem_mb": round(peak_memory_mb(device), 1),
        })
        summary = engine.summary()
        record.dendrites = {**summary, "at_selected": sel_count, "final": final_count}
        if spec.engine is not None:
            reason = null_arm_reason(summary.get("added"), sel_count, final_count, best_epoch)
            record.dendrites.update({"null_arm": reason is not None, "null_reason": reason})
        if first_cycle_best is not None:
            record.extra["before_first_cycle"] = first_cycle_best
        record.extra.update({"selected_epoch": best_epoch, "width": spec.width, "target_params": spec.target_params,
                             "target_source": spec.target_source,
                             "params_selected": sel_inf})
        if spec.engine is not None:  # dendritic arms: does the selected model still export (issue 6)?
            t_export = time.perf_counter()
            try:
                from dendrobench.running.export import export_check

                record.extra["export"] = export_check(best_model, task.inputs(sample), workdir / "export")
            except Exception as exc:  # noqa: BLE001 - export is reported, never fatal to the run
                record.extra["export"] = {"torchscript": f"failed: {exc}", "onnx": "not tried", "max_abs_diff": None}
            record.extra["export_s"] = round(time.perf_counter() - t_export, 3)  # not part of the arm's cost
        return record
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


# -- housekeeping -----------------------------------------------------------------------------
def task_origin(requested: str, task: Task) -> dict[str, Any]:
    """The task's own name and where it came from (entry point or import path): one task, one name
    in the records, however it was asked for."""
    from dendrobench.contract.registry import plugins

    cls = type(task)
    name = str(getattr(task, "name", "") or requested)
    origin: dict[str, Any] = {"name": name, "requested": requested, "class": f"{cls.__module__}:{cls.__qualname__}"}
    registered = plugins("task")
    if requested in registered:
        origin.update(via="entry point", dist=registered[requested].dist)
        if requested != name:
            origin["clash"] = (f"task entry point {requested!r} loads a class named {name!r}; "
                               f"its records say task {name!r}")
    else:
        origin["via"] = "import path"
        if name in registered and registered[name].value != origin["class"]:
            origin["clash"] = (f"task {requested!r} is named {name!r}, the name of another registered task "
                               f"({registered[name].value}); their records would share one leaderboard row")
    return origin


def clean_stale_run_dirs() -> list[Path]:
    """Scratch folders of runs whose process no longer exists (killed with SIGKILL)."""
    removed = []
    for folder in Path(tempfile.gettempdir()).glob(f"{RUN_TMP_PREFIX}*"):
        pid = folder.name[len(RUN_TMP_PREFIX):].split("-")[0]
        if pid.isdigit() and not pid_alive(int(pid)):
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    return removed


# -- the suite --------------------------------------------------------------------------------
class Suite:
    """Runs every (seed, arm) of one task config, resuming from existing records."""

    def __init__(self, run: RunConfig, echo: Callable[[str], None] = print):
        self.run = run
        self.echo = echo
        self.task = get_task(run.task)
        self.task.configure(run.budget)
        self.options = parse_options(self.task, run.task_options)
        if self.options is not None:
            self.task.set_options(self.options)
        self.budget = self.task.budget(run.budget).with_overrides(dict(run.budget_overrides))
        self.budget.validate()
        self.engine_cls = get_engine_class(run.engine)
        self.device = resolve_device(run.device)
        # The thread count changes results (bbbp's AUC moved by up to 0.0075 between 1 and 2 threads):
        # it is pinned per run and part of the record identity, so a job gives the same record
        # whichever launcher ran it, and a resume never mixes thread counts under one file name.
        if run.threads:
            torch.set_num_threads(int(run.threads))
        self.threads = torch.get_num_threads()
        self.results_dir = Path(run.results_dir).expanduser().resolve()
        self.env = environment(self.device)
        self.arms = [a for a in ARM_ORDER if a in run.arms]
        self._data_cache: dict[int, TaskData | Exception] = {}
        if self.engine_cls.name == "none" and any(a not in ("baseline", "base_more_training") for a in self.arms):
            self.echo("dendrites=none: only the baseline arm is run")
            self.arms = ["baseline"]
        self.timeout = effective_timeout(run)
        self.task_origin = task_origin(run.task, self.task)
        if self.task_origin.get("clash"):
            self.echo(f"warning: {self.task_origin['clash']}")
        self._load_attempts: dict[int, list[str]] = {}  # network attempts while loading each seed's data
        self._load_reported: set[int] = set()
        for stale in clean_stale_files(self.results_dir) + clean_stale_run_dirs():
            log.info("removed stale temporary file %s (left by a process that was killed)", stale)

    def identity(self, arm: str, seed: int) -> dict[str, Any]:
        """Everything that changes this run's result: the hash of it names the record."""
        return {
            "task": self.run.task, "task_version": self.task.version, "arm": arm, "seed": seed,
            "budget": self.run.budget, "budget_spec": self.budget.spec(), "data_source": self.run.data_source,
            "engine": self.run.engine, "engine_params": self.run.engine_params,
            "compressed_width": self.run.compressed_width if arm == "compressed" else None,
            "wide_tolerance": self.run.wide_tolerance if arm == "wide" else None,
            "device": self.device.type, "threads": self.threads,
            "deterministic": torch.are_deterministic_algorithms_enabled(), "versions": {"python": self.env["python"], "dendrobench": self.env["dendrobench"],
                                                      **self.env["packages"]},
            # only non-default options, and only when there are any: default runs keep their hash
            **({"task_options": opts} if (opts := identity_options(self.options)) else {}),
            # a claim's protocols: only when set, so every ordinary run keeps its hash
            **({"protocol": self.run.protocol, "claim": self.run.claim, "report_split": self.run.report_split}
               if self.run.claim or self.run.protocol != "matched" else {}),
        }

    def resolved_config(self) -> dict[str, Any]:
        cfg = self.run.to_dict()
        cfg["results_dir"] = str(self.results_dir)
        cfg["budget_spec"] = dict(self.budget.__dict__)
        cfg["task_version"] = self.task.version  # part of the record hash; the leaderboard groups by it
        cfg["task_options_resolved"] = options_dict(self.options)  # every option, defaults included
        cfg["task_info"] = {"modality": self.task.modality, "description": self.task.description,
                            "metric": self.task.metric}
        return cfg

    def existing(self, path: Path) -> dict[str, Any] | None:
        if not path.exists():
            return None
        try:
            return read_record(path)
        except RecordError as exc:
            aside = path.with_name(f"{path.name}.corrupt-{int(time.time())}")
            path.rename(aside)
            self.echo(f"warning: record {path} is unusable ({exc}); kept as {aside.name} and the run is redone")
            return None

    def run_all(self) -> list[dict[str, Any]]:
        """Every (seed, arm), in order; a run another process is training (it holds the claim) is
        put off, with the later arms of its seed, until this process has done everything else."""
        from tqdm.auto import tqdm

        seeds = self.run.seed_list
        show = self.run.progress if self.run.progress is not None else (sys.stderr.isatty() and not os.environ.get("CI"))
        done: dict[tuple[int, str], dict[str, Any]] = {}
        later: list[tuple[int, str]] = []
        overall = tqdm(total=len(seeds) * len(self.arms), desc=f"{self.run.task}", unit="run", disable=not show)
        data_cache: dict[int, TaskData | Exception] = {}
        for wait in (False, True):
            for seed in seeds:
                by_arm = {a: r for (s, a), r in done.items() if s == seed}
                for arm in self.arms:
                    if (seed, arm) in done or (wait and (seed, arm) not in later):
                        continue
                    if not wait and any(s == seed for s, _ in later):
                        later.append((seed, arm))  # after an arm of its seed that is put off
                        continue
                    rec = self.run_one(arm, seed, by_arm, data_cache, show, wait=wait)
                    if rec is None:
                        later.append((seed, arm))
                        continue
                    by_arm[arm] = done[(seed, arm)] = rec
                    overall.update(1)
        overall.close()
        return [done[(seed, arm)] for seed in seeds for arm in self.arms if (seed, arm) in done]

    def run_seed(self, seed: int) -> list[dict[str, Any]]:
        """Every arm of one seed (a claim interleaves several suites seed by seed); a run another
        process holds is waited for."""
        show = self.run.progress if self.run.progress is not None else (sys.stderr.isatty() and not os.environ.get("CI"))
        by_arm: dict[str, dict[str, Any]] = {}
        records = []
        for arm in self.arms:
            rec = self.run_one(arm, seed, by_arm, self._data_cache, show, wait=True)
            assert rec is not None  # wait=True returns a record
            by_arm[arm] = rec
            records.append(rec)
        self._data_cache.pop(seed, None)  # a seed's data is not needed again
        return records

    def load(self, seed: int, cache: dict[int, TaskData | Exception]) -> TaskData:
        if seed not in cache:
            attempts = self._load_attempts.setdefault(seed, [])
            try:
                with self.network_guard(attempts):
                    cache[seed] = require_task_data(self.task, self.task.load_data(
                        self.run.data_source, seed, Path(self.run.data_root).expanduser() if self.run.data_root else None))
            except Exception as exc:  # noqa: BLE001 - recorded per run below
                exc.dendrobench_stage = "load_data"  # type: ignore[attr-defined]
                cache[seed] = exc
        got = cache[seed]
        if isinstance(got, Exception):
            raise got
        return got

    def run_one(self, arm: str, seed: int, by_arm: dict[str, dict[str, Any]],
                data_cache: dict[int, TaskData | Exception], show: bool, wait: bool = True) -> dict[str, Any] | None:
        """Resume, or claim and train, one run. While another process holds its claim: wait for its
        record (``wait``) or return None so that the caller does something else first."""
        digest = config_hash(self.identity(arm, seed))
        path = self.record_path(arm, seed, digest)
        announced = False
        while True:
            old = self.existing(path)
            if old is not None and old["status"] == "failed" and str(path) in watchdog.timed_out_paths():
                return old  # it timed out earlier in this same command (the process was restarted to go on)
            if old is not None and old["status"] != "failed":
                self.echo(f"resume: {arm} seed {seed} already recorded ({path.name}, status {old['status']})")
                return old
            claim = try_claim(path)
            if claim is not None:
                old = self.existing(path)  # finished by another process between the look and the claim
                if old is not None and old["status"] != "failed":
                    claim.release()
                    continue
                break
            if not wait:
                return None
            if not announced:
                self.echo(f"waiting: {arm} seed {seed} is being trained by {describe(claim_path(path))}")
                announced = True
            time.sleep(CLAIM_POLL_S)
        try:
            if old is not None:
                self.echo(f"retry: {arm} seed {seed} failed before ({old['message']}); running it again")
            return self.train_claimed(arm, seed, digest, path, by_arm, data_cache, show)
        finally:
            claim.release()

    def train_claimed(self, arm: str, seed: int, digest: str, path: Path, by_arm: dict[str, dict[str, Any]],
                      data_cache: dict[int, TaskData | Exception], show: bool) -> dict[str, Any]:
        """Train a run whose claim this process holds, and write its record."""
        from tqdm.auto import tqdm

        ev = self.task.evaluator
        record = Record(
            config_hash=digest, task=self.task_origin["name"], dataset=None, data_source=self.run.data_source, arm=arm,
            engine=self.run.engine, seed=seed, budget=self.run.budget,
            metric={"name": ev.name, "higher_is_better": ev.higher_is_better},
            config=self.resolved_config(), env=self.env, started=utcnow(),
            protocol=self.run.protocol, claim=self.run.claim,
        )
        record.extra["task_origin"] = {k: v for k, v in self.task_origin.items() if k != "name"}
        record.extra["run_timeout_s"] = self.timeout
        record.extra["network_guard"] = ("offline: connections and DNS lookups to non-loopback hosts blocked while "
                                         "loading and training" if self.run.data_source == "offline" else "none (online)")
        bar = None
        train_attempts: list[str] = []
        stage = "load_data"
        meter = EnergyMeter(bool(self.run.energy))
        t0 = time.perf_counter()
        watch = watchdog.Watch(self.timeout, stuck=lambda: self.stuck(path, record))
        try:
            with watch:
                data = self.load(seed, data_cache)
                stage = "train"
                # wall_s is the arm's own cost: loading (shared by every arm of a seed) is kept apart
                record.extra["data_load_s"] = round(time.perf_counter() - t0, 3)
                record.dataset = data.dataset
                record.extra["data_info"] = dict(data.info)
                spec = self.arm_spec(arm, seed, data, by_arm)  # the wide arm's width search is set-up, not training
                t0 = time.perf_counter()
                bar = tqdm(desc=f"  {arm} s{seed}", unit="step", leave=False, disable=not show)
                meter.start(path.stem)
                with self.network_guard(train_attempts):
                    train_arm(self.task, data, self.budget, spec, self.device, record, progress=bar)
                attempts = self._load_attempts.get(seed, []) + train_attempts
                if attempts:  # even one the plugin caught: an offline run that reached for the network is not ok
                    more = f" (+{len(attempts) - 1} more)" if len(attempts) > 1 else ""
                    raise NetworkBlocked(f"offline run of task {self.task_origin['name']!r} tried the network: "
                                         f"{attempts[0]}{more}")
        except Diverged as exc:
            record.status, record.message = "diverged", str(exc)
        except watchdog.RunTimeout:
            record.status, record.message = "failed", f"timeout after {self.timeout:g} s (run_timeout_s)"
        except UserError:
            # a user error (data to download by hand, a bad setting found late) is not a run that
            # failed: nothing is recorded and the CLI says it in one line
            raise
        except BaseException as exc:  # noqa: BLE001 - a failing run is recorded; the suite goes on
            if interrupts.stops_sweep(exc):  # a real Ctrl-C / SIGTERM: stop, finished runs are kept
                raise
            record.status = "failed"
            stage = getattr(exc, "dendrobench_stage", stage)
            prefix = "loading data failed: " if stage == "load_data" else ""
            record.message = f"{prefix}{type(exc).__name__}: {exc}{plugin_location(exc, self.task)}"
            record.extra["failed_in"] = stage
            record.extra["traceback"] = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__, limit=8))
            if stage == "load_data":
                record.extra["blocked_arms"] = list(self.arms)
        finally:
            meter.stop()
            if bar is not None:
                bar.close()
        record.cost["energy_kwh"] = meter.kwh
        record.extra["energy"] = meter.info
        elapsed = time.perf_counter() - t0 - record.extra.get("export_s", 0.0)
        record.extra["total_s"] = round(elapsed, 3)  # set-up, warm-up, training, test, FLOP counting
        if record.status != "ok" or not record.cost.get("wall_s"):  # train_arm sets it on success
            record.cost["wall_s"] = round(elapsed, 3)
        record.finished = utcnow()
        write_record(path, record)
        if record.extra.get("failed_in") == "load_data":
            if seed not in self._load_reported:  # said once per seed, not once per arm it blocked
                self._load_reported.add(seed)
                self.echo(f"seed {seed}: {record.message} (arms not run: {', '.join(self.arms)})")
        elif record.status != "ok":
            self.echo(f"{arm} seed {seed}: {record.status}: {record.message}")
        return record.to_dict()

    def record_path(self, arm: str, seed: int, digest: str) -> Path:
        """Records are named by the task's own name. One named by how an import-path task was asked
        for (before records carried the task's name) is renamed, so it still resumes."""
        path = record_path(self.results_dir, self.task_origin["name"], arm, seed, digest)
        if self.run.task != self.task_origin["name"] and not path.exists():
            legacy = record_path(self.results_dir, self.run.task, arm, seed, digest)
            if legacy.exists():
                try:
                    legacy.rename(path)
                except OSError:
                    return legacy
        return path

    def network_guard(self, attempts: list[str]) -> Any:
        if self.run.data_source != "offline":
            return nullcontext(attempts)
        return no_network(attempts, label=f"task {self.task_origin['name']!r} (offline)")

    def stuck(self, path: Path, record: Record) -> None:
        """Called by the watchdog when a run did not stop after its timeout (stuck in native code)."""
        record.status = "failed"
        record.message = f"timeout after {self.timeout:g} s (run_timeout_s; stuck in native code)"
        record.finished = utcnow()
        try:
            write_record(path, record)
        except Exception as exc:  # noqa: BLE001 - the run is lost either way; say so
            log.error("could not record the timed-out run %s: %s", path.name, exc)
        self.echo(f"{record.arm} seed {record.seed}: failed: {record.message}; restarting to go on")
        claim_path(path).unlink(missing_ok=True)  # ours: the restarted process (same pid) must not wait on it
        if not watchdog.restart_process(str(path)):
            log.warning("%s seed %s passed run_timeout_s but is stuck in native code; it cannot be stopped from "
                        "inside this process (run it with the dendrobench command to have it stopped)",
                        record.arm, record.seed)

    def dendrites_record(self, seed: int, grace_s: float = 15.0) -> dict[str, Any] | None:
        """The dendrites arm's record of ``seed``, waiting while another process trains it.

        A sweep may run ``arms=[dendrites],[wide]`` as separate jobs: the wide job waits for the
        dendrites job's claim to go (the engines cannot say the final parameter count in advance:
        dendrites are added by validation-driven decisions). ``grace_s`` covers a dendrites job
        started at the same moment that has not taken its claim yet."""
        path = self.record_path("dendrites", seed, config_hash(self.identity("dendrites", seed)))
        claim = claim_path(path)
        deadline, announced = time.monotonic() + grace_s, False
        while True:
            rec = self.existing(path)
            if rec is not None:
                return rec
            held = claim.exists() and not is_stale(claim)
            if not held and time.monotonic() > deadline:
                return None
            if held and not announced:
                self.echo(f"wide seed {seed}: waiting for the dendrites arm ({describe(claim)})")
                announced = True
            time.sleep(CLAIM_POLL_S)

    def planned_target(self, seed: int, data: TaskData) -> int | None:
        """The dendritic model's final parameter count when the engine can say it without training
        (gd with switch_mode=fixed); None otherwise, or when early stopping may end the run sooner."""
        if self.budget.early_stopping:
            return None
        engine = self.engine_cls(self.run.engine_params)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = self.task.build_model(data, 1.0)
        ctx = EngineContext(epochs=self.budget.epochs, steps_per_epoch=1, higher_is_better=self.task.evaluator.higher_is_better,
                            seed=seed, device=torch.device("cpu"), workdir=Path(tempfile.gettempdir()))
        planned = engine.planned_model(model, ctx)
        return None if planned is None else int(engine.inference_params(planned))

    def arm_spec(self, arm: str, seed: int, data: TaskData, by_arm: dict[str, dict[str, Any]]) -> ArmSpec:
        report = self.run.report_split
        if arm in ("baseline", "base_more_training"):  # the latter: a claim's baseline given more steps
            return ArmSpec(arm, seed, report=report)
        if arm == "dendrites":
            return ArmSpec(arm, seed, engine=self.engine_cls(self.run.engine_params), report=report)
        if arm == "compressed":
            return ArmSpec(arm, seed, width=float(self.run.compressed_width),
                           engine=self.engine_cls(self.run.engine_params), report=report)
        dend = by_arm.get("dendrites")
        planned = None if dend is not None else self.planned_target(seed, data)
        if dend is None and planned is None:
            dend = self.dendrites_record(seed, grace_s=0.0 if "dendrites" in self.arms else 15.0)
        if planned is not None and dend is None:
            dend = self.existing(self.record_path("dendrites", seed, config_hash(self.identity("dendrites", seed))))
        if dend is None and planned is not None:
            width, got = match_width(self.task, data, planned, self.run.wide_tolerance)
            if abs(got - planned) / planned > self.run.wide_tolerance:
                raise RuntimeError(f"no width gives {planned} parameters within {self.run.wide_tolerance:.0%} "
                                   f"(closest: width {width:.3f} with {got})")
            return ArmSpec(arm, seed, width=width, target_params=planned, target_source="planned by the engine",
                           report=report)
        if dend is None:
            raise RuntimeError(f"the wide arm matches the dendritic model's parameter count, but the dendrites arm "
                               f"of seed {seed} with these settings has no record: run arms=[dendrites,wide], or "
                               f"the dendrites arm first (in a sweep, any job may run it: wide waits for it)")
        if dend.get("status") != "ok":
            raise RuntimeError(f"the wide arm matches the dendritic model's parameter count, but the dendrites arm "
                               f"of seed {seed} ended {dend.get('status')}: {dend.get('message')}")
        # the final dendritic model's size (records before issue 9 stored it as ``inference``)
        target = int(dend["params"].get("final_inference") or dend["params"]["inference"])
        width, got = match_width(self.task, data, target, self.run.wide_tolerance)
        if abs(got - target) / target > self.run.wide_tolerance:
            raise RuntimeError(f"no width gives {target} parameters within {self.run.wide_tolerance:.0%} "
                               f"(closest: width {width:.3f} with {got})")
        return ArmSpec(arm, seed, width=width, target_params=target, target_source="dendrites record", report=report)
