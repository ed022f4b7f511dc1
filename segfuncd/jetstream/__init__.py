"""Cluster mode: segfuncd nodes sharing a NATS JetStream cluster (`[storage] backend = "jetstream"`).

Layout:
    codec.py    stream, subject and consumer names; message headers (pure)
    bridge.py   the asyncio thread nats-py runs on, awaited from trio (and why not trio-asyncio)
    cluster.py  the nats-py calls: connect, streams, consumers, publish, fetch, acks, replay;
                `translate()` turns nats-py errors into ours (the one boundary)
    store.py    JetStreamStore (the `storage.Storage` of cluster mode) and open_jetstream_store()
"""

from __future__ import annotations

from .store import JetStreamStore, ack_wait_for, open_jetstream_store

__all__ = ["JetStreamStore", "ack_wait_for", "open_jetstream_store"]
