"""Built-in task plugins, one module per task (installed as ``dendrobench.tasks``).

Each registers through the entry-point group ``dendrobench.tasks`` exactly as an outside plugin
would, and imports only ``dendrobench.api``, ``dendrobench.errors`` and the reference models in
``dendrobench.baselines``; the core never imports a task by name.
"""
