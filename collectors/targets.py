"""Sweep targets: addresses, host names, CIDR blocks and ranges, minus exclusions.

A :class:`TargetSet` holds merged integer intervals per address family, never
a list of addresses: a /16 costs a few bytes and is iterated lazily, in
address order, each address once however the specs overlap.

Accepted spec forms (the same for targets and exclusions):

* ``192.0.2.7`` or ``2001:db8::7``: one address (IPv6 only when given explicitly);
* ``192.0.2.0/24``: a block; for IPv4 blocks of /30 and larger the network and
  broadcast addresses are skipped (a /31 or /32 keeps every address, RFC 3021);
* ``192.0.2.10-192.0.2.200`` or ``192.0.2.10-200``: an inclusive range, kept as given;
* ``10.1.2-3.1-50``: an nmap octet range (each octet ``N``, ``N-M`` or ``*``);
* ``printer-3.example``: a host name, resolved once with ``getaddrinfo`` at
  parse time (IPv4 preferred);
* any of these followed by ``:PORT`` (``[2001:db8::7]:1161`` for IPv6), and
  several of them separated by commas (:mod:`collectors.target_syntax`).

Addresses with a port iterate as ``192.0.2.7:1161`` / ``[2001:db8::7]:1161``
(the transport reads the port from there); an exclusion without a port drops
the address on every port, one with a port only that endpoint.

More than :data:`HUGE_LIMIT` addresses (a /16 is fine, a /8 is not) is refused
unless ``allow_huge`` is passed, because at a polite budget such a sweep takes
days and usually means a typo.
"""

from __future__ import annotations

import bisect
import ipaddress
import socket
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

from collectors.target_syntax import (
    SyntaxProblem,
    format_endpoint,
    is_octet_pattern,
    octet_pattern,
    split_endpoint,
    split_list,
)
from fleet_errors import LocalError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

#: Largest sweep accepted without ``allow_huge``: four /16 blocks.
HUGE_LIMIT = 4 * 65_536
#: Largest sweep accepted at all (``len()`` must stay a machine integer).
ABSOLUTE_LIMIT = 2**32
#: Packets per second assumed in the "why" of the refusal message.
_MESSAGE_PPS = 100


class TargetError(LocalError):
    """A target or exclusion spec is unusable; ``spec`` is the offending text."""

    def __init__(self, message: str, *, spec: str) -> None:
        super().__init__(f"target {spec!r}: {message}", field="targets")
        self.spec = spec


@dataclass(frozen=True)
class _Interval:
    version: int
    first: int
    last: int  # inclusive
    port: int | None = None  # None: the configured SNMP port


def _resolve(host: str, spec: str) -> IPAddress:
    try:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_DGRAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise TargetError("not an address, range, block or known host name", spec=spec) from exc
    addresses = [ipaddress.ip_address(info[4][0]) for info in infos]
    if not addresses:
        raise TargetError("host name resolves to no address", spec=spec)
    v4 = [a for a in addresses if a.version == 4]
    return (v4 or addresses)[0]


def _check_unicast(address: IPAddress, spec: str) -> None:
    if address.is_multicast or address.is_unspecified:
        raise TargetError(f"{address} is not a unicast address", spec=spec)
    if address == ipaddress.IPv4Address("255.255.255.255"):
        raise TargetError("the limited broadcast address is not a device", spec=spec)


def _parse_range(spec: str, start_text: str, end_text: str) -> _Interval:
    try:
        start = ipaddress.ip_address(start_text.strip())
    except ValueError as exc:
        raise TargetError(
            f"range start {start_text.strip()!r} is not an address", spec=spec
        ) from exc
    end_text = end_text.strip()
    try:
        end: IPAddress = ipaddress.ip_address(end_text)
    except ValueError:
        # Short form 10.1.0.10-200: the end replaces the last octet.
        if start.version != 4 or not end_text.isdigit() or int(end_text) > 255:
            raise TargetError(
                f"range end {end_text!r} is neither an address nor a last octet (0-255)",
                spec=spec,
            ) from None
        end = ipaddress.IPv4Address((int(start) & ~0xFF) | int(end_text))
    if start.version != end.version:
        raise TargetError("range mixes IPv4 and IPv6", spec=spec)
    if int(end) < int(start):
        raise TargetError(f"range end {end} is below its start {start}", spec=spec)
    return _Interval(start.version, int(start), int(end))


def _parse_block(text: str, spec: str) -> _Interval:
    try:
        network = ipaddress.ip_network(text, strict=False)
    except ValueError as exc:
        raise TargetError(f"not a valid CIDR block ({exc})", spec=spec) from exc
    first, last = int(network.network_address), int(network.broadcast_address)
    if network.version == 4 and network.prefixlen <= 30:
        first, last = first + 1, last - 1
    elif network.version == 6 and network.prefixlen <= 126:
        first += 1  # the Subnet-Router anycast address (RFC 4291 2.6.1) is not a device
    return _Interval(network.version, first, last)


def parse_spec(spec: str) -> list[_Interval]:
    """One spec to its intervals of addresses; :class:`TargetError` names the spec."""
    try:
        host, port = split_endpoint(spec)
    except SyntaxProblem as exc:
        raise TargetError(str(exc), spec=spec) from None
    return [
        _Interval(i.version, i.first, i.last, port) for i in _parse_host_part(host.strip(), spec)
    ]


def _parse_host_part(text: str, spec: str) -> list[_Interval]:
    if not text:
        raise TargetError("empty target", spec=spec)
    if "/" in text:
        return [_parse_block(text, spec)]
    if is_octet_pattern(text):
        try:
            return [_Interval(4, first, last) for first, last in octet_pattern(text)]
        except SyntaxProblem as exc:
            raise TargetError(str(exc), spec=spec) from None
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        address = None
    if address is None and "-" in text and ":" not in text:
        start_text, _, end_text = text.partition("-")
        if _looks_numeric(start_text):
            return [_parse_range(spec, start_text, end_text)]
    if address is None and ":" in text and "-" in text:
        start_text, _, end_text = text.partition("-")
        return [_parse_range(spec, start_text, end_text)]
    if address is None:
        if _looks_numeric(text):
            raise TargetError("not a valid IPv4 address", spec=spec)
        address = _resolve(text, spec)
    _check_unicast(address, spec)
    return [_Interval(address.version, int(address), int(address))]


def _looks_numeric(text: str) -> bool:
    return bool(text) and all(ch.isdigit() or ch == "." for ch in text.strip())


def _merge(intervals: Sequence[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for first, last in sorted(intervals):
        if merged and first <= merged[-1][1] + 1:
            if last > merged[-1][1]:
                merged[-1] = (merged[-1][0], last)
        else:
            merged.append((first, last))
    return merged


def _subtract(keep: list[tuple[int, int]], drop: list[tuple[int, int]]) -> list[tuple[int, int]]:
    result: list[tuple[int, int]] = []
    for first, last in keep:
        cursor = first
        for d_first, d_last in drop:
            if d_last < cursor or d_first > last:
                continue
            if d_first > cursor:
                result.append((cursor, d_first - 1))
            cursor = max(cursor, d_last + 1)
            if cursor > last:
                break
        if cursor <= last:
            result.append((cursor, last))
    return result


Key = tuple[int, int | None]  # (IP version, port or None)


class TargetSet:
    """The addresses to sweep: lazily iterable, sized, with fast membership.

    ``intervals`` maps (IP version, port or None) to merged inclusive spans.
    Iteration yields IPv4 before IPv6, each in address order, the addresses
    without a port first; an address with a port reads ``192.0.2.7:1161``.
    """

    def __init__(self, intervals: Mapping[Key, list[tuple[int, int]]]) -> None:
        self._intervals = {
            key: list(spans)
            for key, spans in sorted(intervals.items(), key=lambda kv: (kv[0][0], kv[0][1] or 0))
            if spans
        }
        self._starts = {k: [first for first, _ in spans] for k, spans in self._intervals.items()}
        self.count = sum(
            last - first + 1 for spans in self._intervals.values() for first, last in spans
        )

    def __len__(self) -> int:
        return self.count

    def __bool__(self) -> bool:
        return self.count > 0

    def __iter__(self) -> Iterator[str]:
        for (version, port), spans in self._intervals.items():
            make = ipaddress.IPv4Address if version == 4 else ipaddress.IPv6Address
            for first, last in spans:
                for value in range(first, last + 1):
                    yield format_endpoint(str(make(value)), port)

    def __contains__(self, item: object) -> bool:
        if not isinstance(item, str):
            return False
        try:
            host, port = split_endpoint(item)
            address = ipaddress.ip_address(host)
        except ValueError:
            return False
        key = (address.version, port)
        spans = self._intervals.get(key)
        if not spans:
            return False
        value = int(address)
        position = bisect.bisect_right(self._starts[key], value) - 1
        return position >= 0 and spans[position][1] >= value

    def __repr__(self) -> str:
        return f"TargetSet(count={self.count}, spans={sum(map(len, self._intervals.values()))})"


def expand_specs(specs: Sequence[str]) -> list[str]:
    """The specs with comma lists split: ``["10.0.0.1,10.0.0.9"]`` is two specs."""
    return list(split_list(specs))


def parse_targets(
    specs: Sequence[str], *, exclude: Sequence[str] = (), allow_huge: bool = False
) -> TargetSet:
    """Targets minus exclusions. Raises :class:`TargetError` naming the bad spec."""
    specs, exclude = expand_specs(specs), expand_specs(exclude)
    keep: dict[Key, list[tuple[int, int]]] = {}
    drop: dict[Key, list[tuple[int, int]]] = {}
    for spec in specs:
        for interval in parse_spec(spec):
            keep.setdefault((interval.version, interval.port), []).append(
                (interval.first, interval.last)
            )
    for spec in exclude:
        for interval in parse_spec_for_exclusion(spec):
            drop.setdefault((interval.version, interval.port), []).append(
                (interval.first, interval.last)
            )
    merged = {
        (version, port): _subtract(
            _merge(spans), _merge(drop.get((version, None), []) + drop.get((version, port), []))
        )
        for (version, port), spans in keep.items()
    }
    result = TargetSet(merged)
    if result.count > ABSOLUTE_LIMIT:
        raise TargetError(
            f"{result.count:,} addresses is beyond any sweep this agent will run "
            f"(limit {ABSOLUTE_LIMIT:,})",
            spec=", ".join(specs),
        )
    if result.count > HUGE_LIMIT and not allow_huge:
        hours = result.count / _MESSAGE_PPS / 3600
        raise TargetError(
            f"{result.count:,} addresses is more than {HUGE_LIMIT:,} (four /16 blocks); "
            f"at {_MESSAGE_PPS} packets/s that sweep takes about {hours:,.0f} h and floods "
            "the network. Narrow the targets, or set allow_huge (--allow-huge) if you mean it",
            spec=", ".join(specs),
        )
    return result


def parse_spec_for_exclusion(spec: str) -> list[_Interval]:
    """Like :func:`parse_spec`, but a block excludes all of itself, network and broadcast too."""
    try:
        host, port = split_endpoint(spec)
    except SyntaxProblem as exc:
        raise TargetError(str(exc), spec=spec) from None
    text = host.strip()
    if "/" in text:
        try:
            network = ipaddress.ip_network(text, strict=False)
        except ValueError as exc:
            raise TargetError(f"not a valid CIDR block ({exc})", spec=spec) from exc
        return [
            _Interval(
                network.version,
                int(network.network_address),
                int(network.broadcast_address),
                port,
            )
        ]
    return parse_spec(spec)


# -- validation: what a configuration or a command line may ask to sweep -------------------
#
# Kept apart from the parsing above: parsing says what a spec means, these checks
# say whether the agent will sweep it. The configuration (``discovery.targets``)
# and the ``scan``/``discover`` command lines run the same checks.

#: Never a device: "this network", multicast, the reserved 240/4 (with the
#: limited broadcast 255.255.255.255), IPv6 unspecified and multicast.
NEVER_SWEPT: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = tuple(
    ipaddress.ip_network(block)
    for block in ("0.0.0.0/8", "224.0.0.0/4", "240.0.0.0/4", "::/128", "ff00::/8")
)
#: Swept without asking: private (RFC 1918), shared (RFC 6598), link-local,
#: loopback, IPv6 loopback, link-local and unique-local. Anything else is
#: public address space and needs ``allow_public``.
LOCAL_SPACE: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = tuple(
    ipaddress.ip_network(block)
    for block in (
        "10.0.0.0/8",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "100.64.0.0/10",
        "169.254.0.0/16",
        "127.0.0.0/8",
        "::1/128",
        "fe80::/10",
        "fc00::/7",
    )
)


def _blocks_overlapping(
    interval: _Interval, blocks: Sequence[ipaddress.IPv4Network | ipaddress.IPv6Network]
) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    return [
        block
        for block in blocks
        if block.version == interval.version
        and int(block.network_address) <= interval.last
        and int(block.broadcast_address) >= interval.first
    ]


def _uncovered(interval: _Interval) -> int | None:
    """The first address of ``interval`` outside :data:`LOCAL_SPACE`, or None."""
    spans = _merge(
        [
            (int(block.network_address), int(block.broadcast_address))
            for block in LOCAL_SPACE
            if block.version == interval.version
        ]
    )
    outside = _subtract([(interval.first, interval.last)], spans)
    return outside[0][0] if outside else None


def check_address_space(interval: _Interval, spec: str, *, allow_public: bool) -> None:
    """Refuse addresses that are never devices, and public space unless ``allow_public``."""
    never = _blocks_overlapping(interval, NEVER_SWEPT)
    if never:
        raise TargetError(
            f"covers {never[0]}, which holds no devices (this-network, multicast, "
            "reserved or broadcast addresses)",
            spec=spec,
        )
    if allow_public:
        return
    first_public = _uncovered(interval)
    if first_public is not None:
        make = ipaddress.IPv4Address if interval.version == 4 else ipaddress.IPv6Address
        raise TargetError(
            f"{make(first_public)} is public address space, not a private, shared, "
            "link-local, loopback or unique-local network; set allow_public "
            "(--allow-public) if you really mean to sweep it",
            spec=spec,
        )


def is_host_name(spec: str) -> bool:
    """True when ``spec`` is a host name (resolved at sweep time), not an address form."""
    try:
        text = split_endpoint(spec)[0].strip()
    except SyntaxProblem:
        return False
    if not text or "/" in text or ":" in text or _looks_numeric(text):
        return False
    start, dash, _end = text.partition("-")
    return not (dash and _looks_numeric(start))


def _mistyped_address(text: str) -> bool:
    """``10.0.0.x``, ``10.0.0``: three or four dotted labels, all but one of them numbers."""
    labels = text.split(".")
    return len(labels) in (3, 4) and sum(label.isdigit() for label in labels) >= len(labels) - 1


_LDH = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-")


def check_host_name(spec: str) -> None:
    """A host name's syntax (RFC 1123 labels, IDNA for non-ASCII), checked without resolving.

    Raises :class:`TargetError` saying what is wrong. An IPv4 address in one of the
    old numeric forms ``inet_aton`` accepts (``0x7f.1``) is refused: it would
    bypass the address-space checks until resolved.
    """
    text = spec.strip()
    if _mistyped_address(text):
        raise TargetError("not a valid IPv4 address", spec=spec)
    try:
        socket.inet_aton(text)
    except OSError:
        pass
    else:
        raise TargetError(
            "an IPv4 address in a non-standard form: write it dotted-decimal", spec=spec
        )
    try:
        ascii_name = text if text.isascii() else text.encode("idna").decode("ascii")
    except UnicodeError:
        raise TargetError("not a valid international host name (IDNA)", spec=spec) from None
    name = ascii_name.removesuffix(".")
    if len(name) > 253:
        raise TargetError(f"host name longer than 253 characters ({len(name)})", spec=spec)
    labels = name.split(".")
    for label in labels:
        if not label:
            raise TargetError("host name with an empty label (two dots in a row?)", spec=spec)
        if len(label) > 63:
            raise TargetError(
                f"host name label {label[:16]}... is {len(label)} characters (at most 63)",
                spec=spec,
            )
        if not set(label) <= _LDH or label.startswith("-") or label.endswith("-"):
            raise TargetError(
                f"host name label {label!r}: only letters, digits and inner hyphens", spec=spec
            )
    if labels[-1].isdigit():
        raise TargetError("not a valid host name (its last label is a number)", spec=spec)


def check_spec(spec: str, *, allow_public: bool) -> None:
    """One target spec as a configuration may give it; host names are checked, not resolved."""
    for item in split_list([spec]):
        if is_host_name(item):
            check_host_name(split_endpoint(item)[0])
            continue
        for interval in parse_spec(item):
            check_address_space(interval, item, allow_public=allow_public)


def validate_targets(
    specs: Sequence[str],
    *,
    exclude: Sequence[str] = (),
    allow_huge: bool = False,
    allow_public: bool = False,
) -> TargetSet:
    """:func:`parse_targets` plus the address-space checks, for every spec (names resolved)."""
    for spec in expand_specs(specs):
        for interval in parse_spec(spec):
            check_address_space(interval, spec, allow_public=allow_public)
    return parse_targets(specs, exclude=exclude, allow_huge=allow_huge)
