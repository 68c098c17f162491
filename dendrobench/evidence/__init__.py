"""Evidence: what the records say about dendrites.

``stats`` (grouping records into rows, the exact sign-flip test, intervals, verdicts),
``report`` (the run table printed after a run) and ``claims`` (published claims as data from
``baselines/claims/*.yaml`` plus the protocol runner that executes them through the runner).
It reads records and drives the runner; it never formats HTML (that is ``dendrobench.leaderboard``).
"""
