"""Export of a (dendritic) model to TorchScript and ONNX, checked against eager mode.

DESIGN.md: "A dendritic model must still export (TorchScript and ONNX) and give the same outputs
after export." A dendrite that only works in eager PyTorch would be useless to a deployment, so
every dendritic run says in its record whether its selected model exported and how far the
exported outputs are from the eager ones.

* TorchScript: ``torch.jit.script`` first (keeps control flow, e.g. any batch size); models whose
  code cannot be scripted (the perforatedai package's compiled modules) fall back to
  ``torch.jit.trace``. The scripted/traced module is saved, loaded back and run.
* ONNX: the TorchScript-based exporter (``dynamo=False``: no network, no extra packages), opset
  17, falling back to the dynamo exporter; the file is run with onnxruntime when it is installed,
  else with ``onnx.reference`` (pure Python, slow but fine for one batch).
"""

from __future__ import annotations

import copy
import io
import warnings
from collections.abc import Sequence
from contextlib import redirect_stdout
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

ATOL = 1e-4
RTOL = 1e-3


def _flat(out: Any) -> list[torch.Tensor]:
    if isinstance(out, torch.Tensor):
        return [out]
    if isinstance(out, (tuple, list)):
        return [t for o in out for t in _flat(o)]
    if isinstance(out, dict):
        return [t for k in sorted(out) for t in _flat(out[k])]
    raise TypeError(f"cannot compare model output of type {type(out).__name__}")


def _diff(expected: list[torch.Tensor], got: Sequence[Any]) -> float:
    if len(expected) != len(got):
        raise ValueError(f"export gives {len(got)} outputs, eager mode {len(expected)}")
    worst = 0.0
    for e, g in zip(expected, got):
        g = torch.as_tensor(np.asarray(g)) if not isinstance(g, torch.Tensor) else g
        e = e.detach().cpu().float()
        g = g.detach().cpu().float().reshape(e.shape)
        worst = max(worst, float((e - g).abs().max()) if e.numel() else 0.0)
        if not torch.allclose(e, g, atol=ATOL, rtol=RTOL):
            raise ValueError(f"outputs differ from eager mode by up to {worst:.3g}")
    return worst


def _short(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}".strip().splitlines()[0]
    return text[:300]


def torchscript_check(model: nn.Module, inputs: tuple[torch.Tensor, ...], expected: list[torch.Tensor],
                      folder: Path) -> tuple[str, float | None]:
    path = folder / "model.torchscript.pt"
    how = "scripted"
    try:
        module = torch.jit.script(model)
    except Exception:  # noqa: BLE001 - any scripting failure: try tracing
        how = "traced"
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                module = torch.jit.trace(model, inputs, check_trace=False)
        except Exception as exc:  # noqa: BLE001
            return f"failed: {_short(exc)}", None
    try:
        torch.jit.save(module, str(path))
        loaded = torch.jit.load(str(path), map_location="cpu")
        with torch.no_grad():
            diff = _diff(expected, _flat(loaded(*inputs)))
    except Exception as exc:  # noqa: BLE001
        return f"failed ({how}): {_short(exc)}", None
    return f"ok ({how})", diff


def _run_onnx(path: Path, inputs: tuple[torch.Tensor, ...], names: list[str]) -> list[Any]:
    import onnx

    graph_inputs = [i.name for i in onnx.load(str(path)).graph.input]
    feed = {n: t.detach().cpu().numpy() for n, t in zip(names, inputs) if n in graph_inputs}
    try:
        import onnxruntime as ort
    except ImportError:
        from onnx.reference import ReferenceEvaluator

        return list(ReferenceEvaluator(str(path)).run(None, feed))
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return list(session.run(None, feed))


def onnx_check(model: nn.Module, inputs: tuple[torch.Tensor, ...], expected: list[torch.Tensor],
               folder: Path) -> tuple[str, float | None]:
    path = folder / "model.onnx"
    names = [f"input_{i}" for i in range(len(inputs))]
    errors = []
    for dynamo in (False, True):
        try:
            with warnings.catch_warnings(), redirect_stdout(io.StringIO()):
                warnings.simplefilter("ignore")
                torch.onnx.export(model, inputs, str(path), input_names=names, opset_version=17, dynamo=dynamo)
            break
        except Exception as exc:  # noqa: BLE001 - try the other exporter, then report
            errors.append(_short(exc))
    else:
        return f"failed: {' | '.join(errors)}", None
    try:
        diff = _diff(expected, _run_onnx(path, inputs, names))
    except Exception as exc:  # noqa: BLE001
        return f"failed: {_short(exc)}", None
    return "ok", diff


def export_check(model: nn.Module, inputs: Sequence[torch.Tensor], folder: Path | str) -> dict[str, Any]:
    """Export a copy of ``model`` (on CPU, eval mode) both ways and compare with eager outputs on
    ``inputs``. Never raises for a model that does not export: the result says what failed."""
    with warnings.catch_warnings():  # torch.jit's deprecation notices, tracer warnings
        warnings.simplefilter("ignore")
        return _export_check(model, inputs, Path(folder))


def _export_check(model: nn.Module, inputs: Sequence[torch.Tensor], folder: Path) -> dict[str, Any]:
    folder.mkdir(parents=True, exist_ok=True)
    try:
        model = copy.deepcopy(model).cpu().eval()
        args = tuple(t.detach().cpu() for t in inputs)
        with torch.no_grad():
            expected = _flat(model(*args))
    except Exception as exc:  # noqa: BLE001
        return {"torchscript": f"failed: {_short(exc)}", "onnx": "not tried", "max_abs_diff": None}
    ts, ts_diff = torchscript_check(model, args, expected, folder)
    ox, ox_diff = onnx_check(model, args, expected, folder)
    diffs = [d for d in (ts_diff, ox_diff) if d is not None]
    return {"torchscript": ts, "onnx": ox, "max_abs_diff": max(diffs) if diffs else None,
            "atol": ATOL, "rtol": RTOL}
