"""The package's import structure: every import (module level or inside a function) goes to the importer's own
layer or a lower one, the module graph has no cycles, and the library never imports the repository's configs/,
convert/ or tests/ (it must work when installed)."""
import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "restorenet_jax"
# Lowest first; a module may import its own layer or lower ones. Top-level modules are the entry points.
LAYERS = {"configs": 0, "models": 1, "data": 2, "evaluation": 3, "training": 4, "inference": 5, "deploy": 5, "apps": 6,
          "convert": 6, "bench": 6}
ENTRY = 7


def _modules() -> dict[str, Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = ("restorenet_jax", *path.relative_to(PACKAGE).with_suffix("").parts)
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


MODULES = _modules()


def _is_package(name: str) -> bool:
    return MODULES.get(name, Path()).name == "__init__.py"


def _imports(name: str, path: Path) -> list[tuple[str, int]]:
    """(imported module, line) for every import in the file, relative ones resolved, `from pkg import mod` -> mod."""
    found = []
    package = name if _is_package(name) else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found += [(a.name, node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
            for a in node.names:
                full = f"{base}.{a.name}"
                found.append((full if full in MODULES else base, node.lineno))
    return found


def _layer(module: str) -> int:
    parts = module.split(".")
    if len(parts) == 1:
        return -1
    return LAYERS.get(parts[1], ENTRY)


def test_layer_map_covers_every_subpackage():
    subpackages = {p.parent.name for p in PACKAGE.glob("*/__init__.py")}
    assert subpackages == set(LAYERS), "a new subpackage needs a place in LAYERS (and in the package docstring)"


def test_no_import_from_a_higher_layer():
    bad = []
    for name, path in MODULES.items():
        for target, line in _imports(name, path):
            if target.split(".")[0] in ("configs", "convert", "tests"):
                bad.append(f"{path.relative_to(PACKAGE.parent)}:{line} imports the repository's {target}")
            elif target.startswith("restorenet_jax.") and _layer(target) > _layer(name):
                bad.append(f"{path.relative_to(PACKAGE.parent)}:{line} ({name}) imports higher-layer {target}")
    assert not bad, "\n".join(bad)


def test_no_import_cycles():
    graph = {name: {t for t, _ in _imports(name, path) if t in MODULES and t != name}
             for name, path in MODULES.items()}
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node):
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                raise AssertionError("import cycle: " + " -> ".join(stack[stack.index(nxt):] + [nxt]))
            if nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)


def test_checks_see_function_local_imports(tmp_path):
    """The walk finds an import hidden inside a function (so a circle cannot hide there)."""
    f = tmp_path / "m.py"
    f.write_text("def f():\n    from restorenet_jax.apps import serve\n")
    assert ("restorenet_jax.apps.serve", 2) in _imports("restorenet_jax.models.m", f)
