"""The account's trading lease, as the service needs it: where every daemon of an account
looks (the database) to know which one trades (issue 19's standby)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol


@dataclass(frozen=True)
class LeaseHeld:
    """The lease as the database has it now: who, which epoch, since when, and seconds
    left (0 or less: lapsed, free to take)."""

    holder: str
    epoch: int
    acquired_at: datetime
    left: float

    @property
    def live(self) -> bool:
        return self.left > 0


class LeaseBoard(Protocol):
    """One process holds the lease and trades; its epoch fences the orders written (the
    database refuses an order of an epoch that is not live: migration 0008)."""

    async def acquire_lease(self, holder: str, ttl: float) -> int | None:
        """The lease for ``holder`` for ``ttl`` seconds if it is free (lapsed, or held under
        ``holder``'s own name): its new epoch; None while another holds it."""
        ...

    async def renew_lease(self, holder: str, epoch: int, ttl: float) -> bool:
        """``ttl`` seconds more from now; False: not held by ``holder`` at ``epoch`` now."""
        ...

    async def release_lease(self, holder: str, epoch: int) -> None:
        """Let it lapse now (a clean stop: a standby takes over at its next look)."""
        ...

    async def lease_held(self) -> LeaseHeld | None:
        """The lease's row now (None: never taken)."""
        ...
