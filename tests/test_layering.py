"""The layering in docs/architecture.md, checked on the code: every import between payoff's parts
(module-level or inside a function) points to a lower layer, and no module imports itself back
through a chain of others."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

SRC = Path(__file__).resolve().parent.parent / "src" / "payoff"
# Lowest first; a part may import only parts of strictly lower layers (and itself).
LAYERS = [
    {"identity", "parameters", "_lazy", "containment"},
    {"core"},
    {"io", "registry", "sandbox"},
    {"rewards"},
    {"compose", "engine"},
    {"models", "tasks", "audit", "serve"},
    {"integrations", "rl", "evaluate"},
    {"rm", "judges", "select"},
    {"dpo", "prm", "graders"},
    {"cli"},
    {"__main__"},
]
LAYER = {part: level for level, parts in enumerate(LAYERS) for part in parts}


def _imports() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = defaultdict(set)
    for path in SRC.rglob("*.py"):
        module = ".".join(("payoff", *path.relative_to(SRC).with_suffix("").parts)).removesuffix(".__init__")
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and _ours(node.module) and node.level == 0:
                names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names if _ours(alias.name)]
            else:
                continue
            for name in names:
                graph[module].add(name)
    return graph


def _ours(name: str) -> bool:
    return name == "payoff" or name.startswith("payoff.")  # not payoff_sandbox_wire: a sibling loaded by path


def _part(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "payoff"


def test_every_part_has_a_layer() -> None:
    parts = {path.relative_to(SRC).parts[0].removesuffix(".py") for path in SRC.rglob("*.py")} - {"__init__"}
    assert parts - set(LAYER) == set(), "add new parts to LAYERS (and docs/architecture.md)"


def test_imports_point_down_only() -> None:
    upward = []
    for module, targets in _imports().items():
        source = _part(module)
        if source == "payoff":  # the package facade re-exports lazily from everywhere
            continue
        for target in targets:
            destination = _part(target)
            if destination not in (source, "payoff") and LAYER[destination] >= LAYER[source]:
                upward.append(f"{module} -> {target}")
    assert upward == []


def test_no_import_cycles_between_modules() -> None:
    graph = _imports()
    modules = set(graph)
    edges = {m: {t for t in targets if t in modules and t != m and _part(m) != "payoff"} for m, targets in graph.items()}
    cycles, state = [], {}

    def visit(node: str, stack: list[str]) -> None:
        state[node] = "open"
        for nxt in edges.get(node, ()):
            if state.get(nxt) == "open":
                cycles.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt, stack + [nxt])
        state[node] = "done"

    for module in sorted(edges):
        if module not in state:
            visit(module, [module])
    # A package's __init__ re-exporting its own modules is not a cycle of behaviour.
    real = [c for c in cycles if not any(m.split(".")[-1] in {"payoff"} for m in c) and
            not all(c[i].startswith(c[i + 1] + ".") or c[i + 1].startswith(c[i] + ".") for i in range(len(c) - 1))]
    assert real == []
