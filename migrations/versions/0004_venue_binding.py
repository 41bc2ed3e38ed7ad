"""venue_binding: the venue and account a database's records are of (one row).

The first ``spreadwatch run`` binds its database to its venue (``sim``, or
``ib:<account>``); a later run with another venue or account is refused, so
simulated fills never land among a real account's records, nor one account's
among another's.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "venue_binding",
        sa.Column("id", sa.SmallInteger(), server_default=sa.text("1"), nullable=False),
        sa.Column("venue", sa.String(length=64), nullable=False),
        sa.Column(
            "bound_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.CheckConstraint("id = 1", name=op.f("ck_venue_binding_one_row")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_venue_binding")),
    )


def downgrade() -> None:
    op.drop_table("venue_binding")
