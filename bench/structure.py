"""The product's structure in numbers (docs/architecture.md): modules and their sizes, the longest functions,
imports from one route module to another, and which modules the import-linter layer contract covers.

Run: ``.venv/bin/python -m bench.structure`` (reads the source and ``pyproject.toml``; starts nothing).
"""

from __future__ import annotations

import ast
import statistics
import tomllib
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("referral_service", "workflows", "fhir_mappings")
MODULE_LINE_LIMIT = 400


@dataclass(frozen=True)
class Module:
    name: str
    path: Path
    lines: int
    tree: ast.Module


@dataclass(frozen=True)
class Function:
    qualified: str
    lines: int


def modules() -> list[Module]:
    """Every Python module of the product, by dotted name."""
    found = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
            text = path.read_text()
            found.append(Module(name, path, len(text.splitlines()), ast.parse(text)))
    return found


def functions(module: Module) -> list[Function]:
    """Each function and method, with its length from ``def`` (or its first decorator) to its last line."""
    found = []
    for node in ast.walk(module.tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            start = min([node.lineno, *(d.lineno for d in node.decorator_list)])
            found.append(Function(f"{module.name}.{node.name}", (node.end_lineno or node.lineno) - start + 1))
    return found


def imported(module: Module) -> set[str]:
    """The product modules ``module`` imports (``from a import b`` counts ``a`` and ``a.b``)."""
    names: set[str] = set()
    for node in ast.walk(module.tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return {name for name in names if name.split(".")[0] in PACKAGES}


def contracts() -> list[dict[str, object]]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    found: list[dict[str, object]] = config["tool"]["importlinter"]["contracts"]
    return found


def layered(names: list[str]) -> dict[str, bool]:
    """For each module, whether the layers contract places it (it is a layer or inside one). The root package's
    ``__init__`` is the container the layers live in."""
    [layers] = [c for c in contracts() if c["type"] == "layers"]
    roots = [part.strip() for layer in layers["layers"] for part in str(layer).split("|")]  # type: ignore[attr-defined]
    return {
        name: name in PACKAGES[:1] or any(name == root or name.startswith(f"{root}.") for root in roots)
        for name in names
    }


def route_modules(found: list[Module]) -> set[str]:
    """Modules that declare a FastAPI router: an HTTP surface of their own."""
    return {
        module.name
        for module in found
        if any(
            isinstance(node, ast.Assign)
            and isinstance(node.value, ast.Call)
            and getattr(node.value.func, "id", None) == "APIRouter"
            for node in module.tree.body
        )
    }


def independent_routes() -> set[str]:
    [routes] = [c for c in contracts() if c["type"] == "independence"]
    return set(routes["modules"])  # type: ignore[call-overload]


def route_to_route_imports(found: list[Module]) -> list[tuple[str, str]]:
    routes = route_modules(found)
    return sorted((m.name, other) for m in found if m.name in routes for other in imported(m) & routes - {m.name})


def report() -> str:
    found = modules()
    every = [f for module in found for f in functions(module)]
    lengths = [f.lines for f in every]
    coverage = layered([m.name for m in found])
    longest_modules = sorted(found, key=lambda m: -m.lines)[:5]
    longest_functions = sorted(every, key=lambda f: -f.lines)[:5]
    lines = [
        "| figure | value |",
        "|---|---:|",
        f"| product modules (`{'`, `'.join(PACKAGES)}`) | {len(found)} |",
        f"| lines in all | {sum(m.lines for m in found):,} |",
        f"| modules over {MODULE_LINE_LIMIT} lines | {sum(m.lines > MODULE_LINE_LIMIT for m in found)} |",
        f"| functions and methods | {len(every):,} |",
        f"| median function length (lines) | {statistics.median(lengths):g} |",
        f"| functions over 40 lines | {sum(n > 40 for n in lengths)} |",
        f"| route modules (declare an `APIRouter`) | {len(route_modules(found))} |",
        f"| imports from one route module to another | {len(route_to_route_imports(found))} |",
        f"| modules the layers contract places | {sum(coverage.values())} of {len(coverage)} |",
        "",
        "Longest modules: " + ", ".join(f"`{m.name}` {m.lines}" for m in longest_modules) + ".",
        "",
        "Longest functions: " + ", ".join(f"`{f.qualified}` {f.lines}" for f in longest_functions) + ".",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    print(report())
