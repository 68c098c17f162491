"""Synthetic run records for the statistics and leaderboard tests.

Kept out of conftest.py (shared with other suites) and built through the real
``dendrobench.running.results.Record`` / ``write_record`` so the tests exercise the schema the runner writes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from dendrobench.running.results import Record, record_path, write_record

METRICS = {"bbbp": ("roc_auc", True), "cifar10": ("accuracy", True), "wikitext2": ("perplexity", False)}


def make_record(task: str = "bbbp", arm: str = "baseline", seed: int = 0, error: float | None = 0.2, *,
                status: str = "ok", message: str | None = None, engine: str = "gd", budget: str = "quick",
                data_source: str = "offline", dataset: str | None = "ds", modality: str | None = "graph",
                description: str = "a synthetic task", params: int = 1000, flops: float | None = 2e6,
                wall_s: float = 10.0, steps: int = 100, epochs: int = 5, cycles: int = 0,
                metric: tuple[str, bool] | None = None, finished: str = "2026-01-01T00:01:00Z",
                extra_config: dict[str, Any] | None = None, rising: bool = False) -> Record:
    """One record; the metric value is derived from ``error`` (1 - error, or error itself if lower is better)."""
    name, hib = metric or METRICS.get(task, ("roc_auc", True))
    value = None if error is None else (1 - error if hib else error)
    history = []
    for epoch in range(1, epochs + 1):
        event = "dendrites_added" if arm in ("dendrites", "compressed") and epoch <= cycles else None
        # a curve that plateaus half-way (its first best is not late: the convergence rule sees a
        # trained baseline); rising=True keeps improving to the last epoch (an under-trained run)
        gap = (epochs - epoch) if rising else max(0, epochs // 2 - epoch)
        v = None if value is None else value - (0.05 if hib else -0.05) * gap / epochs
        history.append({"epoch": epoch, "step": epoch * steps // epochs, "train_loss": 1.0 / epoch,
                        "val": {} if v is None else {name: v}, "event": event})
    ident = f"{task}|{arm}|{seed}|{engine}|{budget}|{data_source}|{dataset}|{finished}"
    config: dict[str, Any] = {"task": task, "seed": seed, "arm": arm}
    if modality is not None:
        config["task_info"] = {"modality": modality, "description": description}
    config.update(extra_config or {})
    return Record(
        config_hash=hashlib.sha256(ident.encode()).hexdigest(), task=task, dataset=dataset,
        data_source=data_source, arm=arm, engine=engine, seed=seed, budget=budget,
        metric={"name": name, "higher_is_better": hib}, config=config,
        env={"python": "3.11.7", "torch": "2.3.0", "dendrobench": "0.1.0", "device": "cpu", "git_commit": "abc123"},
        started="2026-01-01T00:00:00Z", finished=finished, status=status, message=message,
        val={} if value is None else {name: value}, test={} if value is None else {name: value},
        error=error if status == "ok" else None,
        params={"train": params, "inference": params},
        cost={"steps": steps, "epochs": epochs, "wall_s": wall_s, "flops_per_sample": flops,
              "peak_mem_mb": 100.0, "energy_kwh": None},
        dendrites={"cycles": cycles, "added": cycles * 3}, history=history,
    )


def write(results_dir: Path, records: Iterable[Record]) -> list[Path]:
    """Write records where the runner would put them."""
    paths = []
    for rec in records:
        path = record_path(results_dir, rec.task, rec.arm, rec.seed, rec.config_hash)
        write_record(path, rec)
        paths.append(path)
    return paths


def paired(task: str, errors: dict[str, Sequence[float]], **kw: Any) -> list[Record]:
    """Records for each arm with one error per seed: ``{"baseline": [.2, .3], "dendrites": [.1, .2]}``."""
    out = []
    for arm, errs in errors.items():
        for seed, err in enumerate(errs):
            extra = {"params": 1800, "flops": 3.6e6, "wall_s": 20.0, "cycles": 2} if arm == "dendrites" else {}
            if arm == "wide":
                extra = {"params": 1800, "flops": 3.6e6, "wall_s": 12.0}
            if arm == "compressed":
                extra = {"params": 600, "flops": 1.2e6, "wall_s": 8.0, "cycles": 2}
            out.append(make_record(task, arm, seed, err, **{**extra, **kw}))
    return out
