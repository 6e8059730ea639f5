"""The judgement database's schema, its version and the migrations from every older version.

``schema_version`` holds one row, the version the tables follow. Opening a database applies the
migrations from its version up to :data:`SCHEMA_VERSION`, each in one transaction, so a database
is always at one version or the next, never between. Version 1 (the first study format) had no
practice trials, no closed flag and no per-row trial kind; version 2 adds them.
"""

from __future__ import annotations

import sqlite3

SCHEMA_VERSION = 2

# The current tables, created whole in a new database.
CREATE = [
    "CREATE TABLE schema_version (version INTEGER NOT NULL)",
    """CREATE TABLE studies (
        study_id TEXT PRIMARY KEY,
        code TEXT NOT NULL UNIQUE,
        runs_dir TEXT NOT NULL,
        runs TEXT NOT NULL,          -- JSON list of run names
        settings TEXT NOT NULL,      -- JSON of StudySettings
        counts TEXT NOT NULL,        -- JSON list: samples copied per run
        created TEXT NOT NULL,
        closed INTEGER NOT NULL DEFAULT 0
    )""",
    """CREATE TABLE participants (
        study_id TEXT NOT NULL REFERENCES studies(study_id),
        participant_id TEXT NOT NULL,
        joined TEXT NOT NULL,
        PRIMARY KEY (study_id, participant_id)
    )""",
    """CREATE TABLE judgements (
        study_id TEXT NOT NULL,
        participant_id TEXT NOT NULL,
        trial_id INTEGER NOT NULL,
        run TEXT NOT NULL,
        sample_id TEXT NOT NULL,     -- pair mode: both ids, "left|right"
        truth TEXT NOT NULL,         -- single: real/fake; pair: index of the fake
        answer TEXT NOT NULL,        -- the same values, or "timeout"
        seconds REAL NOT NULL,
        answered_at TEXT NOT NULL,
        kind TEXT NOT NULL DEFAULT 'trial',
        position INTEGER,
        correct INTEGER,
        PRIMARY KEY (study_id, participant_id, trial_id),
        FOREIGN KEY (study_id, participant_id) REFERENCES participants(study_id, participant_id)
    )""",
    "CREATE INDEX judgements_by_run ON judgements (study_id, run)",
]

# MIGRATIONS[v]: the statements taking a database from version v to v + 1.
MIGRATIONS: dict[int, list[str]] = {
    1: [
        "ALTER TABLE studies ADD COLUMN closed INTEGER NOT NULL DEFAULT 0",
        "ALTER TABLE judgements ADD COLUMN kind TEXT NOT NULL DEFAULT 'trial'",
        "ALTER TABLE judgements ADD COLUMN position INTEGER",
        "ALTER TABLE judgements ADD COLUMN correct INTEGER",
        # Version 1 had attention checks (their samples are named check-N) but no practice.
        "UPDATE judgements SET kind = 'attention' WHERE sample_id LIKE 'check-%' OR sample_id LIKE '%|check-%'",
        "UPDATE judgements SET correct = (answer = truth)",
        "UPDATE studies SET settings = json_set(settings, '$.practice', 0) "
        "WHERE json_extract(settings, '$.practice') IS NULL",
        "CREATE INDEX IF NOT EXISTS judgements_by_run ON judgements (study_id, run)",
    ],
}


def version(connection: sqlite3.Connection) -> int:
    """The database's schema version; 0 for an empty database."""
    tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    if "schema_version" not in tables:
        return 0 if not tables else -1
    row = connection.execute("SELECT version FROM schema_version").fetchone()
    return int(row[0]) if row else -1


def upgrade(connection: sqlite3.Connection) -> tuple[int, int]:
    """Create the tables or migrate them to :data:`SCHEMA_VERSION`, one transaction per step.

    Parameters
    ----------
    connection : sqlite3.Connection
        In autocommit mode (``isolation_level=None``): transactions are begun here.

    Returns
    -------
    tuple of int
        The version found and the version now (equal when nothing was done; -1: not ours).
    """
    found = version(connection)
    current = found
    while 0 <= current < SCHEMA_VERSION:
        connection.execute("BEGIN IMMEDIATE")  # the write lock first: two openers never migrate twice
        try:
            current = version(connection)  # another process may have moved it meanwhile
            if current == 0:
                for statement in CREATE:
                    connection.execute(statement)
                connection.execute("INSERT INTO schema_version VALUES (?)", (SCHEMA_VERSION,))
            elif 0 < current < SCHEMA_VERSION:
                for statement in MIGRATIONS[current]:
                    connection.execute(statement)
                connection.execute("UPDATE schema_version SET version = ?", (current + 1,))
            connection.execute("COMMIT")
        except BaseException:
            connection.execute("ROLLBACK")
            raise
        current = version(connection)
    return found, current
