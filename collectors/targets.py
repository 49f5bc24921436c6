"""Sweep targets: addresses, host names, CIDR blocks and ranges, minus exclusions.

The text forms are net-snmp's and nmap's (comma lists, ``HOST:PORT``, octet ranges); the
accepted forms and the limits: docs/discovery.md, "Targets". A :class:`TargetSet` holds
merged integer intervals per address family and port, never a list of addresses.
"""

from __future__ import annotations

import bisect
import ipaddress
import itertools
import math
import re
import socket
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping
from contextlib import suppress
from functools import partial

from fleet_errors import LocalError

#: Largest sweep accepted without ``allow_huge``: four /16 blocks.
HUGE_LIMIT = 4 * 65_536
#: Largest sweep accepted at all (``len()`` must stay a machine integer).
ABSOLUTE_LIMIT = 2**32
#: Packets per second assumed in the "why" of the refusal message.
_MESSAGE_PPS = 100
#: Most last-octet spans one octet range may expand to (``10.*.*.1-9`` is 65,536).
MAX_PATTERN_SPANS = 65_536
_ADDRESS = {4: ipaddress.IPv4Address, 6: ipaddress.IPv6Address}
#: net-snmp transport prefixes accepted in front of a host (``snmpget udp:host:161``).
_TRANSPORT_PREFIX = re.compile(r"\A(?:udp|udp6|udpv6):(?=.)", re.IGNORECASE | re.DOTALL)
_OCTET = r"(?:\d{1,3}(?:-\d{1,3})?|\*)"
_OCTET_PATTERN = re.compile(rf"{_OCTET}\.{_OCTET}\.{_OCTET}\.{_OCTET}")


class TargetError(LocalError):
    """A target or exclusion spec is unusable; ``spec`` is the offending text."""

    def __init__(self, message: str, *, spec: str) -> None:
        super().__init__(f"target {spec!r}: {message}", field="targets")
        self.spec = spec


Span = tuple[int, int, int]  # (IP version, first address, last address) as integers, inclusive
Interval = tuple[int, int]  # (first, last) of a span

# -- the text forms: ValueError says what is wrong, the caller names the spec ---------------


def split_list(specs: Iterable[str]) -> Iterator[str]:
    """Each comma-separated item of each spec, stripped; empty items are kept (and refused)."""
    for spec in specs:
        yield from ([item.strip() for item in spec.split(",")] if "," in spec else [spec])


def split_endpoint(spec: str) -> tuple[str, int | None]:
    """``(host part, port or None)`` of ``spec``; the host part is any target form."""
    text = _TRANSPORT_PREFIX.sub("", spec.strip())
    if text.startswith("["):
        host, close, rest = text[1:].partition("]")
        if not close:
            raise ValueError("'[' without a closing ']'")
        if rest and not rest.startswith(":"):
            raise ValueError(f"expected ':PORT' after ']', got {rest!r}")
        port = rest[1:] if rest else None
    elif text.count(":") == 1:
        host, _, port = text.partition(":")
    else:
        return text, None
    if port is not None and (not port.isdecimal() or not 1 <= int(port) <= 65535):
        raise ValueError(f"port {port!r} is not a UDP port (1-65535)")
    return host, None if port is None else int(port)


def address_key(address: str) -> tuple[int, int, int, int, str]:
    """The order of every device listing: IPv4, then IPv6, by number and port; names last."""
    try:
        host, port = split_endpoint(address)
        ip = ipaddress.ip_address(host)
    except ValueError:
        return (1, 0, 0, 0, address)
    return (0, ip.version, int(ip), port or 0, address)


def _octet_span(octet: str) -> Interval:
    first_text, _, last_text = ("0-255" if octet == "*" else octet).partition("-")
    first, last = int(first_text), int(last_text or first_text)
    if first > 255 or last > 255:
        raise ValueError(f"octet {octet!r} is outside 0-255")
    if last < first:
        raise ValueError(f"octet range {octet!r} ends below its start")
    return first, last


def octet_pattern(text: str) -> list[Span] | None:
    """The IPv4 spans an nmap octet range covers, in order, or None if ``text`` is none.

    An octet range has a range or ``*`` before the last octet (``10.1.2-3.1-50``); one in
    the last octet only (``10.1.0.10-200``) is the plain short range form, not this.
    """
    octets = text.split(".")
    if not _OCTET_PATTERN.fullmatch(text) or not any("-" in o or o == "*" for o in octets[:3]):
        return None
    *prefixes, (low, high) = [_octet_span(octet) for octet in octets]
    count = math.prod(last - first + 1 for first, last in prefixes)
    if count > MAX_PATTERN_SPANS:
        raise ValueError(
            f"expands to {count:,} separate ranges (at most {MAX_PATTERN_SPANS:,}); "
            "use a CIDR block such as 10.0.0.0/16"
        )
    return [
        (4, base | low, base | high)
        for a, b, c in itertools.product(*(range(first, last + 1) for first, last in prefixes))
        for base in [a << 24 | b << 16 | c << 8]
    ]


# -- from a spec to address spans ------------------------------------------------------------


def _resolve(host: str, spec: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    try:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_DGRAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise TargetError("not an address, range, block or known host name", spec=spec) from exc
    addresses = [ipaddress.ip_address(info[4][0]) for info in infos]
    if not addresses:
        raise TargetError("host name resolves to no address", spec=spec)
    return min(addresses, key=lambda address: address.version)  # the first IPv4 one, if any


def _parse_range(spec: str, start_text: str, end_text: str) -> Span:
    start_text, end_text = start_text.strip(), end_text.strip()
    try:
        start = ipaddress.ip_address(start_text)
    except ValueError as exc:
        raise TargetError(f"range start {start_text!r} is not an address", spec=spec) from exc
    try:
        end = ipaddress.ip_address(end_text)
    except ValueError:
        if start.version != 4 or not end_text.isdecimal() or int(end_text) > 255:
            why = f"range end {end_text!r} is neither an address nor a last octet (0-255)"
            raise TargetError(why, spec=spec) from None
        end = ipaddress.IPv4Address((int(start) & ~0xFF) | int(end_text))  # 10.1.0.10-200
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
    first, last = int(network[0]), int(network[-1])
    if not whole and network.version == 4 and network.prefixlen <= 30:
        first, last = first + 1, last - 1
    elif not whole and network.version == 6 and network.prefixlen <= 126:
        first += 1  # the Subnet-Router anycast address (RFC 4291 2.6.1) is not a device
    return network.version, first, last


def _split(spec: str) -> tuple[str, int | None, list[Span] | None]:
    """``spec``'s host text, port and octet-range spans (None: not an octet range)."""
    try:
        host, port = split_endpoint(spec)
        text = host.strip()
        pattern = octet_pattern(text)
    except ValueError as exc:
        raise TargetError(str(exc), spec=spec) from None
    if not text:
        raise TargetError("empty target", spec=spec)
    return text, port, pattern


def parse_spec(spec: str, *, whole_blocks: bool = False) -> tuple[list[Span], int | None]:
    """One spec to its address spans and its port (None: the configured SNMP port).

    Raises :class:`TargetError` naming the spec. ``whole_blocks`` (exclusions): a block
    covers all of itself, network and broadcast address too.
    """
    text, port, pattern = _split(spec)
    if "/" in text:
        return [_parse_block(text, spec, whole_blocks)], port
    if pattern is not None:
        return pattern, port
    start_text, dash, end_text = text.partition("-")
    if dash and (":" in text or _looks_numeric(start_text)):
        return [_parse_range(spec, start_text, end_text)], port
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
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


def _merged(spans: Iterable[Interval]) -> list[Interval]:
    """``spans`` sorted, overlapping and adjacent ones joined."""
    merged: list[Interval] = []
    for first, last in sorted(spans):
        if merged and first <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(last, merged[-1][1]))
        else:
            merged.append((first, last))
    return merged


def _minus(keep: Iterable[Interval], drop: Iterable[Interval]) -> list[Interval]:
    """The integers of ``keep`` not in ``drop``, as sorted, merged, inclusive spans."""
    cuts = _merged(drop)
    result: list[Interval] = []
    for first, last in _merged(keep):
        cursor = first
        index = bisect.bisect_left(cuts, first, key=lambda cut: cut[1])  # the first cut not before
        while index < len(cuts) and cuts[index][0] <= last:
            if cuts[index][0] > cursor:
                result.append((cursor, cuts[index][0] - 1))
            cursor = cuts[index][1] + 1
            index += 1
        if cursor <= last:
            result.append((cursor, last))
    return result


Key = tuple[int, int]  # (IP version, port or 0 for the configured one)


class TargetSet:
    """The addresses to sweep (``intervals``: merged inclusive spans per IP version and port).

    Iteration yields IPv4 before IPv6, each in address order, the addresses without a port
    first; an address with a port reads ``192.0.2.7:1161``. Membership is a bisection.
    """

    def __init__(self, intervals: Mapping[Key, list[Interval]]) -> None:
        self._intervals = dict(sorted(intervals.items()))
        self.count = sum(last - first + 1 for spans in intervals.values() for first, last in spans)

    def __len__(self) -> int:
        return self.count

    def __iter__(self) -> Iterator[str]:
        for (version, port), spans in self._intervals.items():
            form = ("[{}]" if version == 6 else "{}") + f":{port}" if port else "{}"
            for first, last in spans:
                for value in range(first, last + 1):
                    yield form.format(_ADDRESS[version](value))

    def __contains__(self, item: object) -> bool:
        if not isinstance(item, str):
            return False
        name, version, value, port, _ = address_key(item)
        spans = [] if name else self._intervals.get((version, port), [])
        position = bisect.bisect_right(spans, value, key=lambda span: span[0]) - 1
        return position >= 0 and spans[position][1] >= value


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
    keep: defaultdict[Key, list[Interval]] = defaultdict(list)
    drop: defaultdict[Key, list[Interval]] = defaultdict(list)
    for spec in specs:
        spans, port = parse_spec(spec)
        for version, first, last in spans:
            if allow_public is not None:
                check_address_space((version, first, last), spec, allow_public=allow_public)
            keep[version, port or 0].append((first, last))
    for spec in split_list(exclude):
        spans, port = parse_spec(spec, whole_blocks=True)
        for version, first, last in spans:
            drop[version, port or 0].append((first, last))
    result = TargetSet({key: _minus(keep[key], drop[key[0], 0] + drop[key]) for key in keep})
    everything = ", ".join(specs)
    if result.count > ABSOLUTE_LIMIT:
        raise TargetError(
            f"{result.count:,} addresses is beyond any sweep this agent will run "
            f"(limit {ABSOLUTE_LIMIT:,})",
            spec=everything,
        )
    if result.count > HUGE_LIMIT and not allow_huge:
        hours = result.count / _MESSAGE_PPS / 3600
        raise TargetError(
            f"{result.count:,} addresses is more than {HUGE_LIMIT:,} (four /16 blocks); "
            f"at {_MESSAGE_PPS} packets/s that sweep takes about {hours:,.0f} h and floods "
            "the network. Narrow the targets, or set allow_huge (--allow-huge) if you mean it",
            spec=everything,
        )
    return result


#: :func:`parse_targets` with the address-space checks (public space refused by default).
validate_targets = partial(parse_targets, allow_public=False)

# -- validation: what a configuration or a command line may ask to sweep -------------------

#: Never devices, refused even with allow_public (docs/discovery.md, "Targets").
NEVER_SWEPT = ("0.0.0.0/8", "224.0.0.0/4", "240.0.0.0/4", "::/128", "ff00::/8")
#: Swept without asking; any other unicast address is public space (needs allow_public).
LOCAL_SPACE = (
    *("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"),  # private (RFC 1918)
    *("100.64.0.0/10", "169.254.0.0/16", "127.0.0.0/8"),  # shared (RFC 6598), link-local, loopback
    *("::1/128", "fe80::/10", "fc00::/7"),  # IPv6 loopback, link-local, unique-local
)
_NEVER = [(block, _parse_block(block, block, whole=True)) for block in NEVER_SWEPT]
_LOCAL = sorted(_parse_block(block, block, whole=True) for block in LOCAL_SPACE)


def check_address_space(span: Span, spec: str, *, allow_public: bool) -> None:
    """Refuse addresses that are never devices, and public space unless ``allow_public``."""
    version, first, last = span
    for block, (block_version, block_first, block_last) in _NEVER:
        if block_version == version and block_first <= last and block_last >= first:
            raise TargetError(
                f"covers {block}, which holds no devices (this-network, multicast, "
                "reserved or broadcast addresses)",
                spec=spec,
            )
    outside = _minus([(first, last)], [(start, end) for v, start, end in _LOCAL if v == version])
    if outside and not allow_public:
        raise TargetError(
            f"{_ADDRESS[version](outside[0][0])} is public address space, not a private, "
            "shared, link-local, loopback or unique-local network; set allow_public "
            "(--allow-public) if you really mean to sweep it",
            spec=spec,
        )


def is_host_name(spec: str) -> bool:
    """True when ``spec`` is a host name (resolved at sweep time), not an address form."""
    try:
        text, _port, pattern = _split(spec)
    except TargetError:
        return False
    start = text.partition("-")[0]
    return pattern is None and not ("/" in text or ":" in text or _looks_numeric(start))


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
        name = (text if text.isascii() else text.encode("idna").decode("ascii")).removesuffix(".")
    except UnicodeError:
        raise TargetError("not a valid international host name (IDNA)", spec=spec) from None
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


def check_spec(spec: str, *, allow_public: bool | None) -> None:
    """One target spec as a configuration may give it; host names are checked, not resolved.

    ``allow_public=None``: an exclusion (blocks whole, any address space), as in
    :func:`parse_targets`.
    """
    for item in split_list([spec]):
        if is_host_name(item):
            check_host_name(split_endpoint(item)[0])
            continue
        for span in parse_spec(item, whole_blocks=allow_public is None)[0]:
            if allow_public is not None:
                check_address_space(span, item, allow_public=allow_public)
