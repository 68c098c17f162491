"""The causal transformer with an adaptive-softmax output layer: word-level language modelling on CPU.

A full softmax over WikiText-2's 33,278 words costs ``d x 33,278`` multiply-adds per token, forward
and backward, and a ``(tokens, 33,278)`` logit tensor per batch: at ``d = 128`` that is ten times the
two transformer blocks and dominates a CPU step (about 1.3 s per 16 x 64 tokens here). The adaptive
softmax (Grave et al. 2017, ``torch.nn.AdaptiveLogSoftmaxWithLoss``) scores the frequent words
(the *shortlist*, below the first cutoff) and one logit per rarer *cluster* for every token, and a
cluster's words, through a narrower projection (``d / div_value`` per level), only for the tokens
whose target lies in it. It is an exact normalised distribution, not an approximation of the loss,
so perplexity is comparable with a full softmax's.

It needs word ids ranked by training frequency (shortlist = the most frequent words). The task's
ids stay what they are (first appearance, shared with every other budget); the model holds the
permutation as a buffer ``rank`` (``rank[id]`` = that word's frequency rank, ties broken by id) and
ranks only the targets it scores. Inputs are embedded by their own ids, which is equivalent.

Because the head needs the target to compute a token's loss cheaply, the model is called as
``model(tokens, targets)`` and returns each token's negative log-likelihood ``(B, T)``; its
:meth:`AdaptiveTransformerLM.log_prob` gives the full distribution (in the task's id order) when
one is wanted. The output layer declares itself excluded from dendrite conversion by default
(``dendrite_exclude``, honoured by ``dendrobench.dendrites.convert.find_layers``): its Linear layers
are the word classifier and its cluster projections, not hidden layers, and at ``d = 64`` they hold
353 k weights, 3.5 times both transformer blocks (100 k), so dendrites there would mostly grow the
output layer. Naming them in ``modules_to_convert`` still converts them.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from dendrobench.baselines.transformer import CausalTransformerLM, TransformerConfig
from torch import nn


@dataclass(frozen=True)
class AdaptiveLMConfig(TransformerConfig):
    """A :class:`TransformerConfig` whose output layer is an adaptive softmax."""

    cutoffs: tuple[int, ...] = (2000, 10000)  # shortlist, then cluster bounds (frequency ranks)
    div_value: float = 4.0  # each cluster's projection is ``d / div_value**level`` wide


# The ``converged`` CPU budget's model (tasks/wikitext2.py): 2 blocks x 64 wide over 64-word windows.
ADAPTIVE_SMALL_LM = AdaptiveLMConfig(d_model=64, n_layers=2, n_heads=4, d_ff=256, max_len=64)


def frequency_rank(counts: torch.Tensor) -> torch.Tensor:
    """``rank[id]``: 0 for the most frequent id, ties broken by the smaller id (deterministic)."""
    counts = counts.to(torch.int64)
    order = torch.sort(-counts, stable=True).indices  # order[r] = id of rank r
    rank = torch.empty_like(order)
    rank[order] = torch.arange(len(order), dtype=order.dtype)
    return rank


def usable_cutoffs(cutoffs: tuple[int, ...], vocab_size: int) -> list[int]:
    """The cutoffs that fit inside the vocabulary (``< vocab_size - 1``, as the head requires); a
    vocabulary smaller than the first cutoff (a test fixture's) keeps one one-word cluster."""
    if vocab_size < 2:
        raise ValueError(f"an adaptive softmax needs at least 2 words, got a vocabulary of {vocab_size}")
    kept = [int(c) for c in cutoffs if 0 < int(c) < vocab_size - 1]
    return kept or [vocab_size - 1]


class AdaptiveTransformerLM(CausalTransformerLM):
    """``(tokens, targets)`` (int64 ``(B, T)``) to each target's NLL ``(B, T)``; see the module docstring."""

    # glob patterns of modules that dendrite engines leave alone unless named in modules_to_convert
    dendrite_exclude = ("head", "head.*")

    def __init__(self, vocab_size: int, config: AdaptiveLMConfig, counts: torch.Tensor, width: float = 1.0):
        if counts.shape != (vocab_size,):
            raise ValueError(f"counts must hold one training count per word ({vocab_size}), got shape "
                             f"{tuple(counts.shape)}")
        super().__init__(vocab_size, config, width)
        self.register_buffer("rank", frequency_rank(counts))

    def make_head(self, d: int, vocab_size: int, config: TransformerConfig) -> nn.Module:
        assert isinstance(config, AdaptiveLMConfig), "AdaptiveTransformerLM needs an AdaptiveLMConfig"
        return nn.AdaptiveLogSoftmaxWithLoss(d, vocab_size, usable_cutoffs(config.cutoffs, vocab_size),
                                             div_value=config.div_value, head_bias=True)

    def forward(self, tokens: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        h = self.features(tokens)
        out = self.head(h.reshape(-1, h.shape[-1]), self.rank[targets.reshape(-1)])
        return (-out.output).view(targets.shape)

    @torch.no_grad()
    def log_prob(self, tokens: torch.Tensor) -> torch.Tensor:
        """Log-probabilities of every next word ``(B, T, vocab)``, columns in the task's id order."""
        h = self.features(tokens)
        ranked = self.head.log_prob(h.reshape(-1, h.shape[-1]))
        return ranked[:, self.rank].view(*tokens.shape, -1)


def word_counts(tokens: torch.Tensor, vocab_size: int) -> torch.Tensor:
    """How often each id occurs in a token stream (the training split's, for the ranking)."""
    return torch.bincount(tokens.reshape(-1), minlength=vocab_size)[:vocab_size]


def build_adaptive_lm(config: AdaptiveLMConfig, vocab_size: int, train_tokens: torch.Tensor,
                      width: float = 1.0) -> AdaptiveTransformerLM:
    """The model, its shortlist and clusters ranked by ``train_tokens``' word frequencies."""
    return AdaptiveTransformerLM(vocab_size, config, word_counts(train_tokens, vocab_size), width)
