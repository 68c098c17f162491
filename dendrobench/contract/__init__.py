"""The plugin contract: what a task is and how it is judged.

``task`` (``Task``, ``Budget``, ``TaskData``), ``options`` (typed ``task_options``), ``metrics``
(one OGB-style evaluator per metric: ``roc_auc``, ``accuracy``, ``mean_dice``, ``perplexity``),
``registry`` (entry-point discovery of tasks, engines and dendrite kinds) and the data plumbing that
tasks share (``data``: splits, standardisation, the versioned tensor cache; ``downloads``).
This layer imports nothing above ``dendrobench.errors``: plugins import it through
``dendrobench.api``, and every other layer builds on it.
"""
