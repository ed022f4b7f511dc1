"""segfuncd.spec: Segment validation, enrichment, timestamps, dedupe key and routing (pure)."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from segfuncd.errors import IntakeError
from segfuncd.spec import (
    MAX_BATCH_EVENTS,
    format_time,
    parse_time,
    prepare_batch,
    prepare_event,
    route_event,
)

NOW = datetime(2024, 5, 1, 12, 0, 0, 250_000, tzinfo=UTC)


def ids() -> Callable[[], str]:
    counter = itertools.count()
    return lambda: f"api-{next(counter)}"


def prep(item: object, type: str | None = "track", **kw: object) -> dict[str, Any]:
    return prepare_event(item, type=type, received_at=NOW, new_id=ids(), **kw)  # type: ignore[arg-type]


def refused(item: object, type: str | None = "track") -> IntakeError:
    with pytest.raises(IntakeError) as info:
        prep(item, type)
    return info.value


class TestValidation:
    def test_track_needs_event_name(self) -> None:
        err = refused({"userId": "u"})
        assert err.status == 400 and err.field == "event" and "event" in err.message

    def test_userid_or_anonymousid_required(self) -> None:
        err = refused({"event": "E"})
        assert err.field == "userId" and "anonymousId" in err.message
        assert prep({"event": "E", "anonymousId": "a"})["anonymousId"] == "a"
        assert prep({"event": "E", "userId": "", "anonymousId": "a"})["anonymousId"] == "a"

    def test_numeric_user_id_becomes_a_string(self) -> None:
        assert prep({"event": "E", "userId": 42})["userId"] == "42"

    def test_object_user_id_is_refused(self) -> None:
        assert refused({"event": "E", "userId": {"a": 1}}).field == "userId"

    def test_group_needs_group_id(self) -> None:
        assert refused({"userId": "u"}, "group").field == "groupId"
        assert prep({"userId": "u", "groupId": "g"}, "group")["groupId"] == "g"

    def test_alias_needs_previous_id_and_user_id_but_no_anonymous_id(self) -> None:
        assert refused({"userId": "u"}, "alias").field == "previousId"
        assert refused({"previousId": "p", "anonymousId": "a"}, "alias").field == "userId"
        event = prep({"previousId": "p", "userId": "u"}, "alias")
        assert event["type"] == "alias"

    @pytest.mark.parametrize("type", ["identify", "page", "screen"])
    def test_other_types_need_only_an_identity(self, type: str) -> None:
        assert prep({"userId": "u"}, type)["type"] == type
        assert refused({}, type).field == "userId"

    def test_path_type_overrides_the_body(self) -> None:
        assert prep({"type": "identify", "userId": "u", "event": "E"})["type"] == "track"

    def test_event_over_32_kb_is_413(self) -> None:
        err = refused({"event": "E", "userId": "u", "properties": {"x": "a" * 33_000}})
        assert err.status == 413 and "32768" in err.message

    def test_properties_must_be_an_object(self) -> None:
        assert refused({"event": "E", "userId": "u", "properties": [1]}).field == "properties"
        assert "properties" not in prep({"event": "E", "userId": "u", "properties": None})

    def test_not_an_object(self) -> None:
        assert "expected a JSON object" in refused([1, 2]).message

    def test_message_id_is_added_when_absent(self) -> None:
        assert prep({"event": "E", "userId": "u"})["messageId"] == "api-0"
        assert prep({"event": "E", "userId": "u", "messageId": "m1"})["messageId"] == "m1"

    def test_message_id_must_be_shorter_than_100(self) -> None:
        assert prep({"event": "E", "userId": "u", "messageId": "m" * 99})["messageId"] == "m" * 99
        err = refused({"event": "E", "userId": "u", "messageId": "m" * 100})
        assert err.field == "messageId" and "100" in err.message

    def test_write_key_is_not_stored(self) -> None:
        assert "writeKey" not in prep({"event": "E", "userId": "u", "writeKey": "k"})

    def test_channel_and_version_filled_but_not_overwritten(self) -> None:
        event = prep({"event": "E", "userId": "u"})
        assert event["channel"] == "server" and event["version"] == 2
        assert prep({"event": "E", "userId": "u", "channel": "browser"})["channel"] == "browser"


class TestTimestamps:
    def test_received_at_and_timestamp_default_to_now(self) -> None:
        event = prep({"event": "E", "userId": "u"})
        assert event["receivedAt"] == "2024-05-01T12:00:00.250Z"
        assert event["timestamp"] == event["receivedAt"]
        assert "originalTimestamp" not in event

    def test_clock_skew_is_corrected(self) -> None:
        """timestamp = receivedAt - (sentAt - originalTimestamp): a client clock 1 h fast."""
        event = prep(
            {"event": "E", "userId": "u", "timestamp": "2024-05-01T12:59:50.000Z", "sentAt": "2024-05-01T13:00:00Z"}
        )
        assert event["originalTimestamp"] == "2024-05-01T12:59:50.000Z"
        assert event["timestamp"] == "2024-05-01T11:59:50.250Z"
        assert event["sentAt"] == "2024-05-01T13:00:00.000Z"

    def test_without_sent_at_timestamp_is_kept(self) -> None:
        event = prep({"event": "E", "userId": "u", "timestamp": "2020-01-01T00:00:00+02:00"})
        assert event["timestamp"] == event["originalTimestamp"] == "2019-12-31T22:00:00.000Z"

    def test_offsets_and_naive_times(self) -> None:
        assert format_time(parse_time("2024-01-01T01:00:00+01:00", "t")) == "2024-01-01T00:00:00.000Z"
        assert format_time(parse_time("2024-01-01T00:00:00", "t")) == "2024-01-01T00:00:00.000Z"
        assert format_time(parse_time("2024-01-01T00:00:00.123456789Z", "t")) == "2024-01-01T00:00:00.123Z"

    def test_bad_timestamp_names_the_field(self) -> None:
        assert refused({"event": "E", "userId": "u", "timestamp": "yesterday"}).field == "timestamp"
        assert (
            refused({"event": "E", "userId": "u", "timestamp": "2024-01-01T00:00:00Z", "sentAt": 5}).field == "sentAt"
        )


class TestBatch:
    def test_items_need_a_type(self) -> None:
        good, bad = prepare_batch(
            {
                "batch": [
                    {"userId": "u", "event": "E", "type": "track"},
                    {"userId": "u"},
                    {"userId": "u", "type": "nope"},
                ]
            },
            received_at=NOW,
            new_id=ids(),
        )
        assert [i for i, _ in good] == [0]
        assert [(r.index, r.message.split(":")[0]) for r in bad] == [(1, "type"), (2, "type")]

    def test_envelope_context_integrations_and_sent_at_are_merged(self) -> None:
        body = {
            "sentAt": "2024-05-01T12:00:10Z",
            "context": {"library": {"name": "x"}, "ip": "1.2.3.4"},
            "integrations": {"All": False},
            "batch": [
                {"type": "identify", "userId": "u", "context": {"ip": "5.6.7.8"}, "timestamp": "2024-05-01T12:00:00Z"}
            ],
        }
        ((_, event),) = prepare_batch(body, received_at=NOW, new_id=ids())[0]
        assert event["context"] == {"library": {"name": "x"}, "ip": "5.6.7.8"}
        assert event["integrations"] == {"All": False}
        assert event["timestamp"] == "2024-05-01T11:59:50.250Z"

    def test_envelope_problems_refuse_the_whole_batch(self) -> None:
        for body, field in [({}, "batch"), ({"batch": []}, "batch"), ({"batch": [], "context": 1}, "batch")]:
            with pytest.raises(IntakeError) as info:
                prepare_batch(body, received_at=NOW, new_id=ids())
            assert info.value.field == field

    def test_an_oversized_item_is_rejected_alone(self) -> None:
        small = {"type": "identify", "userId": "u"}
        big = {"type": "identify", "userId": "u", "traits": {"x": "a" * 40_000}}
        good, bad = prepare_batch({"batch": [small] * 5 + [big] + [small] * 4}, received_at=NOW, new_id=ids())
        assert len(good) == 9 and [(r.index, "32768" in r.message) for r in bad] == [(5, True)]

    def test_items_are_copied_unless_owned(self) -> None:
        body = {"batch": [{"type": "identify", "userId": "u", "writeKey": "k"}]}
        ((_, event),) = prepare_batch(body, received_at=NOW, new_id=ids())[0]
        assert body["batch"][0] == {"type": "identify", "userId": "u", "writeKey": "k"} and "receivedAt" in event
        ((_, owned),) = prepare_batch(body, received_at=NOW, new_id=ids(), owned=True)[0]
        assert owned is body["batch"][0] and "writeKey" not in owned

    def test_more_than_2500_events_is_refused(self) -> None:
        body = {"batch": [{"type": "identify", "userId": "u"}] * (MAX_BATCH_EVENTS + 1)}
        with pytest.raises(IntakeError, match="2500"):
            prepare_batch(body, received_at=NOW, new_id=ids())


class TestRouting:
    enabled = ("teams", "slack", "Mixed")

    def test_no_integrations_means_all(self) -> None:
        assert route_event({}, self.enabled) == self.enabled

    def test_all_false_with_one_enabled(self) -> None:
        assert route_event({"integrations": {"All": False, "teams": True}}, self.enabled) == ("teams",)

    def test_one_disabled(self) -> None:
        assert route_event({"integrations": {"teams": False}}, self.enabled) == ("slack", "Mixed")

    def test_names_are_case_sensitive_and_options_enable(self) -> None:
        assert route_event({"integrations": {"All": False, "mixed": True, "slack": {"opt": 1}}}, self.enabled) == (
            "slack",
        )
