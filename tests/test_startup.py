"""Issue 13 item 16: ``list``, ``--help``, ``--version`` and bad-input errors answer without
importing torch (10-25 s on a cold start), so they answer in well under 3 s. The unit tests check
what is imported (not a timing); the benchmark (``-m benchmark``) times the commands."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from dendrobench.cli import listing

PROBE = """
import sys
from dendrobench.cli.main import main
code = main(sys.argv[1:])
heavy = sorted(m for m in ("torch", "torch_geometric", "monai", "sklearn", "hydra") if m in sys.modules)
print("HEAVY", ",".join(heavy))
"""

COMMANDS = [["list"], ["list", "budgets"], ["--help"], ["--version"], ["task=nope"], ["task=bbbp", "colour=red"],
            ["task=bbbp", "seed=0", "seeds=5"], ["task=bbbp", "arms=baseline,dendrites"]]


@pytest.fixture
def warm_catalog(tmp_path, monkeypatch, capsys):
    """The catalog filled once (in this process, which has torch already), as a first listing does."""
    monkeypatch.setenv("DENDROBENCH_CACHE", str(tmp_path / "cache"))
    assert listing.main([]) == 0
    capsys.readouterr()
    assert (tmp_path / "cache" / "catalog.json").is_file()
    return tmp_path / "cache"


@pytest.mark.parametrize("args", COMMANDS, ids=" ".join)
def test_answers_without_importing_torch(args, warm_catalog, cli_env, tmp_path):
    env = {**cli_env, "DENDROBENCH_CACHE": str(warm_catalog)}
    out = subprocess.run([sys.executable, "-c", PROBE, *args], env=env, cwd=tmp_path, capture_output=True, text=True,
                         timeout=120)
    assert "HEAVY \n" in out.stdout, out.stdout[-500:] + out.stderr[-2000:]


def test_list_budgets_names_each_task(warm_catalog, capsys):
    assert listing.main(["budgets"]) == 0
    text = capsys.readouterr().out
    lines = text.splitlines()
    assert "budget smoke" in lines[lines.index("  bbbp") + 1]


def test_catalog_is_refreshed_when_a_plugin_changes(tmp_path, monkeypatch):
    from dendrobench.cli.catalog import Catalog, fingerprint

    module = tmp_path / "myplug.py"
    module.write_text("X = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    before = fingerprint("task", "mine", "myplug:Task", None)
    module.write_text("X = 22\n")  # another size
    assert fingerprint("task", "mine", "myplug:Task", None) != before
    cat = Catalog(tmp_path / "c.json")
    calls = []
    assert cat.describe("k", lambda: calls.append(1) or {"a": 1}) == {"a": 1}
    cat.save()
    assert Catalog(tmp_path / "c.json").describe("k", lambda: calls.append(1)) == {"a": 1} and calls == [1]


@pytest.mark.benchmark
@pytest.mark.parametrize("args", COMMANDS, ids=" ".join)
def test_bench_cold_start_under_3_s(args, warm_catalog, cli_env, tmp_path):
    env = {**cli_env, "DENDROBENCH_CACHE": str(warm_catalog)}
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "dendrobench", *args], env=env, cwd=tmp_path, capture_output=True, timeout=120)
    seconds = time.perf_counter() - t0
    print(f"dendrobench {' '.join(args)}: {seconds:.2f} s")
    assert seconds < 3.0
