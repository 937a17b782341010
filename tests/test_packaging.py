"""What the wheel ships: every package of the source folders and every data file beside them, as pyproject's
`[tool.setuptools]` lists them (a package left off that list installs editable and breaks `pip install`)."""
from __future__ import annotations

import tomllib
from fnmatch import fnmatch
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SETUPTOOLS = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]


def source_packages() -> dict[str, Path]:
    """Package name → folder, for every folder with an `__init__.py` under the mapped source folders."""
    found = {}
    for name, folder in SETUPTOOLS["package-dir"].items():
        for init in (ROOT / folder).rglob("__init__.py"):
            parts = init.parent.relative_to(ROOT / folder).parts
            if "node_modules" not in parts:
                found[".".join((name, *parts))] = init.parent
    return found


def test_every_source_package_is_listed_for_the_wheel():
    assert set(SETUPTOOLS["packages"]) == set(source_packages())


def test_every_data_file_beside_the_code_is_package_data():
    packages = source_packages()
    data = SETUPTOOLS["package-data"]
    missed = []
    for name, folder in packages.items():
        for path in folder.rglob("*"):
            if path.is_dir() or path.suffix in (".py", ".pyc") or "__pycache__" in path.parts:
                continue
            owner = max((p for p, f in packages.items() if path.is_relative_to(f)), key=len)
            if owner != name:
                continue
            relative = path.relative_to(folder).as_posix()
            if not any(fnmatch(relative, pattern) for pattern in data.get(name, [])):
                missed.append(f"{name}: {relative}")
    assert not missed, missed
