"""Discovery: built-in tasks and engines come through entry points like any plugin; import paths work;
a broken plugin is named, not fatal."""

from __future__ import annotations

import pytest

from dendrobench.contract import registry
from dendrobench.contract.registry import PluginLoadError, get_engine_class, get_task, plugins
from dendrobench.errors import ConfigError


def test_builtin_tasks_and_engines_register_through_entry_points():
    tasks = plugins("task")
    assert "bbbp" in tasks and tasks["bbbp"].dist == "dendrobench"
    assert tasks["bbbp"].value == "dendrobench.tasks.bbbp:BBBPTask"
    assert {"gd", "none"} <= set(plugins("engine"))
    assert "standard" in plugins("dendrite")
    assert get_engine_class("gd").name == "gd"


def test_task_by_import_path():
    task = get_task("toy_task:SpiralTask")
    assert task.name == "spirals" and task.budget("smoke").epochs >= 1


def test_unknown_names_list_the_valid_ones():
    with pytest.raises(ConfigError, match=r"unknown task 'bbbq'; valid tasks: .*bbbp"):
        get_task("bbbq")
    with pytest.raises(ConfigError, match=r"unknown engine 'gdx'; valid engines: .*gd"):
        get_engine_class("gdx")
    with pytest.raises(ConfigError, match=r"unknown budget 'medium'; valid budgets: full, quick, smoke, standard"):
        get_task("toy_task:SpiralTask").budget("medium")


def test_broken_plugin_is_named(monkeypatch):
    monkeypatch.setitem(plugins("task"), "broken", registry.Plugin("broken", "no_such_module_xyz:Task", "thirdparty"))
    registry._load.cache_clear()
    with pytest.raises(PluginLoadError, match=r"task 'broken' \(no_such_module_xyz:Task\) failed to load"):
        get_task("broken")
    with pytest.raises(PluginLoadError, match="not a dendrobench.contract.task.Task subclass"):
        get_task("toy_task:spirals")
