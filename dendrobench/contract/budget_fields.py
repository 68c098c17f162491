"""What each field of :class:`dendrobench.contract.task.Budget` means, in one line each.

Torch-free, so ``dendrobench list budgets`` can print the fields without loading torch (the Budget
dataclass lives in ``task.py``, which imports torch). A test holds this table and the dataclass to
the same field names, and docs/plugins.md documents the same fields.
"""

from __future__ import annotations

BUDGET_FIELD_DOCS: dict[str, str] = {
    "epochs": "number of epochs; an epoch is the interval between validations (required)",
    "batch_size": "training batch size (required)",
    "lr": "peak learning rate (required)",
    "steps_per_epoch": "optimizer steps per epoch; null = one pass over the (subset) training split",
    "weight_decay": "the optimizer's weight decay (default 0)",
    "optimizer": "adam | adamw | sgd (sgd: momentum 0.9, Nesterov) (default adam)",
    "schedule": "learning-rate schedule: constant | cosine | step | reduce_on_plateau (default constant)",
    "warmup_steps": "linear warm-up steps before the schedule (default 0)",
    "grad_clip": "clip the gradients' global L2 norm to this value; null = no clipping",
    "eval_batch_size": "batch size for validation and test; null = batch_size",
    "max_train_examples": "train on the first N examples of a fixed, seed-independent permutation of the "
                          "training split (the same subset for every arm and seed); null = all",
    "max_eval_examples": "the same for the validation and the test split; null = all",
    "step_size": "schedule=step: epochs between learning-rate decays (default 10)",
    "gamma": "schedule=step: decay factor, in (0, 1) (default 0.1)",
    "plateau_patience": "schedule=reduce_on_plateau: epochs without a better validation score before a decay (default 10)",
    "plateau_factor": "schedule=reduce_on_plateau: learning-rate multiplier, in (0, 1) (default 0.1)",
    "plateau_threshold": "schedule=reduce_on_plateau: relative improvement that counts as better (default 1e-4)",
    "early_stopping": "stop after this many epochs without a better validation score; null = never",
    "until_engine_complete": "stop when the dendrite engine says training is complete (published protocols) (default false)",
    "reset_optimizer_on_cycle": "a fresh optimizer and schedule after every dendrite cycle (default false)",
}
