"""The order path's statements, each one round trip on asyncpg (see :mod:`.driver`).

The statuses they write are the domain's (:mod:`service.store.changes`); what a
fill changes comes in as parameters computed by :func:`changes.fill_change`,
never restated here.
"""

from __future__ import annotations

from service.ports import FINAL_ORDER_STATUSES
from service.store.changes import ON_INTENT, REPLACES
from service.store.rows import sql_list

_FINAL = sql_list(FINAL_ORDER_STATUSES)


def _takes(status: str) -> str:
    """SQL: whether an order's ``status`` (a column) takes the sent status $2 (an order
    only goes on: :data:`service.store.changes.REPLACES`)."""
    cases = " ".join(f"WHEN '{s}' THEN {status} IN ({sql_list(b)})" for s, b in REPLACES.items())
    return f"(CASE CAST($2 AS text) {cases} ELSE false END)"


# Close intents in one statement: the positions that can take them are updated (row locks,
# re-checked after any wait), their orders inserted, and the audit rows (the decision, then
# the intent, per order, in the batch's order). Returns the order_refs written. The batch
# holds one order per position at most (a second waits for the next statement).
INTENTS = f"""
WITH req AS (
    SELECT * FROM jsonb_to_recordset($1) AS r(
        k int, pid text, ref text, stage int, attempt int, reason text, label text,
        target numeric, qty int, limit_price numeric, quotes jsonb,
        d_kind text, d_reason text, d_label text, d_mark numeric, d_pnl numeric,
        d_pct numeric, d_contracts int, d_detail text, i_kind text)
),
upd AS (
    UPDATE positions p SET status = '{ON_INTENT}', version = p.version + 1
    FROM req
    WHERE p.id = req.pid AND req.qty > 0 AND req.qty <= p.remaining
      AND p.void_reason IS NULL AND p.attention IS NULL
      AND NOT EXISTS (
        SELECT 1 FROM close_orders o
        WHERE o.position_id = p.id AND o.status NOT IN ({_FINAL}))
    RETURNING p.id, p.remaining
),
orders AS (
    INSERT INTO close_orders (order_ref, position_id, stage, attempt, reason, label, target,
                              quantity, limit_price, lease_epoch)
    SELECT req.ref, req.pid, req.stage, req.attempt, req.reason, req.label, req.target,
           req.qty, req.limit_price, CAST($2 AS bigint)
    FROM req JOIN upd ON upd.id = req.pid
    RETURNING order_ref
),
events AS (
    INSERT INTO exit_events (position_id, kind, reason, label, order_ref, mark, pnl,
                             pct_of_max, contracts_closed, contracts_remaining, quotes, detail)
    SELECT pid, kind, reason, label, ref, mark, pnl, pct, contracts, remaining, quotes, detail
    FROM (
        SELECT 2 * req.k AS n, req.pid, req.d_kind AS kind, req.d_reason AS reason,
               req.d_label AS label, NULL AS ref, req.d_mark AS mark, req.d_pnl AS pnl,
               req.d_pct AS pct, req.d_contracts AS contracts, upd.remaining,
               req.quotes, req.d_detail AS detail
        FROM req JOIN upd ON upd.id = req.pid WHERE req.d_kind IS NOT NULL
        UNION ALL
        SELECT 2 * req.k + 1, req.pid, req.i_kind, req.reason, req.label, req.ref,
               req.limit_price, NULL, NULL, req.qty, upd.remaining, req.quotes, NULL
        FROM req JOIN upd ON upd.id = req.pid
    ) e
    ORDER BY n
    RETURNING 1
)
SELECT order_ref FROM orders
"""

# What the intents refused were refused on: each position's remaining and its live order.
INTENT_STANDING = f"""
SELECT p.id, p.remaining, p.void_reason, p.attention,
       (SELECT o.order_ref FROM close_orders o
        WHERE o.position_id = p.id AND o.status NOT IN ({_FINAL}) LIMIT 1) AS live
FROM positions p WHERE p.id = ANY($1)
"""

REFS_TAKEN = "SELECT order_ref FROM close_orders WHERE order_ref = ANY($1)"

# The broker has an order (queued, submitted or working, with its ids), in one statement
# under the position's row lock taken first (as every writer does): the broker's word comes
# in any order, so a status already further along (acknowledged, partly filled, final)
# stays; the audit row.
# No row back: no such order.
SENT = f"""
WITH lk AS (
    SELECT p.id, p.remaining FROM positions p JOIN close_orders c ON c.position_id = p.id
    WHERE c.order_ref = $1
    FOR NO KEY UPDATE OF p
),
o AS (
    UPDATE close_orders c SET
        status = CASE WHEN {_takes("c.status")} THEN $2 ELSE c.status END,
        broker_order_id = coalesce(CAST($4 AS bigint), c.broker_order_id),
        perm_id = coalesce(CAST($5 AS bigint), c.perm_id),
        updated_at = CASE  -- (the ORM's onupdate: only when something changes)
            WHEN {_takes("c.status")} AND c.status <> $2 THEN now()
            WHEN c.broker_order_id IS DISTINCT FROM
                 coalesce(CAST($4 AS bigint), c.broker_order_id) THEN now()
            WHEN c.perm_id IS DISTINCT FROM coalesce(CAST($5 AS bigint), c.perm_id)
                THEN now()
            ELSE c.updated_at END
    FROM lk WHERE c.order_ref = $1
    RETURNING c.position_id
),
e AS (
    INSERT INTO exit_events (position_id, kind, order_ref, contracts_remaining, detail)
    SELECT lk.id, $3, $1, lk.remaining, $6 FROM lk, o
    RETURNING 1
)
SELECT position_id FROM o
"""

# Orders sent (no broker ids yet), in one statement: those not yet further along take the
# status, and the audit trail says so.
SENT_MANY = f"""
WITH sent AS (
    UPDATE close_orders SET status = $2, updated_at = now()
    WHERE order_ref = ANY($1) AND {_takes("status")}
    RETURNING order_ref, position_id
)
INSERT INTO exit_events (position_id, kind, order_ref, contracts_remaining)
SELECT sent.position_id, $3, sent.order_ref, p.remaining
FROM sent JOIN positions p ON p.id = sent.position_id
"""

# A fill, first read: the order, its position's figures (and version), and the fill of
# the same execution id if one is known. No row: no such order.
FILL_READ = """
SELECT c.*, p.remaining AS p_remaining, p.profit_closed AS p_profit_closed,
       p.stage AS p_stage, p.entry_credit AS p_entry_credit, p.multiplier AS p_multiplier,
       p.version AS p_version, f.order_ref AS f_order_ref, f.quantity AS f_quantity,
       f.price AS f_price, f.commission AS f_commission, f.time AS f_time
FROM close_orders c JOIN positions p ON p.id = c.position_id
LEFT JOIN fills f ON f.exec_id = $2
WHERE c.order_ref = $1
"""

# A fill, then written in one statement: the fill row, the order's and the position's
# figures as computed from the first read, and the audit row, under the position's row
# lock taken first (as every writer does), and only if the position's version is still
# the one read (a change in between, and nothing is written: read again). The fill's
# exec_id is its primary key: applied once. Returns 1 when written, 0 otherwise.
FILL_WRITE = """
WITH lk AS (
    SELECT p.id FROM positions p WHERE p.id = $7 AND p.version = $8
    FOR NO KEY UPDATE
),
f AS (
    INSERT INTO fills (exec_id, order_ref, quantity, price, commission, time)
    SELECT $1, $2, $3, $4, $5, $6
    WHERE EXISTS (SELECT 1 FROM lk)
    ON CONFLICT (exec_id) DO NOTHING
    RETURNING exec_id
),
r AS (
    INSERT INTO fill_commissions (report_id, exec_id, amount)
    SELECT x.report_id, f.exec_id, x.amount
    FROM f, unnest(CAST($24 AS varchar[]), CAST($25 AS numeric[])) AS x(report_id, amount)
    ON CONFLICT (report_id) DO NOTHING
),
o AS (
    UPDATE close_orders c SET filled = $9, paid = $10, avg_price = $11, status = $12,
        updated_at = now()
    WHERE c.order_ref = $2 AND EXISTS (SELECT 1 FROM f)
    RETURNING c.position_id
),
p AS (
    UPDATE positions p SET remaining = $13, profit_closed = $14, stage = $15, status = $16,
        closed_at = coalesce(CAST($17 AS timestamptz), p.closed_at),
        version = p.version + 1
    FROM o WHERE p.id = o.position_id
    RETURNING p.id
),
e AS (
    INSERT INTO exit_events (position_id, kind, reason, label, order_ref, mark, pnl,
                             pct_of_max, contracts_closed, contracts_remaining, detail)
    SELECT p.id, $18, $19, $20, $2, $4, $21, $22, $3, $13, $23
    FROM p
    RETURNING 1
)
SELECT count(*) AS written FROM p
"""

# A commission report that came after its fill: kept by its id (once), and added to the
# fill's commission (a NULL, none said yet, counts as 0). Returns the fill's commission
# now; no row: that report was added before, or the fill is not recorded ($4 says which).
COMMISSION_ADD = """
WITH r AS (
    INSERT INTO fill_commissions (report_id, exec_id, amount)
    SELECT CAST($1 AS varchar), CAST($2 AS varchar), $3
    WHERE EXISTS (SELECT 1 FROM fills WHERE exec_id = CAST($2 AS varchar))
    ON CONFLICT (report_id) DO NOTHING
    RETURNING exec_id, amount
)
UPDATE fills f SET commission = coalesce(f.commission, 0) + r.amount
FROM r WHERE f.exec_id = r.exec_id
RETURNING f.commission
"""
FILL_KNOWN = "SELECT 1 FROM fills WHERE exec_id = $1"
