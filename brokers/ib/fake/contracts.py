"""The fake gateway's instruments (conIds stable for the gateway's life, across
connections) and ``reqContractDetails``."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta
from decimal import Decimal

from brokers.ib.fake.base import GatewayBase, Session
from brokers.ib.fake.instrument import Instrument
from brokers.ib.fake.versions import (
    MIN_SERVER_VER_FRACTIONAL_SIZE_SUPPORT,
    MIN_SERVER_VER_SIZE_RULES,
    before,
    since,
)
from brokers.sim.market import SimMarket
from rules.clock import new_york
from rules.model import Right
from service.ports import Clock, LegKey


class ContractsMixin(GatewayBase):
    def __init__(self, market: SimMarket, clock: Clock, *, account: str, line_limit: int) -> None:
        super().__init__(market, clock, account=account, line_limit=line_limit)
        self._instruments: dict[tuple[object, ...], Instrument] = {}
        self._by_id: dict[int, Instrument] = {}
        # an underlying whose options come in several trading classes (SPX: the monthly SPX,
        # the weekly SPXW; both on a third Friday, SPXW alone on other days)
        self.classes: dict[str, tuple[str, ...]] = {}

    def instrument(
        self,
        symbol: str,
        sec_type: str,
        expiry: date | None = None,
        right: Right | None = None,
        strike: Decimal | None = None,
        trading_class: str = "",
    ) -> Instrument | None:
        """The instrument for a contract description, None if the market has no such (of
        several trading classes, the first that lists ``expiry`` unless one is named)."""
        if symbol not in self.market.underlyings or sec_type not in ("STK", "OPT"):
            return None
        if sec_type == "OPT" and (expiry is None or right is None or strike is None):
            return None
        if sec_type == "STK":  # a stock's contract may carry strike 0.0 (ib_async's default)
            expiry, right, strike = None, None, None
        elif symbol in self.classes:
            listing = self.classes_of(symbol, expiry)
            if trading_class and trading_class not in listing:
                return None
            trading_class = trading_class or listing[0]
        elif trading_class not in ("", symbol):
            return None
        else:
            trading_class = ""  # (one class, the symbol's own)
        key = (symbol, sec_type, expiry, right, None if strike is None else strike.normalize(),
               trading_class)  # fmt: skip
        found = self._instruments.get(key)
        if found is None:
            found = Instrument(700_000 + len(self._instruments), symbol, sec_type, expiry, right,
                               strike, trading_class)  # fmt: skip
            self._instruments[key] = found
            self._by_id[found.con_id] = found
        return found

    def classes_of(self, symbol: str, expiry: date | None) -> tuple[str, ...]:
        """The trading classes ``symbol``'s options of ``expiry`` come in (its own name, but
        where :attr:`classes` says more): all on a third Friday, the weekly ones else."""
        classes = self.classes.get(symbol, (symbol,))
        third_friday = expiry is not None and expiry.weekday() == 4 and 15 <= expiry.day <= 21
        return classes if third_friday or len(classes) == 1 else classes[1:]

    def _option(self, leg: LegKey) -> Instrument:
        found = self.instrument(leg.underlying, "OPT", leg.expiry, leg.right, leg.strike)
        assert found is not None
        return found

    def _stock_id(self, symbol: str) -> int:
        stock = self.instrument(symbol, "STK")
        assert stock is not None
        return stock.con_id

    def _describe(self, fields: list[str], at: int) -> Instrument | None:
        """The instrument of the 12 contract fields starting at ``fields[at]``."""
        con_id, symbol, sec_type, expiry, strike, right = fields[at : at + 6]
        if con_id not in ("", "0"):
            return self._by_id.get(int(con_id))
        try:
            day = (
                date.fromisoformat(f"{expiry[:4]}-{expiry[4:6]}-{expiry[6:8]}") if expiry else None
            )
            price = Decimal(strike) if strike else None
            if sec_type == "OPT" and not self.listed(day, price):
                return None
            return self.instrument(
                symbol, sec_type, day, Right(right[:1]) if right else None, price
            )
        except ValueError:
            return None

    def listed(self, expiry: date | None, strike: Decimal | None) -> bool:
        """An option IB lists: an expiry not past (New York's date) on a weekday, a strike
        on the half-dollar grid. IB answers any other (an expired expiry, strike 451.37,
        a Saturday) with 200, "No security definition has been found"."""
        if expiry is None or strike is None:
            return False
        today = self.clock.now().astimezone(new_york()).date()
        doubled = strike * 2
        return expiry >= today and expiry.weekday() < 5 and doubled == doubled.to_integral_value()

    def _contract_details(self, s: Session, fields: list[str]) -> None:
        """reqContractDetails: the contract's details; for an option with no strike, right
        or expiry (a chain query), every listed option that matches, as IB answers it
        (TWS API, "Option Chains": reqContractDetails "with the strike, right or expiry
        left out"); error 200 when nothing matches."""
        req_id = int(fields[2])
        con_id, symbol, sec_type, expiry, strike, right = fields[3:9]
        chain = sec_type == "OPT" and con_id in ("", "0")
        if chain and (not expiry or not right or strike in ("", "0", "0.0")):
            found = list(self._matching(symbol, expiry, strike, right))
        else:
            one = self._describe(fields, 3)
            found = [] if one is None else [one]
            asked = fields[14] if len(fields) > 14 else ""  # the trading class asked, if any
            if one is not None and one.sec_type == "OPT" and con_id in ("", "0"):
                # the class asked, else each class that has it (IB: an ambiguous description)
                each = [
                    self.instrument(one.symbol, "OPT", one.expiry, one.right, one.strike, c)
                    for c in ((asked,) if asked else self.classes_of(one.symbol, one.expiry))
                ]
                found = [f for f in each if f is not None]
        if not found:
            s.no_security(req_id)
            return
        for ins in found:
            self._send_details(s, req_id, ins)
        s.send(52, 1, req_id)

    def _matching(self, symbol: str, expiry: str, strike: str, right: str) -> Iterator[Instrument]:
        """The listed options of ``symbol`` a chain query's fields admit ("" admits any)."""
        if symbol not in self.market.underlyings:
            return
        expiries, strikes = self._chain(symbol)
        for day in expiries:
            if expiry and f"{day:%Y%m%d}" != expiry[:8]:
                continue
            for price in strikes:
                if strike not in ("", "0", "0.0") and price != Decimal(strike):
                    continue
                for side in (Right.CALL, Right.PUT):
                    if not right or side.value == right[:1]:
                        found = self.instrument(symbol, "OPT", day, side, price)
                        if found is not None:
                            yield found

    def _send_details(self, s: Session, req_id: int, ins: Instrument) -> None:
        option = ins.sec_type == "OPT"
        last = f"{ins.expiry:%Y%m%d} 16:00 US/Eastern" if option else ""
        s.send(
            10, before(MIN_SERVER_VER_SIZE_RULES, 8),  # the message's version, till 164
            req_id, ins.symbol, ins.sec_type, last, ins.strike or 0.0,
            ins.right.value if ins.right else "", "SMART", "USD", ins.local_symbol(),
            ins.symbol, ins.trading_class or ins.symbol, ins.con_id, 0.01 if option else 0.0001,
            before(MIN_SERVER_VER_SIZE_RULES, 1),  # mdSizeMultiplier
            "100" if option else "", "LMT,MKT", "SMART,CBOE", 1,
            self._stock_id(ins.symbol) if option else 0, ins.symbol,
            "" if option else "ARCA", f"{ins.expiry:%Y%m}" if option else "", "", "", "",
            "US/Eastern", "", "", "", "", 0, 1, ins.symbol, "STK" if option else "", "", "",
            "",  # stockType
            since(MIN_SERVER_VER_FRACTIONAL_SIZE_SUPPORT, before(MIN_SERVER_VER_SIZE_RULES, 1)),
            since(MIN_SERVER_VER_SIZE_RULES, 1, 1, 1),  # minSize .. suggestedSizeIncrement
        )  # fmt: skip

    def _option_chains(self, s: Session, fields: list[str]) -> None:
        """reqSecDefOptParams (reqId, underlying's symbol, futFopExchange, its secType, its
        conId): the chain's expirations and strikes, then the end (TWS API, "Option
        Chains"). As :meth:`listed` lists them: each weekday of the next eight weeks and
        each Friday of the year, and the half-dollar strikes within 30% of the price, with
        every option the gateway knows of (the positions' legs)."""
        req_id, symbol = int(fields[1]), fields[2]
        if symbol in self.market.underlyings:
            expiries, strikes = self._chain(symbol)
            s.send(75, req_id, "SMART", self._stock_id(symbol), symbol, "100", len(expiries),
                   *(f"{e:%Y%m%d}" for e in expiries), len(strikes),
                   *(float(k) for k in strikes))  # fmt: skip
        s.send(76, req_id)

    def _chain(self, symbol: str) -> tuple[list[date], list[Decimal]]:
        """The expirations and strikes listed for ``symbol`` (see :meth:`_option_chains`)."""
        today = self.clock.now().astimezone(new_york()).date()
        near = today + timedelta(weeks=8)
        days = (today + timedelta(days=n) for n in range(366))
        expiries = {d for d in days if d.weekday() == 4 or (d.weekday() < 5 and d < near)}
        spot = Decimal(str(self.market.spot(symbol)))
        strikes = {Decimal(k) / 2 for k in range(int(spot * Decimal("1.4")),
                                                 int(spot * Decimal("2.6")) + 1)}  # fmt: skip
        for ins in self._instruments.values():
            if ins.symbol == symbol and ins.expiry is not None and ins.strike is not None:
                expiries.add(ins.expiry)
                strikes.add(ins.strike)
        return sorted(e for e in expiries if e >= today), sorted(strikes)
