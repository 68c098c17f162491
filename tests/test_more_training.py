"""base_more_training (issue 21 point 4): where a claim's published protocol gives the dendritic arm
more steps, the baseline runs again with those steps, and the claim summary compares against it."""

from __future__ import annotations

import pytest

from dendrobench.errors import ConfigError
from dendrobench.evidence import stats
from dendrobench.evidence.claims import claim_summary, get_claim, more_training_run


def _cfg(tmp_path):
    return {"task": "toy_task:SpiralTask", "claim": "pai-hackathon-bbbp", "protocol": "published",
            "report_split": "test", "budget": "smoke", "budget_overrides": {"epochs": 2}, "arms": ["baseline"],
            "dendrites": {"engine": "none"}, "results_dir": str(tmp_path), "progress": False}


def _published(arm, steps, epochs, seed=0, error=0.3):
    return {"protocol": "published", "arm": arm, "seed": seed, "status": "ok", "error": error,
            "cost": {"steps": steps, "epochs": epochs}}


def test_the_baseline_gets_the_dendritic_arms_extra_steps(tmp_path):
    records = [_published("baseline", 10, 2), _published("dendrites", 25, 5)]
    rec = more_training_run(_cfg(tmp_path), records, 0, echo=lambda m: None)
    assert rec is not None and rec["status"] == "ok"
    assert rec["arm"] == "base_more_training" and rec["protocol"] == "published" and rec["seed"] == 0
    assert rec["cost"]["steps"] == 25 and rec["cost"]["epochs"] == 5  # the toy smoke budget: 5 steps an epoch
    assert rec["engine"] == "none"
    # resumes like any run, and never makes a leaderboard row of its own
    again = more_training_run(_cfg(tmp_path), records, 0, echo=lambda m: None)
    assert again["config_hash"] == rec["config_hash"] and again["started"] == rec["started"]
    assert stats.summarize([rec]) == []


def test_no_extra_arm_where_the_dendritic_arm_got_no_more_steps(tmp_path):
    assert more_training_run(_cfg(tmp_path), [_published("baseline", 10, 2), _published("dendrites", 10, 2)], 0) is None
    assert more_training_run(_cfg(tmp_path), [_published("baseline", 10, 2), _published("dendrites", 6, 1)], 0) is None
    assert not list(tmp_path.glob("*.json"))


def test_claim_summary_compares_dendrites_with_more_base_training():
    claim = get_claim("pai-hackathon-bbbp")
    recs = []
    for seed, (e_more, e_dend) in enumerate([(0.20, 0.10), (0.25, 0.20), (0.10, 0.20)]):
        for arm, err in (("base_more_training", e_more), ("dendrites", e_dend), ("baseline", 0.3)):
            r = _published(arm, 10, 2, seed, err)
            r.update(claim=claim.id, task="bbbp", dataset="bbbp", data_source="online", budget="standard", config={})
            recs.append(r)
    more = claim_summary(claim, recs)["more_training"]
    assert more["n"] == 3
    # the leaderboard's estimand, the RER of the mean errors (issue 24): +9.1 %, where the mean of
    # the per-pair RERs (kept in "values") is -10 %, over-weighting the seed with error 0.10
    assert more["mean"] == pytest.approx((0.1 + 0.05 - 0.1) / (0.2 + 0.25 + 0.1))
    assert more["values"] == pytest.approx([(0.2 - 0.1) / 0.2, (0.25 - 0.2) / 0.25, (0.1 - 0.2) / 0.1])


def test_base_more_training_is_a_claims_own_arm(tmp_path):
    from dendrobench.running.config import from_mapping

    with pytest.raises(ConfigError, match="arm base_more_training is a claim's own"):
        from_mapping({"task": "toy_task:SpiralTask", "budget": "smoke", "arms": ["base_more_training"],
                      "results_dir": str(tmp_path)})
