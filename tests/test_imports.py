"""The snnkit package's modules import one another without a cycle: every import statement
counts, the ones inside functions included (a lazy import hides a cycle, it does not remove
it), and so do the package's lazily loaded attributes (``snnkit._LAZY``)."""

import ast
from pathlib import Path

import snnkit

ROOT = Path(snnkit.__file__).parent


def _modules() -> dict[str, Path]:
    out = {}
    for path in ROOT.rglob("*.py"):
        parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def _targets(name: str, path: Path, node: ast.AST, known) -> set[str]:
    """The snnkit modules one import statement ``node`` of module ``name`` loads."""
    if isinstance(node, ast.Import):
        return {a.name for a in node.names if a.name in known}
    if node.level:
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for _ in range(node.level - 1):
            package = package.rpartition(".")[0]
        base = f"{package}.{node.module}" if node.module else package
    else:
        base = node.module or ""
    out = set()
    for a in node.names:
        if f"{base}.{a.name}" in known:  # `from . import protocol`: the submodule
            out.add(f"{base}.{a.name}")
        elif base in known:  # `from .network import Network`: the module
            out.add(base)
    return out


def import_graph() -> dict[str, set[str]]:
    """``{module: modules it imports}`` over the whole snnkit package."""
    known = _modules()
    graph = {}
    for name, path in known.items():
        tree = ast.parse(path.read_text(), str(path))
        edges = set()
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                edges |= _targets(name, path, node, known)
            if (isinstance(node, ast.Assign) and name == "snnkit"
                    and any(getattr(t, "id", "") == "_LAZY" for t in node.targets)):
                edges |= {v.elts[0].value for v in node.value.values}
        graph[name] = edges - {name}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle as a list of modules (the first repeated at the end), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(m):
        state[m] = 1
        path.append(m)
        for t in sorted(graph.get(m, ())):
            if state.get(t) == 1:
                return path[path.index(t):] + [t]
            if t not in state and (found := visit(t)):
                return found
        state[m] = 2
        path.pop()
        return None

    for m in sorted(graph):
        if m not in state and (found := visit(m)):
            return found
    return None


def test_the_graph_sees_every_kind_of_import():
    g = import_graph()
    assert "snnkit.inputs" in g["snnkit.simulator"]  # module level, relative
    assert "snnkit.rtl_backend" in g["snnkit.simulator"]  # inside a function
    assert "snnkit.protocol" in g["snnkit.device"]  # `from . import protocol as p`
    assert "snnkit.device" in g["snnkit.cli.board"]  # `from ..device import Device`
    assert "snnkit.cli.board" in g["snnkit.cli"]  # a package's __init__
    assert "snnkit.plot" in g["snnkit"]  # snnkit._LAZY
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]


def test_snnkit_modules_import_each_other_without_a_cycle():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)
