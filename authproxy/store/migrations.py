"""Numbered schema migrations, tracked in ``PRAGMA user_version``.

Append new ones; never edit one that shipped.
"""

from __future__ import annotations

__all__ = ["COUNTERS_SINCE", "EPOCH_EVENTS_1", "MIGRATIONS", "QUOTA_TABLES"]

# Every change to who may use what bumps meta.auth_epoch from inside the database, so a running
# gateway notices edits made by any process (CLI, TUI, another replica) with one cheap poll.
_EPOCH = "UPDATE meta SET value = value + 1 WHERE name = 'auth_epoch';"


# What moves the epoch (migration 1; PostgreSQL's migration 1 has the same triggers).
EPOCH_EVENTS_1 = (
    ("api_keys", "INSERT"),
    ("api_keys", "UPDATE OF revoked_at, expires_at, user_id, key_hash"),
    ("api_keys", "DELETE"),
    ("users", "INSERT"),
    ("users", "UPDATE OF role, disabled, name"),
    ("users", "DELETE"),
    ("models", "INSERT"),
    ("models", "UPDATE"),
    ("models", "DELETE"),
    ("quotas", "INSERT"),
    ("quotas", "UPDATE"),
    ("quotas", "DELETE"),
)


def _bump(table: str, event: str) -> str:
    name = f"{table}_{event.split()[0].lower()}"
    return f"CREATE TRIGGER epoch_{name} AFTER {event} ON {table} BEGIN {_EPOCH} END"


# The quota ledger (``quota_records.py``): leases of requests admitted in the last minute or
# still in flight, tokens charged per user and calendar window, and which windows were topped
# up from the usage table. ``meta.quota_counters_since`` (epoch milliseconds; -1: nobody keeps
# the counters yet) is when the counters began: usage before it is added once per window.
QUOTA_TABLES = ("quota_leases", "quota_usage", "quota_windows")
COUNTERS_SINCE = "quota_counters_since"

MIGRATIONS: list[list[str]] = [
    # 1: users, keys, models, quotas, usage, audit
    [
        """CREATE TABLE meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL)""",
        """INSERT INTO meta (name, value) VALUES ('auth_epoch', 0)""",
        """CREATE TABLE users (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL UNIQUE,
            email TEXT,
            role TEXT NOT NULL,
            disabled INTEGER NOT NULL DEFAULT 0,
            password_hash TEXT,
            created_at REAL NOT NULL
        )""",
        """CREATE TABLE api_keys (
            id INTEGER PRIMARY KEY,
            user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
            key_hash BLOB NOT NULL UNIQUE,
            prefix TEXT NOT NULL,
            label TEXT,
            created_at REAL NOT NULL,
            expires_at REAL,
            revoked_at REAL,
            last_used_at REAL
        )""",
        """CREATE INDEX api_keys_user ON api_keys(user_id)""",
        """CREATE TABLE models (
            name TEXT PRIMARY KEY,
            enabled INTEGER NOT NULL DEFAULT 1,
            updated_at REAL NOT NULL
        )""",
        """CREATE TABLE quotas (
            user_id INTEGER PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
            requests_per_minute INTEGER,
            max_concurrent INTEGER,
            tokens_per_day INTEGER,
            tokens_per_month INTEGER
        )""",
        """CREATE TABLE usage (
            id INTEGER PRIMARY KEY,
            ts REAL NOT NULL,
            request_id TEXT NOT NULL,
            user_id INTEGER REFERENCES users(id) ON DELETE SET NULL,
            key_id INTEGER REFERENCES api_keys(id) ON DELETE SET NULL,
            model TEXT,
            upstream TEXT,
            endpoint TEXT NOT NULL,
            status INTEGER NOT NULL,
            prompt_tokens INTEGER NOT NULL,
            completion_tokens INTEGER NOT NULL,
            duration_ms REAL NOT NULL,
            ttft_ms REAL,
            stream INTEGER NOT NULL,
            usage_source TEXT NOT NULL
        )""",
        """CREATE INDEX usage_user_ts ON usage(user_id, ts)""",
        """CREATE INDEX usage_ts ON usage(ts)""",
        """CREATE TABLE audit (
            id INTEGER PRIMARY KEY,
            ts REAL NOT NULL,
            actor TEXT NOT NULL,
            action TEXT NOT NULL,
            target TEXT,
            detail TEXT,
            source TEXT
        )""",
        """CREATE INDEX audit_ts ON audit(ts)""",
        *(_bump(table, event) for table, event in EPOCH_EVENTS_1),
    ],
    # 2: browser sessions, pending OIDC logins (ids stored only as SHA-256), and the OIDC
    # subject a user is linked to (a login is matched by subject, never by a name alone)
    [
        """ALTER TABLE users ADD COLUMN oidc_subject TEXT""",
        """CREATE UNIQUE INDEX users_oidc_subject ON users(oidc_subject)""",
        """CREATE TABLE sessions (
            id INTEGER PRIMARY KEY,
            id_hash BLOB NOT NULL UNIQUE,
            user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
            via TEXT NOT NULL,
            created_at REAL NOT NULL,
            last_seen_at REAL NOT NULL,
            expires_at REAL NOT NULL,
            source TEXT,
            user_agent TEXT
        )""",
        """CREATE INDEX sessions_user ON sessions(user_id)""",
        """CREATE TABLE login_flows (
            state_hash BLOB PRIMARY KEY,
            browser_hash BLOB NOT NULL,
            nonce TEXT NOT NULL,
            code_verifier TEXT NOT NULL,
            next_path TEXT NOT NULL,
            created_at REAL NOT NULL
        )""",
    ],
    # 3: service keys, which may name the person they act for (Open WebUI's forwarded user
    # headers); set only when a key is made, so the INSERT trigger already tells the gateways
    [
        """ALTER TABLE api_keys ADD COLUMN acts_for_users INTEGER NOT NULL DEFAULT 0""",
    ],
    # 4: who created which stored response (the Responses API): its id is its creator's alone
    [
        """CREATE TABLE responses (
            response_id TEXT PRIMARY KEY,
            user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
            model TEXT NOT NULL,
            upstream TEXT NOT NULL,
            created_at REAL NOT NULL
        )""",
    ],
    # 5: the quota ledger, for several gateways on one database
    [
        """CREATE TABLE quota_leases (
            id INTEGER PRIMARY KEY,
            user_id INTEGER NOT NULL,
            admitted_at REAL NOT NULL,
            expires_at REAL NOT NULL,
            reserved INTEGER NOT NULL,
            settled_at REAL
        )""",
        """CREATE INDEX quota_leases_user ON quota_leases(user_id, admitted_at)""",
        """CREATE INDEX quota_leases_live ON quota_leases(user_id) WHERE settled_at IS NULL""",
        """CREATE TABLE quota_usage (
            user_id INTEGER NOT NULL,
            window_start REAL NOT NULL,
            window_end REAL NOT NULL,
            used INTEGER NOT NULL,
            PRIMARY KEY (user_id, window_start, window_end)
        )""",
        """CREATE TABLE quota_windows (
            window_start REAL NOT NULL,
            window_end REAL NOT NULL,
            PRIMARY KEY (window_start, window_end)
        )""",
        f"""INSERT INTO meta (name, value) VALUES ('{COUNTERS_SINCE}', -1)""",
    ],
]
