"""``precision=bf16`` (issue 21.6, the GPU rows' arithmetic), tested on CPU: training forward passes
run under bf16 autocast and evaluation does not; a bf16 run is its own record and its own row, and
an fp32 run keeps the hash it always had."""

from __future__ import annotations

import torch
from recordfactory import paired
from toy_task import SpiralTask

from dendrobench.evidence import stats
from dendrobench.running.config import RunConfig, validate
from dendrobench.running.runner import Suite


class Probe(SpiralTask):
    """The toy task, noting the dtype of its first layer's output in training and in evaluation."""

    seen: list[tuple[bool, torch.dtype]] = []

    def build_model(self, data, width=1.0):
        model = super().build_model(data, width)
        first = next(m for m in model.modules() if isinstance(m, torch.nn.Linear))
        first.register_forward_hook(lambda m, i, out: Probe.seen.append((m.training, out.dtype)))
        return model


def _suite(tmp_path, precision: str) -> Suite:
    run = RunConfig(task="toy_task:SpiralTask", budget="smoke", seed=0, seeds=1, arms=["baseline"], progress=False,
                    results_dir=str(tmp_path / precision), precision=precision)
    validate(run)
    s = Suite(run, echo=lambda s: None)
    s.task = Probe()
    return s


def test_bf16_autocasts_training_forwards_only(tmp_path):
    Probe.seen.clear()
    (rec,) = _suite(tmp_path, "bf16").run_all()
    assert rec["status"] == "ok", rec.get("message")
    train = {dt for training, dt in Probe.seen if training}
    evaluation = {dt for training, dt in Probe.seen if not training}
    assert train == {torch.bfloat16}  # the warm-up's scratch step too
    assert evaluation == {torch.float32}
    assert rec["config"]["precision"] == "bf16"
    Probe.seen.clear()
    (ref,) = _suite(tmp_path, "fp32").run_all()
    assert {dt for _, dt in Probe.seen} == {torch.float32}
    # bf16 arithmetic changed the training itself, as it should (the smoke metric is too coarse to show it)
    assert ref["history"][-1]["train_loss"] != rec["history"][-1]["train_loss"]


def test_precision_is_in_the_identity_only_when_not_fp32(tmp_path):
    bf16, fp32 = _suite(tmp_path, "bf16"), _suite(tmp_path, "fp32")
    assert bf16.identity("baseline", 0)["precision"] == "bf16"
    assert "precision" not in fp32.identity("baseline", 0)  # every fp32 record keeps its old name


def test_bf16_runs_make_their_own_row():
    base = [0.30, 0.31, 0.29, 0.30, 0.32, 0.31]
    fp32 = [r.to_dict() for r in paired("bbbp", {"baseline": base, "dendrites": [e - 0.01 for e in base]})]
    bf16 = [r.to_dict() for r in paired("bbbp", {"baseline": base, "dendrites": [e + 0.01 for e in base]})]
    for r in bf16:
        r["config"]["precision"] = "bf16"
        r["path"] = f"bf16-{r.get('path', '')}"
    groups = stats.summarize(fp32 + bf16)
    assert len(groups) == 2 and all(len(g.records) == 12 for g in groups)
