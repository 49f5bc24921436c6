"""The text forms of a target that net-snmp and nmap users type, before any address parsing.

Comma lists, ``HOST:PORT`` (with net-snmp's ``udp:``/``udp6:`` prefixes) and nmap octet
ranges (docs/discovery.md, "Targets"). Text in, text or numbers out; errors are
:class:`SyntaxProblem`, which the caller turns into a ``TargetError`` naming the spec.
"""

from __future__ import annotations

import ipaddress
import math
import re
from collections.abc import Iterable, Iterator

#: net-snmp transport prefixes accepted in front of a host (``snmpget udp:host:161``).
_TRANSPORT_PREFIX = re.compile(r"\A(?:udp|udp6|udpv6):(?=.)", re.IGNORECASE | re.DOTALL)
_OCTET = r"(?:\d{1,3}(?:-\d{1,3})?|\*)"
_OCTET_PATTERN = re.compile(rf"{_OCTET}\.{_OCTET}\.{_OCTET}\.{_OCTET}")
#: Most last-octet spans one octet pattern may expand to (``10.*.*.1-9`` is 65,536).
MAX_PATTERN_SPANS = 65_536


class SyntaxProblem(ValueError):
    """What is wrong with a spec's text (the caller names the spec)."""


def split_list(specs: Iterable[str]) -> Iterator[str]:
    """Each comma-separated item of each spec, stripped; empty items are kept (and refused)."""
    for spec in specs:
        yield from ([item.strip() for item in spec.split(",")] if "," in spec else [spec])


def _port(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise SyntaxProblem(f"port {text!r} is not a UDP port (1-65535)")
    return int(text)


def split_endpoint(spec: str) -> tuple[str, int | None]:
    """``(host part, port or None)`` of ``spec``; the host part is any target form."""
    text = _TRANSPORT_PREFIX.sub("", spec.strip())
    if text.startswith("["):
        close = text.find("]")
        if close < 0:
            raise SyntaxProblem("'[' without a closing ']'")
        host, rest = text[1:close], text[close + 1 :]
        if not rest:
            return host, None
        if not rest.startswith(":"):
            raise SyntaxProblem(f"expected ':PORT' after ']', got {rest!r}")
        return host, _port(rest[1:])
    if text.count(":") == 1:
        host, _, port = text.partition(":")
        return host, _port(port)
    return text, None


def format_endpoint(address: str, port: int | None) -> str:
    """``address`` as a target string again: ``192.0.2.7:1161``, ``[2001:db8::7]:1161``."""
    if port is None:
        return address
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"


def address_key(address: str) -> tuple[int, int, int, int, str]:
    """The one sort order of devices in every output (scan, inventory, eligibility...).

    IP addresses numerically, IPv4 before IPv6, then by port; host names after them.
    """
    try:
        host, port = split_endpoint(address)
        ip = ipaddress.ip_address(host)
    except ValueError:
        return (1, 0, 0, 0, address)
    return (0, ip.version, int(ip), port or 0, address)


def _octet_span(octet: str) -> tuple[int, int]:
    if octet == "*":
        return 0, 255
    first_text, _, last_text = octet.partition("-")
    first, last = int(first_text), int(last_text or first_text)
    if first > 255 or last > 255:
        raise SyntaxProblem(f"octet {octet!r} is outside 0-255")
    if last < first:
        raise SyntaxProblem(f"octet range {octet!r} ends below its start")
    return first, last


def octet_pattern(text: str) -> list[tuple[int, int]] | None:
    """The IPv4 spans (first, last as integers) an nmap octet range covers, in order, or None.

    An octet range has a range or ``*`` before the last octet (``10.1.2-3.1-50``); one in
    the last octet only (``10.1.0.10-200``) is the plain short range form, not this.
    """
    octets = text.split(".")
    if not _OCTET_PATTERN.fullmatch(text) or not any("-" in o or o == "*" for o in octets[:3]):
        return None
    spans = [_octet_span(octet) for octet in octets]
    count = math.prod(last - first + 1 for first, last in spans[:3])
    if count > MAX_PATTERN_SPANS:
        raise SyntaxProblem(
            f"expands to {count:,} separate ranges (at most {MAX_PATTERN_SPANS:,}); "
            "use a CIDR block such as 10.0.0.0/16"
        )
    (a0, a1), (b0, b1), (c0, c1), (d0, d1) = spans
    return [
        ((a << 24) | (b << 16) | (c << 8) | d0, (a << 24) | (b << 16) | (c << 8) | d1)
        for a in range(a0, a1 + 1)
        for b in range(b0, b1 + 1)
        for c in range(c0, c1 + 1)
    ]
