"""The command line: ``dendrobench`` and its subcommands.

``main`` parses ``key=value`` settings, validates them before any training, hands runs to Hydra and
the runner, and dispatches the subcommands (``list``, ``leaderboard``, ``check-task``, ``new-task``,
``claim-table``); ``listing`` and ``catalog`` are ``dendrobench list`` and its cache. This is the top
layer: nothing imports it but ``dendrobench.__main__``.
"""
