"""fill_commissions: the broker's commission reports added to each fill, by report id.

A fill's commission is the sum of its reports, which may come after the fill
(IB sends a commission report per leg execution, as a message of its own, at
any time after the execution, and again on every reqExecutions). Each report
is kept by its id so one that comes again is never added twice.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "fill_commissions",
        sa.Column("report_id", sa.String(length=64), nullable=False),
        sa.Column("exec_id", sa.String(length=64), nullable=False),
        sa.Column("amount", sa.Numeric(precision=20, scale=4), nullable=False),
        sa.ForeignKeyConstraint(
            ["exec_id"], ["fills.exec_id"], name=op.f("fk_fill_commissions_exec_id_fills")
        ),
        sa.PrimaryKeyConstraint("report_id", name=op.f("pk_fill_commissions")),
    )
    op.create_index(
        op.f("ix_fill_commissions_exec_id"), "fill_commissions", ["exec_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_fill_commissions_exec_id"), table_name="fill_commissions")
    op.drop_table("fill_commissions")
