"""The official segment-analytics-python SDK, unmodified, against a running intake."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import trio
from segment.analytics import Client  # type: ignore[import-untyped]
from test_intake_support import open_test_store, stored_events

from segfuncd.intake import Intake, serve_intake

KEY = "sdk-write-key"


def send_everything(client: Client) -> None:
    """One call of each kind, as an application would make them (runs in a worker thread)."""
    when = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
    client.track(
        "user-1",
        "Order Completed",
        {"revenue": 42.5, "currency": "EUR"},
        context={"ip": "10.1.2.3"},
        timestamp=when,
        message_id="sdk-track",
    )
    client.identify("user-1", {"email": "ada@example.com", "plan": "pro"}, message_id="sdk-identify")
    client.page("user-1", "Docs", "Install", {"url": "https://example.com/install"}, message_id="sdk-page")
    client.screen("user-1", "App", "Settings", {"dark": True}, message_id="sdk-screen")
    client.group("user-1", "group-7", {"name": "Initech"}, message_id="sdk-group")
    client.alias("anon-99", "user-1", message_id="sdk-alias")
    client.track(
        anonymous_id="anon-5", event="Viewed", integrations={"All": False, "teams": True}, message_id="sdk-anon"
    )
    client.flush()


@pytest.mark.parametrize("mode", ["sync", "queued+gzip"])
async def test_python_sdk_events_are_stored_with_every_field_it_set(
    nursery: trio.Nursery, tmp_path: Path, mode: str
) -> None:
    errors: list[Any] = []
    async with open_test_store(tmp_path / "segfuncd.db") as store:
        intake = Intake(store, routable=lambda: ("teams", "slack"), write_keys=(KEY,))
        server = await nursery.start(
            lambda task_status: serve_intake(intake, listen="127.0.0.1:0", task_status=task_status)
        )
        host, port = server.addresses[0][:2]
        client = Client(
            KEY,
            host=f"http://{host}:{port}",
            sync_mode=(mode == "sync"),
            gzip=(mode != "sync"),
            on_error=lambda e, batch: errors.append(e),
            max_retries=0,
        )
        await trio.to_thread.run_sync(send_everything, client)
        if mode != "sync":
            await trio.to_thread.run_sync(client.join)
        events = {e["messageId"]: e for e in await stored_events(store)}

    assert errors == []
    assert sorted(events) == sorted(
        ["sdk-track", "sdk-identify", "sdk-page", "sdk-screen", "sdk-group", "sdk-alias", "sdk-anon"]
    )
    track = events["sdk-track"]
    assert track["type"] == "track" and track["userId"] == "user-1" and track["event"] == "Order Completed"
    assert track["properties"] == {"revenue": 42.5, "currency": "EUR"}
    assert track["context"]["ip"] == "10.1.2.3" and track["context"]["library"]["name"] == "analytics-python"
    assert track["originalTimestamp"] == "2024-05-01T12:00:00.000Z"
    assert track["receivedAt"] and track["sentAt"] and track["timestamp"]
    assert "writeKey" not in track
    assert events["sdk-identify"]["traits"] == {"email": "ada@example.com", "plan": "pro"}
    page = events["sdk-page"]
    assert (page["type"], page["category"], page["name"], page["properties"]["url"]) == (
        "page",
        "Docs",
        "Install",
        "https://example.com/install",
    )
    screen = events["sdk-screen"]
    assert (screen["type"], screen["name"], screen["properties"]) == ("screen", "Settings", {"dark": True})
    group = events["sdk-group"]
    assert (group["type"], group["groupId"], group["traits"]) == ("group", "group-7", {"name": "Initech"})
    alias = events["sdk-alias"]
    assert (alias["type"], alias["previousId"], alias["userId"]) == ("alias", "anon-99", "user-1")
    anon = events["sdk-anon"]
    assert anon["anonymousId"] == "anon-5" and anon["integrations"] == {"All": False, "teams": True}
    assert intake.statistics().events_accepted == 7
