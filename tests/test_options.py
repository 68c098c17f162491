"""Task options: validated from the command line, handed to the task, part of the record hash."""

from __future__ import annotations

import json
import subprocess

import pytest
from toy_task import OptionSpirals, SpiralTask

from dendrobench.contract.options import identity_options, parse_options
from dendrobench.errors import ConfigError

TOY = "task=toy_task:OptionSpirals"


def test_values_are_coerced_to_the_declared_types():
    opts = parse_options(OptionSpirals, {"hidden": "8", "activation": "relu", "fractions": "[0.8, 0.1, 0.1]",
                                         "split_seed": "seed"})
    assert opts.hidden == 8 and opts.activation == "relu"
    assert opts.fractions == (0.8, 0.1, 0.1) and opts.split_seed == "seed"
    assert parse_options(OptionSpirals, {"hidden": "null", "split_seed": "1337"}).split_seed == 1337
    assert parse_options(OptionSpirals, {"fractions": [0.6, 0.2, 0.2]}).fractions == (0.6, 0.2, 0.2)
    assert parse_options(OptionSpirals, {}) == OptionSpirals.Options()


@pytest.mark.parametrize("given, expect", [
    ({"depth": 3}, r"unknown task option\(s\) \['depth'\].*valid options: hidden .*activation \(tanh \| relu"),
    ({"activation": "gelu"}, r"task_options.activation must be tanh \| relu, got 'gelu'"),
    ({"hidden": "wide"}, r"task_options.hidden must be int \| null"),
    ({"hidden": 2.5}, r"task_options.hidden must be int"),
    ({"hidden": 0}, r"hidden must be >= 1"),
    ({"fractions": [0.8, 0.3, 0.1]}, r"summing to 1"),
    ({"split_seed": "later"}, r"split_seed must be int \| seed"),
])
def test_bad_options_name_what_is_valid(given, expect):
    import re

    with pytest.raises(ConfigError) as err:
        parse_options(OptionSpirals, given)
    assert re.search(expect, str(err.value)), str(err.value)


def test_a_task_without_options_rejects_any():
    assert parse_options(SpiralTask, {}) is None
    with pytest.raises(ConfigError, match="has no task options"):
        parse_options(SpiralTask, {"hidden": 3})


def test_only_non_default_options_enter_the_identity():
    assert identity_options(parse_options(OptionSpirals, {"activation": "tanh"})) == {}
    assert identity_options(parse_options(OptionSpirals, {"activation": "relu", "fractions": [0.8, 0.1, 0.1]})) == {
        "activation": "relu", "fractions": [0.8, 0.1, 0.1]}


def _run(args, env, cwd):
    return subprocess.run(["dendrobench", *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=180)


def test_cli_options_reach_the_task_and_the_record(cli_env, tmp_path):
    res = tmp_path / "r"
    base = [TOY, "budget=smoke", "seed=0", "arms=[baseline]", f"results_dir={res}"]
    out = _run(base, cli_env, tmp_path)
    assert out.returncode == 0, out.stderr
    out = _run(base + ["task_options.hidden=16", "task_options.activation=relu"], cli_env, tmp_path)
    assert out.returncode == 0, out.stderr
    recs = {tuple(sorted(json.loads(f.read_text())["config"]["task_options"].items())): json.loads(f.read_text())
            for f in res.glob("*.json")}
    assert len(recs) == 2  # a different hash, so a second record, not a resume
    default, custom = recs[()], recs[(("activation", "relu"), ("hidden", 16))]
    assert custom["config_hash"] != default["config_hash"]
    assert custom["config"]["task_options_resolved"]["hidden"] == 16
    assert default["config"]["task_options_resolved"] == {"hidden": None, "activation": "tanh",
                                                          "fractions": [0.5, 0.25, 0.25], "split_seed": 0}
    # hidden 16 instead of 4: the model the task built really changed
    assert custom["params"]["train"] > default["params"]["train"]
    # a default given explicitly is the same run: resumed, not re-run
    again = _run(base + ["task_options.activation=tanh"], cli_env, tmp_path)
    assert again.returncode == 0 and "resume:" in again.stdout, again.stdout + again.stderr


@pytest.mark.parametrize("arg, expect", [
    ("task_options.depth=3", "unknown task option(s) ['depth']"),
    ("task_options.activation=gelu", "task_options.activation must be tanh | relu"),
])
def test_cli_bad_option_is_one_line_exit_2(arg, expect, cli_env, tmp_path):
    out = _run([TOY, "budget=smoke", arg, f"results_dir={tmp_path / 'r'}"], cli_env, tmp_path)
    assert out.returncode == 2, out.stdout + out.stderr
    lines = [ln for ln in out.stderr.strip().splitlines() if ln]
    assert len(lines) == 1 and expect in lines[0], out.stderr
    assert not (tmp_path / "r").exists() or not list((tmp_path / "r").glob("*.json"))
