"""The system of record: positions, legs, close orders, fills and exit events.

exit_events is append-only: a trigger refuses UPDATE and DELETE on it.

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

APPEND_ONLY = """
CREATE FUNCTION exit_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'exit_events is append-only: % refused', TG_OP;
END;
$$
"""


def upgrade() -> None:
    op.create_table(
        "positions",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("account", sa.String(length=32), nullable=False),
        sa.Column("book", sa.String(length=64), nullable=False),
        sa.Column("underlying", sa.String(length=16), nullable=False),
        sa.Column("strategy", sa.String(length=16), nullable=False),
        sa.Column("multiplier", sa.Integer(), nullable=False),
        sa.Column("entry_credit", sa.Numeric(precision=18, scale=6), nullable=False),
        sa.Column("contracts", sa.Integer(), nullable=False),
        sa.Column("remaining", sa.Integer(), nullable=False),
        sa.Column("stage", sa.SmallInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("profit_closed", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("status", sa.String(length=8), server_default=sa.text("'open'"), nullable=False),
        sa.Column("manual_close", sa.Text(), nullable=True),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("initial_dte", sa.Integer(), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("version", sa.Integer(), server_default=sa.text("1"), nullable=False),
        sa.CheckConstraint(
            "(status = 'closed') = (remaining = 0)", name=op.f("ck_positions_closed_iff_none_left")
        ),
        sa.CheckConstraint(
            "status IN ('open', 'closing', 'closed')", name=op.f("ck_positions_status_known")
        ),
        sa.CheckConstraint(
            "strategy IN ('put_credit', 'call_credit', 'iron_condor')",
            name=op.f("ck_positions_strategy_known"),
        ),
        sa.CheckConstraint("contracts > 0", name=op.f("ck_positions_contracts_positive")),
        sa.CheckConstraint("entry_credit > 0", name=op.f("ck_positions_credit_positive")),
        sa.CheckConstraint("multiplier > 0", name=op.f("ck_positions_multiplier_positive")),
        sa.CheckConstraint(
            "profit_closed >= 0 AND profit_closed <= contracts",
            name=op.f("ck_positions_profit_closed_in_range"),
        ),
        sa.CheckConstraint(
            "remaining >= 0 AND remaining <= contracts",
            name=op.f("ck_positions_remaining_in_range"),
        ),
        sa.CheckConstraint("stage >= 0", name=op.f("ck_positions_stage_not_negative")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_positions")),
    )
    op.create_index(
        "ix_positions_open",
        "positions",
        ["status"],
        unique=False,
        postgresql_where=sa.text("status <> 'closed'"),
    )
    op.create_table(
        "close_orders",
        sa.Column("order_ref", sa.String(length=96), nullable=False),
        sa.Column("position_id", sa.String(length=64), nullable=False),
        sa.Column("stage", sa.SmallInteger(), nullable=True),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("reason", sa.String(length=16), nullable=False),
        sa.Column("label", sa.Text(), nullable=False),
        sa.Column("target", sa.Numeric(precision=8, scale=4), nullable=True),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("limit_price", sa.Numeric(precision=18, scale=6), nullable=True),
        sa.Column(
            "status", sa.String(length=16), server_default=sa.text("'intent'"), nullable=False
        ),
        sa.Column("filled", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("avg_price", sa.Numeric(precision=18, scale=6), nullable=True),
        sa.Column("broker_order_id", sa.BigInteger(), nullable=True),
        sa.Column("perm_id", sa.BigInteger(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "status IN ('intent', 'submitted', 'working', 'partially_filled', 'filled', "
            "'cancelled', 'rejected')",
            name=op.f("ck_close_orders_status_known"),
        ),
        sa.CheckConstraint(
            "filled >= 0 AND filled <= quantity", name=op.f("ck_close_orders_filled_in_range")
        ),
        sa.CheckConstraint("quantity > 0", name=op.f("ck_close_orders_quantity_positive")),
        sa.ForeignKeyConstraint(
            ["position_id"], ["positions.id"], name=op.f("fk_close_orders_position_id")
        ),
        sa.PrimaryKeyConstraint("order_ref", name=op.f("pk_close_orders")),
    )
    op.create_index(
        "ix_close_orders_live",
        "close_orders",
        ["position_id"],
        unique=True,
        postgresql_where=sa.text("NOT (status IN ('filled', 'cancelled', 'rejected'))"),
    )
    op.create_index(
        op.f("ix_close_orders_position_id"), "close_orders", ["position_id"], unique=False
    )
    op.create_table(
        "exit_events",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("position_id", sa.String(length=64), nullable=False),
        sa.Column(
            "at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.Column("kind", sa.String(length=24), nullable=False),
        sa.Column("reason", sa.String(length=16), nullable=True),
        sa.Column("label", sa.Text(), nullable=True),
        sa.Column("order_ref", sa.String(length=96), nullable=True),
        sa.Column("mark", sa.Numeric(precision=18, scale=6), nullable=True),
        sa.Column("pnl", sa.Numeric(precision=20, scale=4), nullable=True),
        sa.Column("pct_of_max", sa.Numeric(precision=10, scale=4), nullable=True),
        sa.Column("contracts_closed", sa.Integer(), nullable=True),
        sa.Column("contracts_remaining", sa.Integer(), nullable=True),
        sa.Column("quotes", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["position_id"], ["positions.id"], name=op.f("fk_exit_events_position_id")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_exit_events")),
    )
    op.create_index(
        op.f("ix_exit_events_position_id"), "exit_events", ["position_id"], unique=False
    )
    op.create_table(
        "legs",
        sa.Column("position_id", sa.String(length=64), nullable=False),
        sa.Column("index", sa.SmallInteger(), nullable=False),
        sa.Column("right", sa.String(length=1), nullable=False),
        sa.Column("strike", sa.Numeric(precision=12, scale=4), nullable=False),
        sa.Column("expiry", sa.Date(), nullable=False),
        sa.Column("side", sa.String(length=5), nullable=False),
        sa.Column("con_id", sa.BigInteger(), nullable=True),
        sa.CheckConstraint("side IN ('short', 'long')", name=op.f("ck_legs_side_known")),
        sa.CheckConstraint("\"right\" IN ('C', 'P')", name=op.f("ck_legs_right_known")),
        sa.CheckConstraint("strike > 0", name=op.f("ck_legs_strike_positive")),
        sa.ForeignKeyConstraint(
            ["position_id"], ["positions.id"], name=op.f("fk_legs_position_id"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("position_id", "index", name=op.f("pk_legs")),
    )
    op.create_table(
        "fills",
        sa.Column("exec_id", sa.String(length=64), nullable=False),
        sa.Column("order_ref", sa.String(length=96), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("price", sa.Numeric(precision=18, scale=6), nullable=False),
        sa.Column("commission", sa.Numeric(precision=20, scale=4), nullable=True),
        sa.Column("time", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("quantity > 0", name=op.f("ck_fills_quantity_positive")),
        sa.ForeignKeyConstraint(
            ["order_ref"], ["close_orders.order_ref"], name=op.f("fk_fills_order_ref")
        ),
        sa.PrimaryKeyConstraint("exec_id", name=op.f("pk_fills")),
    )
    op.create_index(op.f("ix_fills_order_ref"), "fills", ["order_ref"], unique=False)
    op.execute(APPEND_ONLY)
    op.execute(
        "CREATE TRIGGER exit_events_append_only BEFORE UPDATE OR DELETE ON exit_events "
        "FOR EACH ROW EXECUTE FUNCTION exit_events_append_only()"
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER exit_events_append_only ON exit_events")
    op.execute("DROP FUNCTION exit_events_append_only()")
    op.drop_index(op.f("ix_fills_order_ref"), table_name="fills")
    op.drop_table("fills")
    op.drop_table("legs")
    op.drop_index(op.f("ix_exit_events_position_id"), table_name="exit_events")
    op.drop_table("exit_events")
    op.drop_index(op.f("ix_close_orders_position_id"), table_name="close_orders")
    op.drop_index(
        "ix_close_orders_live",
        table_name="close_orders",
        postgresql_where=sa.text("NOT (status IN ('filled', 'cancelled', 'rejected'))"),
    )
    op.drop_table("close_orders")
    op.drop_index(
        "ix_positions_open", table_name="positions", postgresql_where=sa.text("status <> 'closed'")
    )
    op.drop_table("positions")
