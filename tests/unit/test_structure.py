"""The rules that keep the code findable (docs/architecture.md): every product module sits in a layer the import
contract checks, every HTTP surface is in the route independence contract, and no module outgrows 400 lines."""

from __future__ import annotations

from bench import structure


def test_every_product_module_is_placed_by_the_layers_contract():
    """A new top-level module or package must be given a layer, or import-linter would not check it at all."""
    coverage = structure.layered([module.name for module in structure.modules()])
    assert [name for name, placed in coverage.items() if not placed] == []


def test_every_route_module_is_in_the_independence_contract():
    """A new route module is checked against importing another route, like the others."""
    found = structure.modules()
    assert structure.route_modules(found) == structure.independent_routes()
    assert structure.route_to_route_imports(found) == []


def test_no_product_module_is_over_the_line_limit():
    too_long = {m.name: m.lines for m in structure.modules() if m.lines > structure.MODULE_LINE_LIMIT}
    assert too_long == {}
