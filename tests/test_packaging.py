"""A non-editable wheel carries everything: configs, tasks, baselines, leaderboard, and runs from
any working directory (nothing depends on the source tree)."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "--no-build-isolation", "-q",
                    "-w", str(out)], check=True, capture_output=True, timeout=300)
    return next(out.glob("dendrobench-*.whl"))


def test_wheel_contains_package_data_and_mapped_packages(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    for required in ("dendrobench/conf/config.yaml", "dendrobench/conf/dendrites/gd.yaml", "dendrobench/cli.py",
                     "dendrobench/tasks/__init__.py", "dendrobench/tasks/bbbp.py", "dendrobench/baselines/__init__.py",
                     "dendrobench/leaderboard/__init__.py", "dendrobench/templates/new_task/package/task.py.j2"):
        assert required in names, f"{required} missing from the wheel"
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    text = zipfile.ZipFile(wheel).read(entry_points).decode()
    assert "[dendrobench.tasks]" in text and "bbbp = dendrobench.tasks.bbbp:BBBPTask" in text
    assert "dendrobench = dendrobench.cli:main" in text


def test_installed_wheel_runs_from_another_directory(wheel, tmp_path):
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target), str(wheel)],
                   check=True, capture_output=True, timeout=300)
    code = ("import sys, dendrobench, dendrobench.cli as c; "
            "assert dendrobench.__file__.startswith(sys.argv[1]), dendrobench.__file__; "
            "sys.exit(c.main(['task=toy_task:SpiralTask', 'budget=smoke', 'seed=0', 'arms=[baseline]', "
            "'results_dir=' + sys.argv[2]]))")
    env = {"PYTHONPATH": f"{target}:{ROOT / 'tests'}", "PATH": "/usr/bin:/bin", "CI": "1"}
    work = tmp_path / "elsewhere"
    work.mkdir()
    out = subprocess.run([sys.executable, "-c", code, str(target), str(tmp_path / "res")], cwd=work, env=env,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert len(list((tmp_path / "res").glob("*.json"))) == 1
    assert list(work.iterdir()) == []
