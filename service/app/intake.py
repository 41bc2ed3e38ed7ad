"""The intake: what a human changes in the store, taken up by the running daemon.

The admin commands (``positions add``, ``import``, ``sync --apply``, ``close``,
``void``, ``set-book``, ``resume``) write to the store and, in the same
transaction, notify (PostgreSQL ``NOTIFY``). The intake listens
(:meth:`Intake.listening`), and polls every ``poll`` seconds as the fallback
(:meth:`Intake.polling`): a notification missed while the listening
connection was lost is only late. Either way it compares the store's controls
(:meth:`service.ports.PositionStore.controls`) with what the daemon watches,
and applies the difference (:meth:`Intake.refresh`):

- a position new to it is admitted (its book known, its contracts known to
  the broker) and watched, or quarantined;
- a close asked by hand makes the exit state ``manual``: the next evaluation
  on usable quotes closes all that remains (reason ``manual``);
- a void (or one closed out) is no longer watched;
- a book changed re-arms the exit rules under the new book;
- a position resumed by hand is traded again.

**Quarantine** (:meth:`Intake.quarantine`): a position that cannot be watched
or traded safely (a book the daemon does not know, a contract the broker does
not know, holdings that differ, a leg whose market data the broker refuses:
:meth:`Intake.leg_problem`) is marked ``needs attention`` in the store, said
in one line with its id (stdout, log, alert, metric) and sends no order;
every other position goes on.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping, Sequence
from dataclasses import replace

from rules.books import BookPolicy
from rules.machine import Phase
from service.app.book import PositionBook
from service.app.monitor import Monitor
from service.app.readmodel import ReadModel
from service.errors import StoreRefused, StoreUnavailable
from service.logs import get_logger
from service.orders.policy import ClosePolicy
from service.ports import (
    EVERY_POSITION,
    Admits,
    LegKey,
    PositionControl,
    Store,
    StoredPosition,
)

_log = get_logger("spreadwatch.intake")
EVERY = EVERY_POSITION  # a change to any position (or to many): look at all of them
RELISTEN = 2.0  # seconds before listening again after the connection was lost


def missing_book(book: str) -> str:
    return f"book {book!r} is not in the books file"


class Intake:
    def __init__(
        self,
        store: Store,
        venue: Admits,
        book: PositionBook,
        monitor: Monitor,
        policy: ClosePolicy,
        views: ReadModel,
        books: Mapping[str, BookPolicy],
    ) -> None:
        self.store = store
        self.venue = venue
        self.book = book
        self.monitor = monitor
        self.policy = policy
        self.views = views
        self.books = books
        self.outside: dict[str, str] = {}  # quarantined and not watched: position -> why
        self._dirty: set[str] = set()
        self._troubled: dict[str, str] = {}  # position -> why the broker cannot serve it
        self._woken = asyncio.Event()

    # Admission --------------------------------------------------------------------------

    async def admit(self, stored: Sequence[StoredPosition]) -> list[StoredPosition]:
        """The positions of ``stored`` that can be watched: their book known, their
        contracts known to the broker (conIds stored); the others quarantined."""
        known = []
        for s in stored:
            if s.position.book in self.books:
                known.append(s)
            else:
                await self.quarantine(s.position.id, missing_book(s.position.book), watched=False)
        admitted = await self.venue.admit(known)
        for pid, why in admitted.refused.items():
            await self.quarantine(pid, why, watched=False)
        for pid, con_ids in admitted.con_ids.items():
            await self.store.record_contract_ids(pid, con_ids)
        out = [s for s in known if s.position.id not in admitted.refused]
        for s in out:
            if s.attention is not None:  # said before (a restart): still no order
                self.outside.pop(s.position.id, None)
                self.hold(s.position.id, s.attention)
            else:
                self._release(s.position.id, "resumed by hand")
        return out

    async def quarantine(self, position_id: str, why: str, *, watched: bool = True) -> None:
        """No order for the position until a human looks: marked in the store (once per
        reason), said once, counted; ``watched``: it stays in the book (its legs count
        in the holdings it implies)."""
        if not watched:
            self.outside[position_id] = why
        self.hold(position_id, why)
        with contextlib.suppress(StoreRefused):  # (gone meanwhile: nothing to mark)
            await self.store.mark_attention(position_id, why)

    def hold(self, position_id: str, why: str) -> None:
        """No decision for the position from now on; said (log, read model) once."""
        self.policy.blocked[position_id] = why
        if self.views.attention.get(position_id) != why:
            self.views.needs_attention(position_id, why)
            _log.error("position.needs_attention", position_id=position_id, detail=why)

    def _release(self, position_id: str, how: str) -> None:
        """A human has looked (``how``: resumed, void...): decisions again; the episode,
        if there was one, said resolved."""
        self.policy.release(position_id)
        self.views.resolved(position_id, how)
        self.outside.pop(position_id, None)

    def leg_problem(self, leg: LegKey, why: str) -> None:
        """The broker cannot serve ``leg`` (its market data refused, its contract unknown):
        each position holding it is quarantined, where it would wait for quotes that never
        come. Cheap, no I/O (the feed calls it): taken up by :meth:`applying`."""
        for pid in self.book.holders_of(leg):
            if pid not in self.views.attention:  # (its other legs: the same episode)
                self._troubled.setdefault(pid, why)
        self._woken.set()

    # Taking changes up ------------------------------------------------------------------

    def changed(self, position_id: str) -> None:
        """A change to take up (the store's listener calls this; cheap, no I/O)."""
        self._dirty.add(position_id)
        self._woken.set()

    async def refresh(self, ids: set[str] | None = None) -> None:
        """Take up what changed for ``ids`` (every position when None)."""
        controls = await self.store.controls()
        watches = self.book.watches
        look = set(controls) | set(watches) if ids is None else ids
        new = [
            pid
            for pid in look
            if pid in controls
            and pid not in watches
            and not (pid in self.outside and controls[pid].attention is not None)
        ]
        if new:
            added = await self.admit(await self.store.positions(sorted(new)))
            self.book.load(added, {})
            self.monitor.positions_changed()
            for s in added:
                _log.info("position.added", position_id=s.position.id)
                self.monitor.recheck(s.position.id)
        for pid in sorted(look & set(watches)):
            if pid not in controls:  # void, or closed meanwhile
                if watches[pid].state.phase is not Phase.CLOSED:
                    self._drop(pid)
                continue
            await self._update(pid, controls[pid])
        for pid in sorted(look & set(self.outside) - set(controls)):
            self._release(pid, "void")  # a quarantined position voided

    def _drop(self, position_id: str) -> None:
        self.book.drop(position_id)
        self._release(position_id, "void or closed")
        self.monitor.positions_changed()
        _log.info("position.dropped", position_id=position_id, detail="void or closed")

    async def _update(self, position_id: str, control: PositionControl) -> None:
        stored = self.book.stored[position_id]
        watch = self.book.watches[position_id]
        if control.book != stored.position.book:
            (fresh,) = await self.store.positions([position_id])
            if control.book not in self.books:
                await self.quarantine(position_id, missing_book(control.book))
            else:
                self.book.rebook(fresh, self.books[control.book])
                _log.info("position.rebooked", position_id=position_id, book=control.book)
                self.monitor.recheck(position_id)
        if control.manual_close is not None and not watch.state.manual:
            watch.state = replace(watch.state, manual=True)
            _log.info("position.close_asked", position_id=position_id, detail=control.manual_close)
            self.monitor.recheck(position_id)
        if control.attention is None and position_id in self.views.attention:
            self._release(position_id, "resumed by hand")
            _log.info("position.resumed", position_id=position_id)
            self.monitor.recheck(position_id)

    # Running ----------------------------------------------------------------------------

    async def listening(self) -> None:
        """Listen for the store's notifications until cancelled; listen again after the
        connection is lost (what changed meanwhile: the poll, and a look at everything
        once listening again)."""
        while True:
            try:
                await self.store.listen(self.changed)
            except StoreUnavailable as exc:
                _log.warning("changes.listen_lost", detail=str(exc))
            await asyncio.sleep(RELISTEN)

    async def polling(self, every: float) -> None:
        """Look at everything every ``every`` seconds (a missed notification is late only)."""
        while True:
            await asyncio.sleep(every)
            self.changed(EVERY)

    async def applying(self) -> None:
        """Take up each batch of changes as it comes."""
        while True:
            await self._woken.wait()
            self._woken.clear()
            dirty, self._dirty = self._dirty, set()
            troubled, self._troubled = self._troubled, {}
            try:
                for pid in list(troubled):
                    await self.quarantine(pid, troubled[pid])
                    del troubled[pid]
                await self.refresh(None if EVERY in dirty else dirty)
            except (StoreUnavailable, StoreRefused) as exc:
                _log.warning("changes.refresh_failed", detail=str(exc))
                self._dirty |= dirty  # tried again on the next change or poll
                self._troubled = troubled | self._troubled
