"""systemd ``Type=notify`` support: READY, WATCHDOG, STOPPING and STATUS datagrams.

The protocol is one datagram to the unix socket named by ``$NOTIFY_SOCKET``
(see sd_notify(3)); an abstract socket starts with ``@``. Outside systemd the
variable is unset and every call is a no-op.
"""

from __future__ import annotations

import os
import socket


class SystemdNotifier:
    def __init__(self, environ: dict[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        path = env.get("NOTIFY_SOCKET", "")
        self._address: str | None = None
        if path:
            self._address = "\0" + path[1:] if path.startswith("@") else path
        watchdog_usec = env.get("WATCHDOG_USEC", "")
        watchdog_pid = env.get("WATCHDOG_PID", "")
        self.watchdog_interval: float | None = None
        if watchdog_usec.isdigit() and (not watchdog_pid or watchdog_pid == str(os.getpid())):
            # Ping at half the configured timeout, as sd_watchdog_enabled(3) recommends.
            self.watchdog_interval = int(watchdog_usec) / 1_000_000 / 2

    @property
    def enabled(self) -> bool:
        return self._address is not None

    def notify(self, *fields: str) -> bool:
        """Send ``KEY=value`` lines; returns False outside systemd or when the send failed."""
        if self._address is None:
            return False
        payload = "\n".join(fields).encode()
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            try:
                sock.sendto(payload, self._address)
            except OSError:
                return False
        return True

    def ready(self, status: str = "running") -> bool:
        return self.notify("READY=1", f"STATUS={status}")

    def watchdog(self) -> bool:
        return self.notify("WATCHDOG=1")

    def reloading(self) -> bool:
        return self.notify("RELOADING=1")

    def stopping(self) -> bool:
        return self.notify("STOPPING=1")

    def status(self, text: str) -> bool:
        return self.notify(f"STATUS={text}")
