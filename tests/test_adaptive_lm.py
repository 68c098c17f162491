"""The adaptive-softmax language model and the wikitext2 ``converged`` budget that trains it.

The model ranks word ids by training frequency itself (the task's ids stay first-appearance), is
called with the targets and returns each token's NLL; these tests check that against a hand-written
two-level softmax, the task's perplexity against exp(mean NLL), what the dendrite engines convert,
the wide arm's width, FLOP counting, and that the other budgets still train a full softmax. All on
toy models or the small fixture in the real WikiText-2 layout (no shared data)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from dendrobench.baselines.adaptive_lm import (
    ADAPTIVE_SMALL_LM,
    AdaptiveLMConfig,
    AdaptiveTransformerLM,
    build_adaptive_lm,
    frequency_rank,
    usable_cutoffs,
)
from dendrobench.tasks.wikitext2 import WikiText2Task
from torch import nn

from dendrobench.contract.engine import EngineContext
from dendrobench.dendrites.convert import find_layers
from dendrobench.dendrites.gd import GradientDendrites
from dendrobench.running.config import RunConfig, validate
from dendrobench.running.cost import count_params, flops_per_sample
from dendrobench.running.runner import Suite
from dendrobench.running.training import match_width

FIXTURE = Path(__file__).parent / "fixtures" / "wikitext-2"
TOY = AdaptiveLMConfig(d_model=16, n_layers=1, n_heads=2, d_ff=32, max_len=8, cutoffs=(3, 7), div_value=2.0)


@pytest.fixture(autouse=True)
def offline_cache(private_cache):
    """A private cache folder, downloads forbidden."""


def toy_model(vocab: int = 12, seed: int = 0) -> tuple[AdaptiveTransformerLM, torch.Tensor]:
    torch.manual_seed(seed)
    counts = torch.randint(0, 50, (vocab,))
    return AdaptiveTransformerLM(vocab, TOY, counts), counts


def quick_task() -> WikiText2Task:
    """The quick budget's full-softmax task, its windows shortened to fit the fixture."""
    from dendrobench.contract.options import parse_options

    task = WikiText2Task()
    task.configure("quick")
    task.set_options(parse_options(task, {"seq_len": 64}))
    return task


def converged_task() -> tuple[WikiText2Task, object]:
    task = WikiText2Task()
    task.configure("converged")
    return task, task.load_data("online", 0, root=FIXTURE)


def test_frequency_rank_orders_by_count_ties_by_id():
    counts = torch.tensor([5, 9, 0, 9, 1, 5])
    rank = frequency_rank(counts)
    # most frequent first: ids 1 and 3 (9, tie -> smaller id first), then 0 and 5 (5), 4, 2
    assert rank.tolist() == [2, 0, 5, 1, 4, 3]
    assert sorted(rank.tolist()) == list(range(6))


def test_usable_cutoffs_fit_the_vocabulary():
    assert usable_cutoffs((2000, 10000), 33_278) == [2000, 10000]
    assert usable_cutoffs((2000, 10000), 5000) == [2000]
    assert usable_cutoffs((2000, 10000), 54) == [53]  # a fixture's vocabulary: one one-word cluster
    with pytest.raises(ValueError, match="at least 2 words"):
        usable_cutoffs((2,), 1)


def test_shortlist_holds_the_most_frequent_words():
    model, counts = toy_model()
    shortlist = {i for i in range(12) if model.rank[i] < TOY.cutoffs[0]}
    assert shortlist == set(torch.sort(-counts, stable=True).indices[:3].tolist())


def test_nll_equals_a_hand_written_two_level_softmax():
    model, _ = toy_model()
    model.eval()
    tokens, targets = torch.randint(0, 12, (2, 8)), torch.randint(0, 12, (2, 8))
    nll = model(tokens, targets)
    assert nll.shape == (2, 8)
    h = model.features(tokens).reshape(-1, TOY.d_model)
    head = model.head
    head_lp = F.log_softmax(head.head(h), dim=-1)  # shortlist (3 words) + one logit per cluster (2)
    bounds = [0, 3, 7, 12]
    expected = []
    for row, word in enumerate(targets.reshape(-1).tolist()):
        r = int(model.rank[word])  # the head scores words by frequency rank
        if r < bounds[1]:
            expected.append(-head_lp[row, r])
            continue
        c = 1 if r < bounds[2] else 2
        tail_lp = F.log_softmax(head.tail[c - 1](h[row:row + 1]), dim=-1)[0]
        expected.append(-(head_lp[row, bounds[1] + c - 1] + tail_lp[r - bounds[c]]))
    assert torch.allclose(nll.reshape(-1), torch.stack(expected), atol=1e-5)
    # the full distribution (task id order) is normalised and gives the same NLL
    lp = model.log_prob(tokens)
    assert torch.allclose(lp.exp().sum(-1), torch.ones(2, 8), atol=1e-5)
    assert torch.allclose(-lp.gather(-1, targets[..., None])[..., 0], nll, atol=1e-5)


def test_converged_task_loss_and_perplexity_are_the_mean_nll():
    task, data = converged_task()
    model = task.build_model(data)
    assert isinstance(model, AdaptiveTransformerLM) and task.adaptive
    batch = next(iter(task.dataloader(data.train, 2, False, None)))
    assert len(task.inputs(batch)) == 2  # called with the targets
    per_token = model(*task.inputs(batch))
    assert torch.allclose(task.loss(per_token, batch), per_token.mean())
    loader = list(task.dataloader(data.val, 1, False, None)) + list(task.dataloader(data.train, 3, False, None))
    got = task.evaluate(model, loader, torch.device("cpu"))
    with torch.no_grad():
        nll = [-model.log_prob(x).gather(-1, y[..., None]).sum() for x, y in loader]
    tokens = sum(y.numel() for _, y in loader)
    assert got["nll"] == pytest.approx(float(sum(nll)) / tokens, rel=1e-5)
    assert got["perplexity"] == pytest.approx(math.exp(float(sum(nll)) / tokens), rel=1e-5)


def test_the_ranking_does_not_change_the_tasks_token_ids():
    task, data = converged_task()
    ids = quick_task().load_data("online", 0, root=FIXTURE)
    assert torch.equal(data.train.tokens, ids.train.tokens)  # same first-appearance ids for every budget
    model = task.build_model(data)
    counts = torch.bincount(data.train.tokens, minlength=data.meta["vocab_size"])
    assert int(counts[int((model.rank == 0).nonzero())]) == int(counts.max())


def test_other_budgets_keep_a_full_softmax():
    for budget in ("smoke", "quick", "standard", "full"):
        task = WikiText2Task()
        task.configure(budget)
        assert not task.adaptive and not isinstance(task.model_config, AdaptiveLMConfig)
    task = quick_task()
    data = task.load_data("online", 0, root=FIXTURE)
    model = task.build_model(data)
    assert isinstance(model.head, nn.Linear) and model.head.out_features == data.meta["vocab_size"]
    batch = next(iter(task.dataloader(data.train, 2, False, None)))
    assert len(task.inputs(batch)) == 1
    logits = model(*task.inputs(batch))
    assert logits.shape[-1] == data.meta["vocab_size"]
    assert torch.allclose(task.loss(logits, batch), F.cross_entropy(logits.reshape(-1, logits.shape[-1]),
                                                                     batch[1].reshape(-1)))
    # every convertible Linear of the full-softmax model, its head included, is converted as before
    assert "head" in find_layers(model, ["Linear"])


def test_dendrites_leave_the_adaptive_head_alone_unless_named():
    model, _ = toy_model()
    blocks = [f"blocks.0.{n}" for n in ("attn.q", "attn.k", "attn.v", "attn.out", "fc1", "fc2")]
    assert find_layers(model, ["Linear"]) == blocks
    assert "head.head" in find_layers(model, ["Linear"], model_exclude=False)  # perforatedai's "everything"
    assert find_layers(model, ["Linear"], modules_to_convert=["head.head", "blocks.0.fc1"]) == ["blocks.0.fc1",
                                                                                                  "head.head"]
    ctx = EngineContext(epochs=3, steps_per_epoch=1, higher_is_better=False, seed=0, device=torch.device("cpu"),
                        workdir=Path("."))
    engine = GradientDendrites({"max_dendrites": 1})
    planned = engine.planned_model(model, ctx)
    assert engine.layers == blocks and isinstance(planned.head, nn.AdaptiveLogSoftmaxWithLoss)
    assert planned(torch.zeros(1, 8, dtype=torch.long), torch.zeros(1, 8, dtype=torch.long)).shape == (1, 8)


def test_width_grows_the_model_and_the_wide_arm_can_match():
    task, data = converged_task()
    base = count_params(task.build_model(data, 1.0))
    assert count_params(task.build_model(data, 0.5)) < base < count_params(task.build_model(data, 1.5))
    width, got = match_width(task, data, int(base * 1.3), 0.05)
    assert width > 1.0 and abs(got - base * 1.3) <= 0.05 * base * 1.3


def test_flops_counted_through_the_adaptive_head():
    model, _ = toy_model()
    tokens, targets = torch.randint(0, 12, (4, 8)), torch.randint(0, 12, (4, 8))
    flops = flops_per_sample(model, (tokens, targets), 4)
    assert flops is not None
    linear = sum(m.weight.numel() for n, m in model.named_modules() if isinstance(m, nn.Linear) and n.startswith("blocks"))
    floor = 2 * 8 * (linear + model.head.head.weight.numel())  # blocks and the head on every token
    tails = sum(m.weight.numel() for m in model.head.tail.modules() if isinstance(m, nn.Linear))
    attention = 2 * 2 * 8 * 8 * TOY.d_model  # q k^T and attention x v, per window (counted unmasked)
    assert floor <= flops <= floor + 2 * 8 * tails + attention


def test_converged_budget_and_model():
    task = WikiText2Task()
    budget = task.budget("converged")
    assert task.models["converged"] is ADAPTIVE_SMALL_LM and ADAPTIVE_SMALL_LM.cutoffs == (2000, 10000)
    assert budget.schedule == "constant" and budget.max_eval_examples is None  # full validation and test splits
    # the real vocabulary: the model ranks 33,278 ids, the head holds the 2,000 most frequent + 2 clusters
    model = build_adaptive_lm(ADAPTIVE_SMALL_LM, 33_278, torch.arange(33_278))
    assert model.head.head.out_features == 2002 and model.head.cutoffs == [2000, 10000, 33_278]


def test_converged_path_end_to_end_on_the_fixture(tmp_path):
    run = RunConfig(task="wikitext2", budget="converged", seed=0, results_dir=str(tmp_path), progress=False,
                    data_source="online", data_root=str(FIXTURE), dendrites={"engine": "gd", "max_dendrites": 1},
                    budget_overrides={"epochs": 2, "steps_per_epoch": 2})
    validate(run)
    records = Suite(run, echo=lambda s: None).run_all()
    assert [r["arm"] for r in records] == ["baseline", "dendrites", "wide"]
    assert all(r["status"] == "ok" for r in records), [r["message"] for r in records]
    base, dend, wide = records
    assert base["dataset"] == "wikitext-2-v1" and base["budget"] == "converged"
    for r in records:
        assert r["cost"]["steps"] == 4 and r["cost"]["flops_per_sample"] > 0
        assert 1 < r["test"]["perplexity"] == pytest.approx(math.exp(r["test"]["nll"]))
        assert r["error"] == pytest.approx(r["test"]["nll"])  # the error for RER is log-perplexity
    assert dend["dendrites"]["cycles"] == 1 and dend["params"]["inference"] > base["params"]["inference"]
    assert abs(wide["params"]["inference"] - dend["params"]["inference"]) <= 0.05 * dend["params"]["inference"]
