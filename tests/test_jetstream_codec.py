"""segfuncd/jetstream/codec.py and cluster.translate: names, headers, error mapping (no server)."""

from __future__ import annotations

import nats.errors
import nats.js.errors
import pytest

from segfuncd.errors import Backpressure, ClusterError
from segfuncd.jetstream import cluster
from segfuncd.jetstream.codec import (
    FANOUT,
    H_DELIVERY,
    H_FUNCTIONS,
    H_MSG_ID,
    Names,
    dead_headers,
    delivery_id,
    event_headers,
    header_delivery,
    msg_id,
    parked_headers,
    routed_to,
    token,
)


def test_names_under_one_prefix() -> None:
    n = Names("P")
    assert (n.events_stream, n.events_subject, n.dead_stream, n.dead_subjects) == (
        "P_EVENTS",
        "P.events",
        "P_DEAD",
        "P.dead.>",
    )
    assert n.consumer("teams") == "P_fn_teams" and n.dead_subject("teams") == "P.dead.teams"


@pytest.mark.parametrize("name", ["a.b", "has space", "x>", "*", "", "é", "a" * 65])
def test_a_function_name_that_is_not_a_plain_token_becomes_a_digest(name: str) -> None:
    t = token(name)
    assert t.startswith("x") and len(t) == 25 and t.isalnum()
    assert token(name) == t  # stable: every node names the consumer alike


def test_the_dedupe_id_is_per_sender_and_never_the_raw_message_id() -> None:
    assert msg_id("@web", "m1") != msg_id("@app", "m1")
    assert msg_id("@web", "m1") == msg_id("@web", "m1")
    hostile = "x\r\nNats-Msg-Id: y"
    assert "\r" not in msg_id("", hostile) and len(msg_id("", hostile)) == 32


def test_header_values_cannot_carry_a_line_break() -> None:
    h = event_headers(functions=["a\r\nb", "c"], source="s\nX: y", type_="track", dedupe="d")
    assert all("\r" not in v and "\n" not in v for v in h.values())
    assert routed_to(h) == ("a\r\nb", "c") and h[H_MSG_ID] == "d"
    d = dead_headers(
        function="f", source="", type_="track", attempts=3, error="boom\r\nX: 1" + "e" * 900, delivery=10_000
    )
    assert all("\n" not in v for v in d.values()) and len(d["Segfuncd-Error"]) < 600


def test_a_delivery_id_names_the_event_and_the_function_and_travels_with_every_copy() -> None:
    """Each (event, function) pair has its own id; a retry, a parked event and a dead letter
    carry it, so every node names the delivery alike."""
    assert delivery_id(7, 0) == 7 * FANOUT and delivery_id(7, 1) == 7 * FANOUT + 1
    assert len({delivery_id(s, i) for s in range(1, 50) for i in range(3)}) == 49 * 3
    assert delivery_id(7, FANOUT + 5) == 7 * FANOUT + FANOUT - 1  # clamped, never another event's id
    retry = event_headers(functions=["f"], source="", type_="track", dedupe="r", attempts=1, delivery=70_001)
    parked = parked_headers(function="f", source="", type_="track", attempts=1, delivery=70_001)
    dead = dead_headers(function="f", source="", type_="track", attempts=3, error=None, delivery=70_001)
    assert {header_delivery(h) for h in (retry, parked, dead)} == {70_001}
    assert H_DELIVERY not in event_headers(functions=["f"], source="", type_="track", dedupe=None)


@pytest.mark.parametrize("raw", [None, "", "-3", "0", "1e5", "12a", "9" * 20, " 5"])
def test_a_malformed_delivery_header_is_none(raw: str | None) -> None:
    assert header_delivery({} if raw is None else {H_DELIVERY: raw}) is None


@pytest.mark.parametrize("raw", [None, "", "not json", '{"a":1}', "[1, 2]"])
def test_a_malformed_routing_header_routes_nowhere(raw: str | None) -> None:
    headers = {} if raw is None else {H_FUNCTIONS: raw}
    assert routed_to(headers) == ()


@pytest.mark.parametrize(
    "exc, kind, words",
    [
        (
            nats.js.errors.APIError(code=400, err_code=10077, description="maximum messages exceeded"),
            Backpressure,
            "full",
        ),
        (nats.js.errors.APIError(code=503, err_code=10047, description="insufficient resources"), Backpressure, "full"),
        (nats.js.errors.APIError(code=400, err_code=10054, description="maximum bytes exceeded"), Backpressure, "full"),
        (
            nats.js.errors.ServiceUnavailableError(code=503, description="JetStream not in cluster mode"),
            ClusterError,
            "quorum",
        ),
        (nats.js.errors.APIError(code=400, err_code=1, description="bad"), ClusterError, "refused"),
        (nats.errors.NoRespondersError(), ClusterError, "no JetStream stream answered"),
        (nats.js.errors.NoStreamResponseError(), ClusterError, "no JetStream stream answered"),
        (nats.errors.TimeoutError(), ClusterError, "did not answer in time"),
        (TimeoutError(), ClusterError, "did not answer in time"),
        (nats.errors.ConnectionClosedError(), ClusterError, "not connected"),
        (nats.errors.NoServersError(), ClusterError, "NoServersError"),
        (ConnectionRefusedError(111, "Connection refused"), ClusterError, "Connection refused"),
    ],
)
def test_every_nats_error_is_translated(exc: BaseException, kind: type, words: str) -> None:
    """The one boundary: nothing of nats-py leaves segfuncd/jetstream untranslated."""
    out = cluster.translate(exc, doing="publishing events", max_bytes=1000)
    assert type(out) is kind and words in str(out), str(out)
    assert str(out).startswith("publishing events") or kind is Backpressure
    if kind is Backpressure:
        assert "storage.jetstream.max_bytes = 1000" in str(out)
