"""A non-editable wheel carries everything: configs, tasks, baselines, leaderboard, and runs from
any working directory (nothing depends on the source tree)."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _setuptools_major() -> int:
    from importlib.metadata import version

    return int(version("setuptools").split(".")[0])


# These builds run without build isolation (no network), so they use this interpreter's setuptools;
# pip's isolated build would fetch what pyproject.toml's build-system asks for (>= 77: SPDX license).
needs_setuptools = pytest.mark.skipif(_setuptools_major() < 77, reason="the build needs setuptools >= 77 "
                                      "(a venv's bundled setuptools shadows the system's: pip uninstall setuptools)")
pytestmark = needs_setuptools


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "--no-build-isolation", "-q",
                    "-w", str(out)], check=True, capture_output=True, timeout=300)
    return next(out.glob("dendrobench-*.whl"))


def test_wheel_contains_package_data_and_mapped_packages(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    for required in ("dendrobench/conf/config.yaml", "dendrobench/conf/dendrites/gd.yaml", "dendrobench/cli/main.py",
                     "dendrobench/tasks/__init__.py", "dendrobench/tasks/bbbp.py", "dendrobench/baselines/__init__.py",
                     "dendrobench/leaderboard/__init__.py", "dendrobench/authoring/templates/new_task/package/task.py.j2"):
        assert required in names, f"{required} missing from the wheel"
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    text = zipfile.ZipFile(wheel).read(entry_points).decode()
    assert "[dendrobench.tasks]" in text and "bbbp = dendrobench.tasks.bbbp:BBBPTask" in text
    assert "dendrobench = dendrobench.cli.main:main" in text


def test_wheel_carries_every_file_of_the_source_packages(wheel):
    """A data folder added without listing it in pyproject.toml would be missing from installs."""
    names = set(zipfile.ZipFile(wheel).namelist())
    mapping = {"dendrobench": ROOT / "dendrobench", "dendrobench/tasks": ROOT / "tasks",
               "dendrobench/baselines": ROOT / "baselines", "dendrobench/leaderboard": ROOT / "leaderboard"}
    # leaderboard/published/ holds the project's published records and site (issue 12): repository
    # content the leaderboard is rebuilt from, not something an installed dendrobench runs on
    published = ROOT / "leaderboard" / "published"
    missing = []
    for prefix, folder in mapping.items():
        for path in folder.rglob("*"):
            if path.is_relative_to(published):
                continue
            if path.is_file() and "__pycache__" not in path.parts and not path.name.startswith("."):
                name = f"{prefix}/{path.relative_to(folder).as_posix()}"
                if name not in names:
                    missing.append(name)
    assert missing == []


def test_installed_wheel_runs_from_another_directory(wheel, tmp_path):
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target), str(wheel)],
                   check=True, capture_output=True, timeout=300)
    code = ("import sys, dendrobench, dendrobench.cli.main as c; "
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


def test_editable_install_is_quiet(tmp_path):
    """Issue 13 item 22: a new user's ``pip install -e .`` prints no warnings from our packaging
    (license table, data folders missing from ``packages``, the old ``wheel`` package)."""
    import re

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", "--system-site-packages", str(venv)],
                   check=True, timeout=120)
    out = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-v", "-e", str(ROOT), "--no-deps",
                          "--no-build-isolation", "--no-cache-dir", "--disable-pip-version-check"],
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    text = out.stdout + out.stderr
    # InformationOnly is setuptools' notice about every editable install, not a warning about ours
    noisy = [line for line in text.splitlines()
             if re.search(r"warn|deprecat|absent from", line, re.I) and "InformationOnly" not in line]
    assert noisy == [], "\n".join(noisy[:20])
