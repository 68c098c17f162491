"""dendrobench: does adding artificial dendrites help a network under a matched budget?

The core (this package) knows nothing of specific tasks: tasks and dendrite engines are found
through entry points (``dendrobench.tasks``, ``dendrobench.engines``, ``dendrobench.dendrites``).
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("dendrobench")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
