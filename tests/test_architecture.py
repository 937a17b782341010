"""The direction of dependencies: every module imports, the layers of pyproject.toml's import-linter contract
hold (function-level imports included) and no module imports one that imports it back."""
from __future__ import annotations

import importlib
import json
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import networkx as nx
import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def installed_layout(tmp_path_factory) -> Path:
    """The package as it installs (pyproject's package-dir maps top-level folders into `mmkg.*`), as plain
    files, because import-linter reads source folders and the editable install maps them only at import."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    site = tmp_path_factory.mktemp("layout")
    for package, folder in config["tool"]["setuptools"]["package-dir"].items():
        target = site.joinpath(*package.split("."))
        for source in (ROOT / folder).rglob("*.py"):
            if ".venv" in source.parts or "__pycache__" in source.parts:
                continue
            relative = source.relative_to(ROOT / folder)
            if len(relative.parts) > 1 and not (ROOT / folder / relative.parts[0] / "__init__.py").exists():
                continue  # a folder that is not a subpackage (e.g. static/)
            (target / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target / relative)
    return site


def run_in_layout(site: Path, code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=site,
                          env={**os.environ, "PYTHONPATH": str(site)})


def layout_modules(site: Path) -> list[str]:
    names = (".".join(f.relative_to(site).with_suffix("").parts) for f in site.rglob("*.py"))
    return sorted(n.removesuffix(".__init__") for n in names)


def test_every_module_imports(installed_layout):
    modules = layout_modules(installed_layout)
    assert {"mmkg.cli.main", "mmkg.server.app", "mmkg.store.embedded", "mmkg.loader.refi_qda",
            "mmkg.queries", "mmkg.models"} <= set(modules)
    for name in modules:
        importlib.import_module(name)


def test_layer_contract_holds(installed_layout):
    result = run_in_layout(installed_layout, "from importlinter.cli import lint_imports; raise SystemExit("
                           f"lint_imports(config_filename={str(ROOT / 'pyproject.toml')!r}, no_cache=True))")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 kept, 0 broken" in result.stdout
    assert "mmkg.cli" in run_in_layout(installed_layout, "import grimp; print(sorted(grimp.build_graph("
                                       "'mmkg', cache_dir=None).modules))").stdout


def test_every_part_of_the_package_sits_in_a_layer(installed_layout):
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    (contract,) = config["tool"]["importlinter"]["contracts"]
    layered = {name.strip() for layer in contract["layers"] for name in layer.split("|")}
    parts = {name.split(".")[1] for name in layout_modules(installed_layout) if name.count(".") >= 1}
    assert parts == layered


def test_no_import_cycle(installed_layout):
    probe = ("import grimp, json; g = grimp.build_graph('mmkg', cache_dir=None); print(json.dumps("
             "[[a, b] for a in g.modules for b in g.find_modules_directly_imported_by(a)]))")
    result = run_in_layout(installed_layout, probe)
    assert result.returncode == 0, result.stderr
    edges = nx.DiGraph(json.loads(result.stdout))
    assert {"mmkg.cli.main", "mmkg.server.app", "mmkg.loader.validate"} <= set(edges)
    cycles = [sorted(c) for c in nx.strongly_connected_components(edges) if len(c) > 1]
    assert cycles == []


@pytest.mark.parametrize("module, must_not_load", [
    ("mmkg.store.embedded", ("mmkg.loader", "mmkg.graph", "mmkg.api", "mmkg.queries")),
    ("mmkg.store.neo4j_store", ("mmkg.loader", "mmkg.graph", "mmkg.api", "mmkg.queries")),
    ("mmkg.loader.refi_qda_export", ("mmkg.store", "mmkg.api", "mmkg.graph_tables")),
    ("mmkg.models", ("mmkg.loader", "mmkg.store", "mmkg.api")),
])
def test_a_lower_layer_loads_nothing_above_it(module, must_not_load):
    """What the static contract says, seen at run time: importing a store does not load the loader."""
    probe = (f"import sys, {module}; loaded = [m for m in {must_not_load!r} if m in sys.modules]; "
             "print(','.join(loaded))")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == ""
