"""Waiting for an API's asynchronous operations: poll until settled, bounded, never silent.

A provider's create or delete may only start the work (Streamkap's connector starting, an
Airbyte deletion job, Splendor's provisioning). The apply polls until the operation settles,
fails, or RECONCILER_OPERATION_TIMEOUT passes; each outcome is reported, a timeout with what
was last seen, so a CI log says what is still running rather than hanging or lying.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass

from reconciler.errors import RegistryError

TIMEOUT_ENV = "RECONCILER_OPERATION_TIMEOUT"
DEFAULT_TIMEOUT_S = 120.0


def operation_timeout() -> float:
    """Seconds an apply waits for one asynchronous operation (RECONCILER_OPERATION_TIMEOUT)."""
    raw = os.environ.get(TIMEOUT_ENV, "").strip()
    if not raw:
        return DEFAULT_TIMEOUT_S
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if value <= 0:
        raise RegistryError(f"{TIMEOUT_ENV} must be a number of seconds above 0, not {raw!r}")
    return value


@dataclass(frozen=True)
class Settled:
    """What the wait saw last: `state` as the API words it, after `polls` reads."""

    state: str
    polls: int


@dataclass(frozen=True)
class Waiter:
    """Polls with waits doubling from `first` up to `longest`; the first poll is at once.

    `sleep` and `clock` are injectable, so tests run timeouts on a fake clock.
    """

    timeout: float
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic
    first: float = 0.25
    longest: float = 5.0

    def until(self, poll: Callable[[], tuple[bool, str]], what: str) -> Settled:
        """Call `poll` until it says done; it returns (done, state) and raises on failure.

        On timeout: a RegistryError naming `what`, the last state and the bound.
        """
        deadline = self.clock() + self.timeout
        interval = self.first
        polls = 0
        while True:
            done, state = poll()
            polls += 1
            if done:
                return Settled(state, polls)
            left = deadline - self.clock()
            if left <= 0:
                raise RegistryError(
                    f"{what}: still {state} after {self.timeout:g} s ({TIMEOUT_ENV}); it may "
                    "finish on its own, the next run shows where it stands"
                )
            self.sleep(min(interval, left))
            interval = min(interval * 2, self.longest)
