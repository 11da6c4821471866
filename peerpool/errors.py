"""One base exception with specific subclasses.

Messages are lower case, name the object (file, entry, datagram) and say how to fix it.
The CLI prints ``str(error)`` and exits with ``error.exit_code``; no traceback for these.
"""

from __future__ import annotations


class PeerpoolError(Exception):
    """Base class of every error peerpool raises on purpose."""

    exit_code = 1


class ConfigError(PeerpoolError):
    """The exchange configuration (or an IX-F export) is wrong; the message names file, entry and fix."""

    exit_code = 2


class InputError(PeerpoolError):
    """An input file is missing, unreadable or of the wrong kind."""

    exit_code = 3


class DecodeError(PeerpoolError):
    """A datagram could not be decoded. Decoders raise only this (and subclasses).

    ``offset`` is the byte offset in the datagram where decoding failed, when known.
    """

    exit_code = 4

    def __init__(self, message: str, *, protocol: str = "", exporter: str = "", offset: int = -1) -> None:
        super().__init__(message)
        self.protocol = protocol
        self.exporter = exporter
        self.offset = offset

    def __str__(self) -> str:
        where = []
        if self.protocol:
            where.append(self.protocol)
        if self.exporter:
            where.append(f"exporter {self.exporter}")
        if self.offset >= 0:
            where.append(f"offset {self.offset}")
        prefix = f"{', '.join(where)}: " if where else ""
        return f"{prefix}{self.args[0]}"


class LakeError(PeerpoolError):
    """The data lake is in a state peerpool refuses to touch (nothing is changed when this is raised)."""

    exit_code = 5


class BillingError(PeerpoolError):
    """A bill cannot be produced or a closed month would be overwritten."""

    exit_code = 6
