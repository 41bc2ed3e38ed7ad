"""Contracts: each leg's option qualified once (its underlying's stock too), and the
BAG of a closing combo by the legs' conIds."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime

from ib_async import IB, ComboLeg, Contract, Option, Stock

from brokers.ib.client import IbClient
from brokers.ib.convert import _leg_text
from service.errors import BrokerRefused
from service.ports import ComboOrder, LegKey
from service.settings import IbSettings


class ContractsMixin(IbClient):
    def __init__(self, settings: IbSettings, ib: IB, now: Callable[[], datetime]) -> None:
        super().__init__(settings, ib, now)
        self._contracts: dict[LegKey, Contract] = {}
        self._legs: dict[int, LegKey] = {}  # conId -> leg
        self._stocks: dict[str, Contract] = {}  # underlying -> its stock contract
        self._stock_ids: dict[int, str] = {}  # conId -> underlying

    async def qualify(self, legs: Sequence[LegKey]) -> dict[LegKey, int]:
        """Each leg's conId (qualified once, then kept)."""
        todo = [leg for leg in legs if leg not in self._contracts]
        if todo:
            asked = [
                Option(
                    leg.underlying,
                    f"{leg.expiry:%Y%m%d}",
                    float(leg.strike),
                    leg.right.value,
                    "SMART",
                    currency="USD",
                )
                for leg in todo
            ]
            symbols = sorted({leg.underlying for leg in todo} - set(self._stocks))
            stocks = [Stock(symbol, "SMART", "USD") for symbol in symbols]
            for stock in await self.ib.qualifyContractsAsync(*stocks):
                if isinstance(stock, Contract) and stock.conId:
                    self._stocks[stock.symbol] = stock
                    self._stock_ids[stock.conId] = stock.symbol
            done = await self.ib.qualifyContractsAsync(*asked)
            for leg, contract in zip(todo, done, strict=False):
                if not isinstance(contract, Contract) or not contract.conId:
                    raise BrokerRefused(f"{_leg_text(leg)}: IB knows no such option")
                self._contracts[leg] = contract
                self._legs[contract.conId] = leg
        return {leg: self._contracts[leg].conId for leg in legs}

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
