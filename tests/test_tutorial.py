"""docs/tutorial-plugin.md runs as written: its ``bash`` blocks, in order, in an empty folder.

The tutorial goes from ``dendrobench new-task`` to a built leaderboard at the smoke budget, so this
test is its proof that it has not gone stale. One substitution, asserted to apply: the tutorial's
``pip install -e DIR`` becomes ``python -m pip install --no-deps --no-build-isolation -q -e DIR``
with this interpreter (the test machine has no network to resolve build dependencies, and
dendrobench is already installed). The plugin is uninstalled afterwards.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from dendrobench.contract import registry

TUTORIAL = Path(__file__).parents[1] / "docs" / "tutorial-plugin.md"
DIST = "dendrobench-breast-cancer"
PIP = "pip install -e "


def tutorial_script() -> str:
    blocks = re.findall(r"^```bash\n(.*?)^```$", TUTORIAL.read_text(encoding="utf-8"), flags=re.S | re.M)
    assert len(blocks) >= 5, "the tutorial lost its command blocks"
    script = "\n".join(blocks)
    assert script.count(PIP) == 1, "the tutorial's install command changed: update this test's substitution"
    return script.replace(PIP, '"$PYTHON" -m pip install --no-deps --no-build-isolation -q -e ')


def test_the_tutorial_commands_run_from_new_task_to_a_leaderboard(tmp_path):
    env = dict(os.environ)
    env.update(PYTHON=sys.executable, PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
               DENDROBENCH_CACHE=str(tmp_path / "cache"), CI="1")
    env.pop("PYTHONPATH", None)  # the plugin must be found through its installed entry point
    work = tmp_path / "work"
    work.mkdir()
    try:
        out = subprocess.run(["bash", "-euo", "pipefail", "-c", tutorial_script()], cwd=work, env=env,
                             capture_output=True, text=True, timeout=400)
    finally:
        subprocess.run([sys.executable, "-m", "pip", "uninstall", "-y", "-q", DIST], capture_output=True, timeout=120)
        registry.refresh()
    assert out.returncode == 0, f"stdout:\n{out.stdout[-4000:]}\nstderr:\n{out.stderr[-4000:]}"
    assert "breast-cancer: OK: 10 passed" in out.stdout, out.stdout[-3000:]
    assert "(modality tabular, metric roc_auc, data offline)" in out.stdout  # this checkout's dendrobench ran
    records = [json.loads(p.read_text()) for p in sorted((work / "results").rglob("*.json"))]
    records = [r for r in records if "arm" in r]
    assert sorted((r["arm"], r["seed"]) for r in records) == sorted(
        (arm, seed) for arm in ("baseline", "dendrites", "wide") for seed in (0, 1))
    assert {(r["status"], r["task"], r["dataset"]) for r in records} == {("ok", "breast-cancer", "wdbc")}
    assert "breast-cancer" in (work / "site" / "index.html").read_text(encoding="utf-8")
