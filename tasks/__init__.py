"""Built-in task plugins; each registers through the entry-point group ``dendrobench.tasks``."""
