"""order_queued: a close order's status ``queued`` until the broker acknowledges it.

An order was recorded ``submitted`` once handed to the broker's client, before it
left: IB's client paces its requests, and at start-up an order may wait seconds
behind the market data requests; a kill then left a "submitted" order the broker
never saw. Now it is ``queued`` until the broker acknowledges it (IB: its first
order status), then ``submitted`` or further along. Downgrading records the
queued orders as submitted, as before.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_BEFORE = ("intent", "submitted", "working", "partially_filled", "filled", "cancelled", "rejected")
_AFTER = ("intent", "queued", *_BEFORE[1:])
_NAME = "ck_close_orders_status_known"


def _known(statuses: Sequence[str]) -> str:
    return "status IN (" + ", ".join(f"'{s}'" for s in statuses) + ")"


def upgrade() -> None:
    op.drop_constraint(op.f(_NAME), "close_orders", type_="check")
    op.create_check_constraint(op.f(_NAME), "close_orders", _known(_AFTER))


def downgrade() -> None:
    op.execute("UPDATE close_orders SET status = 'submitted' WHERE status = 'queued'")
    op.drop_constraint(op.f(_NAME), "close_orders", type_="check")
    op.create_check_constraint(op.f(_NAME), "close_orders", _known(_BEFORE))
