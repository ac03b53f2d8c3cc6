"""The package's layout: its import graph has no circle.

Every `import` and `from ... import` in pairzoo/ counts, also those inside functions (the lazy
imports that keep TensorFlow and Ray out until needed): a circle made of lazy imports still
ties two modules into one. Names and presets (registry) stand without releases (zoo), and the
dispatcher, the local pool and Ray import in one direction.
"""

import ast
import graphlib
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "pairzoo"


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_names(path: Path, module: str):
    """Dotted names each import statement in the file asks for (relative ones resolved)."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            yield base
            # `from pairzoo import registry` imports the module pairzoo.registry
            yield from (f"{base}.{alias.name}" for alias in node.names)


def import_graph() -> dict[str, set[str]]:
    """module -> the pairzoo modules it imports."""
    modules = {module_name(path): path for path in PACKAGE.rglob("*.py")}
    graph = {module: set() for module in modules}
    for module, path in modules.items():
        for name in imported_names(path, module):
            while name and name not in modules:  # a class or function: its module
                name = name.rpartition(".")[0]
            # the bare package is left out: every submodule's import runs its __init__
            if name and name not in (module, "pairzoo"):
                graph[module].add(name)
    return graph


def test_the_import_graph_has_no_circle():
    graph = import_graph()
    # the graph sees the edges that matter (a parser that saw none would pass vacuously)
    assert "pairzoo.registry" in graph["pairzoo.zoo"]
    assert "pairzoo.experiments.ray_engine" in graph["pairzoo.experiments.engines"]
    try:
        graphlib.TopologicalSorter(graph).prepare()
    except graphlib.CycleError as circle:
        raise AssertionError(f"import circle: {' -> '.join(circle.args[1])}") from None
