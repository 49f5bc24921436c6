from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mibs.snmprec import SnmprecError, load_varbinds, parse_snmprec
from mibs.values import IndexedVarbinds, column, format_oid, parse_oid


def test_parses_every_tag_kind() -> None:
    text = "\n".join(
        [
            "1.3.6.1.2.1.1.1.0|4|HP LaserJet",
            "1.3.6.1.2.1.1.2.0|6|1.3.6.1.4.1.11.2.3.9.1",
            "1.3.6.1.2.1.2.2.1.6.1|4x|001BA90BA752",
            "1.3.6.1.2.1.43.10.2.1.4.1.1|65|123456",
            "1.3.6.1.2.1.4.20.1.1.10.0.0.1|64|10.0.0.1",
            "1.3.6.1.2.1.1.9.0|5|",
            "1.3.6.1.2.1.1.3.0|67:numeric|rate=1",
        ]
    )
    varbinds = load_varbinds(text)
    assert varbinds[parse_oid("1.3.6.1.2.1.1.1.0")] == b"HP LaserJet"
    assert varbinds[parse_oid("1.3.6.1.2.1.1.2.0")] == (1, 3, 6, 1, 4, 1, 11, 2, 3, 9, 1)
    assert varbinds[parse_oid("1.3.6.1.2.1.2.2.1.6.1")] == bytes.fromhex("001BA90BA752")
    assert varbinds[parse_oid("1.3.6.1.2.1.43.10.2.1.4.1.1")] == 123456
    assert varbinds[parse_oid("1.3.6.1.2.1.4.20.1.1.10.0.0.1")] == bytes([10, 0, 0, 1])
    # NULL and variation-module lines carry no static value
    assert parse_oid("1.3.6.1.2.1.1.9.0") not in varbinds
    assert parse_oid("1.3.6.1.2.1.1.3.0") not in varbinds
    assert list(varbinds) == sorted(varbinds)


def test_bad_line_names_its_number() -> None:
    with pytest.raises(SnmprecError, match="line 2"):
        parse_snmprec("1.3.6.1.2.1.1.1.0|4|ok\n1.3.6.1.2.1.1.2.0|2|notanumber\n")


def test_column_returns_index_suffixes_in_order() -> None:
    prefix = parse_oid("1.3.6.1.2.1.43.11.1.1.9")
    varbinds = {prefix + (1, 2): 5, prefix + (1, 1): 7, parse_oid("1.3.6.1.2.1.43.11.1.1.8.1.1"): 9}
    assert column(varbinds, prefix) == {(1, 1): 7, (1, 2): 5}
    assert format_oid(prefix) == "1.3.6.1.2.1.43.11.1.1.9"


def test_shared_recordings_all_parse(shared_recordings) -> None:  # type: ignore[no-untyped-def]
    for path in sorted(shared_recordings.glob("*.snmprec")):
        assert load_varbinds(path.read_text(errors="surrogateescape")), path.name


@settings(max_examples=200, deadline=None)
@given(
    st.dictionaries(
        st.lists(st.integers(0, 4), min_size=1, max_size=5).map(tuple),
        st.integers(),
        max_size=40,
    ),
    st.lists(st.integers(0, 4), min_size=1, max_size=3).map(tuple),
)
def test_indexed_column_equals_plain_column(varbinds: dict, prefix: tuple) -> None:  # type: ignore[type-arg]
    indexed = IndexedVarbinds(varbinds)
    assert column(indexed, prefix) == column(varbinds, prefix)
    assert dict(indexed) == varbinds
