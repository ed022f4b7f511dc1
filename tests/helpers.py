"""Helpers shared by the tests: builders, waiters and small real servers.

Each section is owned by the area it serves; keep helpers here, not in test_*.py files.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

# ---- built-ins (crypto, jsonwebtoken, AWS): Node fixtures ------------------------------------
FIXTURES = Path(__file__).parent / "fixtures"


def builtin_fixture(name: str) -> dict[str, Any]:
    """tests/fixtures/<name>.json, made by tests/fixtures/node/make_<name>.mjs under Node 20."""
    return json.loads((FIXTURES / f"{name}.json").read_text("utf-8"))  # type: ignore[no-any-return]


def fixture_keys() -> dict[str, str]:
    """The PEM keys the fixtures use, under the names make_*.mjs gives them (K.rsa, K.ecPub...)."""
    keys = FIXTURES / "keys"
    names = {"rsa": "rsa", "rsaPub": "rsa.pub", "ec": "ec", "ecPub": "ec.pub", "ec384": "ec384"}
    names |= {"ec384Pub": "ec384.pub", "ed": "ed25519", "edPub": "ed25519.pub"}
    return {k: (keys / f"{v}.pem").read_text("ascii") for k, v in names.items()}


def fixture_case_plugin(fixture: dict[str, Any]) -> str:
    """A plugin whose onTrack runs case number `event.i` of a fixture, with K = settings.K,
    and returns its value through the fixture's NORM (errors become {error: [name, code]})."""
    bodies = ",\n".join(f"async (K) => ({c['code']})" for c in fixture["cases"])
    return (
        f"{fixture['norm']}\nconst CASES = [\n{bodies}\n];\n"
        "async function onTrack(event, settings) {\n"
        "  try { return norm(await CASES[event.i](settings.K)); } catch (e) { return norm(e); }\n}\n"
    )
