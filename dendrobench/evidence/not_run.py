"""Why a task or a claim has no row: the ``not-run.yaml`` beside the records it explains."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import yaml

from dendrobench.errors import UserError

NOT_RUN_FILE = "not-run.yaml"


def load_not_run(results_dirs: Sequence[Path | str]) -> dict[str, str]:
    """Why a task (or a claim) has no row: ``not-run.yaml`` at the top of a results folder maps task
    names, claim ids and ``TASK@BUDGET`` (a budget a task has no row at, e.g. ``cifar10@converged``)
    to a reason ("word-level WikiText-2 needs a GPU here"). A published
    leaderboard must have a row per task or say why not, and the reason belongs with the records it
    explains, not in prose elsewhere. A malformed file is refused in one line (exit 2) before
    anything is written."""
    out: dict[str, str] = {}
    for d in results_dirs:
        path = Path(d) / NOT_RUN_FILE
        if not path.is_file():
            continue
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except yaml.YAMLError as exc:
            raise UserError(f"{path} is not valid YAML: {str(exc).splitlines()[0]}") from exc
        if data is None:
            continue
        if not isinstance(data, dict) or not all(isinstance(k, str) and isinstance(v, str) and v.strip()
                                                  for k, v in data.items()):
            raise UserError(f"{path} must map task names or claim ids to a reason, e.g. `wikitext2: needs a GPU`, "
                            f"got {type(data).__name__ if not isinstance(data, dict) else 'other values'}")
        out.update({k: " ".join(v.split()) for k, v in data.items()})
    return dict(sorted(out.items()))
