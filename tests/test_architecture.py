"""The import graph, read from the source with ast: no cycle anywhere (function-local imports
count too, since hiding an import in a function does not break a loop), the harness imports
neither of its users, and `baselines` imports only down its layers."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("benchmark", "datasets_builders", "baselines")

# baselines, from the bottom up: a module may import its own layer and the ones below it.
BASELINE_LAYERS = (
    ("baselines.config", "baselines.distributed", "baselines.assets", "baselines.checkpoint",
     "baselines.embedding_cache", "baselines.task_features", "baselines.retrieval", "baselines.losses",
     "baselines.audio", "baselines.submission_writer", "baselines.ensemble", "baselines.voxel_penalty"),
    ("baselines.encoders", "baselines.spec", "baselines.model_protocol"),
    ("baselines.registry",),
    ("baselines.inference",),
    ("baselines.models", "baselines.adapters"),
    ("baselines.train",),
    ("baselines.check", "baselines.runner", "baselines.run_record", "baselines.model_runner", "baselines.analysis",
     "baselines.recipes", "baselines.cards"),
    ("baselines.sweep",),
    ("baselines.cli", "baselines.demo", "baselines.model_cli"),
)


def module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def project_modules() -> dict[str, Path]:
    return {module_name(p): p for package in PACKAGES for p in (REPO / package).rglob("*.py")}


def imports_of(path: Path, name: str, known: set[str]) -> set[str]:
    """The project modules `path` imports, anywhere in the file (not under TYPE_CHECKING)."""
    tree = ast.parse(path.read_text("utf-8"))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[:len(parts) - node.level + 1] + ([base] if base else []))
            targets = [f"{base}.{alias.name}" for alias in node.names] + [base]
        for target in targets:
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    modules = project_modules()
    known = set(modules)
    return {name: imports_of(path, name, known) for name, path in modules.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_find_cycle_finds_one():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_there_is_no_import_cycle(graph):
    # a package's __init__ that only re-exports is no edge of a loop worth refusing
    edges = {m: {t for t in targets if not (m.startswith(t + ".") and t in PACKAGES)} for m, targets in graph.items()}
    assert find_cycle(edges) is None


def test_the_harness_imports_neither_builders_nor_baselines(graph):
    wrong = {m: sorted(t for t in targets if t.split(".")[0] in ("baselines", "datasets_builders"))
             for m, targets in graph.items() if m.split(".")[0] == "benchmark"}
    assert {m: t for m, t in wrong.items() if t} == {}


def layer_of(module: str) -> int | None:
    for rank, prefixes in enumerate(BASELINE_LAYERS):
        if any(module == p or module.startswith(p + ".") for p in prefixes):
            return rank
    return None


def test_every_baselines_module_has_a_layer(graph):
    assert [m for m in graph if m.startswith("baselines.") and layer_of(m) is None] == []


def test_baselines_import_only_down_their_layers(graph):
    upward = [f"{m} -> {t}" for m, targets in graph.items() if m.startswith("baselines.")
              for t in targets if t.startswith("baselines.") and (layer_of(t) or 0) > (layer_of(m) or 0)]
    assert upward == []
