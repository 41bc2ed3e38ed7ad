"""The tables of the system of record, as SQLAlchemy 2 typed mappings.

The Alembic revisions in ``migrations/`` create them (never ``create_all``);
a test holds these mappings and the migrated database to the same shape.
Money and strikes are ``Numeric`` (Decimal in Python), times ``timestamptz``.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Numeric,
    SmallInteger,
    String,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from rules.machine import Phase
from service.ports import FINAL_ORDER_STATUSES as _FINAL
from service.ports import OrderStatus

MONEY = Numeric(18, 6)  # prices per share and per spread: exact, six decimals
CASH = Numeric(20, 4)  # dollars: P&L and commissions

# the domain's values, as the CHECKs and the SQL texts spell them (in declaration order)
POSITION_STATUSES = tuple(p.value for p in Phase)
ORDER_STATUSES = tuple(s.value for s in OrderStatus)
FINAL_ORDER_STATUSES = tuple(s.value for s in OrderStatus if s in _FINAL)
_CLOSED = Phase.CLOSED.value


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class Base(DeclarativeBase):
    metadata = MetaData(
        naming_convention={
            "ix": "ix_%(table_name)s_%(column_0_name)s",
            "uq": "uq_%(table_name)s_%(column_0_name)s",
            "ck": "ck_%(table_name)s_%(constraint_name)s",
            "fk": "fk_%(table_name)s_%(column_0_name)s",
            "pk": "pk_%(table_name)s",
        }
    )


class PositionRow(Base):
    __tablename__ = "positions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    account: Mapped[str] = mapped_column(String(32))
    book: Mapped[str] = mapped_column(String(64))
    underlying: Mapped[str] = mapped_column(String(16))
    strategy: Mapped[str] = mapped_column(String(16))
    multiplier: Mapped[int] = mapped_column(Integer)
    # the exchange's class of its options (SPX or SPXW); empty: the underlying's only one
    trading_class: Mapped[str] = mapped_column(String(16), server_default=text("''"))
    entry_credit: Mapped[Decimal] = mapped_column(MONEY)
    contracts: Mapped[int] = mapped_column(Integer)  # as opened
    remaining: Mapped[int] = mapped_column(Integer)
    stage: Mapped[int] = mapped_column(SmallInteger, server_default=text("0"))  # tranches done
    profit_closed: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    status: Mapped[str] = mapped_column(String(8), server_default=text(f"'{Phase.OPEN.value}'"))
    manual_close: Mapped[str | None] = mapped_column(Text)  # the reason, once asked for
    opened_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    initial_dte: Mapped[int] = mapped_column(Integer)
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    version: Mapped[int] = mapped_column(Integer, server_default=text("1"))
    # void: no longer watched nor traded (the reason a human gave, and when); never deleted
    void_reason: Mapped[str | None] = mapped_column(Text)
    voided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    attention: Mapped[str | None] = mapped_column(Text)  # why no order goes until a human looks

    __table_args__ = (
        CheckConstraint("contracts > 0", name="contracts_positive"),
        CheckConstraint("remaining >= 0 AND remaining <= contracts", name="remaining_in_range"),
        CheckConstraint(
            "profit_closed >= 0 AND profit_closed <= contracts", name="profit_closed_in_range"
        ),
        CheckConstraint("entry_credit > 0", name="credit_positive"),
        CheckConstraint("multiplier > 0", name="multiplier_positive"),
        CheckConstraint("stage >= 0", name="stage_not_negative"),
        CheckConstraint(_in("status", POSITION_STATUSES), name="status_known"),
        CheckConstraint(
            "strategy IN ('put_credit', 'call_credit', 'iron_condor')", name="strategy_known"
        ),
        CheckConstraint(f"(status = '{_CLOSED}') = (remaining = 0)", name="closed_iff_none_left"),
        CheckConstraint("(void_reason IS NULL) = (voided_at IS NULL)", name="void_when_voided"),
        Index("ix_positions_open", "status", postgresql_where=text(f"status <> '{_CLOSED}'")),
    )


class LegRow(Base):
    __tablename__ = "legs"

    position_id: Mapped[str] = mapped_column(
        ForeignKey("positions.id", ondelete="CASCADE"), primary_key=True
    )
    index: Mapped[int] = mapped_column(SmallInteger, primary_key=True)  # order in the position
    right: Mapped[str] = mapped_column(String(1))
    strike: Mapped[Decimal] = mapped_column(Numeric(12, 4))
    expiry: Mapped[date] = mapped_column(Date)
    side: Mapped[str] = mapped_column(String(5))
    con_id: Mapped[int | None] = mapped_column(BigInteger)  # the broker's contract id

    __table_args__ = (
        CheckConstraint("\"right\" IN ('C', 'P')", name="right_known"),
        CheckConstraint("side IN ('short', 'long')", name="side_known"),
        CheckConstraint("strike > 0", name="strike_positive"),
    )


class CloseOrderRow(Base):
    __tablename__ = "close_orders"

    order_ref: Mapped[str] = mapped_column(String(96), primary_key=True)
    position_id: Mapped[str] = mapped_column(ForeignKey("positions.id"), index=True)
    stage: Mapped[int | None] = mapped_column(SmallInteger)  # the tranche, for a profit close
    attempt: Mapped[int] = mapped_column(Integer)
    reason: Mapped[str] = mapped_column(String(16))
    label: Mapped[str] = mapped_column(Text)
    target: Mapped[Decimal | None] = mapped_column(Numeric(8, 4))
    quantity: Mapped[int] = mapped_column(Integer)
    limit_price: Mapped[Decimal | None] = mapped_column(MONEY)
    status: Mapped[str] = mapped_column(
        String(16), server_default=text(f"'{OrderStatus.INTENT.value}'")
    )
    filled: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    avg_price: Mapped[Decimal | None] = mapped_column(MONEY)
    # the exact sum of price x quantity over the fills: avg_price = paid / filled, rounded once
    paid: Mapped[Decimal] = mapped_column(Numeric(24, 6), server_default=text("0"))
    broker_order_id: Mapped[int | None] = mapped_column(BigInteger)
    perm_id: Mapped[int | None] = mapped_column(BigInteger)
    # the trading lease's epoch its writer held (migration 0008: the database refuses an
    # order of an epoch not live; None: written by no daemon, while none holds the lease)
    lease_epoch: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )

    __table_args__ = (
        CheckConstraint("quantity > 0", name="quantity_positive"),
        CheckConstraint("filled >= 0 AND filled <= quantity", name="filled_in_range"),
        CheckConstraint(_in("status", ORDER_STATUSES), name="status_known"),
        # at most one close order per position is live: a database invariant
        Index(
            "ix_close_orders_live",
            "position_id",
            unique=True,
            postgresql_where=text(f"NOT ({_in('status', FINAL_ORDER_STATUSES)})"),
        ),
    )


class FillRow(Base):
    __tablename__ = "fills"

    exec_id: Mapped[str] = mapped_column(String(64), primary_key=True)  # the broker's
    order_ref: Mapped[str] = mapped_column(ForeignKey("close_orders.order_ref"), index=True)
    quantity: Mapped[int] = mapped_column(Integer)  # spreads
    price: Mapped[Decimal] = mapped_column(MONEY)  # debit per spread
    commission: Mapped[Decimal | None] = mapped_column(CASH)
    time: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    __table_args__ = (CheckConstraint("quantity > 0", name="quantity_positive"),)


class FillCommissionRow(Base):
    """A commission report added to a fill, kept by its id: added once (IB sends one per
    leg execution, after it, and again on every reqExecutions)."""

    __tablename__ = "fill_commissions"

    report_id: Mapped[str] = mapped_column(String(64), primary_key=True)  # IB: the leg's execId
    exec_id: Mapped[str] = mapped_column(ForeignKey("fills.exec_id"), index=True)
    amount: Mapped[Decimal] = mapped_column(CASH)


class ExitEventRow(Base):
    """The append-only audit trail: every decision and change, with what it was decided on."""

    __tablename__ = "exit_events"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    position_id: Mapped[str] = mapped_column(ForeignKey("positions.id"), index=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    kind: Mapped[str] = mapped_column(String(24))  # imported, decision, filled, manual close...
    reason: Mapped[str | None] = mapped_column(String(16))
    label: Mapped[str | None] = mapped_column(Text)
    order_ref: Mapped[str | None] = mapped_column(String(96))
    mark: Mapped[Decimal | None] = mapped_column(MONEY)
    pnl: Mapped[Decimal | None] = mapped_column(CASH)
    pct_of_max: Mapped[Decimal | None] = mapped_column(Numeric(10, 4))
    contracts_closed: Mapped[int | None] = mapped_column(Integer)
    contracts_remaining: Mapped[int | None] = mapped_column(Integer)
    quotes: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    detail: Mapped[str | None] = mapped_column(Text)


class VenueBindingRow(Base):
    """The venue (and account) a database's records are of: one row, written by the first
    ``run`` (see migration 0004)."""

    __tablename__ = "venue_binding"

    id: Mapped[int] = mapped_column(SmallInteger, primary_key=True, server_default=text("1"))
    venue: Mapped[str] = mapped_column(String(64))
    bound_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    __table_args__ = (CheckConstraint("id = 1", name="one_row"),)


class TradingLeaseRow(Base):
    """Who trades the database's account, its epoch and until when (migration 0008, where
    the trigger that fences close orders by it is)."""

    __tablename__ = "trading_lease"

    id: Mapped[int] = mapped_column(SmallInteger, primary_key=True, server_default=text("1"))
    holder: Mapped[str] = mapped_column(String(200))
    epoch: Mapped[int] = mapped_column(BigInteger)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    acquired_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        CheckConstraint("id = 1", name="one_row"),
        CheckConstraint("epoch > 0", name="epoch_positive"),
    )


__all__ = [
    "FINAL_ORDER_STATUSES",
    "ORDER_STATUSES",
    "POSITION_STATUSES",
    "Base",
    "CloseOrderRow",
    "ExitEventRow",
    "FillRow",
    "LegRow",
    "PositionRow",
    "TradingLeaseRow",
    "VenueBindingRow",
]
