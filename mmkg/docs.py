"""The docs tables generated from the registries: `python -m mmkg.docs` rewrites every marked block of the
README and docs/*.md, `python -m mmkg.docs --check` lists the stale ones (and fails).  A block is

    <!-- generated: NAME (python -m mmkg.docs) -->
    …the table…
    <!-- end -->

where NAME is one of `TABLES` (metrics, units, readers, output-formats, export-formats)."""
from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable
from pathlib import Path

# the body holds no marker: an empty block cannot swallow the next one
BLOCK = re.compile(r"(<!-- generated: (?P<name>[\w-]+)[^>]*-->\n)(?P<body>(?:(?!<!--).)*?)(\n?<!-- end -->)", re.S)


def _metrics() -> str:
    from mmkg.metrics import docs_table

    return docs_table()


def _units() -> str:
    from mmkg.units import docs_table

    return docs_table()


def _readers() -> str:
    from mmkg.loader import docs_table

    return docs_table()


def _output_formats() -> str:
    from mmkg.formats import docs_table

    return docs_table()


def _export_formats() -> str:
    from mmkg.cli.main import export_formats

    rows = ["| `mmkg export …` | what it writes |", "|---|---|"]
    rows += [f"| `{name}` | {what} |" for name, what in export_formats().items()]
    return "\n".join(rows)


TABLES: dict[str, Callable[[], str]] = {
    "metrics": _metrics, "units": _units, "readers": _readers, "output-formats": _output_formats,
    "export-formats": _export_formats,
}


def default_root() -> Path:
    """The checkout this module runs from (its README beside the package), else the working directory."""
    checkout = Path(__file__).resolve().parents[1]
    return checkout if (checkout / "README.md").is_file() else Path.cwd()


def doc_files(root: Path) -> list[Path]:
    """The pages that may hold generated blocks: the README and docs/*.md."""
    return [p for p in [root / "README.md", *sorted((root / "docs").glob("*.md"))] if p.is_file()]


def render(text: str, where: str = "") -> str:
    """`text` with every generated block rewritten from its registry; an unknown block name is an error."""
    def table(match: re.Match) -> str:
        name = match.group("name")
        if name not in TABLES:
            raise ValueError(f"{where}: unknown generated block '{name}' (known: {', '.join(TABLES)})")
        return match.group(1) + TABLES[name]() + "\n<!-- end -->"

    return BLOCK.sub(table, text)


def blocks(text: str) -> list[str]:
    """The names of the generated blocks in a page, in order."""
    return [m.group("name") for m in BLOCK.finditer(text)]


def _changed_pages(root: Path):
    """(page, its text, its text with fresh generated blocks) for every page whose blocks differ from the registries."""
    for page in doc_files(root):
        text = page.read_text(encoding="utf-8")
        fresh = render(text, str(page))
        if fresh != text:
            yield page, text, fresh


def stale(root: Path) -> list[str]:
    """`page: block` for every generated block that differs from its registry."""
    out = []
    for page, text, fresh in _changed_pages(root):
        new = {m.group("name"): m.group("body") for m in BLOCK.finditer(fresh)}
        out += [f"{page.relative_to(root)}: {m.group('name')}" for m in BLOCK.finditer(text)
                if new.get(m.group("name")) != m.group("body")]
    return out


def write(root: Path) -> list[Path]:
    """Rewrite the generated blocks of every page; returns the pages that changed."""
    changed = []
    for page, _, fresh in list(_changed_pages(root)):
        page.write_text(fresh, encoding="utf-8")
        changed.append(page)
    return changed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mmkg.docs", description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="list stale tables and exit 1 if there are any")
    parser.add_argument("--root", type=Path, default=None, help="the checkout (default: this module's)")
    args = parser.parse_args(argv)
    root = args.root or default_root()
    if args.check:
        found = stale(root)
        for line in found:
            print(f"stale: {line}  (run: python -m mmkg.docs)")
        return 1 if found else 0
    for page in write(root):
        print(f"rewrote {page.relative_to(root)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
