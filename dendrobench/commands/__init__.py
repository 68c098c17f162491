"""Subcommands of the ``dendrobench`` CLI that are not a run."""
