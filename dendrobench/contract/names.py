"""The closed vocabularies every layer shares: arms, devices, budget names and data sources.

Torch-free and import-free, so that ``--help`` and a bad key answer without loading torch, and so
that the contract (``task.py``) and the run settings (``running/settings.py``) read one list.
"""

# base_more_training: the baseline with a published protocol's extra dendritic steps (claims only)
ARMS = ("baseline", "dendrites", "wide", "compressed", "base_more_training")
DEVICES = ("auto", "cpu", "cuda", "mps")
BUDGET_NAMES = ("smoke", "quick", "standard", "full")  # every task defines these
# A task may also define these. ``converged``: the CPU budget whose baseline passes the convergence
# rule (dendrobench/evidence/convergence.py) on a 2-core machine, the one the leaderboard's verdicts need.
OPTIONAL_BUDGET_NAMES = ("converged",)
KNOWN_BUDGET_NAMES = ("smoke", "quick", "standard", "converged", "full")  # the order lists and docs use
DATA_SOURCES = ("offline", "online")
PRECISIONS = ("fp32", "bf16")
