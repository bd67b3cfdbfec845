"""Filling a catalog file with many accounts and grants fast, for scale tests and benchmarks.

It writes straight into the SQLite file with executemany, bypassing the catalog's change log:
readers must reload everything, which the counters written here make them do.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from auth.passwords import native_hash


def bulk_insert(path: Path, accounts: int, table_grants: int, databases: int) -> None:
    """Add ``accounts`` accounts (two per user name) and ``table_grants`` table grants over
    the databases ``db0``..``db<databases-1>``, which must exist."""
    per_account = table_grants // accounts
    with sqlite3.connect(path) as connection:
        counters = dict(connection.execute("SELECT name, value FROM counters").fetchall())
        first_id = counters["next_account_id"]
        ids = range(first_id, first_id + accounts)
        connection.executemany(
            "INSERT INTO accounts (id, user_name, host_pattern, native_hash, password_hash,"
            " owner_db, builtin, created_seq) VALUES (?, ?, ?, ?, ?, ?, NULL, ?)",
            (
                (
                    i,
                    # Two accounts per user name: user@'%' and user@'10.<n>.%'.
                    f"user{(i - first_id) % (accounts // 2)}",
                    "%" if i - first_id < accounts // 2 else f"10.{i % 250}.%",
                    native_hash(""),
                    "",
                    f"db{i % databases}",
                    i,
                )
                for i in ids
            ),
        )
        connection.executemany(
            "INSERT INTO db_grants (account_id, db, privs) VALUES (?, ?, ?)",
            ((i, f"db{(i + 1) % databases}", 1) for i in ids if i % 3 == 0),
        )
        connection.executemany(
            "INSERT INTO table_grants (account_id, db, tbl, privs) VALUES (?, ?, ?, ?)",
            (
                (i, f"db{i % databases}", f"table_{(i * 7 + j) % 5000}_{j}", (i + j) % 255 + 1)
                for i in ids
                for j in range(per_account)
            ),
        )
        version = counters["catalog_version"] + 1
        connection.executemany(
            "UPDATE counters SET value = ? WHERE name = ?",
            [
                (version, "catalog_version"),
                (first_id + accounts, "next_account_id"),
                # No change-log rows were written: readers must reload everything.
                (version, "change_log_horizon"),
            ],
        )
