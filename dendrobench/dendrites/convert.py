"""Finding and replacing the layers an engine converts, shared by every engine."""

from __future__ import annotations

import fnmatch
from collections.abc import Callable

from torch import nn

from dendrobench.errors import ConfigError

LAYER_TYPES: dict[str, type[nn.Module]] = {
    "Linear": nn.Linear,
    "Conv1d": nn.Conv1d,
    "Conv2d": nn.Conv2d,
    "Conv3d": nn.Conv3d,
}


def layer_types(names: list[str]) -> tuple[type[nn.Module], ...]:
    bad = [n for n in names if n not in LAYER_TYPES]
    if bad:
        raise ConfigError(f"cannot convert layer type(s) {bad}; convertible types: {', '.join(LAYER_TYPES)}")
    return tuple(LAYER_TYPES[n] for n in names)


def find_layers(model: nn.Module, types: list[str], modules_to_convert: list[str] | None = None,
                exclude: list[str] | None = None, skip: Callable[[nn.Module], bool] | None = None,
                model_exclude: bool = True) -> list[str]:
    """Names of the layers to convert, in module order.

    Linear layers owned by ``nn.MultiheadAttention`` are skipped: it reads their ``weight`` directly,
    so a wrapper would break it. ``modules_to_convert`` names (or glob patterns) must each match.
    Without ``modules_to_convert``, the patterns the model itself declares in ``dendrite_exclude``
    (e.g. an adaptive-softmax output layer, whose Linears are no hidden layers) are excluded too
    (``model_exclude=False``: not, for an engine that needs every candidate).
    """
    wanted = layer_types(types)
    owned_by_mha = {f"{name}.{child}" if name else child
                    for name, mod in model.named_modules() if isinstance(mod, nn.MultiheadAttention)
                    for child, _ in mod.named_children()}
    candidates = [name for name, mod in model.named_modules()
                  if name and type(mod) in wanted and name not in owned_by_mha and not (skip and skip(mod))]
    if modules_to_convert:
        unmatched = [p for p in modules_to_convert if not any(fnmatch.fnmatchcase(c, p) for c in candidates)]
        if unmatched:
            raise ConfigError(
                f"modules_to_convert {unmatched} match no convertible layer; convertible layers: "
                f"{', '.join(candidates) or '(none)'}; layer types in the model: {describe_types(model)}")
        candidates = [c for c in candidates if any(fnmatch.fnmatchcase(c, p) for p in modules_to_convert)]
    exclude = [*(exclude or []), *(model_exclusions(model) if model_exclude and not modules_to_convert else [])]
    if exclude:
        candidates = [c for c in candidates if not any(fnmatch.fnmatchcase(c, p) for p in exclude)]
    if not candidates:
        raise ConfigError(
            f"the model has no layer to convert (looking for {', '.join(types)}); "
            f"layer types in the model: {describe_types(model)}")
    return candidates


def model_exclusions(model: nn.Module) -> list[str]:
    """The glob patterns a model declares never to convert by default (its ``dendrite_exclude``)."""
    return [str(p) for p in getattr(model, "dendrite_exclude", ()) or ()]


def describe_types(model: nn.Module) -> str:
    seen: dict[str, int] = {}
    for _, mod in model.named_modules():
        if not list(mod.children()):
            seen[type(mod).__name__] = seen.get(type(mod).__name__, 0) + 1
    return ", ".join(f"{k} x{v}" for k, v in seen.items()) or "(no layers)"


def replace_module(model: nn.Module, name: str, new: nn.Module) -> None:
    parent_name, _, child = name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    setattr(parent, child, new)
