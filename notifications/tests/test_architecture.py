"""The import graph of the service: one-way layers, no cycles, no imports hidden in functions.

models ← content ← senders ← channels, pacing ← selectors, rendering ← rollup, recording ← delivery ← recovery ←
composing ← tasks ← services ← forms ← admin, API, views, commands. Read statically from the source, so it holds for every import path.

``notifications.models`` is a package: it and each of its modules are one layer, the bottom one
of the app; its modules import one another directly, never the package that re-exports them.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1]
# A module may import only from layers below its own (lower numbers).
LAYERS = {
    "notifications.redaction": 0,
    "notifications.validators": 0,
    "notifications.invite_tokens": 0,
    "notifications.reasons": 0,
    "notifications.operations.logs": 0.5,
    "notifications.operations.metrics": 0,
    # The models package and every module in it (a prefix names a package and its modules).
    "notifications.models": 1,
    "notifications.preferences.models": 1.5,
    "notifications.preferences.quiet_hours": 0,
    "notifications.preferences.links": 0,
    "notifications.preferences.defaults": 1.6,
    # One-click unsubscribe's tokens and headers: below the email sender (3), which adds them.
    "notifications.preferences.unsubscribe": 2.5,
    "notifications.preferences.services": 4.5,
    "notifications.preferences.caps": 2,
    "notifications.preferences.policy": 5.2,
    "notifications.preferences.digests": 5.5,
    # The preferences section of the contact's admin page (notifications.admin imports it).
    "notifications.preferences.admin_forms": 9.5,
    "notifications.preferences.reach": 1.5,
    # The bot's /settings: below telegram_bot (7), which dispatches to it.
    "notifications.preferences.bot": 6.5,
    # The preference page: above the API, whose anonymous throttle it shares.
    "notifications.preferences.views": 10.5,
    # The preferences app's package, apps.py and any module not named above.
    "notifications.preferences": 10,
    "notifications.preferences.apps": 11,
    # Suppressed addresses: the models, and the services the email sender (3) and the
    # policy step (5.2) call; the provider's tracking events, worked off above receipts (5).
    "notifications.suppression.models": 1.5,
    "notifications.suppression.services": 2.4,
    "notifications.suppression.tracking": 5.6,
    "notifications.suppression.admin_contacts": 9.5,
    "notifications.suppression.tasks": 8.5,
    # The suppression app's package, its receiver, urls, admin and apps.py.
    "notifications.suppression": 10,
    "notifications.suppression.apps": 11,
    # Telegram paid broadcast: the models, the services that take and give back Stars (the
    # Telegram sender, 3, calls them), its admin and apps.py.
    "notifications.broadcast.models": 1.5,
    "notifications.broadcast.services": 2.4,
    "notifications.broadcast": 10,
    "notifications.broadcast.apps": 11,
    "notifications.operations.models": 1,
    "notifications.content": 2,
    "notifications.senders": 3,
    "notifications.channels": 4,
    "notifications.pacing": 4,
    "notifications.charts": 0,
    "notifications.selectors": 5,
    "notifications.statistics": 5.1,
    # Kept counts: the table every web process reads, their JSON (of statistics' and
    # selectors' dataclasses), the services the dashboard's and a campaign's views call.
    "notifications.kept.models": 1.5,
    "notifications.kept.codec": 5.15,
    "notifications.kept.services": 5.2,
    "notifications.kept": 10,
    "notifications.kept.apps": 11,
    "notifications.receipts": 5,
    "notifications.rendering": 5,
    "notifications.search": 5,
    "notifications.rollup": 5.5,
    "notifications.recording": 5.8,
    "notifications.job": 5.8,
    "notifications.claiming": 5.9,
    "notifications.delivery": 6,
    "notifications.recovery": 7,
    "notifications.telegram_bot": 7,
    "notifications.composing": 7.5,
    "notifications.fill_process": 7.6,
    "notifications.campaign_rows": 4.9,
    "notifications.campaign_sets": 5,
    "notifications.cancelling": 4.5,
    "notifications.operations.retention": 7.6,
    "notifications.operations.heartbeat": 5,
    "notifications.operations.collectors": 5,
    "notifications.operations.checks": 5,
    "notifications.operations.exposition": 6,
    "notifications.tasks": 8,
    "notifications.queue_put": 7.9,
    "notifications.operations.tasks": 8.5,
    "notifications.operations.views": 10,
    "notifications.services": 9,
    "notifications.forms": 9.5,
    "notifications.display": 9.5,
    "notifications.api_keys": 9,
    "notifications.signals": 10,
    "notifications.admin": 10,
    "notifications.views": 10,
    "notifications.provider_views": 10,
    "notifications.management": 10,
    "notifications.api": 10,
    "notifications.apps": 11,
    # The operations app's package, apps.py and any module not named above.
    "notifications.operations": 10,
    "notifications.operations.apps": 11,
    # The webhooks app: signing and the address guard at the bottom, the models beside the
    # other apps', the outbox's database work above selectors, its lane above delivery.
    "notifications.webhooks.signing": 0,
    "notifications.webhooks.addresses": 0,
    "notifications.webhooks.triggers": 0,
    "notifications.webhooks.models": 1.5,
    "notifications.webhooks.payloads": 1.6,
    "notifications.webhooks.marks": 1.6,
    "notifications.webhooks.transport": 3,
    "notifications.webhooks.outbox": 5.6,
    "notifications.webhooks.services": 5.6,
    "notifications.webhooks.lane": 6,
    "notifications.webhooks.tasks": 8.5,
    # Its API views, on the API's base classes; the API's routes take them in.
    "notifications.webhooks.api": 10.5,
    "notifications.api.urls": 10.6,
    # Its admin, and any module not named above.
    "notifications.webhooks": 10,
    "notifications.webhooks.apps": 11,
}


def modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        relative = path.relative_to(PACKAGE.parent)
        if {"tests", "migrations"} & set(relative.parts):
            continue
        name = ".".join(relative.with_suffix("").parts).removesuffix(".__init__")
        found[name] = path
    return found


def imported(node: ast.AST, known: dict[str, Path]) -> list[str]:
    """The modules an import statement loads (``from a import b``: ``a.b`` if that is a
    module, else ``a``)."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
        names = [f"{node.module}.{alias.name}" for alias in node.names]
        return [name if name in known else node.module for name in names]
    return []


def ours(names: list[str], known: dict[str, Path]) -> set[str]:
    return {name for name in names if name in known and name != "notifications"}


def module_level_imports(path: Path, known: dict[str, Path]) -> set[str]:
    tree = ast.parse(path.read_text())
    found: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.If):  # ``if TYPE_CHECKING:`` imports are not executed
            continue
        found |= ours(imported(node, known), known)
    return found


def function_imports(path: Path, known: dict[str, Path]) -> list[tuple[str, int]]:
    tree = ast.parse(path.read_text())
    found = []
    for function in ast.walk(tree):
        if isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for node in ast.walk(function):
                for name in ours(imported(node, known), known):
                    found.append((name, node.lineno))
    return found


def layer(name: str) -> int:
    for prefix, rank in sorted(LAYERS.items(), key=lambda item: -len(item[0])):
        if name == prefix or name.startswith(prefix + "."):
            return rank
    raise AssertionError(f"{name} has no layer in LAYERS; add it")


def graph() -> dict[str, set[str]]:
    known = modules()
    return {name: module_level_imports(path, known) for name, path in known.items()}


def test_every_import_goes_down_the_layers():
    wrong = [
        f"{source} imports {target}"
        for source, targets in graph().items()
        for target in targets
        if layer(target) > layer(source)
        or (layer(target) == layer(source) and source.split(".")[:2] != target.split(".")[:2])
    ]
    assert wrong == []


def test_the_import_graph_has_no_cycles():
    edges = graph()
    seen: set[str] = set()
    path: list[str] = []

    def visit(name: str) -> None:
        if name in path:
            pytest.fail("import cycle: " + " → ".join([*path[path.index(name) :], name]))
        if name in seen:
            return
        path.append(name)
        for target in edges.get(name, ()):
            visit(target)
        path.pop()
        seen.add(name)

    for name in edges:
        visit(name)


def test_no_module_imports_ours_inside_a_function():
    """Imports in function bodies are how a cycle hides; an app's ready() connecting its
    signal receivers is Django's documented exception."""
    known = modules()
    hidden = [
        f"{name}:{line} imports {target}"
        for name, path in known.items()
        for target, line in function_imports(path, known)
        if (name, target)
        not in {
            ("notifications.apps", "notifications.signals"),
            ("notifications.suppression.apps", "notifications.suppression.receivers"),
        }
    ]
    assert hidden == []


def test_the_models_package_is_one_layer_its_modules_import_each_other_not_it():
    package = "notifications.models"
    inside = {name for name in modules() if name.startswith(package + ".")}
    assert len(inside) > 1, "notifications.models is expected to be a package of modules"
    assert {name: layer(name) for name in inside} == dict.fromkeys(inside, layer(package))
    edges = graph()
    assert [name for name in sorted(inside) if package in edges[name]] == []
    # The package itself only re-exports its own modules.
    assert {target for target in edges[package] if not target.startswith(package + ".")} == set()


def test_importing_delivery_does_not_import_tasks():
    edges = graph()
    reached: set[str] = set()
    stack = ["notifications.delivery"]
    while stack:
        name = stack.pop()
        if name not in reached:
            reached.add(name)
            stack.extend(edges.get(name, ()))
    assert "notifications.tasks" not in reached
    assert "notifications.services" not in reached
