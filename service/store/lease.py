"""The trading lease on PostgreSQL (migration 0008): who trades the database's account.

One row: its holder, its epoch (raised at every change of holder: the fencing
token every close order is written with) and when it expires, by the
database's clock (``clock_timestamp()``), so no two machines' clocks are
compared. These statements are the lease's own: they are not fenced (a standby
runs them), and each is one round trip on a connection of the pool.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.exc import DBAPIError

from service.errors import StoreUnavailable
from service.ports import LeaseHeld
from service.store import driver
from service.store.positions import SqlBase

# Taken when it has expired, or when its holder has this process's name (a restart of the
# same instance: it need not wait out its own lease); the epoch rises either way.
ACQUIRE = """
INSERT INTO trading_lease AS l (id, holder, epoch, expires_at, acquired_at)
VALUES (1, $1, 1, clock_timestamp() + make_interval(secs => $2), clock_timestamp())
ON CONFLICT (id) DO UPDATE SET holder = EXCLUDED.holder, epoch = l.epoch + 1,
    expires_at = EXCLUDED.expires_at, acquired_at = EXCLUDED.acquired_at
WHERE l.expires_at <= clock_timestamp() OR l.holder = $1
RETURNING epoch
"""
RENEW = """
UPDATE trading_lease SET expires_at = clock_timestamp() + make_interval(secs => $3)
WHERE id = 1 AND holder = $1 AND epoch = $2 AND expires_at > clock_timestamp()
RETURNING epoch
"""
RELEASE = """
UPDATE trading_lease SET expires_at = clock_timestamp()
WHERE id = 1 AND holder = $1 AND epoch = $2 AND expires_at > clock_timestamp()
"""
HELD = """
SELECT holder, epoch, acquired_at,
       extract(epoch FROM expires_at - clock_timestamp())::float8 AS left_s
FROM trading_lease WHERE id = 1
"""


class SqlLease(SqlBase):
    """The lease's statements (:class:`service.ports.LeaseBoard`): not fenced, never guarded."""

    async def _one(self, what: str, statement: str, *args: object) -> Any:
        try:
            async with driver.driver(self._engine, f"trading lease: {what}") as conn:
                return await conn.fetchrow(statement, *args)
        except (DBAPIError, OSError, TimeoutError) as exc:
            raise StoreUnavailable(f"trading lease: {what}: database unavailable: {exc}") from exc

    async def acquire_lease(self, holder: str, ttl: float) -> int | None:
        """The lease for ``holder`` for ``ttl`` seconds, if free: its new epoch; else None."""
        row = await self._one("acquire", ACQUIRE, holder, ttl)
        return None if row is None else int(row["epoch"])

    async def renew_lease(self, holder: str, epoch: int, ttl: float) -> bool:
        """Held ``ttl`` seconds more; False: ``holder`` no longer holds it at ``epoch``."""
        return await self._one("renew", RENEW, holder, epoch, ttl) is not None

    async def release_lease(self, holder: str, epoch: int) -> None:
        """Let it lapse now (a clean stop: a standby takes over at its next look)."""
        await self._one("release", RELEASE, holder, epoch)

    async def lease_held(self) -> LeaseHeld | None:
        """The lease's row (None: never taken)."""
        r = await self._one("read", HELD)
        if r is None:
            return None
        return LeaseHeld(str(r["holder"]), int(r["epoch"]), r["acquired_at"], float(r["left_s"]))
