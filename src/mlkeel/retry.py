"""In-process retries with exponential backoff for transient I/O errors (object stores, the model registry).

Only errors a caller classifies as transient are retried; anything else (not found, permission denied, bad
input) is raised at once, so a permanent failure fails fast. The KFP task retry policy
(``pipelines/task_settings.py``) is the outer layer: it reruns the whole step after these give up.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")

logger = logging.getLogger(__name__)
logger.addHandler(logging.NullHandler())


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to retry.

    Attributes:
        attempts: Total attempts, the first included (1 = no retry).
        initial_delay_s: Wait before the second attempt; doubled each time after.
        max_delay_s: Upper bound of one wait.
    """

    attempts: int = 4
    initial_delay_s: float = 0.5
    max_delay_s: float = 8.0

    def delays(self) -> list[float]:
        """The waits between attempts, e.g. ``[0.5, 1.0, 2.0]`` for 4 attempts."""
        return [min(self.initial_delay_s * 2**index, self.max_delay_s) for index in range(self.attempts - 1)]


def call_with_retries(
    call: Callable[[], T],
    is_transient: Callable[[BaseException], bool],
    action: str,
    policy: RetryPolicy | None = None,
) -> T:
    """Run ``call``; on a transient error wait (exponential backoff) and try again, up to ``policy.attempts``.

    Args:
        call: The operation; it must be safe to repeat (a read, or a write that checks before it creates).
        is_transient: Whether an error is worth retrying.
        action: What is attempted, for the log line of each retry (must hold no secret).
        policy: Attempts and delays (default ``RetryPolicy()``).

    Returns:
        What ``call`` returns.

    Raises:
        Exception: the last error, when it is not transient or the attempts are used up.
    """
    policy = policy or RetryPolicy()
    delays = policy.delays()
    for attempt in range(1, policy.attempts + 1):
        try:
            return call()
        except Exception as error:
            if attempt == policy.attempts or not is_transient(error):
                raise
            delay = delays[attempt - 1]
            logger.warning(
                "%s failed (attempt %d of %d, transient: %s); retrying in %.1fs",
                action,
                attempt,
                policy.attempts,
                type(error).__name__,
                delay,
            )
            time.sleep(delay)
    raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises
