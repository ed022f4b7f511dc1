"""`open_jetstream_store()`: connect, create or update the streams, run the store's tasks, hand back.

Start: connect (cluster.connect says what is wrong: unreachable, JetStream off, no
permission), create or update the streams, then serve. Exit: every message this node
still holds goes back to the cluster (nak) so another node takes it at once, then the
connection and the bridge's thread close. Each step on the way out has its own deadline.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path

import trio

from ..clock import steady_time
from ..config import JetStreamConfig
from ..log import get_logger
from ..store import Store
from . import cluster
from .bridge import AsyncioThread
from .codec import Names
from .store import JetStreamStore

log = get_logger()


@asynccontextmanager
async def open_jetstream_store(
    config: JetStreamConfig,
    *,
    local: Store,
    resolve: Callable[[str], Path],
    ack_wait_s: float,
    node: str = "",
    clock: Callable[[], float] = steady_time,
) -> AsyncIterator[JetStreamStore]:
    """Connect, create or update the streams, serve until the block exits, then hand back what is held."""
    bridge = AsyncioThread()
    try:
        conn = await bridge.run(partial(cluster.connect, config, resolve=resolve))
        try:
            await bridge.run(partial(cluster.ensure_streams, conn, Names(config.stream), config))
            store = JetStreamStore(
                bridge=bridge, conn=conn, config=config, local=local, ack_wait_s=ack_wait_s, clock=clock, node=node
            )
            log.info(
                "cluster_connected",
                servers=list(config.servers),
                stream=Names(config.stream).events_stream,
                replicas=config.replicas,
                ack_wait_s=ack_wait_s,
            )
            try:
                async with trio.open_nursery() as nursery:
                    store.start_tasks(nursery)
                    try:
                        yield store
                    finally:
                        nursery.cancel_scope.cancel()
            except BaseExceptionGroup as group:
                if len(group.exceptions) == 1:
                    raise group.exceptions[0] from group.exceptions[0].__cause__
                raise
            finally:
                with trio.CancelScope(shield=True), trio.move_on_after(5):
                    await store.hand_back_all()
        finally:
            with trio.CancelScope(shield=True), trio.move_on_after(5):
                await bridge.run(partial(cluster.close, conn))
    finally:
        with trio.CancelScope(shield=True):
            await bridge.close()
