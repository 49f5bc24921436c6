"""Upload pipeline benchmark.

Part 1 (signing and queue): how many reads per second the agent can sign and
commit durably to the SQLite outbox, one submit per read and in batches
(``submit_many``: one transaction, one fsync per batch), plus ack throughput.
Part 2 (publish + broker ack) is added by the MQTT side.

    .venv/bin/python bench/upload_bench.py --reads 20000 --batch 1 --batch 50 --batch 500

Prints one JSON object per scenario (reads/s and CPU ms per read) on stdout.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import structlog

from uploader.envelope import Signer
from uploader.keys import AgentKey
from uploader.outgoing import JsonMessage
from uploader.queue import Outbox

# A realistic read body: identity, counters and four supplies (about 1 KB signed).
READ_BODY: dict[str, Any] = {
    "device": {
        "address": "192.0.2.15",
        "serial": "CNB1234567",
        "model": "HP LaserJet Enterprise M507",
        "mac": "00:11:22:33:44:55",
    },
    "counters": {"lifetime_page_count": 123456, "mono": 120000, "color": 3456},
    "supplies": [
        {"index": i, "description": f"Toner {c}", "level": 42, "max": 100, "unit": "percent"}
        for i, c in enumerate(("black", "cyan", "magenta", "yellow"), start=1)
    ],
    "status": {"state": "idle", "alerts": []},
}


def bench_sign(signer: Signer, count: int) -> dict[str, Any]:
    wall, cpu = time.perf_counter(), time.process_time()
    prev: str | None = None
    for sequence in range(1, count + 1):
        message = signer.sign(kind="read", body=READ_BODY, sequence=sequence, prev_hash=prev)
        prev = "A" * 43 if prev is None else prev  # hashing is measured in the queue runs
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return {
        "scenario": "sign only",
        "reads": count,
        "token_bytes": len(message.token),
        "reads_per_s": round(count / wall),
        "cpu_ms_per_read": round(cpu * 1000 / count, 4),
    }


def bench_queue(signer: Signer, directory: Path, count: int, batch: int) -> dict[str, Any]:
    path = directory / f"outbox-{batch}.db"
    outbox = Outbox(path, signer, max_messages=count + 1)
    wall, cpu = time.perf_counter(), time.process_time()
    done = 0
    while done < count:
        size = min(batch, count - done)
        if size == 1:
            outbox.submit(JsonMessage("read", READ_BODY))
        else:
            outbox.submit_many([JsonMessage("read", READ_BODY)] * size)
        done += size
    submit_wall, submit_cpu = time.perf_counter() - wall, time.process_time() - cpu

    wall = time.perf_counter()
    acked = 0
    while True:
        page = outbox.pending(max(batch, 100))
        if not page:
            break
        outbox.ack([m.message_id for m in page])
        acked += len(page)
    ack_wall = time.perf_counter() - wall
    outbox.close()
    return {
        "scenario": f"sign + durable submit, batch {batch}",
        "reads": count,
        "reads_per_s": round(count / submit_wall),
        "cpu_ms_per_read": round(submit_cpu * 1000 / count, 4),
        "pending+ack_per_s": round(acked / ack_wall),
        "db_bytes_after": path.stat().st_size,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reads", type=int, default=20_000)
    parser.add_argument("--batch", type=int, action="append", help="batch sizes (repeatable)")
    parser.add_argument("--dir", type=Path, default=None, help="where the outbox goes (disk!)")
    parser.add_argument("--no-mqtt", action="store_true", help="skip part 2 (needs mosquitto)")
    args = parser.parse_args(argv)
    batches: list[int] = args.batch or [1, 50, 500]
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(sys.stderr))

    print(
        json.dumps(
            {
                "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
                "python": platform.python_version(),
                "date": datetime.now(UTC).isoformat(timespec="seconds"),
            }
        )
    )
    signer = Signer(AgentKey.generate(), "bench-agent")
    print(json.dumps(bench_sign(signer, min(args.reads, 5_000))))
    with tempfile.TemporaryDirectory(dir=args.dir, prefix="upload-bench-") as tmp:
        for batch in batches:
            # one submit per read is fsync-bound: measure it on fewer reads
            count = min(args.reads, 3_000) if batch == 1 else args.reads
            print(json.dumps(bench_queue(signer, Path(tmp), count, batch)))
        if not args.no_mqtt:
            for result in mqtt_benchmarks(args.reads, Path(tmp)):
                print(json.dumps(result))
    return 0


# -- Part 2 (MQTT side): publish + broker ack, and the consumer's verify + store ------------


def _start_broker() -> Any:
    """Debian mosquitto on 127.0.0.1 with a free port (same generator as the tests)."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from tests.support.mosquitto import create_mosquitto

    return create_mosquitto()


async def _bench_pipeline(port: int, directory: Path, count: int, inflight: int) -> dict[str, Any]:
    import asyncio

    from uploader.config import MqttSettings
    from uploader.mqtt import MqttPublisher

    settings = MqttSettings(
        host="127.0.0.1", port=port, tls=False, topic_prefix="bench", max_inflight=inflight
    )
    outbox = Outbox(directory / f"pipeline-{inflight}.db", Signer(AgentKey.generate(), "bench"))
    publisher = MqttPublisher(settings, agent_id="bench", outbox=outbox)
    stop = asyncio.Event()
    task = asyncio.create_task(publisher.run(stop))
    while not publisher.connected:  # noqa: ASYNC110 - polling a counter
        await asyncio.sleep(0.01)
    wall, cpu = time.perf_counter(), time.process_time()
    submitted = 0
    while submitted < count:
        size = min(100, count - submitted)
        # as the daemon does: the fsync of a submit runs off the event loop
        await asyncio.to_thread(outbox.submit_many, [JsonMessage("read", READ_BODY)] * size)
        submitted += size
        publisher.notify()
    while outbox.depth():  # noqa: ASYNC110 - polling a counter
        await asyncio.sleep(0.005)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    stop.set()
    await task
    outbox.close()
    return {
        "scenario": f"sign + durable submit (batch 100) + publish QoS1 + PUBACK + ack, "
        f"{inflight} in flight",
        "reads": count,
        "reads_per_s": round(count / wall),
        "cpu_ms_per_read": round(cpu * 1000 / count, 4),
        "published": publisher.published,
    }


def _tokens(count: int) -> tuple[AgentKey, list[bytes]]:
    from uploader.envelope import envelope_hash

    key = AgentKey.generate()
    signer = Signer(key, "bench")
    tokens, prev = [], None
    for sequence in range(1, count + 1):
        message = signer.sign(kind="read", body=READ_BODY, sequence=sequence, prev_hash=prev)
        prev = envelope_hash(message.token)
        tokens.append(message.token.encode())
    return key, tokens


def _bench_verify_store(directory: Path, count: int, batch: int) -> dict[str, Any]:
    from backend.ingest import Ingestor
    from backend.store import open_store
    from uploader.keys import RegisteredKey

    key, tokens = _tokens(count)
    store = open_store(f"sqlite:///{directory}/verify-{batch}.db")
    ingestor = Ingestor(store, topic_prefix="bench", file_keys=[RegisteredKey.of(key)])
    topic = "bench/site/bench/reads"
    wall, cpu = time.perf_counter(), time.process_time()
    for start in range(0, count, batch):
        ingestor.handle_batch([(topic, t) for t in tokens[start : start + batch]])
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    assert ingestor.stored == count
    store.close()
    return {
        "scenario": f"consumer verify + store (SQLite), no broker, batch {batch}",
        "reads": count,
        "reads_per_s": round(count / wall),
        "cpu_ms_per_read": round(cpu * 1000 / count, 4),
    }


async def _bench_consumer(port: int, directory: Path, count: int) -> dict[str, Any]:
    """Queue ``count`` reads at the broker for an offline consumer, then time the drain."""
    import asyncio

    import aiomqtt

    from backend.consume import StopAfter, run_ingest
    from backend.ingest import Ingestor
    from backend.store import open_store
    from uploader.config import MqttSettings
    from uploader.keys import RegisteredKey

    key, tokens = _tokens(count)
    settings = MqttSettings(host="127.0.0.1", port=port, tls=False, topic_prefix="benchc")
    store = open_store(f"sqlite:///{directory}/consumer.db")
    ingestor = Ingestor(store, topic_prefix="benchc", file_keys=[RegisteredKey.of(key)])

    async def consume(limits: StopAfter, subscribed: asyncio.Event | None = None) -> None:
        await run_ingest(
            settings,
            ingestor,
            group=None,  # a plain persistent session: the broker queues while we are away
            client_id="bench-consumer",
            stop=asyncio.Event(),
            stop_after=limits,
            subscribed=subscribed,
        )

    await consume(StopAfter(idle=0.1))  # creates the session and its subscription
    topic = settings.agent_topic("bench", "read")
    async with aiomqtt.Client("127.0.0.1", port, max_inflight_messages=200) as client:
        client.pending_calls_threshold = 1_000
        for start in range(0, count, 200):
            await asyncio.gather(
                *(client.publish(topic, t, qos=1) for t in tokens[start : start + 200])
            )
    wall, cpu = time.perf_counter(), time.process_time()
    await consume(StopAfter(count=count, duration=600))
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    assert ingestor.stored == count, ingestor.summary()
    store.close()
    return {
        "scenario": "consumer: broker -> verify + store (SQLite), reads queued at the broker",
        "reads": count,
        "reads_per_s": round(count / wall),
        "cpu_ms_per_read": round(cpu * 1000 / count, 4),
    }


def mqtt_benchmarks(reads: int, directory: Path) -> list[dict[str, Any]]:
    """Part 2: needs /usr/sbin/mosquitto; starts its own broker on 127.0.0.1."""
    import asyncio
    import logging
    import shutil

    logging.getLogger("mqtt").setLevel(logging.ERROR)
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    results = [_bench_verify_store(directory, reads, 200)]
    broker = _start_broker()
    try:
        for inflight in (10, 100):
            results.append(asyncio.run(_bench_pipeline(broker.port, directory, reads, inflight)))
        results.append(asyncio.run(_bench_consumer(broker.port, directory, reads)))
    finally:
        broker.stop()
        shutil.rmtree(broker.directory, ignore_errors=True)
    return results


if __name__ == "__main__":
    sys.exit(main())
