"""The task plugin contract.

A task supplies data, a base model (with a width multiplier), a loss and an evaluation; the runner
owns training, so every arm of every task is trained under the same rules. Subclass :class:`Task`
and register it under the entry-point group ``dendrobench.tasks``.

Batches are whatever the task's dataloader yields; the runner only ever hands them back to the
task (``inputs``, ``loss``, ``batch_size``). The model is always called as ``model(*task.inputs(batch))``
with plain tensors, so FLOP counting and TorchScript / ONNX export work the same for every task.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, TensorDataset

from dendrobench.contract.batching import TensorBatches
from dendrobench.contract.metrics import Evaluator, get_evaluator
from dendrobench.contract.names import BUDGET_NAMES, DATA_SOURCES  # noqa: F401 - part of this module's API


@dataclass(frozen=True)
class Budget:
    """A fixed training budget: identical for every arm of a task.

    ``epochs * steps_per_epoch`` optimizer steps in all; an "epoch" is the interval between
    validations (for tasks with a natural pass over the data, ``steps_per_epoch=None`` means one
    pass over the training split). Dendrite cycles happen inside these steps, never on top.
    """

    epochs: int
    batch_size: int
    lr: float
    steps_per_epoch: int | None = None
    weight_decay: float = 0.0
    optimizer: str = "adam"  # adam | adamw | sgd
    schedule: str = "constant"  # constant | cosine | step | reduce_on_plateau (dendrobench/running/schedules.py)
    warmup_steps: int = 0
    grad_clip: float | None = None
    eval_batch_size: int | None = None
    # Deterministic subsets (first N of a seed-independent permutation) so smoke budgets stay
    # seconds long on the same data; null = the whole split.
    max_train_examples: int | None = None
    max_eval_examples: int | None = None
    # -- protocol options (issue 10). At their defaults they leave a budget exactly what it was,
    # and they are left out of the record hash (``identity``) so older records keep their names.
    step_size: int = 10  # schedule=step: epochs between decays (torch StepLR's step_size)
    gamma: float = 0.1  # schedule=step: decay factor (StepLR's gamma)
    plateau_patience: int = 10  # schedule=reduce_on_plateau: epochs without gain on validation (ReduceLROnPlateau)
    plateau_factor: float = 0.1  # schedule=reduce_on_plateau: lr multiplier on a plateau
    plateau_threshold: float = 1e-4  # schedule=reduce_on_plateau: torch's relative threshold
    early_stopping: int | None = None  # stop after this many epochs without a better validation score
    until_engine_complete: bool = False  # stop when the dendrite engine says training is complete (published protocol)
    reset_optimizer_on_cycle: bool = False  # a fresh optimizer and schedule after every dendrite cycle (as PAI's examples do)

    def validate(self) -> None:
        from dendrobench.errors import ConfigError

        for name in ("epochs", "batch_size"):
            if int(getattr(self, name)) < 1:
                raise ConfigError(f"budget {name} must be a positive integer, got {getattr(self, name)!r}")
        if self.steps_per_epoch is not None and int(self.steps_per_epoch) < 1:
            raise ConfigError(f"budget steps_per_epoch must be a positive integer or null, got {self.steps_per_epoch!r}")
        if not self.lr > 0:
            raise ConfigError(f"budget lr must be positive, got {self.lr!r}")
        for name in ("max_train_examples", "max_eval_examples"):
            value = getattr(self, name)
            if value is not None and int(value) < 1:
                raise ConfigError(f"budget {name} must be a positive integer or null, got {value!r}")
        if self.weight_decay < 0 or self.warmup_steps < 0:
            raise ConfigError("budget weight_decay and warmup_steps must not be negative")
        if self.optimizer not in OPTIMIZERS:
            raise ConfigError(f"unknown optimizer {self.optimizer!r}; valid optimizers: {', '.join(OPTIMIZERS)}")
        if self.schedule not in SCHEDULES:
            raise ConfigError(f"unknown schedule {self.schedule!r}; valid schedules: {', '.join(SCHEDULES)}")
        if int(self.step_size) < 1 or int(self.plateau_patience) < 0:
            raise ConfigError(f"budget step_size must be >= 1 and plateau_patience >= 0, got {self.step_size!r}, "
                              f"{self.plateau_patience!r}")
        for name in ("gamma", "plateau_factor"):
            if not 0 < float(getattr(self, name)) < 1:
                raise ConfigError(f"budget {name} must be in (0, 1), got {getattr(self, name)!r}")
        if self.plateau_threshold < 0:
            raise ConfigError(f"budget plateau_threshold must not be negative, got {self.plateau_threshold!r}")
        if self.schedule == "reduce_on_plateau" and self.warmup_steps:
            raise ConfigError("budget warmup_steps cannot be combined with schedule=reduce_on_plateau; "
                              "valid with warmup: constant, cosine, step")
        if self.early_stopping is not None and int(self.early_stopping) < 1:
            raise ConfigError(f"budget early_stopping must be a positive number of epochs or null, got {self.early_stopping!r}")
        for name in ("until_engine_complete", "reset_optimizer_on_cycle"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigError(f"budget {name} must be true or false, got {getattr(self, name)!r}")

    def with_overrides(self, overrides: dict[str, Any]) -> Budget:
        from dendrobench.errors import ConfigError

        valid = set(self.__dataclass_fields__)
        bad = set(overrides) - valid
        if bad:
            raise ConfigError(f"unknown budget field(s) {sorted(bad)}; valid fields: {', '.join(sorted(valid))} "
                              "(dendrobench list budgets says what each means)")
        return replace(self, **overrides)

    def spec(self) -> dict[str, Any]:
        """The budget as it enters the record hash: the protocol options added by issue 10 only
        when they differ from their defaults, so a budget that does not use them hashes as before."""
        out = dict(self.__dict__)
        for name in PROTOCOL_FIELDS:
            if out[name] == self.__dataclass_fields__[name].default:
                del out[name]
        return out


OPTIMIZERS = ("adam", "adamw", "sgd")
SCHEDULES = ("constant", "cosine", "step", "reduce_on_plateau")
PROTOCOL_FIELDS = ("step_size", "gamma", "plateau_patience", "plateau_factor", "plateau_threshold", "early_stopping",
                   "until_engine_complete", "reset_optimizer_on_cycle")


@dataclass
class TaskData:
    """What ``Task.load_data`` returns: three splits and the facts a record must carry."""

    train: Dataset
    val: Dataset
    test: Dataset
    dataset: str  # which data this really is, e.g. "b3db" or "bbbp"
    source: str  # "offline" | "online"
    info: dict[str, Any] = field(default_factory=dict)  # e.g. {"invalid_smiles_dropped": 3}; goes into the record
    meta: dict[str, Any] = field(default_factory=dict)  # what build_model needs (feature sizes, vocab...)


class Task:
    """Base class of every task plugin. Class attributes describe it; methods supply the pieces."""

    name: ClassVar[str]
    modality: ClassVar[str]
    description: ClassVar[str]
    metric: ClassVar[str]  # an evaluator name from dendrobench.contract.metrics
    datasets: ClassVar[dict[str, str]] = {}  # data source -> what it is, shown by `dendrobench list`
    budgets: ClassVar[dict[str, Budget]]
    version: ClassVar[str] = "1"  # bump when data or model change results; part of the record hash
    # True when offline and online are the same data (e.g. generated): check-task otherwise requires
    # the two sources to return different TaskData.dataset names, so records say which data they used
    single_source: ClassVar[bool] = False

    # The model configuration each budget trains (e.g. a small GIN for smoke/quick, Hu et al.'s at
    # standard/full); ``configure`` picks it into ``model_config`` for ``build_model`` to use.
    models: ClassVar[dict[str, Any]] = {}
    model_config: Any = None

    # Protocol options (split kind, model depth / width / dropout, data variant ...): a frozen
    # dataclass whose fields all have defaults, typed so dendrobench.contract.options can validate command-line
    # values (``task_options.KEY=VALUE``). None: the task has no options. The runner parses the run's
    # ``task_options`` into an instance and hands it over with ``set_options`` after ``configure``;
    # options that differ from their defaults enter the record hash (dendrobench/contract/options.py).
    Options: ClassVar[type | None] = None
    options: Any = None

    def configure(self, budget: str) -> None:
        """Called once with the budget's name before any data or model, so a task whose published
        setup uses a bigger model at ``standard`` / ``full`` trains it there. Every arm sees the same."""
        self.model_config = self.models.get(budget, self.model_config)

    def set_options(self, options: Any) -> None:
        """Receive the validated ``Options`` instance (called after ``configure``, before any data
        or model). Override to derive state from them, e.g. a model config with the chosen depth;
        tasks read ``self.options`` in ``load_data`` / ``build_model``."""
        self.options = options

    def current_options(self) -> Any:
        """The options in force: those set, else the declared defaults (``Options()``), else None."""
        if self.options is None and self.Options is not None:
            self.options = self.Options()
        return self.options

    # -- data -------------------------------------------------------------------------------
    def load_data(self, source: str, seed: int, root: Path | None = None) -> TaskData:
        """Deterministic splits for ``seed``. ``offline`` never touches the network."""
        raise NotImplementedError

    def dataloader(self, dataset: Dataset, batch_size: int, shuffle: bool, generator: torch.Generator | None) -> Iterable:
        """Override for data that needs its own collation (graphs, variable-length text).

        A ``TensorDataset`` is read a whole batch per gather
        (:class:`~dendrobench.contract.batching.TensorBatches`): the same generator draws, hence the
        same batches bit for bit as PyTorch's per-item loader, without a ``__getitem__`` per example,
        a collate per batch (10.5 -> 1.2 ms per batch of 1,024 credit rows), a Python ``yield`` per
        example or the DataLoader's own per-batch work.
        """
        if isinstance(dataset, TensorDataset):
            return TensorBatches(dataset, batch_size, shuffle, generator)
        return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, generator=generator)

    # -- model ------------------------------------------------------------------------------
    def build_model(self, data: TaskData, width: float = 1.0) -> nn.Module:
        """The base model; ``width`` scales hidden sizes (for the wide and compressed arms)."""
        raise NotImplementedError

    def inputs(self, batch: Any) -> Sequence[torch.Tensor]:
        """The tensors the model is called with: ``model(*inputs)``."""
        return (batch[0],)

    def targets(self, batch: Any) -> torch.Tensor:
        return batch[1]

    def batch_size(self, batch: Any) -> int:
        return int(self.targets(batch).shape[0])

    def loss(self, output: torch.Tensor, batch: Any) -> torch.Tensor:
        raise NotImplementedError

    # -- evaluation -------------------------------------------------------------------------
    @property
    def evaluator(self) -> Evaluator:
        return get_evaluator(self.metric)

    def predictions(self, output: torch.Tensor, batch: Any) -> tuple[torch.Tensor, torch.Tensor]:
        """(y_true, y_pred) for one batch in the evaluator's expected format."""
        return self.targets(batch), output

    @torch.no_grad()
    def evaluate(self, model: nn.Module, loader: Iterable, device: torch.device) -> dict[str, float]:
        model.eval()
        ys, ps = [], []
        for batch in loader:
            batch = move_to(batch, device)
            y_true, y_pred = self.predictions(model(*self.inputs(batch)), batch)
            ys.append(y_true.detach().float().cpu())
            ps.append(y_pred.detach().float().cpu())
        return self.evaluator.eval({"y_true": torch.cat(ys), "y_pred": torch.cat(ps)})

    # -- description ------------------------------------------------------------------------
    def budget(self, name: str) -> Budget:
        from dendrobench.errors import unknown_choice

        try:
            return self.budgets[name]
        except KeyError:
            raise unknown_choice("budget", name, self.budgets) from None


def require_task_data(task: Task, got: Any) -> TaskData:
    """``got`` if it is a :class:`TaskData`, else a TypeError naming the type and the plugin's
    ``load_data``: the runner and ``check-task`` both call this, so they report the same line
    instead of an ``AttributeError`` deep inside the runner."""
    if isinstance(got, TaskData):
        return got
    from dendrobench.contract.diagnostics import defined_at

    where = defined_at(type(task).load_data)
    at = f" (at {where})" if where else ""
    raise TypeError(f"load_data must return dendrobench.api.TaskData(train, val, test, dataset, source), "
                    f"got {type(got).__name__}{at}")


def cache_dir(*parts: str) -> Path:
    """dendrobench's cache folder (``$DENDROBENCH_CACHE`` or ``~/.cache/dendrobench``), for tasks'
    downloads and derived files, so nothing lands in the user's working directory."""
    import os

    env = os.environ.get("DENDROBENCH_CACHE")
    base = Path(env).expanduser() if env else Path.home() / ".cache" / "dendrobench"
    return base.joinpath(*parts)


def move_to(batch: Any, device: torch.device) -> Any:
    """Move a batch (tensor, tuple/list/dict of tensors, or anything with ``.to``) to ``device``."""
    if device.type == "cpu":
        return batch
    if isinstance(batch, (tuple, list)):
        return type(batch)(move_to(b, device) for b in batch)
    if isinstance(batch, dict):
        return {k: move_to(v, device) for k, v in batch.items()}
    return batch.to(device) if hasattr(batch, "to") else batch
