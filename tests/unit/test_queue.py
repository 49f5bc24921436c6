"""The durable outbox: chain continuity, bounds, crash consistency, corrupt/unwritable/full disk."""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import structlog
from joserfc.jwk import OKPKey

from fleet_errors import LocalError
from uploader.envelope import ChainTracker, Signer, Verifier, envelope_hash
from uploader.errors import (
    QueueClosed,
    QueueCorrupt,
    QueueDiskFull,
    QueueError,
    QueueFull,
    QueueLocked,
)
from uploader.keys import AgentKey
from uploader.outgoing import JsonMessage
from uploader.queue import Outbox

REPO = Path(__file__).resolve().parents[2]
KEY = AgentKey.generate()
SIGNER = Signer(KEY, "agent-q")
VERIFIER = Verifier({KEY.key_id: OKPKey.import_key(KEY.public_jwk())})


@pytest.fixture
def outbox(tmp_path: Path) -> Iterator[Outbox]:
    box = Outbox(tmp_path / "outbox.db", SIGNER)
    yield box
    box.close()


def _assert_chain_links(tokens: list[str], *, first_sequence: int = 1) -> None:
    """Every envelope verifies and links to the previous one."""
    tracker = ChainTracker()
    envelopes = [VERIFIER.verify(token) for token in tokens]
    statuses = [tracker.observe(t, e) for t, e in zip(tokens, envelopes, strict=True)]
    expected_first = "start" if first_sequence == 1 else "gap"
    assert statuses == [expected_first] + ["next"] * (len(tokens) - 1)
    sequences = [envelope.sequence for envelope in envelopes]
    assert sequences == list(range(first_sequence, first_sequence + len(tokens)))


def test_submit_is_signed_sequenced_and_chained(outbox: Outbox) -> None:
    first = outbox.submit(JsonMessage("read", {"lifetime_page_count": 10}))
    second = outbox.submit(JsonMessage("event", {"event": "device_found"}))
    batch = outbox.submit_many(
        [JsonMessage("status", {"ok": True}), JsonMessage("read", {"lifetime_page_count": 11})]
    )
    assert [m.sequence for m in (first, second, *batch)] == [1, 2, 3, 4]
    assert VERIFIER.verify(second.token).prev_hash == envelope_hash(first.token)
    pending = outbox.pending(10)
    assert [m.message_id for m in pending] == [m.message_id for m in (first, second, *batch)]
    assert pending[0] == first
    _assert_chain_links([m.token for m in pending])
    assert outbox.depth() == 4


def test_pending_is_oldest_first_and_limited(outbox: Outbox) -> None:
    sent = outbox.submit_many([JsonMessage("read", {"n": n}) for n in range(10)])
    assert [m.sequence for m in outbox.pending(3)] == [1, 2, 3]
    outbox.ack([sent[0].message_id, sent[2].message_id])
    assert [m.sequence for m in outbox.pending(3)] == [2, 4, 5]
    assert outbox.pending(0) == []


def test_ack_removes_only_known_ids_and_is_idempotent(outbox: Outbox) -> None:
    sent = outbox.submit_many([JsonMessage("read", {"n": n}) for n in range(5)])
    outbox.ack([sent[1].message_id, "not-a-message-id"])
    outbox.ack([sent[1].message_id])
    assert outbox.depth() == 4
    assert sent[1].message_id not in {m.message_id for m in outbox.pending(10)}
    outbox.ack([m.message_id for m in sent])
    assert outbox.depth() == 0
    assert outbox.pending(10) == []
    assert outbox.oldest_age() is None


def test_ack_of_many_ids_in_one_call(outbox: Outbox) -> None:
    sent = outbox.submit_many([JsonMessage("status", {"n": n}) for n in range(1_200)])
    outbox.ack([m.message_id for m in sent[:1_100]])
    assert outbox.depth() == 100


def test_state_survives_reopen_and_the_chain_continues(tmp_path: Path) -> None:
    path = tmp_path / "outbox.db"
    with Outbox(path, SIGNER) as box:
        sent = box.submit_many([JsonMessage("read", {"n": n}) for n in range(3)])
        box.ack([m.message_id for m in sent])  # everything acknowledged
    with Outbox(path, SIGNER) as box:
        assert box.depth() == 0
        after = box.submit(JsonMessage("read", {"n": 3}))
    assert after.sequence == 4
    assert VERIFIER.verify(after.token).prev_hash == envelope_hash(sent[-1].token)


def test_oldest_age(outbox: Outbox) -> None:
    assert outbox.oldest_age() is None
    message = outbox.submit(JsonMessage("read", {}))
    later = message.created_at + timedelta(seconds=90)
    assert outbox.oldest_age(now=later) == pytest.approx(90.0)
    age = outbox.oldest_age()
    assert age is not None
    assert 0 <= age < 5


def test_closed_outbox_refuses_reuse(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "outbox.db", SIGNER)
    box.close()
    box.close()  # idempotent
    for call in (
        lambda: box.submit(JsonMessage("read", {})),
        lambda: box.pending(1),
        lambda: box.ack(["x"]),
        box.depth,
        box.oldest_age,
    ):
        with pytest.raises(QueueClosed):
            call()


def test_a_second_owner_is_refused(outbox: Outbox) -> None:
    with pytest.raises(QueueLocked, match="another process") as info:
        Outbox(outbox.path, SIGNER)
    assert info.value.path == outbox.path


def test_another_agent_id_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "outbox.db"
    with Outbox(path, SIGNER) as box:
        box.submit(JsonMessage("read", {}))
    with pytest.raises(QueueError, match="belongs to agent 'agent-q'"):
        Outbox(path, Signer(KEY, "agent-other"))


def test_a_rotated_key_continues_the_chain(tmp_path: Path) -> None:
    path = tmp_path / "outbox.db"
    with Outbox(path, SIGNER) as box:
        first = box.submit(JsonMessage("read", {}))
    new_key = AgentKey.generate()
    with Outbox(path, Signer(new_key, "agent-q")) as box:
        second = box.submit(JsonMessage("read", {}))
    both = Verifier(
        {
            KEY.key_id: OKPKey.import_key(KEY.public_jwk()),
            new_key.key_id: OKPKey.import_key(new_key.public_jwk()),
        }
    )
    assert both.verify(second.token).prev_hash == envelope_hash(first.token)
    assert both.verify(second.token).key_id == new_key.key_id


def test_concurrent_submits_from_threads_keep_one_chain(outbox: Outbox) -> None:
    def worker(name: str) -> None:
        for n in range(50):
            outbox.submit(JsonMessage("read", {"worker": name, "n": n}))

    threads = [threading.Thread(target=worker, args=(f"t{i}",)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    _assert_chain_links([m.token for m in outbox.pending(1_000)])


# -- bounds ----------------------------------------------------------------


def test_bounds_refuse_non_billing_first_and_never_drop(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "outbox.db", SIGNER, max_messages=20)  # billing reserve: 1
    box.submit_many([JsonMessage("read", {"n": n}) for n in range(19)])
    with pytest.raises(QueueFull, match="event messages") as info:
        box.submit(JsonMessage("event", {"event": "supply_low"}))
    assert (info.value.depth, info.value.max_messages) == (19, 20)
    with pytest.raises(QueueFull):
        box.submit(JsonMessage("status", {}))
    last_read = box.submit(JsonMessage("read", {"n": 19}))  # reads may use the reserve
    with pytest.raises(QueueFull, match="billing reads"):
        box.submit(JsonMessage("read", {"n": 20}))
    assert box.depth() == 20
    pending = box.pending(100)
    assert [m.sequence for m in pending] == list(range(1, 21))  # nothing dropped, no holes
    assert last_read.sequence == 20

    box.ack([pending[0].message_id, pending[1].message_id])
    resumed = box.submit(JsonMessage("event", {"event": "supply_low"}))
    assert resumed.sequence == 21  # refused submits consumed no sequence number
    assert VERIFIER.verify(resumed.token).prev_hash == envelope_hash(last_read.token)
    box.close()


def test_a_batch_is_all_or_nothing(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "outbox.db", SIGNER, max_messages=5)
    box.submit_many([JsonMessage("read", {})] * 3)
    with pytest.raises(QueueFull):
        box.submit_many([JsonMessage("read", {})] * 3)
    assert box.depth() == 3
    assert [m.sequence for m in box.submit_many([JsonMessage("read", {})] * 2)] == [4, 5]
    box.close()


def test_nearly_full_is_logged_once_per_crossing(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "outbox.db", SIGNER, max_messages=10, warn_ratio=0.5)
    with structlog.testing.capture_logs() as logs:
        sent = box.submit_many([JsonMessage("read", {})] * 4)
        assert not box.nearly_full
        sent += box.submit_many([JsonMessage("read", {})] * 3)
        assert box.nearly_full
        box.ack([m.message_id for m in sent[:4]])
        assert not box.nearly_full
        box.submit_many([JsonMessage("read", {})] * 2)
        with pytest.raises(QueueFull):
            box.submit_many([JsonMessage("event", {})] * 5)
    events = [entry["event"] for entry in logs]
    assert events.count("outbox.nearly_full") == 2
    assert "outbox.recovered" in events
    assert "outbox.full" in events
    warning = next(e for e in logs if e["event"] == "outbox.nearly_full")
    assert warning["log_level"] == "warning"
    assert warning["depth"] == 7
    assert warning["max_messages"] == 10
    box.close()


def test_constructor_refuses_bad_bounds(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="max_messages"):
        Outbox(tmp_path / "a.db", SIGNER, max_messages=0)
    with pytest.raises(ValueError, match="warn_ratio"):
        Outbox(tmp_path / "a.db", SIGNER, warn_ratio=1.5)


# -- broken files ------------------------------------------------------------


def test_garbage_file_is_corrupt_and_named(tmp_path: Path) -> None:
    path = tmp_path / "outbox.db"
    path.write_bytes(b"this is not sqlite\n" * 500)
    with pytest.raises(QueueCorrupt) as info:
        Outbox(path, SIGNER)
    assert str(path) in str(info.value)
    assert isinstance(info.value, LocalError)


def test_a_foreign_sqlite_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "outbox.db"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE customers (name TEXT)")
    db.close()
    with pytest.raises(QueueCorrupt, match="not a fleet-agent outbox"):
        Outbox(path, SIGNER)


def test_damaged_pages_are_reported(tmp_path: Path) -> None:
    path = tmp_path / "outbox.db"
    with Outbox(path, SIGNER) as box:
        box.submit_many([JsonMessage("read", {"pad": "x" * 500, "n": n}) for n in range(200)])
    assert not Path(f"{path}-wal").exists() or Path(f"{path}-wal").stat().st_size == 0
    data = bytearray(path.read_bytes())
    page_size = 4096
    data[3 * page_size : 6 * page_size] = b"\xa5" * (3 * page_size)
    path.write_bytes(bytes(data))
    with pytest.raises(QueueCorrupt) as info:
        Outbox(path, SIGNER)
    assert str(path) in str(info.value)


def test_chain_state_disagreeing_with_messages_is_corrupt(tmp_path: Path) -> None:
    path = tmp_path / "outbox.db"
    with Outbox(path, SIGNER) as box:
        box.submit_many([JsonMessage("read", {})] * 3)
    with sqlite3.connect(path) as db:
        db.execute("UPDATE chain SET sequence = 2")
    db.close()
    with pytest.raises(QueueCorrupt, match="disagrees"):
        Outbox(path, SIGNER)


def _run_as_unprivileged(code: str) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a child; as root, drop to ``nobody`` so file modes apply."""
    user = 65534 if os.geteuid() == 0 else None
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        user=user,
        group=user,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


_OPEN_AND_REPORT = """
import sys
from pathlib import Path
from uploader.envelope import Signer
from uploader.errors import QueueError
from uploader.keys import AgentKey
from uploader.outgoing import JsonMessage
from uploader.queue import Outbox
try:
    box = Outbox(Path({path!r}), Signer(AgentKey.generate(), "agent-q"))
    box.submit(JsonMessage("read", {{}}))
except QueueError as exc:
    print(type(exc).__name__, exc)
    sys.exit(3)
print("opened")
"""


@pytest.fixture
def shared_tmp() -> Iterator[Path]:
    """A directory an unprivileged child can reach (pytest's tmp_path is 0700 root)."""
    directory = Path(tempfile.mkdtemp(prefix="fleet-agent-queue-"))
    directory.chmod(0o755)
    yield directory
    shutil.rmtree(directory)


def test_unwritable_directory_is_a_clear_error(shared_tmp: Path) -> None:
    locked = shared_tmp / "locked"
    locked.mkdir(mode=0o555)
    locked.chmod(0o555)
    path = locked / "outbox.db"
    result = _run_as_unprivileged(_OPEN_AND_REPORT.format(path=str(path)))
    assert result.returncode == 3, result.stderr
    assert result.stdout.startswith("QueueError")
    assert str(path) in result.stdout


def test_read_only_outbox_file_is_a_clear_error(shared_tmp: Path) -> None:
    path = shared_tmp / "outbox.db"
    with Outbox(path, SIGNER):
        pass
    shared_tmp.chmod(0o777)  # the directory and lock file are fine: only the database is not
    (shared_tmp / "outbox.db.lock").chmod(0o666)
    path.chmod(0o444)
    result = _run_as_unprivileged(_OPEN_AND_REPORT.format(path=str(path)))
    assert result.returncode == 3, result.stderr
    assert result.stdout.startswith("QueueError")
    assert str(path) in result.stdout
    assert "readonly" in result.stdout


# -- crash consistency --------------------------------------------------------

_SUBMIT_FOREVER = """
import sys
from pathlib import Path
import structlog
structlog.configure(logger_factory=structlog.PrintLoggerFactory(sys.stderr))
from uploader.envelope import Signer
from uploader.keys import AgentKey
from uploader.outgoing import JsonMessage
from uploader.queue import Outbox
box = Outbox(Path(sys.argv[1]), Signer(AgentKey.load(Path(sys.argv[2])), "agent-q"))
n = 0
while True:
    n += 1
    batch = box.submit_many([JsonMessage("read", {"n": n, "pad": "x" * 300})] * (1 + n % 3))
    if n % 5 == 0:
        box.ack([m.message_id for m in box.pending(2)])
    print(batch[-1].sequence, flush=True)
"""


def test_kill_9_mid_submit_never_loses_or_forks(tmp_path: Path) -> None:
    key_path = tmp_path / "agent.key"
    KEY.save(key_path)
    path = tmp_path / "outbox.db"
    confirmed = 0
    for round_number in range(6):
        child = subprocess.Popen(
            [sys.executable, "-c", _SUBMIT_FOREVER, str(path), str(key_path)],
            cwd=REPO,
            env={**os.environ, "PYTHONPATH": str(REPO)},
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert child.stdout is not None
        lines_wanted = 10 + 7 * round_number
        for _ in range(lines_wanted):
            line = child.stdout.readline()
            assert line, "child died early"
            confirmed = int(line)
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=10)

        with sqlite3.connect(path) as db:
            assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
            chain_sequence = db.execute("SELECT sequence FROM chain").fetchone()[0]
        db.close()
        assert chain_sequence >= confirmed  # every confirmed submit is durable
        with Outbox(path, SIGNER) as box:
            pending = box.pending(100_000)
            assert pending[-1].sequence == chain_sequence
            _assert_chain_links([m.token for m in pending], first_sequence=pending[0].sequence)
            assert (
                box.submit(JsonMessage("status", {"round": round_number})).sequence
                == chain_sequence + 1
            )


# -- disk full ---------------------------------------------------------------


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 1 MiB tmpfs (needs root / CAP_SYS_ADMIN; skipped elsewhere)."""
    mount_point = tmp_path / "disk"
    mount_point.mkdir()
    result = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount_point)],
        capture_output=True,
        check=False,
    )
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs: {result.stderr.decode().strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


def _fill(directory: Path) -> Path:
    filler = directory / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        while True:
            os.write(fd, b"\0" * 4096)
    except OSError:
        pass
    finally:
        os.close(fd)
    return filler


def test_disk_full_is_clear_writes_nothing_and_recovers(small_disk: Path) -> None:
    path = small_disk / "outbox.db"
    box = Outbox(path, SIGNER)
    before = box.submit_many([JsonMessage("read", {"n": n}) for n in range(20)])
    filler = _fill(small_disk)
    body: dict[str, Any] = {"pad": "y" * 3000}
    for _ in range(3):
        with pytest.raises(QueueDiskFull, match="disk is full") as info:
            box.submit(JsonMessage("read", body))
        assert info.value.path == path
    assert box.depth() == 20
    filler.unlink()

    after = box.submit(JsonMessage("read", body))
    assert after.sequence == 21
    assert VERIFIER.verify(after.token).prev_hash == envelope_hash(before[-1].token)
    box.close()
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    db.close()
    with Outbox(path, SIGNER) as reopened:
        _assert_chain_links([m.token for m in reopened.pending(100)])
        assert reopened.depth() == 21
        age = reopened.oldest_age(now=datetime.now(UTC))
        assert age is not None


_FILE_SIZE_LIMIT = """
import resource, signal, sys
from pathlib import Path
import structlog
structlog.configure(logger_factory=structlog.PrintLoggerFactory(sys.stderr))
from uploader.envelope import Signer
from uploader.errors import QueueError
from uploader.keys import AgentKey
from uploader.outgoing import JsonMessage
from uploader.queue import Outbox
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # get EFBIG instead of being killed
box = Outbox(Path(sys.argv[1]), Signer(AgentKey.load(Path(sys.argv[2])), "agent-q"))
box.submit_many([JsonMessage("read", {"n": n}) for n in range(20)])
soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
resource.setrlimit(resource.RLIMIT_FSIZE, (200_000, hard))
accepted = 0
try:
    while True:
        box.submit(JsonMessage("read", {"pad": "y" * 3000}))
        accepted += 1
except QueueError as exc:
    print("refused", type(exc).__name__, exc)
depth = box.depth()
resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
print("resumed", box.submit(JsonMessage("read", {"after": True})).sequence, depth, 20 + accepted)
box.close()
"""


def test_a_file_size_limit_fails_cleanly_and_recovers(tmp_path: Path) -> None:
    """Works without root: RLIMIT_FSIZE makes writes fail with EFBIG mid-transaction."""
    key_path = tmp_path / "agent.key"
    KEY.save(key_path)
    path = tmp_path / "outbox.db"
    result = subprocess.run(
        [sys.executable, "-c", _FILE_SIZE_LIMIT, str(path), str(key_path)],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    refused, resumed = result.stdout.splitlines()
    assert refused.startswith("refused Queue")
    assert str(path) in refused
    assert "nothing was written" in refused
    _, sequence, depth, accepted = resumed.split()
    assert int(depth) == int(accepted)  # the failed submit left no row behind
    assert int(sequence) == int(accepted) + 1  # and did not consume a sequence number
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    db.close()
    with Outbox(path, SIGNER) as box:
        _assert_chain_links([m.token for m in box.pending(1_000)])


# -- a full disk: reserve, deferred acks, opening full, the memory spool, vacuum ----------


def _read(n: int, pad: int = 200) -> JsonMessage:
    return JsonMessage("read", {"n": n, "pad": "r" * pad})


def test_the_reserve_takes_billing_reads_when_the_disk_fills_and_comes_back(
    small_disk: Path,
) -> None:
    path = small_disk / "outbox.db"
    box = Outbox(path, SIGNER, reserve_bytes=128 * 1024)
    reserve = small_disk / "outbox.db.reserve"
    assert reserve.stat().st_size == 128 * 1024
    box.submit_many([_read(n) for n in range(5)])
    filler = _fill(small_disk)
    with structlog.testing.capture_logs() as logs:
        box.submit(_read(5, pad=3000))  # fits: the reserve was given back
    assert not reserve.exists()
    assert box.reserve_released
    assert "outbox.reserve_released" in [e["event"] for e in logs]
    with pytest.raises(QueueDiskFull, match="billing reads only"):
        box.submit(JsonMessage("event", {"event": "device_found"}))
    filler.unlink()
    box.maintain()
    assert reserve.stat().st_size == 128 * 1024
    assert not box.reserve_released
    assert box.submit(JsonMessage("event", {"event": "device_found"})).sequence == 7
    box.close()


def test_acks_on_a_full_disk_are_remembered_and_written_later(small_disk: Path) -> None:
    path = small_disk / "outbox.db"
    box = Outbox(path, SIGNER)
    sent = box.submit_many([_read(n) for n in range(30)])
    filler = _fill(small_disk)
    while True:  # use up what the WAL still had
        try:
            box.submit(_read(99, pad=2000))
        except QueueDiskFull:
            break
    depth = box.depth()
    first = [m.message_id for m in sent[:10]]
    box.ack(first)  # no exception: remembered
    assert box.deferred_acks == 10
    assert box.depth() == depth - 10
    assert all(m.message_id not in first for m in box.pending(1000))  # not sent again
    box.ack(first)  # acked again meanwhile: still counted once
    assert box.depth() == depth - 10
    box.maintain()  # still full: nothing raised
    filler.unlink()
    box.maintain()
    assert box.deferred_acks == 0
    box.close()
    with Outbox(path, SIGNER) as reopened:
        assert reopened.depth() == depth - 10
        assert reopened.pending(1)[0].sequence == 11


def test_an_outbox_on_a_full_disk_opens_and_can_be_drained(small_disk: Path) -> None:
    path = small_disk / "outbox.db"
    with Outbox(path, SIGNER) as box:
        box.submit_many([_read(n) for n in range(40)])
    filler = _fill(small_disk)
    with structlog.testing.capture_logs() as logs, Outbox(path, SIGNER) as box:
        assert box.disk_full
        pending = box.pending(1000)
        assert [m.sequence for m in pending] == list(range(1, 41))
        box.ack([m.message_id for m in pending])
        assert box.depth() == 0
    assert "outbox.disk_full" in [e["event"] for e in logs]
    filler.unlink()
    with Outbox(path, SIGNER) as box:
        assert box.depth() == 40  # the acks were never written: sent again (at least once)


def test_the_spool_holds_messages_in_order_and_drops_only_past_its_bound(
    small_disk: Path,
) -> None:
    from uploader.spool import OutboxSpool

    box = Outbox(small_disk / "outbox.db", SIGNER)
    spool = OutboxSpool(box, limit=50)
    spool.submit_many([_read(n) for n in range(3)])
    filler = _fill(small_disk)
    held = 0
    while spool.held == 0:
        spool.submit_many([_read(100 + held, pad=2000)])
        held += 1
    spool.submit_many([_read(1000 + n) for n in range(20)])
    assert spool.held >= 20
    with structlog.testing.capture_logs() as logs, pytest.raises(QueueDiskFull, match="dropped"):
        spool.submit_many([_read(2000 + n) for n in range(60)])
    assert spool.held == 50
    assert spool.dropped > 0
    dropped = [entry for entry in logs if entry["event"] == "outbox.dropped"]  # loudly
    assert [(e["log_level"], e["dropped"], e["limit"]) for e in dropped] == [
        ("error", spool.dropped, 50)
    ]
    spool.maintain()  # still full: nothing written, nothing raised
    assert spool.held == 50
    filler.unlink()
    spool.maintain()
    assert spool.held == 0
    bodies = [VERIFIER.verify(m.token).body["n"] for m in box.pending(10_000)]
    assert bodies[-50:] == sorted(bodies[-50:])  # written in the order taken
    _assert_chain_links([m.token for m in box.pending(10_000)])
    box.close()


def test_held_events_never_keep_reads_out_of_the_reserve(small_disk: Path) -> None:
    from uploader.spool import OutboxSpool

    box = Outbox(small_disk / "outbox.db", SIGNER, reserve_bytes=320 * 1024)
    spool = OutboxSpool(box, limit=1_000)
    spool.submit_many([_read(n) for n in range(3)])
    filler = _fill(small_disk)
    spool.submit_many([_read(3, pad=3000)])  # the disk is full: the reserve takes it
    assert box.reserve_released
    assert spool.held == 0
    status = JsonMessage("status", {"state": "degraded"})
    spool.submit_many([status, _read(4), JsonMessage("event", {"event": "device_found"})])
    assert spool.held == 2  # the reserve holds billing reads only: the others wait
    for n in range(5, 12):  # later reads go to the reserve, not behind the held ones
        spool.submit_many([_read(n)])
    assert spool.held == 2
    reads = [VERIFIER.verify(m.token).body["n"] for m in box.pending(1_000)]
    assert reads == list(range(12))
    filler.unlink()
    spool.maintain()
    assert spool.held == 0
    kinds = [m.kind for m in box.pending(1_000)]
    assert kinds[-2:] == ["status", "event"]  # written once the reserve was back, in order
    _assert_chain_links([m.token for m in box.pending(1_000)])
    box.close()


def test_a_drained_outbox_gives_its_pages_back(tmp_path: Path) -> None:
    path = tmp_path / "outbox.db"
    with Outbox(path, SIGNER) as box:
        sent = box.submit_many([_read(n, pad=4000) for n in range(2000)])
        box.maintain()
        full = box.size_bytes()
        box.ack([m.message_id for m in sent])
        for _ in range(10):
            box.maintain()
        assert box.size_bytes() < full / 4
    assert os.stat(path).st_mode & 0o777 == 0o600


def test_the_wal_stays_bounded_while_the_queue_grows_and_drains(tmp_path: Path) -> None:
    """journal_size_limit and the checkpoints keep the -wal file near 1 MiB (issue #10:
    3.3 MB of WAL filled a 4 MiB volume while the queue was empty)."""
    path = tmp_path / "outbox.db"
    wal = tmp_path / "outbox.db-wal"
    largest = 0
    with Outbox(path, SIGNER) as box:
        big = box.submit_many([_read(n, pad=4000) for n in range(1000)])  # one 4 MB commit
        assert wal.stat().st_size > 3 * 1024 * 1024  # a transaction is never split
        for batch in range(40):  # then 40 x 50 x 4 KB in small commits, half acked
            sent = box.submit_many([_read(1000 + batch * 50 + n, pad=4000) for n in range(50)])
            if batch % 2:
                box.ack([m.message_id for m in sent])
            if batch >= 10:  # after the first checkpoints the big WAL is cut back
                largest = max(largest, wal.stat().st_size)
        box.ack([m.message_id for m in big])
        assert box.depth() == 20 * 50
        assert path.stat().st_size > 4 * 1024 * 1024  # the queue itself did grow
    assert largest < 2 * 1024 * 1024, largest
