"""Cluster mode: segfuncd nodes sharing a NATS JetStream cluster (`[storage] backend = "jetstream"`).

Layout:
    codec.py    stream, subject and consumer names; message headers (pure)
    bridge.py   the asyncio thread nats-py runs on, awaited from trio (and why not trio-asyncio)
    cluster.py  the nats-py calls: connect, streams, consumers, publish, fetch, acks, replay;
                `translate()` turns nats-py errors into ours (the one boundary)
    store.py    JetStreamStore: the `storage.Storage` of cluster mode (intake, delivery, hold)
    figures.py  this node's counters and the cluster's figures as status shows them (pure)
    loglines.py log lines through the cluster's log stream, `logs --cluster` (pure)
    summaries.py attempt summaries through the cluster's attempts stream, `deliveries show` (pure)
    lifecycle.py open_jetstream_store(): connect, streams, tasks, hand back at exit
"""

from __future__ import annotations

from .lifecycle import open_jetstream_store
from .store import JetStreamStore, ack_wait_for

__all__ = ["JetStreamStore", "ack_wait_for", "open_jetstream_store"]
