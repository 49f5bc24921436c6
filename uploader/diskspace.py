"""Disk space helpers of the outbox: a preallocated reserve, private state files.

:class:`DiskReserve` is a file of ``size`` bytes allocated ahead (``posix_fallocate``)
while there is room. When a write fails for lack of space, the outbox deletes it
(:meth:`DiskReserve.release`) and writes again into the space it held; once the
disk has room for it twice over, :meth:`DiskReserve.restore` allocates it again.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import structlog

__all__ = ["DiskReserve", "private_file"]

_log = structlog.get_logger("uploader.diskspace")


def private_file(path: Path) -> None:
    """Create ``path`` empty with mode 0600 if missing; make an existing one 0600.

    SQLite gives a database's ``-wal`` and ``-shm`` files the database file's mode,
    so creating the database this way keeps all three private.
    """
    if path.exists():
        if path.stat().st_mode & 0o077:
            with contextlib.suppress(PermissionError):  # not ours: SQLite says what is wrong
                path.chmod(0o600)
        return
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


class DiskReserve:
    """A preallocated file released when the disk fills; ``size`` 0 means none."""

    def __init__(self, path: Path, size: int) -> None:
        if size < 0:
            raise ValueError("the reserve size must not be negative")
        self.path = path
        self.size = size

    @property
    def released(self) -> bool:
        """True while the reserve is wanted but not on disk (its space is in use)."""
        return bool(self.size) and not self.path.exists()

    def release(self) -> bool:
        """Delete the reserve file; True if there was one to free."""
        if not self.size:
            return False
        try:
            self.path.unlink()
        except FileNotFoundError:
            return False
        except OSError as exc:
            _log.error("outbox.reserve_unusable", path=str(self.path), error=str(exc))
            return False
        _log.warning(
            "outbox.reserve_released",
            path=str(self.path),
            bytes=self.size,
            detail="the disk is full; the reserve now holds acks and billing reads",
        )
        return True

    def restore(self) -> bool:
        """Allocate the reserve if it is missing and the disk has room for it twice over."""
        if not self.size or self.path.exists():
            return False
        try:
            stats = os.statvfs(self.path.parent)
        except OSError:
            return False
        if stats.f_bavail * stats.f_frsize < 2 * self.size:
            return False
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except OSError:
            return False
        try:
            os.posix_fallocate(fd, 0, self.size)
        except OSError as exc:
            os.close(fd)
            with contextlib.suppress(OSError):
                self.path.unlink()
            _log.warning("outbox.reserve_not_restored", path=str(self.path), error=str(exc))
            return False
        os.close(fd)
        _log.info("outbox.reserve_restored", path=str(self.path), bytes=self.size)
        return True
