"""trading_lease: one process trades an account; the others stand by (issue 19).

A row per database (a database holds one account's records: ``venue_binding``):
who holds the right to trade, its **epoch** (raised at every change of holder)
and until when (the database's clock). The holder renews it every second or so;
a standby takes it once it has expired.

Every close order is written with the epoch of the lease its writer held
(``close_orders.lease_epoch``), and the database refuses it unless that is the
lease's epoch now and the lease has not expired: a fencing token, so a process
that lost the lease (paused, or cut off from the database) can never write an
intent after its successor took over. The trigger reads the lease row FOR SHARE:
a takeover waits for an intent being written, so the successor's reconciliation
sees every intent written under the old epoch. An order written with no epoch
(a tool, a test: not a daemon) is taken only while no process holds the lease.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FENCE = """
CREATE FUNCTION close_orders_fenced() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    held record;
BEGIN
    SELECT holder, epoch, expires_at > clock_timestamp() AS live INTO held
    FROM trading_lease WHERE id = 1 FOR SHARE;
    IF NEW.lease_epoch IS NULL THEN
        IF FOUND AND held.live THEN
            RAISE EXCEPTION 'fenced: % holds the trading lease (epoch %): an order written '
                'without it is refused', held.holder, held.epoch USING ERRCODE = 'SW409';
        END IF;
    ELSIF NOT FOUND OR held.epoch <> NEW.lease_epoch OR NOT held.live THEN
        RAISE EXCEPTION 'fenced: the trading lease''s epoch % is not live (the lease: %, '
            'epoch %, live %)', NEW.lease_epoch, held.holder, held.epoch, held.live
            USING ERRCODE = 'SW409';
    END IF;
    RETURN NEW;
END $$
"""


def upgrade() -> None:
    op.create_table(
        "trading_lease",
        sa.Column("id", sa.SmallInteger(), server_default=sa.text("1"), nullable=False),
        sa.Column("holder", sa.String(length=200), nullable=False),
        sa.Column("epoch", sa.BigInteger(), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("acquired_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("id = 1", name=op.f("ck_trading_lease_one_row")),
        sa.CheckConstraint("epoch > 0", name=op.f("ck_trading_lease_epoch_positive")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_trading_lease")),
    )
    op.add_column("close_orders", sa.Column("lease_epoch", sa.BigInteger(), nullable=True))
    op.execute(FENCE)
    op.execute(
        "CREATE TRIGGER close_orders_fence BEFORE INSERT ON close_orders "
        "FOR EACH ROW EXECUTE FUNCTION close_orders_fenced()"
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER close_orders_fence ON close_orders")
    op.execute("DROP FUNCTION close_orders_fenced()")
    op.drop_column("close_orders", "lease_epoch")
    op.drop_table("trading_lease")
