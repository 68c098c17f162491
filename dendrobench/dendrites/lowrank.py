"""``lowrank``: a cheap dendrite kind (entry-point group ``dendrobench.dendrites``).

The standard dendrite is a full copy of the layer, so each one doubles the layer's parameters and
FLOPs. A low-rank dendrite factors it through ``rank`` channels: ``in -> rank`` with the layer's
own kernel, stride, padding and dilation (so its output has the layer's shape), then a 1x1 (or
plain linear) map ``rank -> out``. With ``rank`` much smaller than the layer's width it costs a
fraction of a copy -- the "smaller and as good" claim can be tested without paying a full layer
per dendrite. Use it with ``dendrites.dendrite=lowrank dendrites.dendrite_params.rank=4`` (``gd``
and ``cc`` both take it).
"""

from __future__ import annotations

from torch import nn

CONVS: dict[type[nn.Module], type[nn.Module]] = {nn.Conv1d: nn.Conv1d, nn.Conv2d: nn.Conv2d, nn.Conv3d: nn.Conv3d}


class LowRankDendrite:
    """``build(layer, rank=4)``: the layer's map squeezed through ``rank`` channels."""

    @staticmethod
    def build(layer: nn.Module, rank: int = 4, **params) -> nn.Module:
        if params:
            raise TypeError(f"the lowrank dendrite takes only 'rank', got {sorted(params)}")
        rank = int(rank)
        if rank < 1:
            raise ValueError(f"lowrank dendrite rank must be >= 1, got {rank}")
        device = next(layer.parameters()).device
        if isinstance(layer, nn.Linear):
            return nn.Sequential(nn.Linear(layer.in_features, rank, bias=False),
                                 nn.Linear(rank, layer.out_features)).to(device)
        conv = CONVS.get(type(layer))
        if conv is None:
            raise TypeError(f"the lowrank dendrite supports Linear and Conv1d/2d/3d, not {type(layer).__name__}")
        down = conv(layer.in_channels, rank, layer.kernel_size, stride=layer.stride, padding=layer.padding,
                    dilation=layer.dilation, groups=1, bias=False, padding_mode=layer.padding_mode)
        up = conv(rank, layer.out_channels, 1)
        return nn.Sequential(down, up).to(device)
