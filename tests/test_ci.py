"""CI runs the README's test command: the two stay in agreement, and the two test tiers cover every test."""
from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def readme_test_command() -> list[str]:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("run both test tiers", 1)[1]
    block = re.search(r"```bash\n(.*?)```", section, re.S)
    assert block, "README: no test command block after 'run both test tiers'"
    return [line for line in block.group(1).splitlines() if line.strip()]


def test_ci_runs_the_readmes_test_command_in_order():
    lines = readme_test_command()
    ci = [line.strip() for line in (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()]
    start = ci.index(lines[0])
    assert ci[start:start + len(lines)] == lines


def test_the_slow_tier_is_exactly_what_the_fast_tier_leaves_out():
    options = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["pytest"]["ini_options"]
    fast = re.search(r"-m '([^']*)'", options["addopts"]).group(1)
    slow = re.search(r'-m "([^"]*)"', readme_test_command()[-1]).group(1)
    assert fast == f"not ({slow})"
    declared = {marker.split(":", 1)[0] for marker in options["markers"]}
    assert set(re.findall(r"\w+", slow)) - {"or"} == declared
