"""``dendrobench new-task``: valid names only, never destroys what exists, and every modality's
generated task passes the contract checks as generated (imported from its folder here; the pip
install of a generated package is in test_third_party_plugin.py, sharing that file's install)."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import pytest
import tomllib

from dendrobench.authoring.checks import check_task
from dendrobench.authoring.scaffold import MODALITIES, Names, create, main, render


@pytest.mark.parametrize("name", ["My_Task", "1abc", "a--b", "_x", "x-", "tab ular", "a" * 41, "ünï"])
def test_invalid_names_say_what_is_valid(name, tmp_path, capsys):
    assert main([name, "--dir", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert f"invalid task name {name!r}" in err and "lower-case letters and digits" in err
    assert not (tmp_path / "out").exists()


def test_a_name_taken_by_another_package_is_refused(tmp_path, capsys):
    assert main(["bbbp", "--dir", str(tmp_path / "out")]) == 2
    assert "task name 'bbbp' is already registered by dendrobench" in capsys.readouterr().err


def test_unknown_modality_lists_the_valid_ones(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["ok-name", "--modality", "audio", "--dir", str(tmp_path / "out")])
    assert exc.value.code == 2
    assert "invalid choice: 'audio'" in capsys.readouterr().err


def test_generated_files_wire_the_entry_point(tmp_path, capsys):
    target = tmp_path / "pkg"
    assert main(["ecg-beats", "--modality", "text", "--dir", str(target)]) == 0
    assert "pip install -e" in capsys.readouterr().out
    names = Names.from_task_name("ecg-beats")
    assert (names.package, names.dist, names.class_name) == ("dendrobench_ecg_beats", "dendrobench-ecg-beats",
                                                             "EcgBeatsTask")
    meta = tomllib.loads((target / "pyproject.toml").read_text())
    assert meta["project"]["name"] == "dendrobench-ecg-beats"
    assert meta["project"]["entry-points"]["dendrobench.tasks"] == {"ecg-beats": "dendrobench_ecg_beats.task:EcgBeatsTask"}
    assert meta["tool"]["setuptools"]["packages"] == ["dendrobench_ecg_beats"]
    assert sorted(p.relative_to(target).as_posix() for p in target.rglob("*") if p.is_file()) == [
        "README.md", "dendrobench_ecg_beats/__init__.py", "dendrobench_ecg_beats/task.py", "pyproject.toml",
        "tests/test_ecg_beats.py"]
    assert "task_checks(EcgBeatsTask())" in (target / "tests" / "test_ecg_beats.py").read_text()
    assert 'modality = "text"' in (target / "dendrobench_ecg_beats" / "task.py").read_text()


def test_an_existing_folder_is_never_overwritten_without_force(tmp_path, capsys):
    target = tmp_path / "mine"
    target.mkdir()
    (target / "notes.txt").write_text("my notes")
    assert main(["my-task", "--dir", str(target)]) == 2
    err = capsys.readouterr().err
    assert "already exists and is not empty" in err and "--force" in err
    assert [p.name for p in target.iterdir()] == ["notes.txt"]


def test_force_keeps_other_files_and_backs_up_what_it_replaces(tmp_path):
    target = tmp_path / "mine"
    create("my-task", "tabular", target)
    (target / "notes.txt").write_text("my notes")
    task_py = target / "dendrobench_my_task" / "task.py"
    task_py.write_text("# my edits\n")
    create("my-task", "tabular", target, force=True)
    assert (target / "notes.txt").read_text() == "my notes"
    assert (target / "dendrobench_my_task" / "task.py.bak").read_text() == "# my edits\n"
    assert "class MyTask(Task)" in task_py.read_text()
    assert not (target / "pyproject.toml.bak").exists()  # identical files are left alone
    task_py.write_text("# edits again\n")
    create("my-task", "tabular", target, force=True)
    assert (target / "dendrobench_my_task" / "task.py.bak1").read_text() == "# edits again\n"
    assert (target / "dendrobench_my_task" / "task.py.bak").read_text() == "# my edits\n"


@pytest.mark.parametrize("modality", list(MODALITIES))
def test_every_modality_passes_check_task_as_generated(modality, tmp_path, monkeypatch):
    name = f"gen-{modality}"
    target = create(name, modality, tmp_path / name)
    names = Names.from_task_name(name)
    monkeypatch.syspath_prepend(str(target))
    try:
        module = importlib.import_module(f"{names.package}.task")
        task = getattr(module, names.class_name)()
        assert task.modality == modality
        results = check_task(task)
    finally:
        for mod in [m for m in sys.modules if m.startswith(names.package)]:
            del sys.modules[mod]
    # sources_differ warns (passes) while the scaffold's online source is not implemented (issue 23)
    failed = [f"{r.name}: {r.reason}" for r in results if r.status != "pass" and r.name != "sources_differ"]
    assert not failed, failed
    (differ,) = [r for r in results if r.name == "sources_differ"]
    assert differ.status == "warn" and "online data not available here" in differ.reason


def test_templates_are_package_data():
    files = render("probe", "graph")
    assert set(files) == {"README.md", "pyproject.toml", "dendrobench_probe/__init__.py",
                          "dendrobench_probe/task.py", "tests/test_probe.py"}
    from dendrobench.authoring.scaffold import template_root

    root = template_root()
    assert Path(str(root)).parts[-4:] == ("dendrobench", "authoring", "templates", "new_task")
