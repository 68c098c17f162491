"""A small GPT-style causal transformer language model, the reference model of the ``wikitext2`` task.

Attention is written with explicit ``nn.Linear`` q / k / v / out projections and
``F.scaled_dot_product_attention`` (not ``nn.MultiheadAttention``, whose projections dendrite
engines skip), so every projection and MLP layer is a plain Linear a dendrite engine can convert.
Pre-LayerNorm blocks, learned positions, untied output head (tying would couple the head to the
embedding, which a converted head could not keep).

``width`` scales ``d_model`` and the MLP width continuously (``int(round(c * width))``, at least 1);
the attention's inner size is ``n_heads * round(d_model / n_heads)`` so any ``d_model`` works and
the parameter count grows smoothly, which the wide arm's width search relies on.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class TransformerConfig:
    d_model: int = 128
    n_layers: int = 2
    n_heads: int = 4
    d_ff: int = 512
    max_len: int = 128
    dropout: float = 0.0


TINY_LM = TransformerConfig(d_model=32, n_layers=1, n_heads=2, d_ff=64, max_len=64)
SMALL_LM = TransformerConfig(d_model=128, n_layers=2, n_heads=4, d_ff=512, max_len=128)
# A paper-like CPU run (char-level transformer of the size used in many CPU tutorials).
MEDIUM_LM = TransformerConfig(d_model=256, n_layers=4, n_heads=4, d_ff=1024, max_len=256, dropout=0.1)
# GPT-2-small-like depth and width for GPU users (12 layers, 768 wide, 12 heads).
GPT2_SMALL_LM = TransformerConfig(d_model=768, n_layers=12, n_heads=12, d_ff=3072, max_len=512, dropout=0.1)


class CausalSelfAttention(nn.Module):
    def __init__(self, d_model: int, n_heads: int, head_dim: int, dropout: float):
        super().__init__()
        inner = n_heads * head_dim
        self.n_heads, self.head_dim, self.dropout = n_heads, head_dim, dropout
        self.q = nn.Linear(d_model, inner)
        self.k = nn.Linear(d_model, inner)
        self.v = nn.Linear(d_model, inner)
        self.out = nn.Linear(inner, d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, _ = x.shape

        def heads(y: torch.Tensor) -> torch.Tensor:
            return y.view(b, t, self.n_heads, self.head_dim).transpose(1, 2)

        y = F.scaled_dot_product_attention(heads(self.q(x)), heads(self.k(x)), heads(self.v(x)),
                                           dropout_p=self.dropout if self.training else 0.0, is_causal=True)
        return self.out(y.transpose(1, 2).reshape(b, t, self.n_heads * self.head_dim))


class Block(nn.Module):
    def __init__(self, d_model: int, n_heads: int, head_dim: int, d_ff: int, dropout: float):
        super().__init__()
        self.ln1 = nn.LayerNorm(d_model)
        self.attn = CausalSelfAttention(d_model, n_heads, head_dim, dropout)
        self.ln2 = nn.LayerNorm(d_model)
        self.fc1 = nn.Linear(d_model, d_ff)
        self.fc2 = nn.Linear(d_ff, d_model)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.drop(self.attn(self.ln1(x)))
        return x + self.drop(self.fc2(F.gelu(self.fc1(self.ln2(x)))))


class CausalTransformerLM(nn.Module):
    """Tokens ``(B, T)`` (int64, ``T <= max_len``) to next-token logits ``(B, T, vocab)``."""

    def __init__(self, vocab_size: int, config: TransformerConfig, width: float = 1.0):
        super().__init__()
        if width <= 0:
            raise ValueError(f"width must be positive, got {width!r}")
        d = max(1, int(round(config.d_model * width)))
        ff = max(1, int(round(config.d_ff * width)))
        head_dim = max(1, int(round(d / config.n_heads)))
        self.max_len = config.max_len
        self.tok = nn.Embedding(vocab_size, d)
        self.pos = nn.Embedding(config.max_len, d)
        self.drop = nn.Dropout(config.dropout)
        self.blocks = nn.ModuleList(Block(d, config.n_heads, head_dim, ff, config.dropout) for _ in range(config.n_layers))
        self.ln_f = nn.LayerNorm(d)
        self.head = self.make_head(d, vocab_size, config)
        self.apply(self._init)

    def make_head(self, d: int, vocab_size: int, config: TransformerConfig) -> nn.Module:
        """The output layer: a full softmax's logits (a subclass may return a cheaper head)."""
        return nn.Linear(d, vocab_size)

    @staticmethod
    def _init(m: nn.Module) -> None:
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, std=0.02)
        if isinstance(m, nn.Linear) and m.bias is not None:
            nn.init.zeros_(m.bias)

    def features(self, tokens: torch.Tensor) -> torch.Tensor:
        """The final hidden states ``(B, T, d)`` that the output layer reads."""
        t = tokens.shape[1]
        positions = torch.arange(t, device=tokens.device)
        x = self.drop(self.tok(tokens) + self.pos(positions)[None])
        for block in self.blocks:
            x = block(x)
        return self.ln_f(x)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(tokens))


def build_transformer_lm(config: TransformerConfig, vocab_size: int, width: float = 1.0) -> CausalTransformerLM:
    return CausalTransformerLM(vocab_size, config, width)
