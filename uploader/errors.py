"""Errors of the upload side. Root: :class:`UploadError`."""

from __future__ import annotations


class UploadError(Exception):
    """Queue, signing, key or broker trouble; the message names the file or broker."""
