"""Issue 13 item 17: one source of truth for the settings: ``--help``, the CLI's key check and the
README table all come from dendrobench/running/settings.py, and the defaults from conf/config.yaml."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from dendrobench.cli.main import help_text
from dendrobench.running import settings

ROOT = Path(__file__).resolve().parent.parent


def test_every_config_key_is_described_and_nothing_else():
    assert set(settings.defaults()) == set(settings.keys())


def test_readme_table_is_the_generated_one():
    assert settings.markdown_table() in (ROOT / "README.md").read_text()


def test_help_lists_every_key_with_default_and_valid_values():
    text = help_text()
    for s in settings.SETTINGS:
        assert f"  {s.key} (default: " in text
    assert "run_timeout_s (default: null)" in text and "valid: offline" in text


def test_cfg_job_with_a_space_and_hydra_help_after_overrides(cli_env, tmp_path):
    out = subprocess.run([sys.executable, "-m", "dendrobench", "task=toy_task:SpiralTask", "budget=smoke", "--cfg", "job"],
                         env=cli_env, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "task: toy_task:SpiralTask" in out.stdout and "budget: smoke" in out.stdout
    out = subprocess.run([sys.executable, "-m", "dendrobench", "task=bbbp", "--hydra-help"], env=cli_env, cwd=tmp_path,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and "Hydra" in out.stdout, out.stderr
    out = subprocess.run([sys.executable, "-m", "dendrobench", "task=bbbp", "--help"], env=cli_env, cwd=tmp_path,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and "data.source (default: offline)" in out.stdout


def test_subcommand_help_is_the_subcommands_own(capsys):
    import pytest

    from dendrobench.cli.main import main

    with pytest.raises(SystemExit) as exc:
        main(["new-task", "--help"])
    assert exc.value.code == 0 and "--modality" in capsys.readouterr().out
