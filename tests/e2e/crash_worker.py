"""The process the crash test kills: store + dispatcher + the real runner pool.

    python crash_worker.py DB SINK_URL LOAD [--exit-when-empty]

Accepts LOAD events (printing `accepted N` once they are committed), then delivers with a
plugin that POSTs each event's messageId to the sink. With --exit-when-empty it exits
(printing `empty`) once nothing is pending; otherwise it runs until killed.
"""

from __future__ import annotations

import sys
from pathlib import Path

import trio

from segfuncd.config import FunctionConfig
from segfuncd.delivery import serve_delivery
from segfuncd.functions import Target
from segfuncd.log import configure
from segfuncd.runner import PluginVersion, open_runner_pool
from segfuncd.store import NewEvent, open_store

PLUGIN = """
async function onTrack(event, settings) {
  const res = await fetch(settings.url + "/deliver?mid=" + encodeURIComponent(event.messageId), {
    method: "post",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ messageId: event.messageId }),
  });
  if (!res.ok) throw new RetryError("sink answered " + res.status);
  return res.status;
}
"""


async def main(db: str, sink_url: str, load: int, exit_when_empty: bool) -> None:
    version = PluginVersion.from_source("crash", PLUGIN)
    target = Target(version=version, config=FunctionConfig(settings={"url": sink_url}), handlers=("onTrack",))
    async with open_store(Path(db)) as store:
        for start in range(0, load, 100):
            await store.accept(
                [
                    NewEvent(
                        message_id=f"crash-{i}",
                        type="track",
                        body={
                            "type": "track",
                            "event": "Crash Test",
                            "messageId": f"crash-{i}",
                            "properties": {"i": i},
                        },
                        functions=("crash",),
                    )
                    for i in range(start, min(start + 100, load))
                ]
            )
        print(f"accepted {load}", flush=True)
        async with open_runner_pool(workers=2, egress_allow=("127.0.0.1",)) as pool, trio.open_nursery() as nursery:
            await nursery.start(
                lambda task_status: serve_delivery(
                    store,
                    pool,
                    resolve=lambda name: target,
                    max_attempts=100,
                    base_delay_s=0.2,
                    lease_s=60,
                    batch_size=50,
                    task_status=task_status,
                )
            )
            print("delivering", flush=True)
            while exit_when_empty:
                if store.pending_count == 0:
                    print("empty", flush=True)
                    nursery.cancel_scope.cancel()
                    break
                await trio.sleep(0.05)


if __name__ == "__main__":
    configure(level="warning")  # stdout carries only the progress lines the test reads
    trio.run(main, sys.argv[1], sys.argv[2], int(sys.argv[3]), "--exit-when-empty" in sys.argv)
