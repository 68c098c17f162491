"""The one parser of integer settings (seeds, threads, tuning.*, fork.patience) and its message."""

from __future__ import annotations

import pytest

from dendrobench.errors import ConfigError, int_setting


@pytest.mark.parametrize(("value", "minimum", "expected"), [(3, 1, 3), ("3", 1, 3), (" 0 ", 0, 0), ("-2", -5, -2)])
def test_int_setting_accepts_ints_and_their_text(value: object, minimum: int, expected: int) -> None:
    assert int_setting(value, "seeds", minimum) == expected


@pytest.mark.parametrize("value", [True, "many", "1.5", 1.5, None, 0])
def test_int_setting_names_the_setting_and_the_valid_range(value: object) -> None:
    with pytest.raises(ConfigError, match=r"^tuning\.trials must be an integer >= 1, got "):
        int_setting(value, "tuning.trials", 1)
