"""Issue 10: protocol options in the runner (schedules, early stopping, engine-complete stopping,
counted steps), records with ``protocol`` / ``claim``, the claims registry and ``claim=`` runs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import yaml
from toy_task import SpiralTask

from dendrobench.contract.task import Budget
from dendrobench.errors import ConfigError
from dendrobench.evidence import claims as claims_mod
from dendrobench.running.config import RunConfig
from dendrobench.running.results import config_hash, read_record
from dendrobench.running.runner import Suite
from dendrobench.running.schedules import LRSchedule

TOY = "toy_task:SpiralTask"


def suite(tmp_path: Path, **kw) -> Suite:
    kw.setdefault("budget", "smoke")
    run = RunConfig(task=TOY, seeds=1, results_dir=str(tmp_path), progress=False, **kw)
    return Suite(run, echo=lambda s: None)


# -- budget validation --------------------------------------------------------------------------
@pytest.mark.parametrize("field,value,needle", [
    ("schedule", "linear", "valid schedules: constant, cosine, step, reduce_on_plateau"),
    ("plateau_factor", 1.5, "plateau_factor must be in (0, 1)"),
    ("gamma", 0.0, "gamma must be in (0, 1)"),
    ("step_size", 0, "step_size must be >= 1"),
    ("early_stopping", 0, "early_stopping must be a positive number of epochs or null"),
    ("until_engine_complete", "yes", "until_engine_complete must be true or false"),
])
def test_bad_protocol_budget_values_name_the_valid_ones(field, value, needle):
    budget = SpiralTask.budgets["smoke"].with_overrides({field: value})
    with pytest.raises(ConfigError, match=needle.replace("(", r"\(").replace(")", r"\)")):
        budget.validate()


def test_unknown_budget_field_names_the_new_fields():
    with pytest.raises(ConfigError, match="plateau_patience"):
        SpiralTask.budgets["smoke"].with_overrides({"patience": 3})


def test_protocol_fields_at_defaults_leave_the_record_hash_unchanged():
    b = SpiralTask.budgets["smoke"]
    assert b.spec() == {k: v for k, v in b.__dict__.items() if k in (
        "epochs", "batch_size", "lr", "steps_per_epoch", "weight_decay", "optimizer", "schedule", "warmup_steps",
        "grad_clip", "eval_batch_size", "max_train_examples", "max_eval_examples")}
    changed = b.with_overrides({"early_stopping": 3})
    assert config_hash({"b": changed.spec()}) != config_hash({"b": b.spec()})


# -- schedules ----------------------------------------------------------------------------------
def _opt(lr: float = 0.1) -> torch.optim.Optimizer:
    return torch.optim.SGD([torch.nn.Parameter(torch.zeros(2))], lr=lr)


def test_reduce_on_plateau_reduces_on_a_plateau_and_not_while_improving():
    budget = Budget(epochs=20, batch_size=1, lr=0.1, schedule="reduce_on_plateau", plateau_patience=2,
                    plateau_factor=0.5)
    sched = LRSchedule(budget, 100, 5, higher_is_better=True)
    opt = _opt()
    sched.attach(opt)
    for score in (0.5, 0.6, 0.7, 0.8):  # improving: no reduction
        sched.after_epoch(score)
    assert sched.lr() == pytest.approx(0.1)
    for _ in range(3):  # three epochs without gain, patience 2: halved once
        sched.after_epoch(0.8)
    assert sched.lr() == pytest.approx(0.05)
    # a new parameter group (a dendrite cycle) starts at the reduced lr and is reduced with the rest
    opt.add_param_group({"params": [torch.nn.Parameter(torch.zeros(1))], "lr": sched.lr()})
    sched.attach(opt)
    for _ in range(3):
        sched.after_epoch(0.8)
    assert [g["lr"] for g in opt.param_groups] == pytest.approx([0.025, 0.025])


def test_reduce_on_plateau_mode_follows_the_metric_direction():
    budget = Budget(epochs=20, batch_size=1, lr=0.1, schedule="reduce_on_plateau", plateau_patience=1,
                    plateau_factor=0.5)
    sched = LRSchedule(budget, 100, 5, higher_is_better=False)  # e.g. perplexity: lower is better
    sched.attach(_opt())
    for score in (100.0, 90.0, 80.0, 70.0):
        sched.after_epoch(score)
    assert sched.lr() == pytest.approx(0.1)


def test_step_schedule_decays_every_step_size_epochs():
    budget = Budget(epochs=6, batch_size=1, lr=1.0, schedule="step", step_size=2, gamma=0.5)
    sched = LRSchedule(budget, 6 * 3, 3, higher_is_better=True)
    sched.attach(_opt(1.0))
    lrs = []
    for _ in range(18):
        lrs.append(sched.lr())
        sched.after_step()
    assert lrs[::3] == pytest.approx([1, 1, 0.5, 0.5, 0.25, 0.25])


def test_cosine_matches_the_closed_form_and_survives_a_rebuilt_optimizer():
    from dendrobench.running.schedules import lr_factor

    budget = Budget(epochs=2, batch_size=1, lr=0.2, schedule="cosine", warmup_steps=2)
    sched = LRSchedule(budget, 10, 5, higher_is_better=True)
    sched.attach(_opt(0.2))
    for step in range(5):
        assert sched.lr() == pytest.approx(0.2 * lr_factor(budget, step, 10))
        sched.after_step()
    fresh = _opt(123.0)  # an engine replaced the optimizer: the schedule continues where it was
    sched.attach(fresh)
    assert sched.lr() == pytest.approx(0.2 * lr_factor(budget, 5, 10))


# -- the runner ---------------------------------------------------------------------------------
def test_early_stopping_stops_and_records_real_steps(tmp_path):
    # lr so small nothing improves after the first epoch: patience 2 stops after epoch 3 of 30
    s = suite(tmp_path, arms=["baseline"], budget_overrides={"epochs": 30, "lr": 1e-9, "early_stopping": 2})
    rec = s.run_all()[0]
    assert rec["status"] == "ok"
    assert rec["cost"]["stopped"] == "early_stopping"
    assert rec["cost"]["epochs"] == len(rec["history"]) == 3
    assert rec["cost"]["steps"] == 3 * 5 and rec["cost"]["max_steps"] == 30 * 5


def test_until_engine_complete_stops_when_gd_is_done(tmp_path):
    s = suite(tmp_path, arms=["dendrites"], budget_overrides={"epochs": 30, "until_engine_complete": True},
              dendrites={"engine": "gd", "max_dendrites": 1, "switch_epochs": 2})
    rec = s.run_all()[0]
    assert rec["status"] == "ok", rec["message"]
    # phase 1 (2 epochs), a cycle, phase 2 (2 epochs), then gd has nothing more to do
    assert rec["cost"]["stopped"] == "engine_complete"
    assert rec["cost"]["epochs"] == 4 and rec["cost"]["steps"] == 20
    assert rec["extra"]["before_first_cycle"]["epoch"] in (1, 2)


def test_records_carry_protocol_claim_and_reported_split(tmp_path):
    s = suite(tmp_path, arms=["baseline"], claim="toy-claim", protocol="published", report_split="val")
    rec = s.run_all()[0]
    assert rec["protocol"] == "published" and rec["claim"] == "toy-claim"
    assert rec["extra"]["reported_split"] == "val"
    assert rec["error"] == pytest.approx(1 - rec["val"]["accuracy"])
    plain = suite(tmp_path / "plain", arms=["baseline"]).run_all()[0]
    assert plain["protocol"] == "matched" and plain["claim"] is None
    assert plain["config_hash"] != rec["config_hash"]


def test_ordinary_run_hash_does_not_mention_protocols(tmp_path):
    s = suite(tmp_path, arms=["baseline"])
    ident = s.identity("baseline", 0)
    assert "protocol" not in ident and "claim" not in ident
    assert "early_stopping" not in ident["budget_spec"]


def test_old_records_without_protocol_still_read(tmp_path):
    rec = suite(tmp_path, arms=["baseline"]).run_all()[0]
    path = next(Path(tmp_path).glob("*.json"))
    data = json.loads(path.read_text())
    del data["protocol"], data["claim"]
    path.write_text(json.dumps(data))
    back = read_record(path)
    assert back["protocol"] == "matched" and back["claim"] is None
    assert back["config_hash"] == rec["config_hash"]


# -- the registry -------------------------------------------------------------------------------
def test_registry_has_the_six_claims_with_a_status_each():
    ids = claims_mod.claim_ids()
    assert ids == sorted(["pai-hackathon-bbbp", "pai-hackathon-credit", "pai-hackathon-wikitext2",
                          "pai-hackathon-mri", "pai-hackathon-produce", "pai-hackathon-gsm8k"])
    for cid in ids:
        claim = claims_mod.get_claim(cid)
        assert claim.claimed["statement"] and claim.source["repository"]
        status = claim.status()
        assert status.startswith("runnable") == (not claim.needs)
    assert set(claims_mod.get_claim("pai-hackathon-mri").needs) == {"gpu", "data"}


def test_unknown_claim_names_the_valid_ones():
    with pytest.raises(ConfigError, match="pai-hackathon-bbbp"):
        claims_mod.get_claim("pai-hackathon-nope")


def test_list_claims_shows_all_six(capsys):
    from dendrobench.cli.main import main

    assert main(["list", "claims"]) == 0
    out = capsys.readouterr().out
    for cid in claims_mod.claim_ids():
        assert cid in out
    assert "cannot run here: needs gpu" in out


def test_claim_that_cannot_run_here_says_why_exit_2(capsys):
    from dendrobench.cli.main import main

    assert main(["claim=pai-hackathon-mri", "seeds=1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "cannot run here: needs gpu, data" in err[0]


def test_bad_claim_id_exit_2(capsys):
    from dendrobench.cli.main import main

    assert main(["claim=pai-hackathon-xyz"]) == 2
    assert "valid" in capsys.readouterr().err


def test_claim_files_ship_as_package_data():
    import tomllib

    cfg = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())
    assert "dendrobench.baselines.claims" in cfg["tool"]["setuptools"]["packages"]
    assert "*.yaml" in cfg["tool"]["setuptools"]["package-data"]["dendrobench.baselines.claims"]


# -- a claim end to end on the toy task ---------------------------------------------------------
TOY_CLAIM = {
    "id": "toy-claim", "title": "a toy claim", "task": TOY,
    "source": {"repository": "nowhere"},
    "claimed": {"statement": "50 % fewer errors", "quantity": "rer", "value": 0.5, "split": "test"},
    "data": {"source": "offline"},
    "needs": [],
    "published": {
        "report": "test",
        "baseline": {"budget": {"epochs": 4, "schedule": "reduce_on_plateau", "plateau_patience": 1,
                                "plateau_factor": 0.5}},
        "dendrites": {"budget": {"epochs": 12, "until_engine_complete": True, "reset_optimizer_on_cycle": True},
                      "engine": "perforatedai-not-here", "params": {},
                      "fallback": {"engine": "gd", "params": {"max_dendrites": 1, "switch_epochs": 3}}},
    },
    "matched": {"budget": {"epochs": 4}},
}


@pytest.fixture
def toy_claims(tmp_path, monkeypatch):
    folder = tmp_path / "claims"
    folder.mkdir()
    (folder / "toy-claim.yaml").write_text(yaml.safe_dump(TOY_CLAIM))
    monkeypatch.setattr(claims_mod, "claims_dir", lambda: folder)
    monkeypatch.setattr(claims_mod, "engine_installed", lambda name: name != "perforatedai-not-here")
    claims_mod.load_claims.cache_clear()
    yield folder
    claims_mod.load_claims.cache_clear()


def test_claim_runs_published_matched_and_wide_per_seed(toy_claims, tmp_path):
    from dendrobench.cli.main import run_claim_job

    out = tmp_path / "results"
    cfg = {"claim": "toy-claim", "budget": "standard", "seeds": 2, "results_dir": str(out), "progress": False,
           "data": {"source": "offline", "root": None}}
    lines: list[str] = []
    records = run_claim_job(cfg, echo=lines.append)
    got = sorted((r["protocol"], r["arm"], r["seed"]) for r in records)
    assert got == sorted((p, a, s) for s in (0, 1) for p, a in [
        ("published", "baseline"), ("published", "dendrites"), ("published", "base_more_training"),
        ("matched", "baseline"), ("matched", "dendrites"), ("matched", "wide")])
    assert all(r["status"] == "ok" for r in records), [r["message"] for r in records]
    assert all(r["claim"] == "toy-claim" for r in records)
    pub = {r["arm"]: r for r in records if r["protocol"] == "published" and r["seed"] == 0}
    # unequal budgets are recorded, never hidden: gd (the fallback, recorded as such) ran to its end
    assert pub["dendrites"]["engine"] == "gd"
    assert pub["dendrites"]["cost"]["stopped"] == "engine_complete"
    assert pub["dendrites"]["cost"]["steps"] == 6 * 40 and pub["baseline"]["cost"]["steps"] == 4 * 40
    # the dendritic arm got more steps: base_more_training is the published baseline with the same steps
    assert pub["base_more_training"]["cost"]["steps"] == 6 * 40 and pub["base_more_training"]["engine"] == "none"
    assert "published dendrites vs base_more_training" in "\n".join(lines)
    matched = [r for r in records if r["protocol"] == "matched" and r["seed"] == 0]
    assert len({r["cost"]["steps"] for r in matched}) == 1
    assert "matched protocol" in "\n".join(lines)
    # resume: nothing runs twice
    again = run_claim_job(cfg, echo=lines.append)
    assert [r["config_hash"] for r in again] == [r["config_hash"] for r in records]
    assert len(list(out.glob("*.json"))) == 12


def test_claim_refuses_task_and_budget_overrides(toy_claims, tmp_path):
    from dendrobench.evidence.claims import run_claim

    with pytest.raises(ConfigError, match="decides budget_overrides"):
        run_claim({"claim": "toy-claim", "budget_overrides": {"epochs": 2}, "results_dir": str(tmp_path)})
    with pytest.raises(ConfigError, match="decides the task"):
        run_claim({"claim": "toy-claim", "task": "bbbp", "results_dir": str(tmp_path)})


def test_claim_table_reports_each_protocol_and_how_often_a_seed_reaches_the_claim(toy_claims, tmp_path, capsys):
    from dendrobench.cli.main import main, run_claim_job
    from dendrobench.evidence.claims import claim_summary, get_claim

    out = tmp_path / "results"
    cfg = {"claim": "toy-claim", "budget": "standard", "seeds": 2, "results_dir": str(out), "progress": False,
           "data": {"source": "offline", "root": None}}
    records = run_claim_job(cfg, echo=lambda s: None)
    summary = claim_summary(get_claim("toy-claim"), records)
    for key in ("published", "matched_steps", "matched_params"):
        assert summary[key]["n"] == 2
    pub = summary["published"]
    assert pub["reproduced"] == sum(v >= 0.5 for v in pub["values"])
    assert pub["steps_ratio"] == pytest.approx(6 / 4)
    assert main(["claim-table", str(out)]) == 0
    table = capsys.readouterr().out
    assert "| toy-claim | +50.0 % |" in table and "(n=2)" in table


def test_claim_table_never_pools_a_smoke_check_with_the_real_run(toy_claims, tmp_path, capsys):
    """A pipeline check in the same folder must not move the claim's figures: one set of settings."""
    from dendrobench.cli.main import main, run_claim_job
    from dendrobench.evidence.claims import claim_summary, get_claim

    out = tmp_path / "results"
    base = {"claim": "toy-claim", "results_dir": str(out), "progress": False, "data": {"source": "offline", "root": None}}
    real = run_claim_job({**base, "budget": "standard", "seeds": 2}, echo=lambda s: None)
    alone = claim_summary(get_claim("toy-claim"), real)
    smoke = run_claim_job({**base, "budget": "smoke", "seeds": 1}, echo=lambda s: None)
    assert {r["budget"] for r in smoke} == {"smoke"}
    both = claim_summary(get_claim("toy-claim"), real + smoke)
    assert both["published"]["values"] == alone["published"]["values"] and both["left_out"] == len(smoke)
    assert main(["claim-table", str(out)]) == 0
    assert f"; {len(smoke)} records of other settings not pooled" in capsys.readouterr().out


def test_a_claim_runs_its_own_budgets_unless_scaled():
    from dendrobench.cli.main import prevalidate
    from dendrobench.evidence.claims import get_claim, suite_configs

    assert "budget=standard" in prevalidate(["claim=pai-hackathon-bbbp"])
    assert prevalidate(["claim=pai-hackathon-bbbp", "budget=smoke"]).count("budget=standard") == 0
    claim = get_claim("pai-hackathon-bbbp")
    own = dict(suite_configs(claim, {"budget": "standard", "data": {"root": "/x"}}))
    assert own["published baseline"]["budget_overrides"]["epochs"] == 40
    assert own["published dendrites"]["budget_overrides"]["until_engine_complete"] is True
    assert own["published baseline"]["data"] == {"source": "online", "root": "/x"}
    smoke = dict(suite_configs(claim, {"budget": "smoke", "data": {}}))
    assert smoke["matched steps + parameters"]["budget"] == "smoke"
    assert smoke["matched steps + parameters"]["budget_overrides"]["epochs"] <= 3
