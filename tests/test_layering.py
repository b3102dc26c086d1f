"""borl's packages form layers: no import cycle between them (lazy imports included), the learning code
never reaches the simulators, and each package imports alone in a fresh interpreter."""

import ast
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "borl"


def unit_of(module: str) -> str:
    """The top-level part of borl a module belongs to: borl.data.store -> data, borl.loop -> loop."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "borl"


def import_graph() -> dict[str, set[str]]:
    """Which parts of borl each part imports, from every import statement (in functions too)."""
    edges: dict[str, set[str]] = defaultdict(set)
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        source = unit_of(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                targets = [node.module]
            elif isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                continue
            for target in targets:
                if target.startswith("borl.") and unit_of(target) != source:
                    edges[source].add(unit_of(target))
    return edges


def reachable(edges: dict[str, set[str]], start: str) -> set[str]:
    seen, stack = set(), [start]
    while stack:
        for following in edges.get(stack.pop(), ()):
            if following not in seen:
                seen.add(following)
                stack.append(following)
    return seen


def test_no_import_cycle_between_borls_packages():
    edges = import_graph()
    cycles = sorted((a, b) for a in edges for b in edges[a] if a in reachable(edges, b))
    assert cycles == []


@pytest.mark.parametrize("package", ["policies", "critics", "extraction", "data", "algos"])
def test_the_learning_code_and_the_data_never_import_the_simulators(package):
    reached = reachable(import_graph(), package)
    assert not reached & {"envs", "rollout", "formats", "loop"}, sorted(reached)


def test_the_graph_sees_real_imports():
    edges = import_graph()
    assert {"envs", "data"} <= edges["formats"] and "envs" in edges["rollout"]


@pytest.mark.parametrize(
    "package",
    sorted(p.name for p in PACKAGE.iterdir() if (p / "__init__.py").exists()),
)
def test_each_package_imports_alone_in_a_fresh_interpreter(package):
    simulators = package in ("envs", "formats", "rollout", "robot")
    code = f"import sys, borl.{package}; assert {simulators} or 'borl.envs' not in sys.modules"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
