"""The one error type of the economics library."""

from __future__ import annotations

from peerpool.errors import PeerpoolError


class EconomicsError(PeerpoolError):
    """Input the economics functions cannot work with; the message names it and says what to do."""

    exit_code = 7
