"""trading_class: the exchange's class of a position's options.

SPX's options on a third Friday come in two classes alike in all else: the
monthly SPX and the weekly SPXW. A position names its class so the broker can
tell which contract is held; empty (every position before this revision): the
underlying's only class.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "positions",
        sa.Column("trading_class", sa.String(length=16), server_default=sa.text("''"),
                  nullable=False),
    )  # fmt: skip


def downgrade() -> None:
    op.drop_column("positions", "trading_class")
