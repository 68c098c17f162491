"""Split helpers that several tasks share (no task-specific knowledge).

Why here: a "random stratified 80/10/10 split with seed s" must mean the same thing in every task
that offers it, so the claims that use one (BBBP, credit default) are run the same way; it is
scikit-learn's ``train_test_split(stratify=...)``, applied twice.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from dendrobench.errors import ConfigError


def check_fractions(fractions: Sequence[float], label: str = "task_options.fractions") -> tuple[float, float, float]:
    """(train, val, test) fractions: three positive numbers summing to 1, else a ConfigError."""
    values = tuple(float(f) for f in fractions)
    if len(values) != 3 or any(not 0 < f < 1 for f in values) or abs(sum(values) - 1) > 1e-6:
        raise ConfigError(f"{label} must be three numbers in (0, 1) for train, val, test summing to 1, "
                          f"got {list(values)}")
    return values  # type: ignore[return-value]


def stratified_split(y: np.ndarray, fractions: Sequence[float], random_state: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sorted (train, val, test) row indices, stratified by ``y``.

    ``train_test_split(stratify=y)`` first takes the test fraction of all rows, then the validation
    fraction (of all rows) from the rest, both with ``random_state``; so for a fixed state the test
    rows do not depend on the validation fraction.
    """
    from sklearn.model_selection import train_test_split

    _, val, test = check_fractions(fractions)
    y = np.asarray(y)
    idx = np.arange(len(y))
    rest, test_idx = train_test_split(idx, test_size=test, stratify=y, random_state=random_state)
    train_idx, val_idx = train_test_split(rest, test_size=val / (1 - test), stratify=y[rest],
                                          random_state=random_state)
    return np.sort(train_idx), np.sort(val_idx), np.sort(test_idx)
