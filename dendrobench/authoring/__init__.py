"""Tools for task authors: the contract checker and the scaffold.

``checks`` is ``dendrobench check-task``: one named check per contract clause, usable from a
plugin's own pytest (in the spirit of scikit-learn's ``check_estimator``). ``scaffold`` is
``dendrobench new-task``, rendering ``templates/new_task`` into a plugin package that passes the
checks as generated. Both sit above the runner because the smoke-training check trains a real arm.
"""
