"""Imports point down: each segfuncd module imports only modules below it in LAYERS.

The order is the module map of docs/internals.md: pure leaves first, then the parts that
own I/O, then the daemon and the CLI, which nothing imports. A module may import any
module in an earlier layer or in its own subpackage.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "segfuncd"

LAYERS: list[set[str]] = [
    {
        "errors",
        "systemd",
        "peers",
        "pausing",
        "refusals",
        "runner.version",
        "runner.egress",
        "clock",
        "fairshare",
        "fdlimits",
        "private_files",
        "surrogates",
        "collector",
    },
    {"outcomes", "fql", "secrets"},
    {"spec", "config", "metrics", "attempts", "stacks", "runner.protocol"},
    {"filters", "redact", "log", "watch", "server", "sources"},
    {"store"},
    {"storage"},
    {"jetstream"},
    {"runner"},
    {"plugin_files"},
    {"plugins"},
    {"functions"},
    {"intake", "delivery"},
    {"admin", "reload"},
    {"console"},
    {"daemon", "ctl_client", "ctl_format", "ctl_starter"},
    {"ctl"},
]


def layer_of(module: str) -> int:
    """The layer of a dotted module under segfuncd (a subpackage's modules share its layer)."""
    for i, names in enumerate(LAYERS):
        if module in names:
            return i
    top = module.split(".")[0]
    for i, names in enumerate(LAYERS):
        if top in names:
            return i
    raise AssertionError(f"segfuncd.{module} is not in LAYERS: add it where it belongs")


def segfuncd_imports(path: Path) -> list[tuple[str, int]]:
    """(imported segfuncd module, line) for each import in `path`, TYPE_CHECKING ones included."""
    rel = path.relative_to(PACKAGE).with_suffix("")
    package = list(rel.parts[:-1])
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - (node.level - 1)] if node.level > 1 else package
                target = ".".join([*base, node.module] if node.module else base)
            elif node.module and node.module.startswith("segfuncd."):
                target = node.module.removeprefix("segfuncd.")
            else:
                continue
            if not target:  # `from . import __version__`
                continue
            out.append((target, node.lineno))
    return out


def test_imports_point_down() -> None:
    wrong = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE).with_suffix("")
        module = ".".join(p for p in rel.parts if p != "__init__")
        if not module:
            continue
        mine = layer_of(module)
        own_package = module.split(".")[0]
        for target, line in segfuncd_imports(path):
            if target.split(".")[0] == own_package and len(rel.parts) > 1:
                continue  # inside one subpackage
            if layer_of(target) >= mine and target != module:
                wrong.append(f"segfuncd/{rel}.py:{line} imports segfuncd.{target} (layer {layer_of(target)} >= {mine})")
    assert not wrong, "imports that point up or sideways:\n" + "\n".join(wrong)


def test_nothing_imports_the_daemon_or_the_cli() -> None:
    for path in sorted(PACKAGE.rglob("*.py")):
        for target, line in segfuncd_imports(path):
            assert target.split(".")[0] not in {"daemon", "ctl"} or path.stem.startswith("ctl"), (path, line)
