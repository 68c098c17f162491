"""Speed target: 10,000 records across 5 tasks -> the whole site in under 10 s on 2 cores.

Run with ``pytest tests/test_leaderboard_bench.py --benchmark-only`` (skipped by default).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import recordfactory as rf
from dendrobench.leaderboard.build import build_site

from dendrobench.running.results import record_path

TASKS = ("bbbp", "cifar10", "brain-tumour", "credit-default", "wikitext2")
SEEDS = 500  # 5 tasks x 4 arms x 500 seeds = 10,000 records
TARGET_S = 10.0


@pytest.fixture(scope="module")
def big_results(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """10,000 records with 20-epoch histories, written as JSON directly (validated once per shape)."""
    out = tmp_path_factory.mktemp("bench") / "results"
    out.mkdir()
    for t, task in enumerate(TASKS):
        for arm, base in (("baseline", .30), ("dendrites", .27), ("wide", .29), ("compressed", .31)):
            for seed in range(SEEDS):
                err = base + 0.02 * ((seed * 7919 + t * 31) % 100) / 100
                rec = rf.make_record(task, arm, seed, err, epochs=20, steps=400,
                                     cycles=3 if arm in ("dendrites", "compressed") else 0)
                path = record_path(out, task, arm, seed, rec.config_hash)
                path.write_text(json.dumps(rec.to_dict(), indent=1))
    return out


def test_site_from_10k_records(benchmark, big_results: Path, tmp_path: Path) -> None:
    timings: list[float] = []

    def run() -> None:
        t0 = time.perf_counter()
        res = build_site([big_results], tmp_path / "site")
        timings.append(time.perf_counter() - t0)
        assert len(res.rows) == 5 and sum(len(r.group.records) for r in res.rows) == 10_000

    benchmark.pedantic(run, rounds=3, iterations=1)
    assert min(timings) < TARGET_S, f"site took {min(timings):.1f} s for 10,000 records (target {TARGET_S} s)"
