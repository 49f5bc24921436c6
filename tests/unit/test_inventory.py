"""The SQLite inventory: persistence, WAL, identity across IP churn, duplicate serials, reads."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from agent.inventory import Inventory, InventoryError
from mibs.identity import stable_device_id
from mibs.models import Counters, Identity, PrinterRead

T0 = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)
DAY = timedelta(days=1)


def _printer(serial: str | None, mac: str | None, *, model: str = "LaserJet M404") -> Identity:
    return Identity(
        vendor="HP",
        model=model,
        serial=serial,
        mac=mac,
        sys_object_id="1.3.6.1.4.1.11.2.3.9.1",
        is_printer=True,
    )


def _see(
    inventory: Inventory, address: str, identity: Identity, when: datetime, profile: str = "v2c#1"
) -> tuple[str, bool, str | None, bool]:
    outcome = inventory.record_discovery(
        address,
        identity,
        device_key=stable_device_id(identity),
        credential_profile=profile,
        seen_at=when,
        sweep_started=when,
    )
    return outcome.device_id, outcome.new, outcome.moved_from, outcome.duplicate_serial


def test_a_device_survives_a_restart_in_wal_mode(tmp_path: Path) -> None:
    path = tmp_path / "state" / "inventory.db"
    with Inventory(path) as inventory:
        device_id, new, moved, _ = _see(
            inventory, "10.0.0.5", _printer("CNB1", "00:11:22:33:44:55"), T0
        )
    assert new
    assert moved is None
    assert device_id == "sn:hp:CNB1"
    with sqlite3.connect(path) as raw:
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    with Inventory(path) as inventory:
        (device,) = inventory.devices()
        again = _see(inventory, "10.0.0.5", _printer("CNB1", "00:11:22:33:44:55"), T0 + DAY)
    assert again[1] is False
    assert device.device_id == "sn:hp:CNB1"
    assert device.address == "10.0.0.5"
    assert device.credential_profile == "v2c#1"
    assert device.first_seen == T0
    assert device.model == "LaserJet M404"


def test_a_moved_printer_is_the_same_device(tmp_path: Path) -> None:
    with Inventory(tmp_path / "inventory.db") as inventory:
        first = _see(inventory, "10.0.0.5", _printer("CNB1", "00:11:22:33:44:55"), T0)
        second = _see(inventory, "10.0.0.77", _printer("CNB1", "00:11:22:33:44:55"), T0 + DAY)
        (device,) = inventory.devices()
    assert second[0] == first[0]
    assert second[1] is False
    assert second[2] == "10.0.0.5"
    assert device.address == "10.0.0.77"
    assert device.addresses == ["10.0.0.77"]
    assert device.first_seen == T0
    assert device.last_seen == T0 + DAY


def test_two_addresses_in_one_sweep_are_one_device(tmp_path: Path) -> None:
    with Inventory(tmp_path / "inventory.db") as inventory:
        identity = _printer("CNB1", "00:11:22:33:44:55")
        first = inventory.record_discovery(
            "10.0.0.5",
            identity,
            device_key="sn:hp:CNB1",
            credential_profile="a",
            seen_at=T0,
            sweep_started=T0,
        )
        second = inventory.record_discovery(
            "10.0.0.6",
            identity,
            device_key="sn:hp:CNB1",
            credential_profile="a",
            seen_at=T0 + timedelta(seconds=2),
            sweep_started=T0,
        )
        (device,) = inventory.devices()
    assert first.device_id == second.device_id
    assert second.moved_from is None  # same sweep: a second address, not a move
    assert sorted(device.addresses) == ["10.0.0.5", "10.0.0.6"]


def test_same_serial_on_different_devices_is_flagged(tmp_path: Path) -> None:
    with Inventory(tmp_path / "inventory.db") as inventory:
        a = _see(inventory, "10.0.0.5", _printer("00CNB1", "00:11:22:33:44:55"), T0)
        b = _see(inventory, "10.0.0.6", _printer("00CNB1", "66:77:88:99:aa:bb"), T0)
        devices = {d.device_id: d for d in inventory.devices()}
        # Next sweep: each is recognised again under its own id, nothing new.
        a2 = _see(inventory, "10.0.0.5", _printer("00CNB1", "00:11:22:33:44:55"), T0 + DAY)
        b2 = _see(inventory, "10.0.0.9", _printer("00CNB1", "66:77:88:99:aa:bb"), T0 + DAY)
        after = {d.device_id: d for d in inventory.devices()}
    assert a[0] == "sn:hp:00CNB1"
    assert not a[3]
    assert b[0] == "sn:hp:00CNB1~66778899aabb"
    assert b[3]
    assert len(devices) == 2
    assert all(d.duplicate_serial for d in devices.values())
    assert (a2[0], a2[1]) == (a[0], False)
    assert (b2[0], b2[1], b2[2]) == (b[0], False, "10.0.0.6")
    assert after[b[0]].address == "10.0.0.9"


def test_serial_that_appears_later_keeps_the_mac_id(tmp_path: Path) -> None:
    with Inventory(tmp_path / "inventory.db") as inventory:
        first = _see(inventory, "10.0.0.5", _printer(None, "00:11:22:33:44:55"), T0)
        later = _see(inventory, "10.0.0.5", _printer("CNB1", "00:11:22:33:44:55"), T0 + DAY)
        (device,) = inventory.devices()
    assert first[0] == "mac:00:11:22:33:44:55"
    assert later[0] == first[0]
    assert not later[1]
    assert device.serial == "CNB1"


def test_device_without_anything_stable_is_known_by_address(tmp_path: Path) -> None:
    with Inventory(tmp_path / "inventory.db") as inventory:
        device_id, *_ = _see(inventory, "10.0.0.5", _printer(None, None), T0)
    assert device_id == "ip:10.0.0.5"


def test_an_address_taken_over_by_another_device(tmp_path: Path) -> None:
    with Inventory(tmp_path / "inventory.db") as inventory:
        _see(inventory, "10.0.0.5", _printer("AAA1", None), T0)
        _see(inventory, "10.0.0.5", _printer("BBB2", None), T0 + DAY)
        by_id = {d.device_id: d for d in inventory.devices()}
    assert by_id["sn:hp:BBB2"].address == "10.0.0.5"
    assert by_id["sn:hp:AAA1"].address is None


def test_record_read_keeps_lifetime_pages(tmp_path: Path) -> None:
    with Inventory(tmp_path / "inventory.db") as inventory:
        device_id, *_ = _see(inventory, "10.0.0.5", _printer("CNB1", None), T0)
        read = PrinterRead(
            address="10.0.0.5",
            collected_at=T0 + DAY,
            identity=_printer("CNB1", None),
            counters=Counters(total=48213),
        )
        inventory.record_read(device_id, read)
        (device,) = inventory.devices()
        with pytest.raises(InventoryError, match="no device 'sn:hp:NOPE'"):
            inventory.record_read("sn:hp:NOPE", read)
    assert device.lifetime_pages == 48213
    assert device.last_read_at == T0 + DAY


def test_known_profiles_name_what_worked_where(tmp_path: Path) -> None:
    with Inventory(tmp_path / "inventory.db") as inventory:
        _see(inventory, "10.0.0.5", _printer("CNB1", None), T0, profile="v3:ops")
        _see(inventory, "10.0.0.6", _printer("CNB2", None), T0, profile="v2c#2")
        assert inventory.known_profiles() == {"10.0.0.5": "v3:ops", "10.0.0.6": "v2c#2"}


def test_a_file_that_is_not_a_database_is_named(tmp_path: Path) -> None:
    path = tmp_path / "inventory.db"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(InventoryError, match=str(path)):
        Inventory(path)


def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "inventory.db"
    with sqlite3.connect(path) as raw:
        raw.execute("PRAGMA user_version = 99")
    with pytest.raises(InventoryError, match="schema version 99"):
        Inventory(path)


def test_a_closed_inventory_refuses_use(tmp_path: Path) -> None:
    inventory = Inventory(tmp_path / "inventory.db")
    inventory.close()
    with pytest.raises(RuntimeError, match="closed"):
        inventory.devices()


def test_an_unwritable_state_dir_is_named_with_the_way_out(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the state directory should be")
    with pytest.raises(InventoryError, match=r"not-a-dir.*--state-dir"):
        Inventory(blocker / "inventory.db")


def test_stored_reads_are_the_first_and_the_last(tmp_path: Path) -> None:
    start = datetime(2026, 11, 1, tzinfo=UTC)
    identity = _printer("CNB0000001", "3c:2a:f4:00:00:01")
    with Inventory(tmp_path / "inventory.db") as inventory:
        device_id, *_ = _see(inventory, "127.0.0.5", identity, start)
        assert inventory.stored_reads() == []  # seen, never read
        for day, total in enumerate((1000, 1100, 1250)):
            read = PrinterRead(
                address="127.0.0.5",
                collected_at=start + day * DAY,
                identity=identity,
                counters=Counters(total=total),
            )
            inventory.record_read(device_id, read)
        reads = inventory.stored_reads()
    assert [r.counters.total for r in reads] == [1000, 1250]
    assert reads[0].collected_at == start


def test_version_1_files_are_upgraded_without_their_summaries(tmp_path: Path) -> None:
    path = tmp_path / "inventory.db"
    with Inventory(path) as inventory:
        device_id, *_ = _see(
            inventory, "127.0.0.6", _printer("CNB0000002", None), datetime.now(UTC)
        )
    db = sqlite3.connect(path)
    db.execute("ALTER TABLE devices DROP COLUMN first_read")
    db.execute("UPDATE devices SET last_read = '{\"total\": 5}', last_read_at = '2026-01-01'")
    db.execute("PRAGMA user_version=1")
    db.commit()
    db.close()
    with Inventory(path) as inventory:
        assert inventory.stored_reads() == []  # the v1 summary is not a read
        assert [d.device_id for d in inventory.devices()] == [device_id]
