"""Contracts: each leg's option qualified once (its underlying's stock too), and the
BAG of a closing combo by the legs' conIds."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime

from ib_async import IB, ComboLeg, Contract, Option, Stock

from brokers.ib.client import IbClient
from brokers.ib.convert import _leg_text
from rules.model import Position
from service.errors import BrokerRefused
from service.ports import Admitted, ComboOrder, LegKey, StoredPosition, leg_key
from service.settings import IbSettings


class ContractsMixin(IbClient):
    def __init__(self, settings: IbSettings, ib: IB, now: Callable[[], datetime]) -> None:
        super().__init__(settings, ib, now)
        self._contracts: dict[LegKey, Contract] = {}
        self._legs: dict[int, LegKey] = {}  # conId -> leg
        self._stocks: dict[str, Contract] = {}  # underlying -> its stock contract
        self._stock_ids: dict[int, str] = {}  # conId -> underlying
        self._ambiguous: dict[LegKey, str] = {}  # a leg IB knows as several contracts -> why
        self._classes: dict[LegKey, str] = {}  # a leg -> the trading class its position names

    async def qualify(self, legs: Sequence[LegKey]) -> dict[LegKey, int]:
        """Each leg's conId (qualified once, then kept); refused when IB knows one not."""
        unknown = await self._qualify(legs)
        if unknown:
            raise BrokerRefused(self.unknown_reason(unknown[0]))
        return {leg: self._contracts[leg].conId for leg in legs}

    async def admit(self, positions: Sequence[StoredPosition]) -> Admitted:
        """Every position's legs qualified in one batch (in the trading class the position
        names); a position with a leg IB knows not (it answers error 200, "No security
        definition has been found", and ib_async's ``qualifyContractsAsync`` gives None in
        that leg's place) or knows as several contracts is refused, with the leg, and so is
        one naming a leg already watched in another class; the others are admitted with
        their legs' conIds."""
        keys: dict[str, list[LegKey]] = {}
        refused: dict[str, str] = {}
        for s in positions:
            legs = [leg_key(s.position, i) for i in range(len(s.position.legs))]
            clash = next((leg for leg in legs if self._class_clash(leg, s.position)), None)
            if clash is None:
                self._classes.update(dict.fromkeys(legs, s.position.trading_class))
                keys[s.position.id] = legs
            else:
                refused[s.position.id] = (
                    f"{_leg_text(clash)} is watched in trading class "
                    f"{self._classes[clash] or '(unnamed)'} already, and this position names "
                    f"{s.position.trading_class or '(unnamed)'}: one leg is watched in one "
                    "class only; close or void one of them by hand"
                )
        unknown = set(await self._qualify([leg for legs in keys.values() for leg in legs]))
        con_ids: dict[str, dict[int, int]] = {}
        for pid, legs in keys.items():
            missing = [leg for leg in legs if leg in unknown]
            if missing:
                refused[pid] = self.unknown_reason(missing[0])
            else:
                con_ids[pid] = {i: self._contracts[leg].conId for i, leg in enumerate(legs)}
        return Admitted(con_ids, refused)

    def _class_clash(self, leg: LegKey, position: Position) -> bool:
        """Whether ``leg`` is watched already in another class than ``position`` names."""
        return self._classes.get(leg, position.trading_class) != position.trading_class

    async def _qualify(self, legs: Sequence[LegKey]) -> list[LegKey]:
        """Qualify the legs not qualified yet (their stocks too); the legs IB knows not."""
        todo = list(dict.fromkeys(leg for leg in legs if leg not in self._contracts))
        if not todo:
            return []
        asked = [
            Option(
                leg.underlying,
                f"{leg.expiry:%Y%m%d}",
                float(leg.strike),
                leg.right.value,
                "SMART",
                multiplier="100",  # (a standard contract: not an adjusted or mini one)
                currency="USD",
                tradingClass=self._classes.get(leg, ""),  # (narrows SPX to SPX or SPXW)
            )
            for leg in todo
        ]
        symbols = sorted({leg.underlying for leg in todo} - set(self._stocks))
        stocks = [Stock(symbol, "SMART", "USD") for symbol in symbols]
        for stock in await self.ib.qualifyContractsAsync(*stocks):
            if isinstance(stock, Contract) and stock.conId:
                self._stocks[stock.symbol] = stock
                self._stock_ids[stock.conId] = stock.symbol
        # (returnAll: where several contracts match, ib_async gives them all, not None)
        done = await self.ib.qualifyContractsAsync(*asked, returnAll=True)
        unknown = []
        for leg, contract in zip(todo, done, strict=True):  # (None where IB knows none)
            if isinstance(contract, list):  # SPX and SPXW on a third Friday...
                classes = sorted({c.tradingClass for c in contract if c is not None})
                self._ambiguous[leg] = (
                    f"ambiguous at IB: {_leg_text(leg)} is {len(contract)} contracts "
                    f"(trading classes {', '.join(classes)}); spreadwatch cannot tell which "
                    "is held: void the position and add it again with its trading_class, or "
                    "close it by hand"
                )
                unknown.append(leg)
                continue
            self._ambiguous.pop(leg, None)
            if not isinstance(contract, Contract) or not contract.conId:
                unknown.append(leg)
                continue
            self._contracts[leg] = contract
            self._legs[contract.conId] = leg
        return unknown

    def unknown_reason(self, leg: LegKey) -> str:
        """Why IB could not qualify ``leg``: unknown, or ambiguous (several contracts)."""
        return self._ambiguous.get(leg, f"contract unknown to IB: {_leg_text(leg)}")

    def _bag(self, order: ComboOrder) -> Contract:
        legs = []
        for combo_leg in order.legs:
            contract = self._contracts[combo_leg.leg]
            legs.append(
                ComboLeg(
                    conId=contract.conId,
                    ratio=combo_leg.ratio,
                    action=combo_leg.action.value,
                    exchange="SMART",
                )
            )
        first = order.legs[0].leg
        return Contract(
            secType="BAG", symbol=first.underlying, exchange="SMART", currency="USD",
            comboLegs=legs,
        )  # fmt: skip
