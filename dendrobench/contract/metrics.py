"""One evaluator per metric, in the spirit of OGB's ``Evaluator``.

An evaluator checks the shape and type of what it is given and says what it expected, so a task
plugin that feeds it the wrong thing fails loudly instead of reporting a wrong number. Each
evaluator also defines the *error* used for RER, so the direction of a metric is decided once,
and its *tie tolerance*: the largest error difference between two runs that the metric cannot tell
from no difference (the leaderboard counts such a pair as a tie, docs/statistics.md "Ties").
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from dendrobench.errors import unknown_choice


def _as_numpy(x: object, what: str) -> np.ndarray:
    import torch  # here, not at the top: the leaderboard reads tie tolerances without loading torch

    if isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    if isinstance(x, np.ndarray):
        return x
    raise TypeError(f"{what} must be a torch.Tensor or numpy.ndarray, got {type(x).__name__}")


@dataclass(frozen=True)
class MetricInfo:
    """What a record stores about its primary metric."""

    name: str
    higher_is_better: bool


class Evaluator:
    """Base class: ``eval({"y_true": ..., "y_pred": ...})`` returns a dict of metric values."""

    name: ClassVar[str]
    higher_is_better: ClassVar[bool]
    expected_input_format: ClassVar[str]
    # Error differences with |d| <= tie_tolerance are ties: the metric's resolution, below which two
    # runs differ only by float noise or by the same network selected at a later epoch (issue 24).
    # 0.0: only exact zeros tie (and float-split ties, see stats.TIE_TOLERANCE).
    tie_tolerance: ClassVar[float] = 0.0

    @property
    def info(self) -> MetricInfo:
        return MetricInfo(self.name, self.higher_is_better)

    def error(self, value: float) -> float:
        """The error for RER: ``1 - value`` for bounded scores, the value itself otherwise (an evaluator
        may say otherwise: perplexity's error is its log)."""
        return 1.0 - value if self.higher_is_better else value

    def better(self, a: float, b: float) -> bool:
        """Whether score ``a`` beats score ``b`` (NaN never beats anything)."""
        if math.isnan(a):
            return False
        if math.isnan(b):
            return True
        return a > b if self.higher_is_better else a < b

    def eval(self, input_dict: dict) -> dict[str, float]:
        if not isinstance(input_dict, dict) or not {"y_true", "y_pred"} <= input_dict.keys():
            raise ValueError(f"{self.name}: expected a dict with y_true and y_pred. {self.expected_input_format}")
        return self._eval(_as_numpy(input_dict["y_true"], "y_true"), _as_numpy(input_dict["y_pred"], "y_pred"))

    def _eval(self, y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
        raise NotImplementedError


class RocAuc(Evaluator):
    """Binary ROC-AUC with accuracy at threshold 0 (logits) reported beside it."""

    name = "roc_auc"
    higher_is_better = True
    # AUC moves in steps of 1 / (positives x negatives) (1.6e-7 on credit-default's 6,000 test
    # rows), far below anything reported (3-4 decimals): 1e-5, a tenth of the fourth decimal. In the
    # published credit-default records the same network selected one epoch later differs by 4.3e-7
    # to 4.6e-6, and the smallest real change is 3.3e-5 (bbbp's smallest: 1.3e-4).
    tie_tolerance = 1e-5
    expected_input_format = "y_true: shape (n,) of 0/1 labels; y_pred: shape (n,) of logits or scores."

    def _eval(self, y_true, y_pred):
        from sklearn.metrics import accuracy_score, roc_auc_score

        if y_pred.ndim > 1 and y_pred.shape[0] == y_true.reshape(-1).shape[0] and y_pred[0].size > 1:
            # e.g. two logits per example: say the real shape (not the flattened one) and the fix
            raise ValueError(f"roc_auc: y_pred has shape {tuple(y_pred.shape)} for y_true {tuple(y_true.shape)}: "
                             f"one score per example is expected. {self.expected_input_format} A model with "
                             f"{y_pred[0].size} outputs per example overrides Task.predictions(output, batch) to return "
                             f"(targets, one score per example), e.g. output[:, 1] - output[:, 0] for two logits")
        y_true = y_true.reshape(-1)
        y_pred = y_pred.reshape(-1).astype(np.float64)
        if y_true.shape != y_pred.shape:
            raise ValueError(f"roc_auc: y_true {y_true.shape} and y_pred {y_pred.shape} differ. {self.expected_input_format}")
        labels = set(np.unique(y_true).tolist())
        if not labels <= {0, 1}:
            raise ValueError(f"roc_auc: y_true must hold 0/1 labels, got {sorted(labels)[:5]}")
        if len(labels) < 2:
            raise ValueError("roc_auc: y_true holds a single class; ROC-AUC is undefined for this split")
        if not np.all(np.isfinite(y_pred)):
            return {"roc_auc": float("nan"), "accuracy": float("nan")}
        return {
            "roc_auc": float(roc_auc_score(y_true, y_pred)),
            "accuracy": float(accuracy_score(y_true, y_pred > 0)),
        }


class Accuracy(Evaluator):
    name = "accuracy"
    higher_is_better = True
    # The resolution on CIFAR-10's 10,000 test images is 1e-4 (one image): differences below it are
    # float noise of an exact tie. The tolerance is half the resolution, not the resolution itself:
    # a one-image difference computed in floating point lands on either side of 1e-4 (the published
    # cifar10 row has two such pairs), so a 1e-4 boundary would split them by rounding. One image
    # counts as a real difference; on a test set of more than 20,000 images it would tie.
    tie_tolerance = 5e-5
    expected_input_format = "y_true: shape (n,) of class indices; y_pred: shape (n, classes) of logits."

    def _eval(self, y_true, y_pred):
        from sklearn.metrics import accuracy_score

        if y_pred.ndim != 2 or y_true.reshape(-1).shape[0] != y_pred.shape[0]:
            raise ValueError(f"accuracy: got y_true {y_true.shape}, y_pred {y_pred.shape}. {self.expected_input_format}")
        return {"accuracy": float(accuracy_score(y_true.reshape(-1), y_pred.argmax(axis=1)))}


class Perplexity(Evaluator):
    """exp(mean token negative log-likelihood). The error for RER is its log, the cross-entropy in
    nats per token: the quantity the model is trained on, zero only for a perfect model, and additive
    over tokens. An RER on the perplexity itself would grow with the exponent (a 2 % lower
    cross-entropy at perplexity 300 is an 11 % lower perplexity), so a language-model row would not
    read on the same scale as the other tasks' error rates."""

    name = "perplexity"
    higher_is_better = False
    # in error units (nats per token), reported to 4 decimals: a tenth of the last digit, or
    # 0.003 in perplexity at 300
    tie_tolerance = 1e-5
    expected_input_format = "y_true: shape (n,) token counts per batch; y_pred: shape (n,) summed NLL per batch."

    def error(self, value: float) -> float:
        """log-perplexity: the mean negative log-likelihood per token, in nats (NaN stays NaN)."""
        return math.log(value) if value > 0 else float("nan")

    def _eval(self, y_true, y_pred):
        tokens = float(np.sum(y_true))
        if tokens <= 0:
            raise ValueError("perplexity: no tokens to evaluate")
        nll = float(np.sum(y_pred)) / tokens
        return {"perplexity": float(math.exp(min(nll, 700.0))), "nll": nll}


class MeanDice(Evaluator):
    """Mean Dice over foreground classes; the task computes per-sample Dice (e.g. MONAI DiceMetric)."""

    name = "mean_dice"
    higher_is_better = True
    # a mean of per-case Dice scores, reported to 3-4 decimals: as ROC-AUC, a tenth of the fourth
    tie_tolerance = 1e-5
    expected_input_format = "y_true: ignored (pass per-sample weights of 1); y_pred: shape (n, classes) Dice per sample and class."

    def _eval(self, y_true, y_pred):
        if y_pred.ndim != 2:
            raise ValueError(f"mean_dice: y_pred must be (n, classes), got {y_pred.shape}")
        per_class = np.nanmean(y_pred, axis=0)
        out = {"mean_dice": float(np.nanmean(per_class))}
        out.update({f"dice_{i}": float(v) for i, v in enumerate(per_class)})
        return out


EVALUATORS: dict[str, type[Evaluator]] = {e.name: e for e in (RocAuc, Accuracy, Perplexity, MeanDice)}


def tie_tolerance(name: str) -> float:
    """The tie tolerance of metric ``name`` (0.0 for a metric this package does not define: a
    plugin's own evaluator gets exact ties only, unless its records carry ``metric.tie_tolerance``)."""
    cls = EVALUATORS.get(name)
    return float(cls.tie_tolerance) if cls is not None else 0.0


def get_evaluator(name: str) -> Evaluator:
    try:
        return EVALUATORS[name]()
    except KeyError:
        raise unknown_choice("metric", name, EVALUATORS) from None
