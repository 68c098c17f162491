"""What a task plugin may import: the contract's public surface, in one place.

Built-in tasks import only this module, ``dendrobench.errors`` and ``dendrobench.baselines``, as an
outside plugin should (tests/test_layers.py holds them to it). Everything else in the package is
free to change between releases; what is listed here changes only with a note in docs/plugins.md.
"""

from dendrobench.contract import downloads
from dendrobench.contract.batching import PermutedBatches, TensorBatches, subset_rows
from dendrobench.contract.metrics import Evaluator, MetricInfo, get_evaluator
from dendrobench.contract.names import ARMS, BUDGET_NAMES, DATA_SOURCES
from dendrobench.contract.splits import check_fractions, stratified_split
from dendrobench.contract.task import Budget, Task, TaskData, cache_dir, move_to
from dendrobench.errors import ConfigError, DataUnavailableError, UserError, unknown_choice

__all__ = [
    "ARMS", "BUDGET_NAMES", "DATA_SOURCES", "Budget", "ConfigError", "DataUnavailableError", "Evaluator",
    "MetricInfo", "PermutedBatches", "Task", "TaskData", "TensorBatches", "UserError", "cache_dir", "check_fractions", "downloads", "get_evaluator",
    "move_to", "stratified_split", "subset_rows", "unknown_choice",
]
