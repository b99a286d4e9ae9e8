"""The import structure the architecture decides: imports point downward only (triggers and the
CLI -> services -> domain and ports <- adapters), no module imports its caller, and no two
modules import each other, not even through an import inside a function."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("shared", "local_runner", "emulators", "admin_api", "dashboard", "sync_orchestrator", "tenant_activity",
            "psa_push", "notify")
COMMAND_MODULES = ("local_runner.sync_cli", "local_runner.config_cli", "local_runner.billing_cli",
                   "local_runner.notify_cli", "local_runner.reconcile_cli", "local_runner.serve_cli")


def _modules() -> dict[str, Path]:
    found = {"function_app": ROOT / "function_app.py", "durable_blueprint": ROOT / "durable_blueprint.py"}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
            found[name] = path
    return found


MODULES = _modules()


def _imports(path: Path) -> set[str]:
    """Every project module ``path`` imports, at the top or inside a function. ``from package
    import submodule`` counts as importing the submodule, not the package."""
    imported: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            imported.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            submodules = {f"{node.module}.{alias.name}" for alias in node.names} & MODULES.keys()
            imported.update(submodules or {node.module})
    return imported


GRAPH = {name: {m for m in _imports(path) if m in MODULES and m != name} for name, path in MODULES.items()}


def _all_imports(name: str) -> set[str]:
    """Modules imported by ``name`` including third-party ones (for the rules on Azure Functions)."""
    return _imports(MODULES[name])


def _cycles() -> list[list[str]]:
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(GRAPH[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(GRAPH):
        if node not in index:
            visit(node)
    return found


def test_the_walker_sees_the_project() -> None:
    assert "local_runner.cli" in MODULES and "shared.domain.planning" in MODULES
    assert "shared.domain.model" in GRAPH["shared.ports"]


def test_no_two_modules_import_each_other() -> None:
    assert _cycles() == []


@pytest.mark.parametrize("module", COMMAND_MODULES)
def test_command_modules_take_their_wiring_from_one_module(module: str) -> None:
    imported = GRAPH[module]
    assert "local_runner.wiring" in imported
    assert "local_runner.cli" not in imported
    assert not imported & (set(COMMAND_MODULES) - {module})


def _under(prefix: str) -> list[str]:
    return sorted(m for m in MODULES if m == prefix or m.startswith(prefix + "."))


@pytest.mark.parametrize(("layer", "allowed"), [
    ("shared.config", ("shared.config", "shared.errors")),
    ("shared.domain", ("shared.domain", "shared.config", "shared.errors")),
    ("shared.ports", ("shared.domain", "shared.errors")),
])
def test_inner_layers_import_nothing_above_them(layer: str, allowed: tuple[str, ...]) -> None:
    for module in _under(layer):
        outside = {m for m in GRAPH[module] if not any(m == a or m.startswith(a + ".") for a in allowed)}
        assert not outside, f"{module} imports {sorted(outside)}"


def test_psa_capabilities_belong_to_the_domain() -> None:
    from shared.domain import model

    assert model.PsaCapabilities.__module__ == "shared.domain.model"
    assert "PsaCapabilities" not in __import__("shared.ports", fromlist=["__all__"]).__all__


def test_shared_knows_nothing_of_azure_functions_or_its_callers() -> None:
    callers = ("local_runner", "emulators", "admin_api", "sync_orchestrator", "tenant_activity", "psa_push",
               "notify", "function_app", "durable_blueprint")
    for module in _under("shared"):
        imported = _all_imports(module)
        assert not {m for m in imported if m.split(".")[0] in callers}, module
        assert not {m for m in imported if m.startswith(("azure.functions", "azure.durable_functions"))}, module
