"""The task plugin contract as named checks, in the spirit of scikit-learn's ``check_estimator``.

A contributor's task is only useful to the benchmark if it keeps the contract of docs/plugins.md: the
runner trusts the task for data and evaluation, so a split that leaks, a loader that reaches the
network or a width multiplier that does nothing would silently corrupt every verdict built on it.
Each clause of the contract is one named check, so a failure says *which* promise is broken and why.

Use from the command line::

    dendrobench check-task NAME          # exit 0 all pass, 1 some fail, 2 unknown task
    dendrobench check-task NAME --source online --root DIR   # the data checks on the real files

or from a plugin's own test suite::

    import pytest
    from dendrobench.authoring.checks import task_checks

    @pytest.mark.parametrize("check", task_checks(MyTask()), ids=str)
    def test_contract(check):
        check()                          # raises CheckFailed with the reason

``check_task(name_or_task)`` runs them all and returns a list of :class:`CheckResult`. The checks of
one ``task_checks`` call share a lazily loaded copy of the data (``source="offline"`` by default, or
``source="online", root=DIR``), so each source is loaded once, plus once more to prove the split is
deterministic. The shared state is in :mod:`.check_state`, example hashing in :mod:`.digests`, the
command line in :mod:`.check_cli`.

What is and is not checked is stated in each check's docstring (shown by ``--list``): these are
smoke tests of the contract, not proofs; a pass means "no violation found", not "correct".
"""

from __future__ import annotations

import math
import re
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from dendrobench.authoring.check_state import (  # noqa: F401 - re-exported: plugins' tests import them here
    CheckFailed,
    CheckResult,
    _describe_exc,
    _plugin_line,
    _shape_hint,
    _TaskUnderTest,
    _Warn,
    no_network,
)
from dendrobench.authoring.digests import example_digest, split_digests  # noqa: F401 - re-exported (plugins' tests)
from dendrobench.authoring.scaffold import NAME_RE, NAME_RULE
from dendrobench.contract.names import KNOWN_BUDGET_NAMES
from dendrobench.contract.task import BUDGET_NAMES, Budget, Task, require_task_data
from dendrobench.errors import DataUnavailableError, UserError
from dendrobench.running.netguard import NetworkBlocked  # noqa: F401 - re-exported for plugins' tests

PROG = "dendrobench check-task"
MAX_TRAIN_STEPS = 200  # the smoke-training check never takes more steps than this
WIDTHS = (0.5, 1.0, 2.0)
KNOWN_MODALITIES = ("tabular", "image", "graph", "text", "3d-volume")
_SLUG = re.compile(r"^[a-z0-9][a-z0-9-]*$")  # modality


# -- the checks -------------------------------------------------------------------------------
def check_metadata(t: _TaskUnderTest) -> str:
    """name, modality and description are present one-line strings; the name and modality are
    lower-case slugs (they name records, folders and leaderboard filters)."""
    task, problems = t.task, []
    for attr in ("name", "modality", "description"):
        value = getattr(task, attr, None)
        if not isinstance(value, str) or not value.strip():
            problems.append(f"{attr} is missing or empty (got {value!r})")
        elif "\n" in value.strip():
            problems.append(f"{attr} must be one line")
    for attr in ("name", "modality"):
        value = getattr(task, attr, None)
        if attr == "name" and isinstance(value, str) and value and not (NAME_RE.match(value) and len(value) <= 40):
            problems.append(f"name {value!r} is not a valid task name: use {NAME_RULE} (the rule of new-task)")
        elif attr == "modality" and isinstance(value, str) and value and not _SLUG.match(value):
            problems.append(f"modality {value!r} must be lower-case letters, digits and '-'")
    version = getattr(task, "version", "1")
    if not isinstance(version, str):
        problems.append(f"version must be a string, got {version!r}")
    if problems:
        raise CheckFailed("; ".join(problems))
    note = "" if task.modality in KNOWN_MODALITIES else f" (modality {task.modality!r} is new; known: {', '.join(KNOWN_MODALITIES)})"
    return f"name {task.name!r}, modality {task.modality!r}, description present{note}"


def check_metric(t: _TaskUnderTest) -> str:
    """``metric`` names a known evaluator, and the evaluator's ``better`` and ``error`` agree with its
    ``higher_is_better`` (a better score never has a larger error)."""
    from dendrobench.contract.metrics import EVALUATORS

    metric = getattr(t.task, "metric", None)
    try:
        ev = t.task.evaluator
    except Exception as exc:  # noqa: BLE001
        raise CheckFailed(f"metric {metric!r} is not a known evaluator ({_describe_exc(exc)}); "
                          f"known: {', '.join(sorted(EVALUATORS))}") from None
    hib = ev.higher_is_better
    if not isinstance(hib, bool):
        raise CheckFailed(f"evaluator {ev.name!r}: higher_is_better must be a bool, got {hib!r}")
    hi, lo = 0.8, 0.3
    good, bad = (hi, lo) if hib else (lo, hi)
    if not ev.better(good, bad) or ev.better(bad, good):
        raise CheckFailed(f"evaluator {ev.name!r}: better() disagrees with higher_is_better={hib}")
    if not ev.error(good) < ev.error(bad):
        raise CheckFailed(f"evaluator {ev.name!r}: error({good}) = {ev.error(good)} is not below "
                          f"error({bad}) = {ev.error(bad)}, yet {good} is the better score")
    return f"{ev.name} ({'higher' if hib else 'lower'} is better); better() and error() agree"


def check_budgets(t: _TaskUnderTest) -> str:
    """Every budget of docs/plugins.md (smoke, quick, standard, full) exists, is a ``Budget`` and
    validates, and so does an optional ``converged``; a budget of another name is refused, since no
    ``budget=`` value could ever select it."""
    budgets = getattr(t.task, "budgets", None)
    if not isinstance(budgets, Mapping):
        raise CheckFailed(f"budgets must be a dict of {', '.join(BUDGET_NAMES)} -> Budget, got {type(budgets).__name__}")
    missing = [b for b in BUDGET_NAMES if b not in budgets]
    if missing:
        raise CheckFailed(f"missing budget(s) {', '.join(missing)}; every task needs {', '.join(BUDGET_NAMES)}")
    unknown = [str(b) for b in budgets if b not in KNOWN_BUDGET_NAMES]
    if unknown:
        raise CheckFailed(f"unknown budget name(s) {', '.join(unknown)}; valid names: {', '.join(KNOWN_BUDGET_NAMES)}")
    problems = []
    present = [b for b in KNOWN_BUDGET_NAMES if b in budgets]
    for name in present:
        budget = budgets[name]
        if not isinstance(budget, Budget):
            problems.append(f"{name} is a {type(budget).__name__}, not dendrobench.contract.task.Budget")
            continue
        try:
            budget.validate()
        except UserError as exc:
            problems.append(f"{name}: {exc}")
    if problems:
        raise CheckFailed("; ".join(problems))
    s = budgets["smoke"]
    steps = f"{s.epochs * s.steps_per_epoch} steps" if s.steps_per_epoch else f"{s.epochs} epoch(s)"
    return f"{', '.join(present)} valid (smoke: {steps})"


def check_offline_no_network(t: _TaskUnderTest) -> str:
    """``load_data('offline')`` runs with connections and DNS lookups blocked and recorded; any attempt
    fails the check, even one the loader caught. (Loopback and Unix sockets are allowed.)"""
    data = t.data("offline")
    if t.network_attempts:
        more = f" (+{len(t.network_attempts) - 1} more)" if len(t.network_attempts) > 1 else ""
        raise CheckFailed(f"task {t.label!r}: load_data('offline') tried the network: {t.network_attempts[0]}{more}")
    if data.source != "offline":
        raise CheckFailed(f"load_data('offline') returned data with source={data.source!r}; records would mislabel it")
    sizes = ", ".join(f"{s} {len(getattr(data, s))}" for s in ("train", "val", "test") if hasattr(getattr(data, s), "__len__"))
    return f"no network used; dataset {data.dataset!r} ({sizes})"


def check_sources_differ(t: _TaskUnderTest) -> str:
    """``load_data('online')`` must not return the offline dataset: records name the data by
    ``TaskData.dataset``, so a loader that ignores ``source`` would label offline results as online.
    A task with one dataset for both sources says so with ``single_source = True``. The online data is
    read from ``--root`` with ``--source online``, else under the network guard (data already on
    disk); when it is not available here the check warns that it compared nothing."""
    offline = t.data("offline")
    if getattr(t.task, "single_source", False):
        return f"single source: dataset {offline.dataset!r} for offline and online"
    try:
        if t.source == "online":
            online = t.data("online")
        else:
            with no_network([]):
                online = require_task_data(t.task, t.fresh_task().load_data("online", t.seed))
    except (DataUnavailableError, OSError) as exc:  # not on this machine (or it needs the network)
        raise _Warn(f"offline {offline.dataset!r}; online data not available here ({' '.join(str(exc).split())[:120]}), "
                    f"so online and offline were not compared: run check-task NAME --source online --root DIR") from None
    except Exception as exc:  # noqa: BLE001 - the online loader broke: worth a look, not this check's failure
        raise _Warn(f"load_data('online') raised {type(exc).__name__}: {' '.join(str(exc).split())[:160]}"
                    f"{_plugin_line(exc, t.task)}; online and offline not compared") from None
    if online.dataset == offline.dataset:
        raise CheckFailed(f"load_data('online') returned dataset {online.dataset!r}, the same as offline: "
                          f"load_data ignores source, or the dataset names do not say which data it is "
                          f"(a task with one dataset for both sources sets single_source = True)")
    if online.source != "online":
        raise CheckFailed(f"load_data('online') returned data with source={online.source!r}")
    return f"offline {offline.dataset!r}, online {online.dataset!r}"


def check_split_determinism(t: _TaskUnderTest) -> str:
    """Two loads with the same seed (the second by a fresh task instance) give identical splits,
    compared example by example through content hashes."""
    first = t.digests()
    task2 = t.fresh_task()
    try:
        data2 = t.load(task2, t.source)
        second = {s: split_digests(task2, getattr(data2, s), s) for s in ("train", "val", "test")}
    except Exception as exc:  # noqa: BLE001
        raise t.fail(f"second {t.call(t.source)}", exc) from None
    for split in ("train", "val", "test"):
        a, b = first[split], second[split]
        if len(a) != len(b):
            raise CheckFailed(f"{split} split has {len(a)} examples in one load and {len(b)} in another with the same seed")
        diff = [i for i, (x, y) in enumerate(zip(a, b)) if x != y]
        if diff:
            same_set = sorted(a) == sorted(b)
            how = "the same examples in a different order" if same_set else "different examples"
            raise CheckFailed(f"{split} split differs between two loads with seed {t.seed}: {len(diff)} of {len(a)} "
                              f"positions hold {how} (first at {split}[{diff[0]}]); seed every random choice")
    hashed = sum(len(v) for v in first.values())
    return f"two loads with seed {t.seed} give identical train/val/test ({hashed} examples hashed)"


def check_splits_disjoint(t: _TaskUnderTest) -> str:
    """No example (by content hash, or the task's ``example_key``) appears in two splits."""
    digests = t.digests()
    empty = [s for s, d in digests.items() if not d]
    if empty:
        raise CheckFailed(f"empty split(s): {', '.join(empty)}")
    first: dict[str, dict[bytes, int]] = {}
    for split, values in digests.items():
        first[split] = {}
        for i, d in enumerate(values):
            first[split].setdefault(d, i)
    problems = []
    for a, b in (("train", "val"), ("train", "test"), ("val", "test")):
        shared = set(first[a]) & set(first[b])
        if shared:
            d = min(shared, key=first[b].__getitem__)  # the earliest in b: a stable, reproducible example
            problems.append(f"{len(shared)} example(s) of {b} also in {a} (e.g. {b}[{first[b][d]}] == {a}[{first[a][d]}])")
    if problems:
        raise CheckFailed(f"duplicate examples across splits of {t.data().dataset!r} ({t.source}): "
                          + "; ".join(problems) + "; drop duplicate rows before splitting")
    return f"no example shared between train, val and test of {t.data().dataset!r} ({t.source})"


def check_metric_range(t: _TaskUnderTest) -> str:
    """An untrained model (seed 0, width 1) evaluated through the runner's smoke loaders gives a
    finite primary metric whose error is in [0, 1] (higher-is-better, bounded) or >= 0 (otherwise)."""
    from dendrobench.running.runner import make_loaders, seed_everything

    data, budget = t.data(), t.smoke_budget()
    ev = t.task.evaluator
    seed_everything(0)
    model = t.build(data, 1.0)
    try:
        loaders = make_loaders(t.task, data, budget, 0)
        values = t.task.evaluate(model, loaders.val, torch.device("cpu"))
    except Exception as exc:  # noqa: BLE001
        raise t.fail("evaluate(untrained model, val)", exc) from None
    if not isinstance(values, Mapping) or ev.name not in values:
        raise CheckFailed(f"evaluate() returned {values!r}; it must be a dict holding {ev.name!r}")
    value = float(values[ev.name])
    if not math.isfinite(value):
        raise CheckFailed(f"{ev.name} of an untrained model is {value}; it must be finite")
    err = ev.error(value)
    if ev.higher_is_better and not 0.0 <= err <= 1.0:
        raise CheckFailed(f"{ev.name} = {value:.4g} gives error {err:.4g}, outside [0, 1] for a bounded score")
    if not ev.higher_is_better and err < 0:
        raise CheckFailed(f"{ev.name} = {value:.4g} gives a negative error {err:.4g}")
    return f"untrained model: val {ev.name} = {value:.4g}, error {err:.4g}"


def check_trains_on_smoke(t: _TaskUnderTest) -> str:
    """The smoke budget's steps (at most 200) through the runner's own pieces (loaders, optimizer,
    schedule, train step) on CPU: every loss finite and some parameter changes. The loss on one fixed
    training batch (train mode, same RNG state) is compared before and after; if it did not fall the
    check passes with a warning, since a few steps prove the wiring, not learning."""
    from dendrobench.contract.engine import DendriteEngine, EngineContext
    from dendrobench.running.runner import (
        cycle_batches,
        lr_factor,
        make_loaders,
        optimizer_factory,
        seed_everything,
    )

    data, budget = t.data(), t.smoke_budget()
    task = t.task
    seed_everything(0)
    model = t.build(data, 1.0)
    engine = DendriteEngine()

    def loss_fn(m: torch.nn.Module, batch: Any) -> torch.Tensor:
        return task.loss(m(*task.inputs(batch)), batch)

    def probe_loss(m: torch.nn.Module, batch: Any) -> float:
        with torch.random.fork_rng(), torch.no_grad():
            torch.manual_seed(1)
            m.train()
            return float(loss_fn(m, batch))

    with tempfile.TemporaryDirectory(prefix="dendrobench-check-") as workdir:
        try:
            loaders = make_loaders(task, data, budget, 0)
            ctx = EngineContext(epochs=budget.epochs, steps_per_epoch=loaders.steps_per_epoch,
                                higher_is_better=task.evaluator.higher_is_better, seed=0,
                                device=torch.device("cpu"), workdir=Path(workdir))
            model = engine.wrap(model, ctx)
            build = optimizer_factory(budget)
            optimizer = engine.make_optimizer(model, build)
            total = min(ctx.total_steps, MAX_TRAIN_STEPS)
            probe = next(iter(loaders.train()))
            before_params = [p.detach().clone() for p in model.parameters()]
            if not before_params:
                raise CheckFailed("the model has no parameters")
            try:
                before = probe_loss(model, probe)
            except Exception as exc:  # noqa: BLE001 - a wrong output shape: say so before torch's own message
                with torch.no_grad():
                    output = model(*task.inputs(probe))
                raise CheckFailed(f"task {t.label!r}: loss(output, batch) raised {_describe_exc(exc)}"
                                  f"{_plugin_line(exc, task)}{_shape_hint(task, output, probe)}") from None
            batches = cycle_batches(loaders.train)
            losses = []
            for step in range(total):
                for group in optimizer.param_groups:
                    group["lr"] = budget.lr * lr_factor(budget, step, ctx.total_steps)
                loss = engine.train_step(model, next(batches), loss_fn, optimizer, ctx, budget.grad_clip)
                if not math.isfinite(loss):
                    raise CheckFailed(f"non-finite training loss {loss} at step {step + 1} of {total}")
                losses.append(loss)
            after = probe_loss(model, probe)
        except CheckFailed:
            raise
        except Exception as exc:  # noqa: BLE001
            raise t.fail("smoke training", exc) from None
    changed = sum(not torch.equal(a, b.detach()) for a, b in zip(before_params, model.parameters()))
    if changed == 0:
        raise CheckFailed(f"no parameter changed in {total} optimizer steps; is the loss connected to the model?")
    if not math.isfinite(after):
        raise CheckFailed(f"loss on a fixed training batch became {after} after {total} steps")
    frozen = len(before_params) - changed
    note = f"; {frozen} of {len(before_params)} parameter tensors never changed" if frozen else ""
    summary = f"{total} steps, losses finite; fixed-batch loss {before:.4g} -> {after:.4g}{note}"
    if not after < before:
        raise _Warn(f"{summary}: it did not fall (the wiring works; look at lr and smoke steps)")
    return summary


def check_width_multiplier(t: _TaskUnderTest) -> str:
    """``build_model(data, width)`` has strictly more parameters at width 0.5 < 1 < 2: the wide
    (capacity-matched) and compressed arms depend on it."""
    from dendrobench.running.cost import count_params

    data = t.data()
    t.smoke_budget()
    counts = [count_params(t.build(data, w)) for w in WIDTHS]
    shown = ", ".join(f"width {w}: {c:,}" for w, c in zip(WIDTHS, counts))
    if not counts[0] < counts[1] < counts[2]:
        raise CheckFailed(f"parameter count does not grow with width ({shown}); scale hidden sizes by width")
    return shown


CHECKS: dict[str, Callable[[_TaskUnderTest], str]] = {
    "metadata": check_metadata,
    "metric": check_metric,
    "budgets": check_budgets,
    "offline_no_network": check_offline_no_network,
    "sources_differ": check_sources_differ,
    "split_determinism": check_split_determinism,
    "splits_disjoint": check_splits_disjoint,
    "metric_range": check_metric_range,
    "trains_on_smoke": check_trains_on_smoke,
    "width_multiplier": check_width_multiplier,
}


@dataclass
class TaskCheck:
    """One named contract check bound to a task. Calling it raises :class:`CheckFailed` with the
    reason when the contract is broken (for pytest); ``run()`` never raises and returns a result."""

    name: str
    task_label: str
    _fn: Callable[[_TaskUnderTest], str] = field(repr=False)
    _state: _TaskUnderTest = field(repr=False)

    def __str__(self) -> str:  # pytest ids: parametrize(..., ids=str)
        return self.name

    @property
    def doc(self) -> str:
        return " ".join((self._fn.__doc__ or "").split())

    def run(self) -> CheckResult:
        t0 = time.perf_counter()
        status, reason = "pass", ""
        try:
            reason = self._fn(self._state)
        except _Warn as w:
            status, reason = "warn", str(w)
        except CheckFailed as exc:
            status, reason = "fail", str(exc)
        except KeyboardInterrupt:
            raise
        except Exception as exc:  # noqa: BLE001 - a plugin bug is a failed check, never a traceback
            status, reason = "fail", f"task {self.task_label!r}: {_describe_exc(exc)}{_plugin_line(exc, self._state.task)}"
        return CheckResult(self.name, status, reason, round(time.perf_counter() - t0, 3))

    def __call__(self) -> CheckResult:
        result = self.run()
        if result.status == "fail":
            raise CheckFailed(f"{self.name}: {result.reason}")
        if result.status == "warn":
            import warnings

            warnings.warn(f"{self.task_label} {self.name}: {result.reason}", stacklevel=2)
        return result


def resolve_task(name_or_task: str | Task | type[Task]) -> tuple[Task, str]:
    """A task instance and the label to report it by, from a registered name, an import path
    (``pkg.mod:Class``), a Task subclass or an instance. Unknown names raise ConfigError; a task
    whose constructor raises propagates that exception (the CLI reports it as a failed check)."""
    if isinstance(name_or_task, Task):
        return name_or_task, getattr(name_or_task, "name", type(name_or_task).__name__)
    if isinstance(name_or_task, type) and issubclass(name_or_task, Task):
        return name_or_task(), getattr(name_or_task, "name", name_or_task.__name__)
    if isinstance(name_or_task, str):
        from dendrobench.contract.registry import load_task_class

        return load_task_class(name_or_task)(), name_or_task
    raise TypeError(f"expected a task name, a Task subclass or instance, got {type(name_or_task).__name__}")


def task_checks(name_or_task: str | Task | type[Task], only: Sequence[str] | None = None, seed: int = 0,
                label: str | None = None, source: str = "offline", root: Path | None = None) -> Iterator[TaskCheck]:
    """Yield the contract checks for a task, each a callable named after its contract clause.

    The checks share one lazily loaded copy of the data: ``source`` (``offline``, or ``online`` read
    from ``root``) is what the data checks (determinism, disjoint splits, metric range, training,
    width) run on; ``offline_no_network`` always loads the offline data. ``only`` restricts them by
    name; ``label`` is how reasons name the task (default: the name it was given by, or its ``name``)."""
    task, default_label = resolve_task(name_or_task)
    label = label or default_label
    wanted = list(only) if only else list(CHECKS)
    unknown = [n for n in wanted if n not in CHECKS]
    if unknown:
        from dendrobench.errors import unknown_choice

        raise unknown_choice("check", unknown[0], CHECKS)
    state = _TaskUnderTest(task, label, seed, source, root)
    for name in wanted:
        yield TaskCheck(name, label, CHECKS[name], state)


def check_task(name_or_task: str | Task | type[Task], only: Sequence[str] | None = None, source: str = "offline",
               root: Path | None = None) -> list[CheckResult]:
    """Run every check and return the results (never raises for a broken plugin)."""
    return [check.run() for check in task_checks(name_or_task, only, source=source, root=root)]



