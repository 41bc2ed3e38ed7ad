"""What a conId stands for at the fake gateway: a stock, or one of its options."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from rules.model import Right
from service.ports import LegKey


@dataclass(frozen=True)
class Instrument:
    """What a conId stands for: the stock, or one of its options."""

    con_id: int
    symbol: str
    sec_type: str  # STK | OPT
    expiry: date | None = None
    right: Right | None = None
    strike: Decimal | None = None
    trading_class: str = ""  # its options' class (SPX, SPXW): the symbol's when empty

    @property
    def leg(self) -> LegKey:
        assert self.expiry is not None
        assert self.right is not None
        assert self.strike is not None
        return LegKey(self.symbol, self.expiry, self.right, self.strike)

    def contract_fields(self) -> list[object]:
        """conId .. tradingClass, as messages that carry a contract list them."""
        if self.sec_type == "STK":
            return [self.con_id, self.symbol, "STK", "", 0.0, "", "", "SMART", "ARCA", "USD",
                    self.symbol, self.symbol]  # fmt: skip
        return [
            self.con_id, self.symbol, "OPT", f"{self.expiry:%Y%m%d}", self.strike,
            self.right.value if self.right else "", "100", "SMART", "", "USD",
            self.local_symbol(), self.trading_class or self.symbol,
        ]  # fmt: skip

    def fields_without_primary(self) -> list[object]:
        """:meth:`contract_fields` without the primary exchange, as positions and
        executions list them."""
        cf = self.contract_fields()
        return [*cf[:8], *cf[9:]]

    def local_symbol(self) -> str:
        if self.sec_type == "STK":
            return self.symbol
        assert self.strike is not None
        assert self.right is not None
        strike = int(self.strike * 1000)
        root = self.trading_class or self.symbol  # (OCC's root: SPXW for SPX's weeklies)
        return f"{root:<6}{self.expiry:%y%m%d}{self.right.value}{strike:08d}"
