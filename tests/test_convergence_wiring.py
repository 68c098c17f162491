"""The convergence rule on the leaderboard (issue 21.1): an under-trained row shows "under-trained:
no verdict" and is never publishable; 2x-budget baseline runs decide, and are evidence rather than
a row of their own; the CSV, the Markdown and the CLI carry the status of every row."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from recordfactory import make_record, paired, write

from dendrobench.evidence.convergence import NO_VERDICT
from leaderboard.build import build_site, main

SPEC = {"epochs": 10, "steps_per_epoch": 10}


def _row(task: str, shift: float, rising: bool, epochs: int = 10) -> list:
    rng = np.random.default_rng(len(task))
    base = 0.3 + 0.02 * rng.standard_normal(10)
    recs = paired(task, {"baseline": list(base), "dendrites": list(base * (1 - shift))}, budget="standard",
                  rising=rising, epochs=epochs, steps=epochs * 10,
                  extra_config={"budget_spec": {**SPEC, "epochs": epochs}})
    for r in recs:
        r.cost.update(max_steps=epochs * 10, max_epochs=epochs, steps_per_epoch=10)
    return recs


def _doubles(task: str, gain: float) -> list:
    """Baseline runs of seeds 0-2 at twice the steps, their error lower by ``gain``."""
    rng = np.random.default_rng(len(task))
    base = 0.3 + 0.02 * rng.standard_normal(10)
    out = []
    for seed in range(3):
        r = make_record(task, "baseline", seed, float(base[seed] - gain), budget="standard", epochs=20, steps=200,
                        extra_config={"budget_spec": {**SPEC, "epochs": 20}}, finished="2026-01-02T00:00:00Z")
        r.cost.update(max_steps=200, max_epochs=20, steps_per_epoch=10)
        out.append(r)
    return out


def test_rising_baseline_gets_no_verdict_and_is_not_publishable(tmp_path: Path) -> None:
    write(tmp_path / "res", _row("bbbp", 0.2, rising=True) + _row("cifar10", 0.2, rising=False))
    res = build_site([tmp_path / "res"], tmp_path / "site")
    by_task = {r.key.task: r for r in res.rows}
    rising, flat = by_task["bbbp"], by_task["cifar10"]
    assert rising.cells["verdict"].text.startswith(NO_VERDICT) and "the test alone: better" in rising.cells[
        "verdict"].text
    assert not rising.publishable and rising.cells["convergence"].text == "under-trained (history)"
    assert flat.cells["verdict"].text.startswith("better") and flat.publishable
    assert flat.cells["convergence"].text == "not checked"
    csv = res.csv.read_text()
    assert "under-trained: no verdict" in csv and ",under-trained,history," in csv
    assert "under-trained (history)" in res.markdown.read_text()
    # the forest plot: the under-trained row is muted and its significant estimate not filled
    from leaderboard.forest import forest_rows

    plotted = {f.label: f for f in forest_rows(res.rows, lambda r: None)}
    under = next(f for label, f in plotted.items() if label.startswith("bbbp"))
    ok = next(f for label, f in plotted.items() if label.startswith("cifar10"))
    assert under.muted and "under-trained" in under.sublabel and not under.estimates[0].significant
    assert NO_VERDICT in under.estimates[0].tip
    assert not ok.muted and ok.estimates[0].significant


def test_a_double_budget_run_decides_and_is_not_a_row(tmp_path: Path) -> None:
    # the history says rising, but 2x the steps lowers the error by less than its seed-to-seed SD
    write(tmp_path / "res", _row("bbbp", 0.2, rising=True) + _doubles("bbbp", gain=0.001))
    res = build_site([tmp_path / "res"], tmp_path / "site")
    assert len(res.rows) == 1  # the 2x runs are evidence for the row, not a baseline-only row
    row = res.rows[0]
    assert row.cells["convergence"].text == "converged (2x budget)" and row.cells["verdict"].text.startswith("better")
    # a 2x budget that still gains a lot: under-trained, whatever the history
    write(tmp_path / "res2", _row("bbbp", 0.2, rising=False) + _doubles("bbbp", gain=0.1))
    row = build_site([tmp_path / "res2"], tmp_path / "site2").rows[0]
    assert row.cells["convergence"].text == "under-trained (2x budget)"
    assert row.cells["verdict"].text.startswith(NO_VERDICT)


def test_a_fork_row_takes_the_matched_double_budget_runs(tmp_path: Path) -> None:
    """protocol=fork's baseline arm is the matched baseline (it trains on unchanged past the fork),
    so the matched 2x runs decide the fork row's convergence as well."""
    fork = _row("bbbp", 0.2, rising=True)
    for r in fork:
        r.protocol = "fork"
    write(tmp_path / "res", fork + _doubles("bbbp", gain=0.1))
    (row,) = [r for r in build_site([tmp_path / "res"], tmp_path / "site").rows if r.key.protocol == "fork"]
    assert row.cells["convergence"].text == "under-trained (2x budget)"


def test_cli_prints_every_row_with_its_convergence(tmp_path: Path, capsys) -> None:
    write(tmp_path / "res", _row("bbbp", 0.2, rising=True) + _row("cifar10", 0.2, rising=False))
    assert main([str(tmp_path / "res"), "--out", str(tmp_path / "site")]) == 0
    out = capsys.readouterr().out
    assert "bbbp (ds) · gd · standard: under-trained: no verdict" in out and "[convergence: under-trained (history)]" in out
    assert "cifar10 (ds) · gd · standard: better (p = " in out and "[convergence: not checked]" in out
