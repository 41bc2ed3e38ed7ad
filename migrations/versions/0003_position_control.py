"""positions.void_reason, voided_at and attention: what a human decided, and what needs one.

A void position is no longer watched and never traded (closed outside
spreadwatch, entered by mistake); it stays, with its audit trail: nothing is
ever deleted. ``attention`` says why the daemon sends no order for a position
until a human looks (its legs changed at the broker, its contract or book is
unknown).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("positions", sa.Column("void_reason", sa.Text(), nullable=True))
    op.add_column("positions", sa.Column("voided_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("positions", sa.Column("attention", sa.Text(), nullable=True))
    op.create_check_constraint(
        op.f("ck_positions_void_when_voided"),
        "positions",
        "(void_reason IS NULL) = (voided_at IS NULL)",
    )


def downgrade() -> None:
    op.drop_constraint(op.f("ck_positions_void_when_voided"), "positions", type_="check")
    op.drop_column("positions", "attention")
    op.drop_column("positions", "voided_at")
    op.drop_column("positions", "void_reason")
