"""The account, for ``positions sync``: the option positions it holds, with their average
costs, and the executions of option contracts IB still has.

IB's figures, as ib_async passes them on:

- ``reqPositions`` answers a ``position`` message per contract held: the account, the
  contract, the position (signed: short < 0) and ``avgCost``, the average cost of **one
  contract, the multiplier included**: an option sold at 1.575 a share with a multiplier
  of 100 has an avgCost of 157.5 (positive for a short as for a long), commissions
  included. (IB's TWS API guide, "Positions":
  https://interactivebrokers.github.io/tws-api/positions.html; ib_async's
  ``Position(account, contract, position, avgCost)``, ``IB.positions``; that the figure
  carries the multiplier is seen in erdewit/ib_insync#175, where a future filled at
  1477.3 shows an average cost of 147732.37, as IB delivers it.) ib_async asks for the
  positions on connecting and keeps them current: :meth:`holdings` reads its copy.
- ``reqExecutions`` answers an ``execDetails`` per execution of the day (TWS keeps up
  to seven days when so set): its ``side`` is ``BOT`` or ``SLD``, ``shares`` the
  contracts filled and ``price`` the price **a share** (without the multiplier). (IB's
  TWS API reference, ``Execution``:
  https://interactivebrokers.github.io/tws-api/classIBApi_1_1Execution.html.)

IB's floats become Decimals here by their shortest text (``Decimal(str(x))``), so
157.5 is 157.5 exactly.
"""

from __future__ import annotations

import math
from decimal import Decimal

from brokers.ib.client import IbClient
from brokers.ib.convert import _price, leg_of, multiplier_of
from service.ports import Holding, LegFill


class AccountMixin(IbClient):
    async def holdings(self) -> list[Holding]:
        """The account's option positions (stocks and others are not spreadwatch's)."""
        out = []
        for p in self.ib.positions(self.account):
            leg = leg_of(p.contract)
            if leg is None or not p.position:
                continue
            cost = Decimal(str(p.avgCost)) if math.isfinite(p.avgCost) else Decimal(0)
            out.append(
                Holding(leg, p.contract.conId, int(p.position), cost, multiplier_of(p.contract),
                        p.contract.tradingClass)
            )  # fmt: skip
        return sorted(out, key=lambda h: h.leg)

    async def leg_fills(self) -> list[LegFill]:
        """The executions of option contracts IB has (a combo's legs' among them: a BAG's
        own execution is not a contract's)."""
        out = []
        for f in await self.ib.reqExecutionsAsync():
            ex = f.execution
            leg, price = leg_of(f.contract), _price(ex.price)
            if leg is None or price is None or ex.side not in ("BOT", "SLD"):
                continue
            shares = int(ex.shares) * (1 if ex.side == "BOT" else -1)
            out.append(LegFill(ex.execId, f.contract.conId, leg, shares, price, ex.time))
        return out
