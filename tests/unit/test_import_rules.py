"""The import rule between capabilities, read from the sources (ast, nothing is imported):
no module of a capability imports another capability's adapter (`stasis`) or REST module
(`http`). What they share lives in the call core (`ari_app/calls/`); a machine, a service, a
store or a `keys` module of another capability may be imported.

TYPE_CHECKING imports count too: they are a dependency all the same."""

from __future__ import annotations

import ast
from pathlib import Path

import ari_app

CAPABILITIES = frozenset({"hold", "transfer", "escalation", "callback", "voicemail", "inbound",
                          "customers", "operators", "queue", "staff", "dashboard",
                          "reports", "console", "survey", "warning"})
PRIVATE = frozenset({"stasis", "http"})  # a capability's modules no other may import
ROOT = Path(ari_app.__file__).parent


def imported(tree: ast.AST, module: str) -> list[tuple[int, str]]:
    """(line, dotted name) of every module `tree` imports; `from a import b` yields both `a`
    and `a.b` (b may be a module), relative imports resolved against `module`."""
    package = module.split(".")[:-1]  # a module's own package (for __init__: the package)
    names: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package[:len(package) - node.level + 1]
                base = ".".join([*up, *([base] if base else [])])
            names.append((node.lineno, base))
            names += [(node.lineno, f"{base}.{alias.name}") for alias in node.names]
    return names


def violations(source: str, module: str) -> list[str]:
    """What `source` (module `ari_app.X....`) imports against the rule, as "line: name"."""
    parts = module.split(".")
    if len(parts) < 3 or parts[1] not in CAPABILITIES:
        return []  # the root (app.py wires everything) and the core are not capabilities
    own = parts[1]
    found: dict[str, None] = {}  # ordered, once per line and module
    for line, name in imported(ast.parse(source), module):
        target = name.split(".")
        if (len(target) >= 3 and target[0] == "ari_app" and target[1] in CAPABILITIES
                and target[1] != own and target[2] in PRIVATE):
            found[f"{line}: {'.'.join(target[:3])}"] = None
    return list(found)


def _modules() -> list[tuple[str, Path]]:
    found = []
    for path in sorted(ROOT.rglob("*.py")):
        rel = path.relative_to(ROOT.parent).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts.append("__init__")  # so that its package is the package itself
        found.append((".".join(parts), path))
    return found


def test_given_capability_modules_when_imports_read_then_none_imports_another_adapter_or_http():
    modules = _modules()
    seen = {m.split(".")[1] for m, _ in modules if len(m.split(".")) >= 3}
    assert CAPABILITIES <= seen, f"capability packages not found: {CAPABILITIES - seen}"
    broken = [f"{path.relative_to(ROOT.parent)}:{v}" for module, path in modules
              for v in violations(path.read_text(encoding="utf-8"), module)]

    assert not broken, ("a capability imports another capability's stasis or http; move what "
                        "they share to the call core (ari_app/calls/):\n" + "\n".join(broken))


def test_given_each_way_to_import_when_checked_then_the_rule_sees_it():
    """The checker itself: each spelling of a forbidden import is caught, the allowed ones
    are not (so the test above cannot pass by reading nothing)."""
    module = "ari_app.transfer.http"
    forbidden = ["from ari_app.hold.http import apply", "from ari_app.hold import http",
                 "import ari_app.inbound.stasis", "from ..inbound.stasis import ToRule",
                 "from ..inbound import stasis as s",
                 "if TYPE_CHECKING:\n    from ari_app.callback.stasis import CallbackStasis"]
    allowed = ["from ari_app.inbound import machine as m", "from ari_app.inbound.keys import x",
               "from ari_app.transfer.stasis import TransferRule", "from . import stasis",
               "from ari_app.calls.control import apply", "from ari_app import http as api"]

    assert [s for s in forbidden if not violations(s, module)] == []
    assert [s for s in allowed if violations(s, module)] == []
    assert violations("from ari_app.hold import http", "ari_app.app") == []  # the wiring
