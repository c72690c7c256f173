"""Monthly partitions of alerts, GPS pings and the audit log (migration 0017).

Each table is range-partitioned by UTC month, with a DEFAULT partition for rows outside
the months made so far (an alert's time is the camera's clock; a replayed history lies in
the past). The SQL function ensure_partitions() makes this month's partition and the next
three, and one for every month of the last 24 whose rows wait in a default partition, moving
them there (older rows stay where they are: retention deletes them).
It runs in the migration, on every `gridwatch db migrate` and hourly in the server, so the
coming months exist long before their first row. Retention drops months whole
(gridwatch.alerts.retention, purge_audit()).
"""

import psycopg

# Moving rows out of a default partition (a history just replayed) may take longer than a
# request is allowed to; this runs in the background.
STATEMENT_TIMEOUT = "15min"


def ensure(conn: psycopg.Connection) -> int:
    """Make the coming months' partitions and empty the default partitions into their months;
    returns how many partitions were made. Then refresh the partitioned tables' statistics,
    which autovacuum never gathers for a partitioned table as a whole (the planner and the OGC
    extent of alerts use them)."""
    with conn.transaction():
        conn.execute(f"SET LOCAL statement_timeout = '{STATEMENT_TIMEOUT}'")
        made = conn.execute("SELECT ensure_partitions()").fetchone()[0]
    with conn.transaction():
        conn.execute(f"SET LOCAL statement_timeout = '{STATEMENT_TIMEOUT}'")
        conn.execute("SELECT analyze_partitioned()")
    return made
