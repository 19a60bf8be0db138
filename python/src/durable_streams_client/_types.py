"""Results and options: plain, frozen dataclasses."""

from __future__ import annotations

from dataclasses import dataclass

from ._errors import DurableStreamError
from ._native import _retry_defaults

__all__ = [
    "AppendResult",
    "CloseResult",
    "CreateResult",
    "FailedAttempt",
    "HeadResult",
    "RetryPolicy",
]

# The core's default retry policy (delays in ms): the defaults live in the core only.
_CORE_RETRY = _retry_defaults()


@dataclass(frozen=True)
class CreateResult:
    """What :meth:`create` found.

    Attributes:
        created: ``True`` when the stream was created (201), ``False`` when a stream with the
            same configuration already existed (200).
        content_type: The stream's content type, as the server reported it.
        next_offset: The tail offset after any initial body.
        closed: Whether the stream is closed.
    """

    created: bool
    content_type: str | None
    next_offset: str | None
    closed: bool


@dataclass(frozen=True)
class AppendResult:
    """The result of an append.

    Attributes:
        next_offset: The tail offset after this append (an opaque string; compare offsets
            of one stream as strings).
        closed: Whether the stream is now closed.
    """

    next_offset: str | None
    closed: bool


@dataclass(frozen=True)
class FailedAttempt:
    """A failed attempt of a handle's request, as ``on_failed_attempt`` gets it.

    Attributes:
        error: Why it failed (a :class:`DurableStreamError`).
        attempt: Failed attempts of this request so far, this one included (1 for the first).
        will_retry: Whether the retry policy tries again.
        operation: ``"create"``, ``"head"``, ``"append"``, ``"close"`` or ``"delete"``.
    """

    error: DurableStreamError
    attempt: int
    will_retry: bool
    operation: str


@dataclass(frozen=True)
class CloseResult:
    """The result of :meth:`close`.

    Attributes:
        final_offset: The stream's final offset.
    """

    final_offset: str | None


@dataclass(frozen=True)
class HeadResult:
    """Stream metadata from ``HEAD``.

    Attributes:
        content_type: The stream's content type.
        next_offset: The tail offset.
        ttl_seconds: The sliding time-to-live, if the stream has one.
        expires_at: The absolute expiry (RFC 3339), if the stream has one.
        closed: Whether the stream is closed.
        etag: The ``ETag``, if any.
    """

    content_type: str | None
    next_offset: str | None
    ttl_seconds: int | None
    expires_at: str | None
    closed: bool
    etag: str | None


@dataclass(frozen=True)
class RetryPolicy:
    """How failed requests are retried: full-jitter exponential backoff honouring
    ``Retry-After``.

    The delay before retry *n* (from 0) is random in
    ``[0, min(max_delay, initial_delay * multiplier**n)]``, but never less than a
    ``Retry-After`` the server sent. Only network errors, timeouts, 429 and 5xx are retried.
    The defaults are the reads' (no limit on retries); a handle's create, head, delete and
    close use 0.1 s to 5 s, multiplier 2, at most 5 retries, unless given a policy.

    Attributes:
        initial_delay: Upper bound of the first delay, in seconds (> 0).
        max_delay: Upper bound of any delay, in seconds (>= initial_delay).
        multiplier: Growth factor of the bound (>= 1).
        max_retries: Retries after the first attempt; ``None`` for no limit.
    """

    initial_delay: float = _CORE_RETRY[0] / 1000.0
    max_delay: float = _CORE_RETRY[1] / 1000.0
    multiplier: float = _CORE_RETRY[2]
    max_retries: int | None = _CORE_RETRY[3]

    @classmethod
    def none(cls) -> RetryPolicy:
        """A policy that never retries."""
        return cls(max_retries=0)

    def _native(self) -> tuple[float, float, float, int | None]:
        return (
            self.initial_delay * 1000.0,
            self.max_delay * 1000.0,
            self.multiplier,
            self.max_retries,
        )
