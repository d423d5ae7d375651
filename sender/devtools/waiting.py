"""The one way to wait for something another process does: poll a condition until a deadline.

Tests, the throwaway servers and the benches use it instead of fixed sleeps,
so a fast machine does not wait and a slow one does not fail early.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_until(
    condition: Callable[[], T],
    timeout: float,
    what: str,
    *,
    step: float = 0.1,
    ignoring: tuple[type[Exception], ...] = (),
) -> T:
    """Return the condition's first truthy value; raise `TimeoutError` naming `what` if none came.

    Exceptions listed in `ignoring` count as "not yet" (a server still
    starting refuses connections); any other exception ends the wait.
    """
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while True:
        try:
            value = condition()
        except ignoring as error:
            last_error = error
        else:
            if value:
                return value
        if time.monotonic() >= deadline:
            raise TimeoutError(f"timed out after {timeout:g}s waiting for {what}") from last_error
        time.sleep(step)
