"""An asyncio event loop on its own thread, awaited from trio: how nats-py (asyncio) runs here.

Why a thread and not trio-asyncio: measured here against one local nats-server (3,000
acked publishes of 300 bytes, one process, a loaded 2-core machine): batches of 100
`publish_async` per crossing ran at ~10,000 msg/s and ~49 µs CPU per message through
this bridge, ~4,700 msg/s and ~141 µs through trio-asyncio; one publish per crossing was
~700 vs ~900 msg/s (both too slow to use unbatched, so every hot call here is batched).
trio-asyncio also patches `asyncio.new_event_loop` for the whole process once imported.

Rules:
* `run(factory)` builds the coroutine on the asyncio thread and waits for it on trio; a
  trio cancellation cancels the asyncio task (and still raises Cancelled here).
* Everything that touches nats-py objects runs on the asyncio thread, through `run`.
* `close()` stops the loop and joins the thread; calls after it raise ClusterError.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import trio

from ..errors import ClusterError

T = TypeVar("T")


class AsyncioThread:
    """One asyncio loop on a daemon thread; `run` is the only way in."""

    def __init__(self, name: str = "segfuncd-nats") -> None:
        self._loop = asyncio.SelectorEventLoop()
        self._thread = threading.Thread(target=self._main, name=name, daemon=True)
        self._closed = False
        self._thread.start()

    def _main(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_forever()
        finally:
            self._loop.close()

    async def run(self, factory: Callable[[], Coroutine[Any, Any, T]]) -> T:
        """Run `factory()` on the asyncio loop; its result or its exception."""
        if self._closed:
            raise ClusterError("the connection to NATS is closed")
        token = trio.lowlevel.current_trio_token()
        done = trio.Event()

        async def call() -> T:
            return await factory()

        future: concurrent.futures.Future[T] = asyncio.run_coroutine_threadsafe(call(), self._loop)

        def wake(_: object) -> None:
            try:
                token.run_sync_soon(done.set)
            except trio.RunFinishedError:
                pass

        future.add_done_callback(wake)
        try:
            await done.wait()
        except BaseException:
            future.cancel()
            raise
        return future.result()

    def call_soon(self, fn: Callable[[], object]) -> None:
        """Run a plain function on the loop, not waiting for it (used at close)."""
        if not self._closed:
            self._loop.call_soon_threadsafe(fn)

    async def close(self) -> None:
        """Stop the loop (pending tasks are dropped) and join the thread."""
        if self._closed:
            return
        self._closed = True
        self._loop.call_soon_threadsafe(self._loop.stop)
        await trio.to_thread.run_sync(self._thread.join, 5.0)
