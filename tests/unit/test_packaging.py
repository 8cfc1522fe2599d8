"""The package as installed: the console script, the typed lazy exports, package discovery."""

from __future__ import annotations

import ast
import importlib
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

import seg

REPO = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
STUB = ast.parse((REPO / "seg" / "__init__.pyi").read_text(encoding="utf-8"))


def _stub_imports() -> dict[str, tuple[str, str]]:
    """Exported name -> (module, attribute) for every ``from module import attribute as name``."""
    found = {}
    for node in STUB.body:
        if isinstance(node, ast.ImportFrom):
            for alias in node.names:
                found[alias.asname or alias.name] = (node.module, alias.name)
    return found


def _stub_all() -> list[str]:
    for node in STUB.body:
        if isinstance(node, ast.Assign) and [t.id for t in node.targets if isinstance(t, ast.Name)] == ["__all__"]:
            return ast.literal_eval(node.value)
    raise AssertionError("seg/__init__.pyi has no __all__")


def test_console_script_is_the_command_line_main():
    from seg import cli

    target = PYPROJECT["project"]["scripts"]["seg"]
    module, _, attribute = target.partition(":")
    assert getattr(importlib.import_module(module), attribute) is cli.main


def test_console_script_help_names_the_subcommands(capsys):
    module, _, attribute = PYPROJECT["project"]["scripts"]["seg"].partition(":")
    main = getattr(importlib.import_module(module), attribute)
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "apply" in out and "train" in out


def test_python_dash_m_seg_prints_the_same_help_as_the_console_script(capsys):
    from seg import cli

    with pytest.raises(SystemExit):
        cli.main(["--help"])
    expected = capsys.readouterr().out
    shown = subprocess.run(
        [sys.executable, "-m", "seg", "--help"],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**os.environ, "COLUMNS": os.environ.get("COLUMNS", "80")},
        timeout=120,
    )
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout == expected


def test_stub_declares_exactly_the_public_names():
    declared = set(_stub_imports()) | {"__version__"}
    assert declared == set(seg.__all__)
    assert sorted(_stub_all()) == sorted(seg.__all__)


@pytest.mark.parametrize("name", sorted(_stub_imports()))
def test_every_stub_name_resolves_to_what_the_stub_says(name):
    module, attribute = _stub_imports()[name]
    assert getattr(seg, name) is getattr(importlib.import_module(module), attribute)


def test_version_matches_the_package_metadata_source():
    assert PYPROJECT["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "seg.__version__"}
    assert isinstance(seg.__version__, str) and seg.__version__.count(".") == 2


def test_package_discovery_includes_every_subpackage():
    """Every folder of seg/ holding Python files is a regular package, so setuptools ships it."""
    assert PYPROJECT["tool"]["setuptools"]["packages"]["find"]["include"] == ["seg", "seg.*"]
    folders = {path.parent for path in (REPO / "seg").rglob("*.py")}
    missing = sorted(str(f.relative_to(REPO)) for f in folders if not (f / "__init__.py").exists())
    assert missing == []
    assert (REPO / "seg" / "ui" / "__init__.py").exists()
    assert (REPO / "seg" / "py.typed").exists()


def test_extras_mirror_the_requirement_files():
    def names(lines):
        return {
            line.split(";")[0]
            .split("#")[0]
            .strip()
            .split("[")[0]
            .split(">")[0]
            .split("=")[0]
            .split("<")[0]
            .strip()
            .lower()
            for line in lines
            if line.split("#")[0].strip()
        }

    extras = PYPROJECT["project"]["optional-dependencies"]
    pinned = names((REPO / "requirements.txt").read_text().splitlines())
    assert pinned == names(PYPROJECT["project"]["dependencies"]) | names(extras["dask"]) | {"psutil"}
    assert names((REPO / "tests" / "requirements.txt").read_text().splitlines()) == names(extras["test"]) - {"seg"}
