"""close_orders.paid: the exact sum of price x quantity over an order's fills.

The average fill price is paid / filled, rounded once: the same to the digit
whatever order fills arrive in, and kept by a single-statement fill (no sum
over the fills table, which a statement's snapshot may not show whole).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "close_orders",
        sa.Column(
            "paid", sa.Numeric(precision=24, scale=6), server_default=sa.text("0"), nullable=False
        ),
    )
    op.execute(
        "UPDATE close_orders o SET paid = f.paid FROM "
        "(SELECT order_ref, sum(price * quantity) AS paid FROM fills GROUP BY order_ref) f "
        "WHERE f.order_ref = o.order_ref"
    )


def downgrade() -> None:
    op.drop_column("close_orders", "paid")
