"""A minimal agent process for the kill -9 test: submit reads to the outbox and publish them.

``python -m tests.support._publish_agent --outbox F --key K --agent-id A --port P
--prefix T --submit N`` submits N reads in batches (one fsynced transaction each)
while :func:`uploader.mqtt.run_publisher` drains the outbox, printing
``submitted N`` after each batch, then waits until the outbox is empty and exits 0.
``--submit 0`` only drains what is queued.
The leading underscore keeps it from being loaded as a pytest plugin.
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

from uploader.config import MqttSettings
from uploader.envelope import Signer
from uploader.keys import AgentKey
from uploader.mqtt import MqttPublisher, run_publisher
from uploader.outgoing import JsonMessage
from uploader.queue import Outbox


async def _main(args: argparse.Namespace) -> None:
    settings = MqttSettings(
        host="127.0.0.1",
        port=args.port,
        tls=False,
        topic_prefix=args.prefix,
        site="kill-site",
        backoff_min=0.05,
        backoff_max=0.5,
        max_inflight=args.inflight,
    )
    outbox = Outbox(Path(args.outbox), Signer(AgentKey.load(Path(args.key)), args.agent_id))
    stop = asyncio.Event()
    publisher = MqttPublisher(settings, agent_id=args.agent_id, outbox=outbox)
    task = asyncio.create_task(
        run_publisher(outbox, settings, stop, agent_id=args.agent_id, publisher=publisher)
    )
    submitted = 0
    while submitted < args.submit:
        size = min(args.batch, args.submit - submitted)
        outbox.submit_many([JsonMessage("read", {"n": submitted + i}) for i in range(size)])
        submitted += size
        publisher.notify()
        print(f"submitted {submitted}", flush=True)  # the test kills only once work began
        await asyncio.sleep(0.002)
    while outbox.depth():  # noqa: ASYNC110 - the outbox has no "empty" event to wait on
        await asyncio.sleep(0.01)
    stop.set()
    await task
    outbox.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--outbox", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--agent-id", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--prefix", required=True)
    parser.add_argument("--submit", type=int, default=0)
    parser.add_argument("--batch", type=int, default=5)
    parser.add_argument("--inflight", type=int, default=20)
    asyncio.run(_main(parser.parse_args()))


if __name__ == "__main__":
    main()
