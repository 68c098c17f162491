"""Running arms: from a resolved run configuration to one JSON record per run.

``settings`` (every run key, torch-free: the one source of ``--help`` and the README table),
``config`` (``RunConfig`` and its validation), ``runner`` (the training loop and the ``Suite`` of arms
and seeds), ``schedules`` (learning-rate schedules), ``sweep`` (Hydra multirun and launchers),
``watchdog`` / ``interrupts`` / ``netguard`` (time limits, Ctrl-C, offline guarantee), ``runlock``
(one process per run record), ``results`` (the record schema and its atomic store) and what a run
measures about itself (``cost``, ``energy``, ``export``). It builds on the contract and the
engines and knows nothing of statistics, claims or the leaderboard.
"""
