"""Dry run: the order manager that records each close it would make and sends nothing."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from service.errors import StoreRefused
from service.manager import CloseRequest, OrderManager
from service.orders import NotAClose


class DryRunManager(OrderManager):
    """Records each close it would make, once per position, and sends nothing."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.reported: set[str] = set()

    async def close_many(
        self,
        requests: Sequence[CloseRequest],
        written: Callable[[], None] | None = None,
    ) -> list[str | NotAClose | StoreRefused | None]:
        for req in requests:
            pid = req.stored.position.id
            if req.at.regular_hours and pid not in self.reported:
                self.reported.add(pid)
                quotes = {"would_close": True, **(req.quotes or {})}
                await self.store.record_decision(pid, req.decision, quotes)
        return [None] * len(requests)
