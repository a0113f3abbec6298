"""The layering in docs/architecture.md, checked on the code: every import between payoff's parts
(module-level or inside a function, or by name through importlib) points to a lower layer, and no
module imports itself back through a chain of others."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

SRC = Path(__file__).resolve().parent.parent / "src" / "payoff"
# The four trainers share one layer, above the run harness (`runs`) and the model code
# (`models`) they have in common: none of them imports another.
TRAINERS = {"rl", "rm", "prm", "dpo"}
# Lowest first; a part may import only parts of strictly lower layers (and itself).
LAYERS = [
    {"identity", "parameters", "_lazy", "containment", "episode", "recipes", "heap"},
    {"core"},
    {"io", "registry", "sandbox"},
    {"rewards"},
    {"compose", "engine", "envs"},  # envs: below serve, which plays episodes as sessions
    {"runs"},
    {"models", "tasks", "audit", "serve", "view"},
    {"integrations", "evaluate", "judges", "select"},
    TRAINERS | {"graders"},  # graders: OpenAI grader configs as a reward, on the judges' backends
    {"cli"},
    {"__main__"},
]
LAYER = {part: level for level, parts in enumerate(LAYERS) for part in parts}


# The two upward imports, both by name and lazy: the registry loads the built-in library so that
# its names resolve without installed metadata, and the library looks its verifiers up through the
# registry (see payoff/registry.py; every other reward above the registry comes through an entry
# point); `Reward.ascore` (one awaited sample, for event-loop trainers) runs on the process's
# shared engine, which the contract cannot hold without the engine above it.
ALLOWED_UPWARD = {"payoff.registry -> payoff.rewards", "payoff.core -> payoff.engine.shared"}


def _module_names() -> set[str]:
    return {".".join(("payoff", *path.relative_to(SRC).with_suffix("").parts)).removesuffix(".__init__") for path in SRC.rglob("*.py")}


def _imports(by_name: bool = False) -> dict[str, set[str]]:
    """Every payoff module each module imports; with `by_name`, also every string constant that
    names one (``"payoff.x.y"`` or ``"payoff.x.y:attr"``), which importlib or a lazy table imports."""
    graph: dict[str, set[str]] = defaultdict(set)
    modules = _module_names()
    for path in SRC.rglob("*.py"):
        module = ".".join(("payoff", *path.relative_to(SRC).with_suffix("").parts)).removesuffix(".__init__")
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and _ours(node.module) and node.level == 0:
                names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names if _ours(alias.name)]
            elif by_name and isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value.split(":")[0] in modules:
                names = [node.value.split(":")[0]]
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
    for module, targets in _imports(by_name=True).items():
        source = _part(module)
        if source == "payoff":  # the package facade re-exports lazily from everywhere
            continue
        for target in targets:
            destination = _part(target)
            if destination not in (source, "payoff") and LAYER[destination] >= LAYER[source]:
                upward.append(f"{module} -> {target}")
    assert set(upward) == ALLOWED_UPWARD


def test_imports_by_name_are_seen() -> None:
    # The registry once imported rl, rm, dpo, prm and judges by string, invisible to an AST walk
    # of import statements; the walk by name sees such strings.
    assert "payoff.rewards" in _imports(by_name=True)["payoff.registry"]
    assert "payoff.rewards" not in _imports()["payoff.registry"]


def test_no_trainer_imports_another() -> None:
    crossing = sorted(f"{module} -> {target}" for module, targets in _imports().items() for target in targets
                      if _part(module) in TRAINERS and _part(target) in TRAINERS and _part(target) != _part(module))
    assert crossing == []


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
