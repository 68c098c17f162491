"""``cc``: correlation-trained dendrites (Cascade-Correlation / Perforated Backpropagation style).

The cycle, per converted layer (all converted layers go through it together):

1. **Neuron phase** -- the whole network trains normally with the runner's optimizer.
2. **Dendrite phase** -- the network is frozen (the runner's optimizer is not stepped) and a pool
   of candidate dendrites per layer (same input as the layer, one output per output channel) is
   trained to maximise the correlation (or covariance) between the candidate's activated output
   and the layer's *remaining error signal*: the gradient of the loss with respect to the layer's
   output, caught with hooks on every training batch. The engine takes over ``train_step`` for
   this phase; each candidate-training step is one counted step of the runner's budget, so the
   budget stays the baseline's.
3. **Install** -- the best candidate of each layer (highest mean |correlation| over the end of the
   phase) is frozen and connected through per-channel output weights that start at zero (the
   model's output does not change at that moment). Why zero is enough: the gradient of the loss
   with respect to an output weight is exactly the covariance the candidate was trained to
   maximise, so gradient descent starts moving the weight at once and in the right direction.
4. The layer, the output weights and the rest of the network train again (a neuron phase); repeat
   up to ``max_dendrites`` times.

Differences from the proprietary Perforated Backpropagation are listed in ``docs/engines.md``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from dendrobench.contract.engine import DendriteEngine, EngineContext, LossFn, ValidationDecision
from dendrobench.dendrites.convert import find_layers
from dendrobench.dendrites.gd import CycleSchedule, GDConfig
from dendrobench.dendrites.modules import ACTIVATIONS, Branch, convert_layers, count_dendrites
from dendrobench.errors import ConfigError


@dataclass
class CCConfig(GDConfig):
    """gd's parameters (schedule, dendrite kind, conversion) plus the dendrite phase's own.
    In fixed mode a null ``switch_epochs`` splits what the dendrite phases leave evenly."""

    candidates: int = 4  # candidate dendrites trained per layer in each dendrite phase
    candidate_epochs: int = 1  # length of a dendrite phase, in epochs of the budget
    candidate_lr_factor: float = 3.0  # candidates' Adam lr = this x the runner's current lr
    objective: str = "correlation"  # correlation | covariance

    def validate(self) -> None:
        super().validate()
        if self.candidates < 1:
            raise ConfigError(f"candidates must be >= 1, got {self.candidates}")
        if self.candidate_epochs < 0:
            raise ConfigError(f"candidate_epochs must be >= 0, got {self.candidate_epochs}")
        if not self.candidate_lr_factor > 0:
            raise ConfigError(f"candidate_lr_factor must be positive, got {self.candidate_lr_factor}")
        if self.objective not in ("correlation", "covariance"):
            raise ConfigError(f"unknown objective {self.objective!r}; valid: correlation, covariance")
        if self.activation not in ACTIVATIONS:
            raise ConfigError(f"unknown activation {self.activation!r}; valid: {', '.join(ACTIVATIONS)}")


class CCSchedule(CycleSchedule):
    """Neuron-phase timing: the epochs left after the dendrite phases, split over max_dendrites + 1."""

    def phase_length(self, ctx: EngineContext) -> int:
        if self.cfg.switch_epochs:
            return self.cfg.switch_epochs
        neuron_epochs = ctx.epochs - self.cfg.max_dendrites * self.cfg.candidate_epochs
        return max(1, neuron_epochs // (self.cfg.max_dendrites + 1))


def channels_last(t: torch.Tensor, layer: nn.Module) -> torch.Tensor:
    """``[P, C]``: one row per example and position, one column per output channel."""
    if isinstance(layer, nn.Linear):
        return t.reshape(-1, t.shape[-1])
    return t.movedim(1, -1).reshape(-1, t.shape[1])


def candidate_scores(v: torch.Tensor, e: torch.Tensor, objective: str, eps: float = 1e-8) -> torch.Tensor:
    """Per-candidate objective, shape ``[K]``, for candidate outputs ``v`` ``[K, P, C]`` and error
    signal ``e`` ``[P, C]``: the mean over channels of |corr(v_c, e_c)| (or of |cov| with ``e``
    standardised, Fahlman's S, so the value does not depend on how the loss is scaled)."""
    vc = v - v.mean(dim=1, keepdim=True)
    ec = e - e.mean(dim=0, keepdim=True)
    e_std = ec.pow(2).mean(dim=0).sqrt() + eps
    cov = (vc * ec.unsqueeze(0)).mean(dim=1) / e_std  # [K, C]
    if objective == "correlation":
        cov = cov / (vc.pow(2).mean(dim=1).sqrt() + eps)
    return cov.abs().mean(dim=1)


class _Pool(nn.Module):
    """The candidate dendrites of one layer during a dendrite phase (never part of the model)."""

    def __init__(self, dendrites: list[nn.Module], activation: str):
        super().__init__()
        self.dendrites = nn.ModuleList(dendrites)
        self.act = ACTIVATIONS[activation]()
        self.ema: torch.Tensor | None = None  # running objective of each candidate

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        return [self.act(d(x)) for d in self.dendrites]


class CorrelationDendrites(DendriteEngine):
    name = "cc"
    description = ("correlation-trained dendrites (Cascade-Correlation / Perforated Backpropagation style): "
                   "candidates fit the layer's remaining error with the network frozen, then join it")
    Config = CCConfig

    def __init__(self, config: dict[str, Any] | None = None):
        super().__init__(config)
        from dendrobench.contract.registry import get_dendrite_kind

        self.kind = get_dendrite_kind(self.cfg.dendrite)
        self.layers: list[str] = []
        self.schedule: CCSchedule | None = None
        self.phase = "neuron"  # neuron | dendrite
        self.phase_epochs = 0
        self.pools: dict[str, _Pool] = {}
        self.cand_opt: torch.optim.Optimizer | None = None
        self.captured: dict[str, list[torch.Tensor]] = {}
        self.handles: list[Any] = []
        self.best_scores: list[float] = []  # objective of each installed dendrite (for the record)

    # -- conversion -------------------------------------------------------------------------
    def wrap(self, model: nn.Module, ctx: EngineContext) -> nn.Module:
        cfg = self.cfg
        self.layers = find_layers(model, cfg.types, cfg.modules_to_convert, cfg.exclude)
        convert_layers(model, self.layers)
        self.schedule = CCSchedule(cfg, ctx.higher_is_better)
        return model

    # -- dendrite phase ---------------------------------------------------------------------
    def _start_phase(self, model: nn.Module, ctx: EngineContext) -> None:
        """Build the candidate pools (own RNG stream: the global one stays the baseline's) and hook
        every converted layer so a forward/backward pass leaves (input, dL/d output) behind."""
        self.pools = {}
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(ctx.seed * 1013 + self.cycles + 1)
            for name in self.layers:
                layer = model.get_submodule(name).layer
                dendrites = [self.kind.build(layer, **self.cfg.dendrite_params) for _ in range(self.cfg.candidates)]
                self.pools[name] = _Pool(dendrites, self.cfg.activation).to(next(layer.parameters()).device)
        params = [p for pool in self.pools.values() for p in pool.parameters()]
        self.cand_opt = torch.optim.Adam(params, lr=1e-3)
        for name in self.layers:
            self.handles.append(model.get_submodule(name).register_forward_hook(self._hook(name)))
        self.phase, self.phase_epochs = "dendrite", 0

    def _hook(self, name: str):
        def hook(module: nn.Module, args: tuple, out: torch.Tensor) -> None:
            if not (torch.is_grad_enabled() and module.training and out.requires_grad):
                return
            slot = [args[0].detach()]
            self.captured[name] = slot
            out.register_hook(lambda g: slot.append(g.detach()))

        return hook

    def train_step(self, model: nn.Module, batch: Any, loss_fn: LossFn, optimizer: torch.optim.Optimizer,
                   ctx: EngineContext, grad_clip: float | None = None) -> float:
        if self.phase != "dendrite":
            return super().train_step(model, batch, loss_fn, optimizer, ctx, grad_clip)
        assert self.cand_opt is not None
        model.train()
        self.captured = {}
        loss = loss_fn(model, batch)
        loss.backward()  # fills the hooks' error signals; the network's own grads are never used
        for p in model.parameters():
            p.grad = None
        lr = optimizer.param_groups[0]["lr"] * self.cfg.candidate_lr_factor
        for group in self.cand_opt.param_groups:
            group["lr"] = lr
        self.cand_opt.zero_grad(set_to_none=True)
        for name, slot in self.captured.items():
            if len(slot) < 2:  # the layer's output did not reach the loss in this batch
                continue
            x, grad = slot
            layer = model.get_submodule(name).layer
            pool = self.pools[name]
            e = channels_last(grad, layer)
            v = torch.stack([channels_last(o, layer) for o in pool(x)])
            scores = candidate_scores(v, e, self.cfg.objective)
            (-scores.sum()).backward()
            s = scores.detach()
            pool.ema = s if pool.ema is None else 0.9 * pool.ema + 0.1 * s
        self.cand_opt.step()
        self.captured = {}
        return float(loss.detach())

    def _finish_phase(self, model: nn.Module) -> int:
        """Install the best candidate of every layer behind a zero output weight; drop the rest."""
        for h in self.handles:
            h.remove()
        self.handles = []
        added = 0
        for name in self.layers:
            wrapper = model.get_submodule(name)
            pool = self.pools[name]
            best = int(torch.argmax(pool.ema)) if pool.ema is not None else 0
            self.best_scores.append(float(pool.ema[best]) if pool.ema is not None else float("nan"))
            dendrite = pool.dendrites[best]
            dendrite.requires_grad_(False)  # frozen for good: only the output weight learns to use it
            branch = Branch(dendrite, wrapper.layer, self.cfg.activation)
            if self.cfg.freeze_scale:
                branch.scale.requires_grad_(False)
            wrapper.add_branch(branch)
            added += 1
        self.pools, self.cand_opt, self.phase = {}, None, "neuron"
        return added

    def on_validation(self, model: nn.Module, score: float, ctx: EngineContext) -> ValidationDecision:
        assert self.schedule is not None, "wrap() must run before on_validation()"
        if self.phase == "dendrite":
            self.phase_epochs += 1
            if self.phase_epochs < self.cfg.candidate_epochs:
                return ValidationDecision(model)
            self.cycles += 1
            self.added += self._finish_phase(model)
            return ValidationDecision(model, restructured=True, event="dendrites_added",
                                      training_complete=self.cycles >= self.cfg.max_dendrites)
        if not self.schedule.observe(score, ctx, self.cycles):
            return ValidationDecision(model)
        # a dendrite phase must end with at least one epoch left to train the new output weights
        if ctx.epoch + self.cfg.candidate_epochs >= ctx.epochs:
            return ValidationDecision(model)
        self._start_phase(model, ctx)
        if self.cfg.candidate_epochs == 0:
            self.cycles += 1
            self.added += self._finish_phase(model)
            return ValidationDecision(model, restructured=True, event="dendrites_added")
        return ValidationDecision(model, event="dendrite_phase")

    def done(self, model: nn.Module) -> nn.Module:
        for h in self.handles:
            h.remove()
        self.handles, self.pools, self.cand_opt = [], {}, None
        return model

    # -- reporting --------------------------------------------------------------------------
    def summary(self) -> dict[str, Any]:
        return {**super().summary(), "objective": self.cfg.objective,
                "installed_scores": [round(s, 4) for s in self.best_scores]}

    def inference_params(self, model: nn.Module) -> int:
        return sum(p.numel() for p in model.parameters())

    def dendrite_count(self, model: nn.Module) -> int:
        return count_dendrites(model)
