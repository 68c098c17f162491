"""Cost figures of a run: parameters, forward FLOPs per sample, peak memory.

FLOPs come from ``torch.utils.flop_counter`` on one real evaluation batch, so they describe the
model as trained (dendrites included) on the task's real input shapes.
"""

from __future__ import annotations

import resource
import sys
from collections.abc import Sequence

import torch
from torch import nn


def count_params(model: nn.Module, trainable_only: bool = False) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


@torch.no_grad()
def flops_per_sample(model: nn.Module, inputs: Sequence[torch.Tensor], batch_size: int) -> float | None:
    """Forward FLOPs per sample; None when the counter cannot trace the model (recorded, not fatal)."""
    from torch.utils.flop_counter import FlopCounterMode

    was_training = model.training
    model.eval()
    try:
        counter = FlopCounterMode(display=False)
        with counter:
            model(*inputs)
        return float(counter.get_total_flops()) / max(1, batch_size)
    except Exception:  # noqa: BLE001 - an untraceable op must not fail the run
        return None
    finally:
        model.train(was_training)


def peak_memory_mb(device: torch.device) -> float:
    """Peak accelerator memory for CUDA; otherwise the process's peak resident set size."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / 2**20 if sys.platform == "darwin" else rss / 1024


def reset_peak_memory(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
