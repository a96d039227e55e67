"""The import structure: every import points down the layers, and no modules import each other in a circle.

The layers, lowest first (docs/architecture.md draws them). A module may
import modules of its own layer and of the layers below; two layers of the
same rank are siblings and import nothing from each other. Every import in
a file counts, also those inside functions and under ``TYPE_CHECKING``;
the test reads the source (``ast``) and runs nothing of it.
"""

from __future__ import annotations

import ast
import pathlib
from typing import Iterator, Optional

ROOT = pathlib.Path(__file__).resolve().parents[1]
PACKAGES = ("pet_projection", "ldm", "tasks", "benchmarks")

# (rank, layer name, module prefixes); the longest matching prefix names a module's layer
LAYERS = (
    (0, "projector core", ("pet_projection",)),
    (1, "attention", ("pet_projection.attention",)),
    (1, "masks", ("pet_projection.masks",)),
    (1, "plotting", ("pet_projection.plotting",)),
    (2, "simulation", ("pet_projection.simulation",)),
    (3, "ldm", ("ldm",)),
    (4, "tasks", ("tasks",)),
    (5, "viewer", ("tasks.viewer",)),
    (6, "cli", ("tasks.cli",)),
    (7, "benchmarks", ("benchmarks",)),
)


def module_name(path: pathlib.Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def layer_of(module: str) -> Optional[tuple[int, str]]:
    """``(rank, name)`` of the layer that holds ``module``; None for modules outside the package."""
    best = None
    for rank, name, prefixes in LAYERS:
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and (best is None or len(prefix) > best[0]):
                best = (len(prefix), rank, name)
    return None if best is None else best[1:]


def source_files(folder: str) -> Iterator[pathlib.Path]:
    yield from sorted((ROOT / folder).rglob("*.py"))


def known_modules() -> set[str]:
    return {module_name(path) for package in PACKAGES for path in source_files(package)}


def imports_of(path: pathlib.Path, modules: set[str]) -> Iterator[tuple[int, str]]:
    """``(line, module)`` of every import of a project module in ``path`` (a name imported from a package
    counts as its submodule where one exists)."""
    name = module_name(path) if path.is_relative_to(ROOT) else ""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[:len(package.split(".")) - node.level + 1]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module
            for alias in node.names:
                submodule = f"{source}.{alias.name}"
                yield node.lineno, submodule if submodule in modules else source


def own(module: str) -> bool:
    return module.split(".")[0] in PACKAGES


def upward_imports() -> list[str]:
    modules = known_modules()
    problems = []
    for package in PACKAGES:
        for path in source_files(package):
            here = layer_of(module_name(path))
            for line, target in sorted(set(imports_of(path, modules))):
                there = layer_of(target) if own(target) else None
                if there is None or there[1] == here[1]:
                    continue
                if there[0] >= here[0]:
                    problems.append(f"{path.relative_to(ROOT)}:{line}: {here[1]} (rank {here[0]}) imports "
                                    f"{target} of {there[1]} (rank {there[0]})")
    return problems


def import_circles() -> list[list[str]]:
    """Strongly connected groups of two or more modules in the graph of imports (Tarjan's algorithm)."""
    modules = known_modules()
    graph = {module_name(path): sorted({target for _, target in imports_of(path, modules)
                                        if target in modules and target != module_name(path)})
             for package in PACKAGES for path in source_files(package)}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    circles: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph[node]:
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                circles.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return circles


def test_every_module_has_a_layer():
    assert all(layer_of(module_name(path)) for package in PACKAGES for path in source_files(package))


def test_imports_point_down():
    problems = upward_imports()
    assert not problems, f"{len(problems)} imports point up or sideways:\n" + "\n".join(problems)


def test_no_import_circles():
    circles = import_circles()
    assert not circles, "modules that import each other in a circle:\n" + "\n".join(" -> ".join(c) for c in circles)


def test_tests_do_not_import_benchmarks():
    modules = known_modules()
    found = [f"{path.relative_to(ROOT)}:{line}: {target}" for path in sorted((ROOT / "tests").rglob("*.py"))
             for line, target in imports_of(path, modules) if target.split(".")[0] == "benchmarks"]
    assert not found, "tests import benchmarks/ (move what they share into the package):\n" + "\n".join(found)


def test_the_checker_sees_an_upward_import(tmp_path):
    """The walk finds imports inside functions, relative ones included, and ranks them."""
    source = tmp_path / "probe.py"
    source.write_text("def f():\n    from tasks.cli import main\n    from ..simulation import x\n", encoding="utf-8")
    found = [target for _, target in imports_of(source, {"tasks.cli"})]
    assert found[0] == "tasks.cli"
    assert layer_of("tasks.cli")[0] > layer_of("ldm.model")[0] > layer_of("pet_projection.simulation.x")[0]
    assert layer_of("pet_projection.simulation.x")[0] > layer_of("pet_projection.grid")[0]
    assert layer_of("pet_projection.masks.cells") != layer_of("pet_projection.attention.tma")
