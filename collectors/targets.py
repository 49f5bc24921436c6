"""Sweep targets: addresses, host names, CIDR blocks and ranges, minus exclusions.

A :class:`TargetSet` holds merged integer intervals per address family and port, never a
list of addresses. The accepted forms and the limits: docs/discovery.md, "Targets".
"""

from __future__ import annotations

import bisect
import ipaddress
import re
import socket
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import suppress
from functools import partial

from collectors.target_syntax import (
    SyntaxProblem,
    format_endpoint,
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


Span = tuple[int, int, int]  # (IP version, first address, last address) as integers, inclusive


def _resolve(host: str, spec: str) -> IPAddress:
    try:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_DGRAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise TargetError("not an address, range, block or known host name", spec=spec) from exc
    addresses = [ipaddress.ip_address(info[4][0]) for info in infos]
    if not addresses:
        raise TargetError("host name resolves to no address", spec=spec)
    return min(addresses, key=lambda address: address.version)  # the first IPv4 one, if any


def _parse_range(spec: str, start_text: str, end_text: str) -> Span:
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
    return start.version, int(start), int(end)


def _parse_block(text: str, spec: str, whole: bool) -> Span:
    try:
        network = ipaddress.ip_network(text, strict=False)
    except ValueError as exc:
        raise TargetError(f"not a valid CIDR block ({exc})", spec=spec) from exc
    first, last = int(network.network_address), int(network.broadcast_address)
    if not whole and network.version == 4 and network.prefixlen <= 30:
        first, last = first + 1, last - 1
    elif not whole and network.version == 6 and network.prefixlen <= 126:
        first += 1  # the Subnet-Router anycast address (RFC 4291 2.6.1) is not a device
    return network.version, first, last


def parse_spec(spec: str, *, whole_blocks: bool = False) -> tuple[list[Span], int | None]:
    """One spec to its address spans and its port (None: the configured SNMP port).

    Raises :class:`TargetError` naming the spec. ``whole_blocks`` (exclusions): a block
    covers all of itself, network and broadcast address too.
    """
    try:
        host, port = split_endpoint(spec)
        text = host.strip()
        pattern = octet_pattern(text)
    except SyntaxProblem as exc:
        raise TargetError(str(exc), spec=spec) from None
    if not text:
        raise TargetError("empty target", spec=spec)
    if "/" in text:
        return [_parse_block(text, spec, whole_blocks)], port
    if pattern is not None:
        return [(4, first, last) for first, last in pattern], port
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        start_text, dash, end_text = text.partition("-")
        if dash and (":" in text or _looks_numeric(start_text)):
            return [_parse_range(spec, start_text, end_text)], port
        if _looks_numeric(text):
            raise TargetError("not a valid IPv4 address", spec=spec) from None
        address = _resolve(text, spec)
    if address.is_multicast or address.is_unspecified:
        raise TargetError(f"{address} is not a unicast address", spec=spec)
    if address == ipaddress.IPv4Address("255.255.255.255"):
        raise TargetError("the limited broadcast address is not a device", spec=spec)
    return [(address.version, int(address), int(address))], port


def _looks_numeric(text: str) -> bool:
    return bool(text) and all(ch.isdigit() or ch == "." for ch in text.strip())


def _merge(intervals: Sequence[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for first, last in sorted(intervals):
        if merged and first <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(last, merged[-1][1]))
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
    """The addresses to sweep (``intervals``: merged inclusive spans per IP version and port).

    Iteration yields IPv4 before IPv6, each in address order, the addresses without a port
    first; an address with a port reads ``192.0.2.7:1161``. Membership is a bisection.
    """

    def __init__(self, intervals: Mapping[Key, list[tuple[int, int]]]) -> None:
        self._intervals = {
            key: spans
            for key, spans in sorted(intervals.items(), key=lambda kv: (kv[0][0], kv[0][1] or 0))
            if spans
        }
        self.count = sum(
            last - first + 1 for spans in self._intervals.values() for first, last in spans
        )

    def __len__(self) -> int:
        return self.count

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
        spans = self._intervals.get((address.version, port), [])
        position = bisect.bisect_right(spans, int(address), key=lambda span: span[0]) - 1
        return position >= 0 and spans[position][1] >= int(address)


def parse_targets(
    specs: Iterable[str],
    *,
    exclude: Iterable[str] = (),
    allow_huge: bool = False,
    allow_public: bool | None = None,
) -> TargetSet:
    """Targets minus exclusions. Raises :class:`TargetError` naming the bad spec.

    With ``allow_public`` given, each target (a host name as resolved) also passes
    :func:`check_address_space`; None skips that check.
    """
    specs = list(split_list(specs))
    keep: defaultdict[Key, list[tuple[int, int]]] = defaultdict(list)
    drop: defaultdict[Key, list[tuple[int, int]]] = defaultdict(list)
    for spec in specs:
        spans, port = parse_spec(spec)
        for version, first, last in spans:
            if allow_public is not None:
                check_address_space((version, first, last), spec, allow_public=allow_public)
            keep[version, port].append((first, last))
    for spec in split_list(exclude):
        spans, port = parse_spec(spec, whole_blocks=True)
        for version, first, last in spans:
            drop[version, port].append((first, last))
    result = TargetSet(
        {
            (version, port): _subtract(
                _merge(spans), _merge(drop.get((version, None), []) + drop.get((version, port), []))
            )
            for (version, port), spans in keep.items()
        }
    )
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


#: :func:`parse_targets` with the address-space checks (public space refused by default).
validate_targets = partial(parse_targets, allow_public=False)

# -- validation: what a configuration or a command line may ask to sweep -------------------

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
_LOCAL_SPANS = {
    version: _merge(
        [
            (int(block.network_address), int(block.broadcast_address))
            for block in LOCAL_SPACE
            if block.version == version
        ]
    )
    for version in (4, 6)
}


def check_address_space(span: Span, spec: str, *, allow_public: bool) -> None:
    """Refuse addresses that are never devices, and public space unless ``allow_public``."""
    version, first, last = span
    for block in NEVER_SWEPT:
        if (
            block.version == version
            and int(block.network_address) <= last
            and int(block.broadcast_address) >= first
        ):
            raise TargetError(
                f"covers {block}, which holds no devices (this-network, multicast, "
                "reserved or broadcast addresses)",
                spec=spec,
            )
    outside = _subtract([(first, last)], _LOCAL_SPANS[version])
    if outside and not allow_public:
        make = ipaddress.IPv4Address if version == 4 else ipaddress.IPv6Address
        raise TargetError(
            f"{make(outside[0][0])} is public address space, not a private, shared, "
            "link-local, loopback or unique-local network; set allow_public "
            "(--allow-public) if you really mean to sweep it",
            spec=spec,
        )


def is_host_name(spec: str) -> bool:
    """True when ``spec`` is a host name (resolved at sweep time), not an address form."""
    try:
        text = split_endpoint(spec)[0].strip()
        pattern = octet_pattern(text)
    except SyntaxProblem:
        return False
    if pattern is not None or not text or "/" in text or ":" in text or _looks_numeric(text):
        return False
    start, dash, _end = text.partition("-")
    return not (dash and _looks_numeric(start))


#: One host name label (RFC 1123): letters, digits and inner hyphens.
_LABEL = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?")


def check_host_name(spec: str) -> None:
    """A host name's syntax (RFC 1123 labels, IDNA), checked without resolving; else TargetError."""
    text = spec.strip()
    labels = text.split(".")  # 10.0.0.x, 10.0.0: three or four labels, all but one numbers
    if len(labels) in (3, 4) and sum(label.isdigit() for label in labels) >= len(labels) - 1:
        raise TargetError("not a valid IPv4 address", spec=spec)
    with suppress(OSError):  # 0x7f.1 and such would bypass the address checks until resolved
        socket.inet_aton(text)
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
            why = f"host name label {label[:16]}... is {len(label)} characters (at most 63)"
            raise TargetError(why, spec=spec)
        if not _LABEL.fullmatch(label):
            why = f"host name label {label!r}: only letters, digits and inner hyphens"
            raise TargetError(why, spec=spec)
    if labels[-1].isdigit():
        raise TargetError("not a valid host name (its last label is a number)", spec=spec)


def check_spec(spec: str, *, allow_public: bool) -> None:
    """One target spec as a configuration may give it; host names are checked, not resolved."""
    for item in split_list([spec]):
        if is_host_name(item):
            check_host_name(split_endpoint(item)[0])
            continue
        for span in parse_spec(item)[0]:
            check_address_space(span, item, allow_public=allow_public)
