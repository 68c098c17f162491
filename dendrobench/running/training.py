"""One arm's training: the optimizer a budget names, the wide arm's width search, the warm-up that
keeps one-time costs off the clock, and :func:`train_arm`, the loop every arm of every task runs
(the rules are in :mod:`dendrobench.running.runner`). A dendritic arm whose selected model has no
dendrites is named here (:func:`null_arm_reason`), where the counts are known."""

from __future__ import annotations

import contextlib
import copy
import logging
import math
import os
import random
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from dendrobench.contract.engine import DendriteEngine, EngineContext
from dendrobench.contract.task import Budget, Task, TaskData, move_to
from dendrobench.running.cost import count_params, flops_per_sample, peak_memory_mb, reset_peak_memory
from dendrobench.running.environment import seed_everything
from dendrobench.running.loaders import Loaders, cycle_batches, make_loaders
from dendrobench.running.results import (
    Record,
)
from dendrobench.running.schedules import LRSchedule, lr_factor  # noqa: F401 - lr_factor re-exported for plugins' checks

log = logging.getLogger("dendrobench")
RUN_TMP_PREFIX = "dendrobench-run-"  # + pid: a run's scratch folder in the system temp directory


class Diverged(Exception):
    """Training produced a non-finite loss or validation score."""


# -- environment ------------------------------------------------------------------------------
def optimizer_factory(budget: Budget) -> Callable[[list[nn.Parameter]], torch.optim.Optimizer]:
    """The budget's optimizer, always the ``foreach`` (multi-tensor) implementation: PyTorch picks it
    on CUDA by default but the per-parameter Python loop on CPU, and for the same steps both give
    the same parameters bit for bit (tests/test_speed_identity.py), so records keep their numbers.
    Not ``fused``: its CPU kernel rounds differently."""
    def build(params: list[nn.Parameter]) -> torch.optim.Optimizer:
        kw = {"lr": budget.lr, "weight_decay": budget.weight_decay, "foreach": True}
        if budget.optimizer == "sgd":
            return torch.optim.SGD(params, momentum=0.9, nesterov=True, **kw)
        if budget.optimizer == "adamw":
            return torch.optim.AdamW(params, **kw)
        return torch.optim.Adam(params, **kw)

    return build


def sync_optimizer(optimizer: torch.optim.Optimizer, model: nn.Module,
                   build: Callable[[list[nn.Parameter]], torch.optim.Optimizer]) -> torch.optim.Optimizer:
    """After a restructure: new parameters join the optimizer (old state kept); if parameters
    vanished (an engine replaced modules) the optimizer is rebuilt.

    An optimizer of one group takes the new parameters into that group, after its own; otherwise
    they join as a new group with group 0's settings. Why one group: the ``foreach`` step makes
    its multi-tensor calls once per group, so each cycle's extra group cost about 80 us per step
    of the credit-default MLP with two dendrites (issue 20). The parameters are in the same order
    either way (gradient clipping sums their norms in that order), every hyperparameter is group
    0's, and Adam's per-parameter arithmetic does not depend on its group, so the steps are the
    same bit for bit (``tests/test_speed_identity.py``).
    """
    current = {id(p) for p in model.parameters()}
    known = {id(p) for g in optimizer.param_groups for p in g["params"]}
    if known - current:
        return build([p for p in model.parameters() if p.requires_grad])
    new = [p for p in model.parameters() if id(p) not in known and p.requires_grad]
    if new and len(optimizer.param_groups) == 1:
        optimizer.param_groups[0]["params"].extend(new)
    elif new:
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
            loaders: Loaders, device: torch.device, autocast: Callable[[], Any] = contextlib.nullcontext) -> float:
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
            loss = forward_loss(task, scratch, batch, autocast)  # the training step's own arithmetic
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


def null_arm_reason(added: Any, at_selected: int | None, final: int | None, selected_epoch: int) -> str | None:
    """Why a dendritic run has no dendrites where it matters, or None (issue 9 item 5, issue 24).

    Judged by the selected model: dendrites added and then all dropped (PAI's rollback) leave the
    base model, as surely as none added. ``None`` counts are an engine that cannot count its
    dendrites (it does not override ``dendrite_count``): unknown, not 0, so not flagged.
    """
    if not added and not final:
        return "added no dendrites: this arm trained the base model"
    if at_selected is None or at_selected > 0:
        return None
    if final:
        return (f"the selected model (epoch {selected_epoch}) has 0 dendrites (the final model has {final} in total, "
                "summed over its layers; max_dendrites counts per layer): "
                "its test metric is the base model's")
    return f"added {added} dendrites, then dropped all of them: the selected model is the base model"


def autocast_for(device: torch.device, precision: str) -> Callable[[], Any]:
    """A fresh context for one training forward pass: bf16 autocast on ``device`` (CUDA's tensor
    cores, or a CPU with bf16 support), or nothing for fp32.

    Why only the forward pass: autocast's own advice is to leave backward outside it (the backward
    ops run in the dtypes the forward chose), and bf16 keeps fp32's exponent range, so no gradient
    scaler is needed. The parameters and the optimizer stay fp32. Validation and test are not
    autocast: the metric every arm is compared on is computed at full precision.
    """
    if precision == "fp32":
        return contextlib.nullcontext
    return lambda: torch.autocast(device_type=device.type, dtype=torch.bfloat16)


def forward_loss(task: Task, model: nn.Module, batch: Any, autocast: Callable[[], Any]) -> torch.Tensor:
    """The task's training loss, the forward pass under ``autocast`` (see :func:`autocast_for`) and
    the loss itself from fp32 outputs: not every task's loss (Dice, say) is on autocast's lists.
    Under fp32 ``.float()`` returns the tensor itself, so results are exactly what they were."""
    with autocast():
        out = model(*task.inputs(batch))
    return task.loss(out.float() if isinstance(out, torch.Tensor) and out.is_floating_point() else out, batch)


def train_arm(task: Task, data: TaskData, budget: Budget, spec: ArmSpec, device: torch.device,
              record: Record, progress: Any | None = None, precision: str = "fp32") -> Record:
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

        autocast = autocast_for(device, precision)

        def loss_fn(m: nn.Module, batch: Any) -> torch.Tensor:
            return forward_loss(task, m, batch, autocast)

        schedule = LRSchedule(budget, total, loaders.steps_per_epoch, evaluator.higher_is_better)
        schedule.attach(optimizer)
        record.extra["warmup_s"] = round(warm_up(task, model, build, loaders, device, autocast), 3)
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
        counted = spec.engine is None or type(engine).dendrite_count is not DendriteEngine.dendrite_count
        sel_count, final_count = ((engine.dendrite_count(best_model), engine.dendrite_count(model)) if counted
                                  else (None, None))  # an engine that cannot count: unknown, not 0
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
