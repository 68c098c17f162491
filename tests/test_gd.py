"""The gd engine: adding a dendrite never changes outputs; parameters are counted; cycles stay
inside the step budget."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from dendrobench.contract.engine import EngineContext
from dendrobench.dendrites.gd import GradientDendrites
from dendrobench.dendrites.modules import DendriticLayer
from dendrobench.errors import ConfigError

LAYERS = {
    "Linear": (lambda: nn.Sequential(nn.Linear(6, 5), nn.ReLU(), nn.Linear(5, 3)), (4, 6)),
    "Conv1d": (lambda: nn.Sequential(nn.Conv1d(2, 4, 3), nn.ReLU(), nn.Conv1d(4, 3, 3)), (4, 2, 11)),
    "Conv2d": (lambda: nn.Sequential(nn.Conv2d(2, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 3, 1)), (4, 2, 7, 7)),
    "Conv3d": (lambda: nn.Sequential(nn.Conv3d(1, 3, 3, padding=1), nn.ReLU(), nn.Conv3d(3, 2, 1)), (2, 1, 5, 5, 5)),
}


def ctx(epochs=6, spe=2, higher=True):
    return EngineContext(epochs=epochs, steps_per_epoch=spe, higher_is_better=higher, seed=0,
                         device=torch.device("cpu"), workdir=None)  # type: ignore[arg-type]


@pytest.mark.parametrize("kind", sorted(LAYERS))
def test_fresh_dendrite_leaves_outputs_unchanged(kind):
    make, shape = LAYERS[kind]
    torch.manual_seed(0)
    model = make()
    x = torch.randn(*shape)
    before = model(x).detach()
    engine = GradientDendrites({"max_dendrites": 2})
    wrapped = engine.wrap(model, ctx())
    assert torch.equal(wrapped(x).detach(), before)
    engine.add_dendrites(wrapped, seed=1)
    engine.add_dendrites(wrapped, seed=2)
    assert engine.dendrite_count(wrapped) == 4  # 2 layers x 2 cycles
    torch.testing.assert_close(wrapped(x).detach(), before, rtol=0, atol=0)


@pytest.mark.parametrize("kind", sorted(LAYERS))
def test_dendrite_params_are_counted_and_trainable(kind):
    make, shape = LAYERS[kind]
    model = make()
    base = sum(p.numel() for p in model.parameters())
    engine = GradientDendrites({})
    wrapped = engine.wrap(model, ctx())
    engine.add_dendrites(wrapped, seed=1)
    layers = [m.layer for m in wrapped.modules() if isinstance(m, DendriticLayer)]
    expected = base + sum(sum(p.numel() for p in layer.parameters()) + (layer.out_features if isinstance(layer, nn.Linear)
                                                                         else layer.out_channels) for layer in layers)
    assert engine.inference_params(wrapped) == expected
    assert all(p.requires_grad for p in wrapped.parameters())
    # the zero-initialised output weights receive gradient, so the dendrite can start to act
    out = wrapped(torch.randn(*shape)).pow(2).sum()
    out.backward()
    scales = [b.scale for m in wrapped.modules() if isinstance(m, DendriticLayer) for b in m.branches]
    assert any(s.grad is not None and s.grad.abs().sum() > 0 for s in scales)


def test_adding_dendrites_does_not_disturb_global_rng():
    engine = GradientDendrites({})
    model = engine.wrap(nn.Sequential(nn.Linear(3, 3)), ctx())
    torch.manual_seed(5)
    expected = torch.rand(3)
    torch.manual_seed(5)
    engine.add_dendrites(model, seed=9)
    assert torch.equal(torch.rand(3), expected)


def test_fixed_schedule_spreads_cycles_over_the_budget():
    engine = GradientDendrites({"max_dendrites": 2})
    c = ctx(epochs=6)
    model = engine.wrap(nn.Sequential(nn.Linear(2, 2)), c)
    events = []
    for epoch in range(1, 7):
        c.epoch = epoch
        events.append(engine.on_validation(model, 0.5, c).event)
    assert events == [None, "dendrites_added", None, "dendrites_added", None, None]
    assert engine.summary() == {"cycles": 2, "added": 2}


def test_plateau_schedule_waits_for_patience_and_never_adds_at_the_end():
    engine = GradientDendrites({"max_dendrites": 5, "switch_mode": "plateau", "patience": 2})
    c = ctx(epochs=8, higher=False)
    model = engine.wrap(nn.Sequential(nn.Linear(2, 2)), c)
    scores = [1.0, 0.9, 0.9, 0.9, 0.8, 0.8, 0.8, 0.8]  # lower is better
    events = []
    for epoch, s in enumerate(scores, 1):
        c.epoch = epoch
        events.append(engine.on_validation(model, s, c).event)
    assert events[:4] == [None, None, None, "dendrites_added"]
    assert events[-1] is None  # the last epoch never adds (no steps left to train it)


def test_unknown_parameter_and_no_convertible_layer_are_clear_errors():
    with pytest.raises(ConfigError, match="valid parameters: .*max_dendrites"):
        GradientDendrites({"max_dendrite": 2})
    engine = GradientDendrites({})
    with pytest.raises(ConfigError, match="layer types in the model: .*ReLU"):
        engine.wrap(nn.Sequential(nn.ReLU(), nn.BatchNorm1d(3)), ctx())
    with pytest.raises(ConfigError, match="match no convertible layer"):
        GradientDendrites({"modules_to_convert": ["head.*"]}).wrap(nn.Sequential(nn.Linear(2, 2)), ctx())


def test_multihead_attention_projections_are_left_alone():
    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.attn = nn.MultiheadAttention(8, 2, batch_first=True)
            self.ff = nn.Linear(8, 8)

        def forward(self, x):
            return self.ff(self.attn(x, x, x)[0])

    engine = GradientDendrites({})
    model = engine.wrap(Block(), ctx())
    assert engine.layers == ["ff"]
    assert model(torch.randn(2, 3, 8)).shape == (2, 3, 8)


def test_gd_fixed_switching_plans_the_final_model_that_training_reaches(tmp_path):
    """The wide arm may take its target size from planned_model: it must equal a trained run's."""
    import torch

    from dendrobench.running.config import RunConfig
    from dendrobench.running.runner import Suite

    before = torch.get_num_threads()  # a Suite pins the thread count (threads=1): restored below
    for params in ({}, {"max_dendrites": 3}, {"switch_epochs": 1}):
        suite = Suite(RunConfig(task="toy_task:SpiralTask", budget="smoke", seed=0, arms=["dendrites"],
                                dendrites={"engine": "gd", **params}, results_dir=str(tmp_path / str(len(params)))),
                      echo=lambda _: None)
        data = suite.task.load_data("offline", 0)
        planned = suite.planned_target(0, data)
        rec = suite.run_all()[0]
        assert rec["status"] == "ok"
        assert planned == (rec["params"].get("final_inference") or rec["params"]["inference"]), params
    plateau = Suite(RunConfig(task="toy_task:SpiralTask", budget="smoke", dendrites={"engine": "gd", "switch_mode": "plateau"},
                              results_dir=str(tmp_path / "p")), echo=lambda _: None)
    assert plateau.planned_target(0, plateau.task.load_data("offline", 0)) is None
    torch.set_num_threads(before)
