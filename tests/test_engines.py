"""Validity checks of the dendrite engines (issue 6): null dendrites retrace the baseline, a known
positive is found by every engine, every engine keeps the baseline's step budget, every engine
converts Linear / Conv1d / Conv2d / Conv3d and the bbbp GIN and still exports, and bad input or a
diverging engine is reported clearly without stopping the suite."""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import torch
from engine_tasks import XorTask
from torch import nn
from toy_task import SpiralTask

from dendrobench.contract.engine import EngineContext
from dendrobench.dendrites.cc import CorrelationDendrites, candidate_scores
from dendrobench.dendrites.modules import DendriticLayer
from dendrobench.errors import ConfigError
from dendrobench.running.config import RunConfig, validate
from dendrobench.running.export import export_check
from dendrobench.running.results import Record
from dendrobench.running.runner import ArmSpec, Suite, train_arm

HAVE_PAI = True
try:
    import perforatedai  # noqa: F401
except ImportError:
    HAVE_PAI = False

needs_pai = pytest.mark.skipif(not HAVE_PAI, reason='perforatedai not installed: pip install "dendrobench[pai]"')
ENGINES = ["gd", "cc", pytest.param("perforatedai", marks=needs_pai)]

LAYERS = {
    "Linear": (lambda: nn.Sequential(nn.Linear(6, 5), nn.ReLU(), nn.Linear(5, 3)), (8, 6)),
    "Conv1d": (lambda: nn.Sequential(nn.Conv1d(2, 4, 3), nn.ReLU(), nn.Conv1d(4, 3, 3)), (8, 2, 11)),
    "Conv2d": (lambda: nn.Sequential(nn.Conv2d(2, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 3, 1)), (8, 2, 7, 7)),
    "Conv3d": (lambda: nn.Sequential(nn.Conv3d(1, 3, 3, padding=1), nn.ReLU(), nn.Conv3d(3, 2, 1)), (4, 1, 5, 5, 5)),
}


def engine_class(name: str):
    from dendrobench.contract.registry import get_engine_class

    return get_engine_class(name)


def ctx(tmp_path: Path, epochs: int = 4, spe: int = 2) -> EngineContext:
    return EngineContext(epochs=epochs, steps_per_epoch=spe, higher_is_better=True, seed=0,
                         device=torch.device("cpu"), workdir=tmp_path)


def suite(tmp_path: Path, task: str = "toy_task:SpiralTask", **kw) -> Suite:
    run = RunConfig(task=task, budget="smoke", seeds=1, results_dir=str(tmp_path), progress=False, **kw)
    validate(run)
    return Suite(run, echo=lambda s: None)


def one_cycle(name: str, model: nn.Module, x: torch.Tensor, tmp_path: Path) -> nn.Module:
    """Wrap ``model`` and drive the engine through one dendrite cycle with real training steps."""
    params = {"max_dendrites": 1, "switch_epochs": 1}
    if name == "cc":
        params["candidate_epochs"] = 1
    engine = engine_class(name)(params)
    c = ctx(tmp_path, epochs=4, spe=2)
    model = engine.wrap(model, c)

    def build(ps):
        return torch.optim.Adam(ps, lr=1e-2)

    opt = engine.make_optimizer(model, build)

    def loss_fn(m, batch):
        return m(batch).pow(2).mean()

    for epoch in range(1, 4):
        for _ in range(2):
            loss = engine.train_step(model, x, loss_fn, opt, c)
            assert torch.isfinite(torch.tensor(loss))
        c.epoch = epoch
        decision = engine.on_validation(model, -loss, c)
        model = decision.model
        if decision.restructured:
            opt = engine.make_optimizer(model, build)
    assert engine.dendrite_count(model) >= 1, f"{name} added no dendrite"
    return engine.done(model)


# -- null dendrites ------------------------------------------------------------------------------
@pytest.mark.parametrize("engine,params", [
    ("gd", {"freeze_scale": True}),
    ("gd", {"freeze_scale": True, "dendrite": "lowrank", "dendrite_params": {"rank": 2}}),
    # cc: the dendrite phase freezes the network by design, so only a zero-length phase can retrace
    # the baseline; this still checks its hooks, candidate pools and installed branches are inert
    ("cc", {"freeze_scale": True, "candidate_epochs": 0}),
])
def test_null_dendrites_retrace_the_baseline(tmp_path, engine, params):
    recs = suite(tmp_path, arms=["baseline", "dendrites"], dendrites={"engine": engine, **params}).run_all()
    base, dend = recs
    assert dend["status"] == "ok", dend["message"]
    assert dend["dendrites"]["added"] > 0
    assert [h["train_loss"] for h in base["history"]] == [h["train_loss"] for h in dend["history"]]
    assert [h["val"] for h in base["history"]] == [h["val"] for h in dend["history"]]
    assert base["test"] == dend["test"]


@pytest.mark.parametrize("kind", sorted(LAYERS))
def test_cc_installs_candidates_without_changing_outputs(tmp_path, kind):
    make, shape = LAYERS[kind]
    torch.manual_seed(0)
    model = make()
    x = torch.randn(*shape)
    before = model(x).detach()
    engine = CorrelationDendrites({"max_dendrites": 1})
    c = ctx(tmp_path)
    model = engine.wrap(model, c)
    engine._start_phase(model, c)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    frozen = [p.detach().clone() for p in model.parameters()]
    engine.train_step(model, x, lambda m, b: m(b).pow(2).mean(), opt, c)
    assert all(torch.equal(a, p) for a, p in zip(frozen, model.parameters())), "the network must stay frozen"
    assert engine._finish_phase(model) == 2
    torch.testing.assert_close(model(x).detach(), before, rtol=0, atol=0)
    branches = [b for m in model.modules() if isinstance(m, DendriticLayer) for b in m.branches]
    assert all(not p.requires_grad for b in branches for p in b.dendrite.parameters())
    assert all(b.scale.requires_grad for b in branches)


def test_candidate_objective_prefers_the_correlated_candidate():
    torch.manual_seed(0)
    e = torch.randn(256, 3)
    good = 0.5 * e + 0.1 * torch.randn(256, 3)
    bad = torch.randn(256, 3)
    scores = candidate_scores(torch.stack([bad, good]), e, "correlation")
    assert scores[1] > 0.9 and scores[0] < 0.2
    # a rescaled loss (error signal) must not change the correlation objective
    torch.testing.assert_close(candidate_scores(torch.stack([good]), 1e-3 * e, "correlation"),
                               candidate_scores(torch.stack([good]), e, "correlation"))


# -- known positive ------------------------------------------------------------------------------
def test_every_engine_beats_a_linear_model_on_xor_by_more_than_the_seed_spread():
    torch.set_num_threads(1)
    task = XorTask()
    data = task.load_data("offline", 0)
    budget = task.budget("standard")
    seeds = (0, 1, 2)

    def errors(name: str | None) -> list[float]:
        out = []
        for seed in seeds:
            rec = Record(config_hash="x", task="xor", dataset=None, data_source="offline", arm="a",
                         engine=name or "none", seed=seed, budget="standard", metric={}, config={}, env={}, started="")
            engine = engine_class(name)({"switch_epochs": 3}) if name else None
            train_arm(task, data, budget, ArmSpec("dendrites" if name else "baseline", seed, engine=engine),
                      torch.device("cpu"), rec)
            out.append(rec.error)
        return out

    base = errors(None)
    names = ["gd", "cc"] + (["perforatedai"] if HAVE_PAI else [])
    for name in names:
        dend = errors(name)
        margin = statistics.mean(base) - statistics.mean(dend)
        spread = max(max(base) - min(base), max(dend) - min(dend))
        assert margin > spread, f"{name}: errors {dend} vs baseline {base}"
        assert max(dend) < min(base), f"{name}: some seed did not beat every baseline seed"


# -- budget, export, records ---------------------------------------------------------------------
@pytest.mark.parametrize("engine", ENGINES)
def test_dendritic_arm_takes_the_baseline_steps_and_exports(tmp_path, engine, monkeypatch):
    monkeypatch.chdir(tmp_path)  # perforatedai must leave nothing in the working directory
    recs = suite(tmp_path / "results", arms=["baseline", "dendrites"],
                 dendrites={"engine": engine, "max_dendrites": 1, "switch_epochs": 1}).run_all()
    base, dend = recs
    assert dend["status"] == "ok", dend["message"]
    budget = SpiralTask.budgets["smoke"]
    assert base["cost"]["steps"] == dend["cost"]["steps"] == budget.epochs * budget.steps_per_epoch
    assert [h["step"] for h in base["history"]] == [h["step"] for h in dend["history"]]
    assert dend["dendrites"]["cycles"] == 1
    assert "dendrites_added" in [h["event"] for h in dend["history"]]
    export = dend["extra"]["export"]
    assert export["torchscript"].startswith("ok") and export["onnx"] == "ok", export
    assert export["max_abs_diff"] < 1e-4
    assert "export" not in base["extra"]
    assert os.listdir(tmp_path) == ["results"]


# -- layer types and the GIN ---------------------------------------------------------------------
@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("kind", sorted(LAYERS))
def test_engines_convert_every_layer_type_and_export(tmp_path, engine, kind):
    make, shape = LAYERS[kind]
    torch.manual_seed(0)
    x = torch.randn(*shape)
    model = one_cycle(engine, make(), x, tmp_path)
    assert model(x).shape == make()(x).shape
    result = export_check(model, (x,), tmp_path / "export")
    assert result["torchscript"].startswith("ok") and result["onnx"] == "ok", result


def gin_batch():
    from torch_geometric.data import Batch
    from torch_geometric.utils import from_smiles

    graphs = [from_smiles(s) for s in ("CCO", "c1ccccc1O", "CC(=O)Nc1ccc(O)cc1", "CCN(CC)CC")]
    b = Batch.from_data_list(graphs)
    return b.x, b.edge_index, b.edge_attr, b.batch


@pytest.mark.parametrize("engine", ENGINES)
def test_engines_inside_the_bbbp_gin(tmp_path, engine):
    from dendrobench.baselines.gin import GIN

    torch.manual_seed(0)
    inputs = gin_batch()
    model = GIN(hidden=16, num_layers=2, dropout=0.0)

    class Wrapped(nn.Module):  # one_cycle calls model(x); the GIN takes four tensors
        def __init__(self, gin):
            super().__init__()
            self.gin = gin

        def forward(self, _x):
            return self.gin(*inputs)

    wrapped = one_cycle(engine, Wrapped(model), inputs[0], tmp_path)
    gin = wrapped.gin
    assert gin(*inputs).shape == (4,)
    result = export_check(gin, inputs, tmp_path / "export")
    assert result["torchscript"].startswith("ok") and result["onnx"] == "ok", result


# -- perforatedai: which layers it converts, and its failure modes --------------------------------
class BodyHead(nn.Module):
    """A credit-default-like MLP: the claim protocol excludes ``head``."""

    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Conv1d(1, 1, 1), nn.Flatten(), nn.Linear(8, 4))
        self.head = nn.Linear(4, 1)

    def forward(self, x):
        h = self.body[1](self.body[0](x)).unsqueeze(1)
        return self.head(self.body[4](self.body[3](self.body[2](h))))


def pai_converted(model: nn.Module) -> list[str]:
    return sorted(n for n, m in model.named_modules() if hasattr(m, "main_module") and hasattr(m, "dendrite_module"))


@needs_pai
@pytest.mark.parametrize("params,converted", [
    ({"types": ["Linear"]}, ["body.0", "body.4", "head"]),  # the library's defaults would add the Conv1d
    ({"exclude": ["head"]}, ["body.0", "body.2", "body.4"]),  # was: nothing converted, then a pdb prompt
])
def test_perforatedai_converts_exactly_the_chosen_layers_through_a_switch(tmp_path, monkeypatch, params, converted):
    monkeypatch.chdir(tmp_path)
    torch.manual_seed(0)
    engine = engine_class("perforatedai")({"max_dendrites": 1, "switch_epochs": 1, **params})
    c = ctx(tmp_path / "work", epochs=4, spe=2)
    model = engine.wrap(BodyHead(), c)
    assert pai_converted(model) == converted

    def build(ps):  # AdamW: torch keeps Adam's decoupled_weight_decay in its defaults, the library re-passed it
        return torch.optim.AdamW(ps, lr=1e-2, weight_decay=1e-4)

    opt = engine.make_optimizer(model, build)
    assert isinstance(opt, torch.optim.AdamW)
    x = torch.randn(8, 6)
    for epoch in range(1, 4):
        for _ in range(2):
            engine.train_step(model, x, lambda m, b: m(b).pow(2).mean(), opt, c)
        c.epoch = epoch
        decision = engine.on_validation(model, -float(epoch), c)
        model = decision.model
        if decision.restructured:
            opt = engine.make_optimizer(model, build)
    assert engine.dendrite_count(model) >= len(converted)
    assert pai_converted(model) == converted


@needs_pai
def test_perforatedai_debugger_prompt_fails_the_run_instead_of_waiting(tmp_path, monkeypatch):
    import pdb

    monkeypatch.chdir(tmp_path)
    before = pdb.set_trace
    engine = engine_class("perforatedai")({"max_dendrites": 1, "switch_epochs": 1})
    c = ctx(tmp_path / "work")
    model = engine.wrap(nn.Sequential(nn.Linear(3, 2)), c)
    monkeypatch.setattr(engine.G.pai_tracker, "add_validation_score", lambda *a: pdb.set_trace())
    with pytest.raises(RuntimeError, match="add_validation_score tried to open its debugger"):
        engine.on_validation(model, 0.5, c)
    assert pdb.set_trace is before  # restored afterwards


# -- bad input -----------------------------------------------------------------------------------
@pytest.mark.parametrize("engine", ENGINES)
def test_bad_conversion_requests_name_the_layer_types(tmp_path, engine):
    cls = engine_class(engine)
    with pytest.raises(ConfigError, match="layer types in the model: .*BatchNorm1d"):
        cls({}).wrap(nn.Sequential(nn.ReLU(), nn.BatchNorm1d(3)), ctx(tmp_path))
    with pytest.raises(ConfigError, match="match no convertible layer.*layer types in the model: Linear"):
        cls({"modules_to_convert": ["head.*"]}).wrap(nn.Sequential(nn.Linear(2, 2)), ctx(tmp_path))
    with pytest.raises(ConfigError, match="valid parameters: .*max_dendrites"):
        cls({"max_dendrite": 2})


def test_missing_perforatedai_says_how_to_install(monkeypatch):
    from dendrobench.dendrites import pai

    monkeypatch.setitem(sys.modules, "perforatedai", None)  # import now raises ImportError
    with pytest.raises(ConfigError, match=r'pip install "dendrobench\[pai\]"'):
        pai.PerforatedAIDendrites({})


class DivergingCC(CorrelationDendrites):
    """cc whose candidate phase blows up: the runner must record the run as diverged."""

    def train_step(self, *args, **kwargs) -> float:
        loss = super().train_step(*args, **kwargs)
        return float("nan") if self.phase == "dendrite" else loss


def test_diverging_engine_is_recorded_and_the_suite_goes_on(tmp_path):
    run = RunConfig(task="toy_task:SpiralTask", budget="smoke", seeds=2, results_dir=str(tmp_path), progress=False,
                    arms=["baseline", "dendrites"], dendrites={"engine": "cc", "switch_epochs": 1})
    validate(run)
    s = Suite(run, echo=lambda s: None)
    s.engine_cls = DivergingCC
    recs = s.run_all()
    assert [r["status"] for r in recs] == ["ok", "diverged", "ok", "diverged"]
    assert "non-finite training loss" in recs[1]["message"]


@needs_pai
def test_perforatedai_runs_do_not_leak_into_each_other(tmp_path, monkeypatch):
    """The library's globals are reset per run: the same seed twice gives the same record."""
    monkeypatch.chdir(tmp_path)
    a = suite(tmp_path / "a", arms=["dendrites"], dendrites={"engine": "perforatedai", "switch_epochs": 1}).run_all()
    b = suite(tmp_path / "b", arms=["dendrites"], dendrites={"engine": "perforatedai", "switch_epochs": 1}).run_all()
    assert a[0]["status"] == b[0]["status"] == "ok"
    assert [h["train_loss"] for h in a[0]["history"]] == [h["train_loss"] for h in b[0]["history"]]
    assert a[0]["params"] == b[0]["params"]
    assert sorted(os.listdir(tmp_path)) == ["a", "b"]


# -- custom dendrites ----------------------------------------------------------------------------
def test_lowrank_dendrite_is_cheaper_than_a_copy(tmp_path):
    from dendrobench.contract.registry import get_dendrite_kind

    lowrank = get_dendrite_kind("lowrank")
    layer = nn.Conv2d(16, 32, 3, padding=1, stride=2)
    d = lowrank.build(layer, rank=4)
    x = torch.randn(2, 16, 9, 9)
    assert d(x).shape == layer(x).shape
    assert sum(p.numel() for p in d.parameters()) < sum(p.numel() for p in layer.parameters()) / 4
    with pytest.raises(TypeError, match="only 'rank'"):
        lowrank.build(layer, width=3)


PLUGIN = Path(__file__).parent / "plugins" / "dendrobench-sinedendrite"


def test_custom_dendrite_from_an_installed_plugin_through_the_console_script(tmp_path, cli_env):
    """A third-party package registers a dendrite kind; the console script finds and uses it."""
    src = Path(tempfile.mkdtemp(prefix="sine-plugin-", dir=tmp_path))
    shutil.copytree(PLUGIN, src, dirs_exist_ok=True)  # the build writes egg-info next to the source
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run(pip + ["install", "--no-deps", "--no-build-isolation", "--no-index", "-e", str(src)],
                   check=True, capture_output=True, env=cli_env, timeout=300)
    try:
        out = subprocess.run(
            [shutil.which("dendrobench") or "dendrobench", "task=toy_task:SpiralTask", "budget=smoke", "seeds=1",
             "arms=[baseline,dendrites]", "dendrites=gd", "dendrites.dendrite=sine",
             "dendrites.dendrite_params.frequency=2.0", f"results_dir={tmp_path / 'results'}"],
            capture_output=True, text=True, env=cli_env, timeout=300, cwd=tmp_path)
        assert out.returncode == 0, out.stderr + out.stdout
        listing = subprocess.run([shutil.which("dendrobench") or "dendrobench", "list", "engines"],
                                 capture_output=True, text=True, env=cli_env, timeout=120)
        assert "sine" in listing.stdout
    finally:
        subprocess.run(pip + ["uninstall", "-y", "dendrobench-sinedendrite"], capture_output=True, timeout=300)
    import json

    recs = [json.loads(p.read_text()) for p in (tmp_path / "results").rglob("*.json")]
    dend = [r for r in recs if r["arm"] == "dendrites"]
    assert dend and dend[0]["status"] == "ok", dend
    assert dend[0]["config"]["dendrites"]["dendrite"] == "sine"
    assert dend[0]["dendrites"]["added"] > 0


def test_gd_takes_the_lowrank_kind_from_the_config(tmp_path):
    recs = suite(tmp_path, arms=["dendrites"], dendrites={"engine": "gd", "dendrite": "lowrank",
                                                          "dendrite_params": {"rank": 1}}).run_all()
    assert recs[0]["status"] == "ok", recs[0]["message"]
    assert recs[0]["dendrites"]["added"] > 0
