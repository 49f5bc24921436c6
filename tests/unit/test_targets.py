"""Target specs: forms, exclusions, block edges, the huge-sweep guard, lazy iteration."""

from __future__ import annotations

import ipaddress
import itertools
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collectors.targets import HUGE_LIMIT, TargetError, TargetSet, parse_targets


def test_single_addresses_blocks_and_ranges() -> None:
    targets = parse_targets(["192.0.2.7", "198.51.100.0/30", "203.0.113.10-12"])
    assert list(targets) == [
        "192.0.2.7",
        "198.51.100.1",
        "198.51.100.2",
        "203.0.113.10",
        "203.0.113.11",
        "203.0.113.12",
    ]
    assert len(targets) == targets.count == 6


def test_short_range_form_replaces_the_last_octet() -> None:
    assert list(parse_targets(["10.1.0.10-12"])) == ["10.1.0.10", "10.1.0.11", "10.1.0.12"]
    assert len(parse_targets(["10.1.0.10-10.1.0.200"])) == 191


def test_block_skips_network_and_broadcast() -> None:
    targets = parse_targets(["10.0.0.0/24"])
    assert len(targets) == 254
    assert "10.0.0.0" not in targets
    assert "10.0.0.255" not in targets
    assert "10.0.0.1" in targets
    assert "10.0.0.254" in targets


def test_31_and_32_keep_every_address() -> None:
    # RFC 3021: a /31 has no network or broadcast address.
    assert list(parse_targets(["10.0.0.0/31"])) == ["10.0.0.0", "10.0.0.1"]
    assert list(parse_targets(["10.0.0.9/32"])) == ["10.0.0.9"]


def test_host_bits_in_a_block_are_accepted() -> None:
    assert len(parse_targets(["10.0.0.77/24"])) == 254


def test_exclusions_and_overlaps() -> None:
    targets = parse_targets(
        ["10.0.0.0/24", "10.0.0.5-10.0.1.3"],
        exclude=["10.0.0.7", "10.0.0.100-10.0.0.199", "10.0.1.0/31"],
    )
    listed = list(targets)
    assert len(listed) == len(set(listed)) == len(targets)
    assert "10.0.0.7" not in targets
    assert "10.0.0.7" not in listed
    assert "10.0.0.150" not in targets
    assert "10.0.0.255" in targets  # broadcast of the /24, but named by the range
    assert "10.0.1.0" not in targets
    assert "10.0.1.2" in targets
    assert listed == sorted(listed, key=lambda a: int(ipaddress.ip_address(a)))


def test_excluded_block_excludes_its_edges_too() -> None:
    targets = parse_targets(["10.0.0.0-10.0.0.255"], exclude=["10.0.0.0/25"])
    assert next(iter(targets)) == "10.0.0.128"


def test_a_16_is_normal_and_a_8_is_refused_with_a_reason() -> None:
    assert len(parse_targets(["10.20.0.0/16"])) == 65_534
    with pytest.raises(TargetError) as caught:
        parse_targets(["10.0.0.0/8"])
    message = str(caught.value)
    assert "10.0.0.0/8" in message
    assert "--allow-huge" in message
    assert "16,777,214" in message
    assert caught.value.spec == "10.0.0.0/8"


def test_allow_huge_streams_without_materialising() -> None:
    started = time.perf_counter()
    targets = parse_targets(["10.0.0.0/8"], allow_huge=True)
    first = list(itertools.islice(targets, 3))
    assert first == ["10.0.0.1", "10.0.0.2", "10.0.0.3"]
    assert len(targets) == 2**24 - 2
    assert "10.200.3.4" in targets
    assert time.perf_counter() - started < 0.5


def test_limit_applies_after_exclusions() -> None:
    assert len(parse_targets(["10.0.0.0/13"], exclude=["10.0.0.0/14"])) <= HUGE_LIMIT


@pytest.mark.parametrize(
    ("spec", "fragment"),
    [
        ("10.1.0.300", "not a valid IPv4 address"),
        ("10.1.0.10-5", "below its start"),
        ("10.1.0.10-300", "neither an address nor a last octet"),
        ("10.1.0.0/33", "not a valid CIDR block"),
        ("224.0.0.1", "not a unicast address"),
        ("0.0.0.0", "not a unicast address"),
        ("255.255.255.255", "broadcast"),
        ("10.0.0.1-::5", "mixes IPv4 and IPv6"),
        ("", "empty target"),
        ("no-such-host.invalid", "not an address, range, block or known host name"),
    ],
)
def test_bad_specs_name_themselves(spec: str, fragment: str) -> None:
    with pytest.raises(TargetError) as caught:
        parse_targets(["10.0.0.1", spec])
    assert fragment in str(caught.value)
    assert caught.value.spec.strip() == spec.strip() or spec in caught.value.spec


def test_bad_exclusion_names_itself() -> None:
    with pytest.raises(TargetError) as caught:
        parse_targets(["10.0.0.0/24"], exclude=["10.0.0.x"])
    assert caught.value.spec == "10.0.0.x"


def test_host_names_resolve_at_parse_time() -> None:
    targets = parse_targets(["localhost"])
    assert list(targets) == ["127.0.0.1"]


def test_ipv6_when_given_explicitly() -> None:
    targets = parse_targets(["::1", "2001:db8::10-2001:db8::12"])
    assert list(targets) == ["::1", "2001:db8::10", "2001:db8::11", "2001:db8::12"]
    assert "2001:db8::11" in targets
    assert "2001:db8::13" not in targets


def test_membership_of_non_addresses_is_false() -> None:
    targets = parse_targets(["10.0.0.0/30"])
    assert "printer" not in targets
    assert 5 not in targets
    assert not TargetSet({})


# --- property: the interval arithmetic equals plain set arithmetic -------------------

BASE = int(ipaddress.IPv4Address("10.9.0.0"))
_offsets = st.integers(min_value=0, max_value=1023)


@st.composite
def _spec(draw: st.DrawFn) -> tuple[str, set[int], set[int]]:
    """(spec text, addresses it adds as a target, addresses it removes as an exclusion)."""
    kind = draw(st.sampled_from(["address", "range", "block"]))
    if kind == "address":
        value = BASE + draw(_offsets)
        return str(ipaddress.IPv4Address(value)), {value}, {value}
    if kind == "range":
        first, last = sorted((BASE + draw(_offsets), BASE + draw(_offsets)))
        text = f"{ipaddress.IPv4Address(first)}-{ipaddress.IPv4Address(last)}"
        span = set(range(first, last + 1))
        return text, span, span
    prefix = draw(st.integers(min_value=22, max_value=32))
    network = ipaddress.ip_network(
        f"{ipaddress.IPv4Address(BASE + draw(_offsets))}/{prefix}", False
    )
    whole = set(range(int(network.network_address), int(network.broadcast_address) + 1))
    usable = whole - {int(network.network_address), int(network.broadcast_address)}
    return str(network), (usable if prefix <= 30 else whole), whole


@settings(max_examples=200, deadline=None)
@given(st.lists(_spec(), min_size=1, max_size=6), st.lists(_spec(), max_size=4))
def test_matches_a_set_model(
    targets: list[tuple[str, set[int], set[int]]], excludes: list[tuple[str, set[int], set[int]]]
) -> None:
    expected: set[int] = set().union(*(adds for _, adds, _ in targets))
    expected -= set().union(*(removes for _, _, removes in excludes))
    result = parse_targets([t for t, _, _ in targets], exclude=[e for e, _, _ in excludes])
    listed = [int(ipaddress.IPv4Address(a)) for a in result]
    assert listed == sorted(expected)
    assert len(result) == len(expected)
    for probe in range(BASE - 2, BASE + 2048, 97):
        assert (str(ipaddress.IPv4Address(probe)) in result) == (probe in expected)
