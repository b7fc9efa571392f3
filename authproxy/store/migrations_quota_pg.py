"""PostgreSQL's migration 3: the quota ledger (the tables of SQLite's migration 3) and the
functions that make an admission one round trip.

``authproxy_quota_admit`` is ``quota_rules.decide`` in PL/pgSQL: under a per-user advisory lock
(admissions of one user queue; others do not wait) it reads the user's state in one statement
(one snapshot), decides, and writes the lease. The contract tests run the same cases against
it and against the Python rules on SQLite. ``authproxy_quota_window`` adds, once per window,
the usage from before the counters began (``meta.quota_counters_since``).
"""

from __future__ import annotations

from authproxy.store.migrations import COUNTERS_SINCE
from authproxy.store.quota_records import RPM_WINDOW

__all__ = ["QUOTA_LOCK", "QUOTA_MIGRATION"]

QUOTA_LOCK = 0x71756F74 << 32  # "quot": + a user id, the advisory lock of that user's admissions

_W = f"{RPM_WINDOW:g}"
_ENDS = "p_day_start DOUBLE PRECISION, p_day_end DOUBLE PRECISION,"
_ENDS += " p_month_start DOUBLE PRECISION, p_month_end DOUBLE PRECISION"


def _used(start: str, end: str) -> str:
    return (
        "COALESCE((SELECT u.used FROM quota_usage u WHERE u.user_id = p_user"
        f" AND u.window_start = {start} AND u.window_end = {end}), 0)"
    )


_LIVE = "FROM quota_leases q WHERE q.user_id = p_user AND q.settled_at IS NULL"
_LIVE += " AND q.expires_at > p_now"
_RECENT = f"FROM quota_leases q WHERE q.user_id = p_user AND q.admitted_at > p_now - {_W}"

_WINDOW = f"""CREATE FUNCTION authproxy_quota_window(p_start DOUBLE PRECISION,
    p_end DOUBLE PRECISION) RETURNS void LANGUAGE plpgsql AS $$
    DECLARE since DOUBLE PRECISION;
    BEGIN
        SELECT m.value / 1000.0 INTO since FROM meta m WHERE m.name = '{COUNTERS_SINCE}';
        IF since IS NULL OR since < 0 OR p_start >= since THEN RETURN; END IF;
        INSERT INTO quota_windows (window_start, window_end) VALUES (p_start, p_end)
            ON CONFLICT DO NOTHING;
        IF NOT FOUND THEN RETURN; END IF;
        INSERT INTO quota_usage (user_id, window_start, window_end, used)
            SELECT g.user_id, p_start, p_end, SUM(g.prompt_tokens + g.completion_tokens)
            FROM usage g WHERE g.ts >= p_start AND g.ts < LEAST(p_end, since)
                AND g.user_id IS NOT NULL
            GROUP BY g.user_id ORDER BY g.user_id
            ON CONFLICT (user_id, window_start, window_end)
            DO UPDATE SET used = quota_usage.used + excluded.used;
    END
    $$"""

_ADMIT = f"""CREATE FUNCTION authproxy_quota_admit(
    p_lease BIGINT, p_user BIGINT, p_now DOUBLE PRECISION, p_expires DOUBLE PRECISION,
    p_rpm BIGINT, p_concurrent BIGINT, p_per_day BIGINT, p_per_month BIGINT, {_ENDS},
    p_prompt BIGINT, p_outputs BIGINT, p_limit BIGINT, p_clamp BOOLEAN, p_settles JSONB,
    OUT refused TEXT, OUT retry_after DOUBLE PRECISION, OUT granted BIGINT,
    OUT reservation BIGINT, OUT remaining BIGINT, OUT used_day BIGINT, OUT used_month BIGINT)
    LANGUAGE plpgsql AS $$
    DECLARE
        recent BIGINT;
        live BIGINT;
        held BIGINT;
        lft BIGINT;
        tightest TEXT := 'day';
        tightest_end DOUBLE PRECISION := p_day_end;
    BEGIN
        -- A lease is soft state (lost in a crash, it would lapse anyway): the request does
        -- not wait for it to reach the disk.
        PERFORM set_config('synchronous_commit', 'off', true);
        IF p_settles IS NOT NULL THEN  -- the caller's finished requests: released first
            PERFORM authproxy_quota_settle(p_settles);
        END IF;
        PERFORM pg_advisory_xact_lock({QUOTA_LOCK} + p_user);
        PERFORM authproxy_quota_window(p_day_start, p_day_end);
        PERFORM authproxy_quota_window(p_month_start, p_month_end);
        -- The rate is counted only against a limit, and no further than it: an admission
        -- reads at most the user's rpm limit of index entries, whatever their real rate.
        SELECT CASE WHEN p_rpm IS NULL THEN 0 ELSE
                (SELECT count(*) FROM (SELECT 1 {_RECENT} LIMIT GREATEST(p_rpm, 0)) r) END,
            (SELECT count(*) {_LIVE}),
            (SELECT COALESCE(sum(q.reserved), 0) {_LIVE}),
            {_used("p_day_start", "p_day_end")}, {_used("p_month_start", "p_month_end")}
            INTO recent, live, held, used_day, used_month;
        retry_after := 0; granted := p_limit; reservation := 0;
        IF p_rpm IS NOT NULL AND recent >= p_rpm THEN
            refused := 'rpm';
            retry_after := {_W};
            IF p_rpm > 0 THEN
                SELECT q.admitted_at + {_W} - p_now INTO retry_after {_RECENT}
                    ORDER BY q.admitted_at DESC OFFSET p_rpm - 1 LIMIT 1;
            END IF;
            RETURN;
        END IF;
        IF p_concurrent IS NOT NULL AND live >= p_concurrent THEN
            refused := 'concurrency'; retry_after := 1; RETURN;
        END IF;
        IF p_per_day IS NOT NULL THEN
            lft := p_per_day - used_day - held;
            remaining := lft;
            IF lft <= 0 THEN
                refused := 'tokens_day'; retry_after := p_day_end - p_now; RETURN;
            END IF;
        END IF;
        IF p_per_month IS NOT NULL THEN
            lft := p_per_month - used_month - held;
            IF lft <= 0 THEN
                refused := 'tokens_month'; retry_after := p_month_end - p_now; remaining := lft;
                RETURN;
            END IF;
            IF remaining IS NULL OR lft < remaining THEN
                remaining := lft; tightest := 'month'; tightest_end := p_month_end;
            END IF;
        END IF;
        reservation := p_prompt + p_limit * p_outputs;
        IF remaining IS NOT NULL AND reservation > remaining AND p_clamp AND p_outputs > 0 THEN
            granted := floor((remaining - p_prompt)::NUMERIC / p_outputs);
            IF granted < 1 THEN
                refused := 'tokens_' || tightest; retry_after := tightest_end - p_now;
                granted := p_limit; reservation := 0; RETURN;
            END IF;
            reservation := p_prompt + granted * p_outputs;
        END IF;
        INSERT INTO quota_leases (id, user_id, admitted_at, expires_at, reserved)
            VALUES (p_lease, p_user, p_now, p_expires, reservation);
    END
    $$"""

_USED = f"""CREATE FUNCTION authproxy_quota_used(p_user BIGINT, {_ENDS},
    OUT used_day BIGINT, OUT used_month BIGINT) LANGUAGE plpgsql AS $$
    BEGIN
        PERFORM authproxy_quota_window(p_day_start, p_day_end);
        PERFORM authproxy_quota_window(p_month_start, p_month_end);
        SELECT {_used("p_day_start", "p_day_end")}, {_used("p_month_start", "p_month_end")}
            INTO used_day, used_month;
    END
    $$"""


# Release each lease (or, for one that was forgotten or never written, write it settled) and
# charge the tokens of those that were not settled before; counters are taken in one order
# (window, user) by every writer, so concurrent batches never deadlock. Like the admission it
# does not wait for the disk (postgres_quota.py says what a crash of the server may lose).
_SETTLE = """CREATE FUNCTION authproxy_quota_settle(p_settles JSONB)
    RETURNS void LANGUAGE plpgsql AS $$
    BEGIN
        PERFORM set_config('synchronous_commit', 'off', true);
        WITH s AS (
            SELECT DISTINCT ON (lease) * FROM jsonb_to_recordset(p_settles)
                AS s(lease BIGINT, user_id BIGINT, admitted DOUBLE PRECISION, tokens BIGINT,
                     ended DOUBLE PRECISION, ds DOUBLE PRECISION, de DOUBLE PRECISION,
                     ms DOUBLE PRECISION, me DOUBLE PRECISION)
        ), released AS (
            UPDATE quota_leases q SET settled_at = s.ended, reserved = 0 FROM s
            WHERE q.id = s.lease AND q.settled_at IS NULL RETURNING q.id
        ), written AS (
            INSERT INTO quota_leases
                (id, user_id, admitted_at, expires_at, reserved, settled_at)
            SELECT s.lease, s.user_id, s.admitted, s.ended, 0, s.ended FROM s
            WHERE NOT EXISTS (SELECT 1 FROM quota_leases q WHERE q.id = s.lease)
            ON CONFLICT (id) DO NOTHING RETURNING id
        ), charged AS (
            SELECT s.* FROM s WHERE s.tokens > 0
                AND s.lease IN (SELECT id FROM released UNION ALL SELECT id FROM written)
        )
        INSERT INTO quota_usage (user_id, window_start, window_end, used)
        SELECT user_id, ws, we, SUM(tokens) FROM (
            SELECT user_id, ds AS ws, de AS we, tokens FROM charged
            UNION ALL SELECT user_id, ms, me, tokens FROM charged
        ) c GROUP BY ws, we, user_id ORDER BY ws, we, user_id
        ON CONFLICT (user_id, window_start, window_end)
        DO UPDATE SET used = quota_usage.used + excluded.used;
    END
    $$"""

QUOTA_MIGRATION: list[str] = [
    """CREATE TABLE quota_leases (
        id BIGINT PRIMARY KEY,
        user_id BIGINT NOT NULL,
        admitted_at DOUBLE PRECISION NOT NULL,
        expires_at DOUBLE PRECISION NOT NULL,
        reserved BIGINT NOT NULL,
        settled_at DOUBLE PRECISION
    )""",
    """CREATE INDEX quota_leases_user ON quota_leases(user_id, admitted_at)""",
    """CREATE INDEX quota_leases_live ON quota_leases(user_id) WHERE settled_at IS NULL""",
    """CREATE TABLE quota_usage (
        user_id BIGINT NOT NULL,
        window_start DOUBLE PRECISION NOT NULL,
        window_end DOUBLE PRECISION NOT NULL,
        used BIGINT NOT NULL,
        PRIMARY KEY (user_id, window_start, window_end)
    )""",
    """CREATE TABLE quota_windows (
        window_start DOUBLE PRECISION NOT NULL,
        window_end DOUBLE PRECISION NOT NULL,
        PRIMARY KEY (window_start, window_end)
    )""",
    f"""INSERT INTO meta (name, value) VALUES ('{COUNTERS_SINCE}', -1)""",
    _WINDOW,
    _ADMIT,
    _USED,
    _SETTLE,
]
