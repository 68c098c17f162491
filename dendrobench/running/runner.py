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

This module is the suite: which arms run, in what order, under which claim lock and timeout, and
what is recorded. One arm's loop is :mod:`dendrobench.running.training`, its data
:mod:`dendrobench.running.loaders`, its provenance :mod:`dendrobench.running.environment`; their
names stay importable from here.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import torch

from dendrobench.contract.diagnostics import plugin_location
from dendrobench.contract.engine import EngineContext
from dendrobench.contract.options import as_dict as options_dict
from dendrobench.contract.options import identity_options, parse_options
from dendrobench.contract.registry import get_engine_class, get_task
from dendrobench.contract.task import Task, TaskData, require_task_data
from dendrobench.errors import UserError
from dendrobench.running import interrupts, watchdog
from dendrobench.running.config import RunConfig, effective_timeout
from dendrobench.running.energy import EnergyMeter
from dendrobench.running.environment import (  # noqa: F401,E501
    environment,
    git_commit,
    package_versions,
    resolve_device,
    seed_everything,
    utcnow,
)
from dendrobench.running.loaders import Loaders, check_splits, cycle_batches, make_loaders, subset  # noqa: F401,E501
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
from dendrobench.running.training import (  # noqa: F401,E501
    RUN_TMP_PREFIX,
    ArmSpec,
    Diverged,
    match_width,
    null_arm_reason,
    optimizer_factory,
    sync_optimizer,
    train_arm,
    warm_up,
)

log = logging.getLogger("dendrobench")

ARM_ORDER = ("baseline", "dendrites", "wide", "compressed", "base_more_training")
DENDRITIC_ARMS = ("dendrites", "compressed")
CLAIM_POLL_S = 2.0  # how often a run waiting for another process's claim looks again


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
            # only when not fp32, so that every fp32 run keeps its hash
            **({"precision": self.run.precision} if self.run.precision != "fp32" else {}),
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
                    train_arm(self.task, data, self.budget, spec, self.device, record, progress=bar,
                              precision=self.run.precision)
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
