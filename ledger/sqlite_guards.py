"""SQLite's copy of the promises pgtrigger makes on PostgreSQL: `Transaction`, `Posting`
and `Event` rows are never updated or deleted, and a transaction's postings sum to zero
when it commits, whatever code writes them (the ORM, `_base_manager`, `bulk_create` with
`update_conflicts`, raw SQL, the sqlite3 shell).

Append-only: BEFORE UPDATE and BEFORE DELETE triggers RAISE(ABORT). SQLite has no
TRUNCATE (its "DELETE FROM t" shortcut is disabled on a table with triggers). An
`INSERT OR REPLACE` deletes the row it collides with without firing DELETE triggers, so a
BEFORE INSERT trigger refuses an insert that collides with an existing row on any of the
table's unique keys.

Zero-sum at commit. SQLite has no deferred triggers, but it does have deferred foreign
keys (Django turns `PRAGMA foreign_keys` on for every connection): a row that violates a
DEFERRABLE INITIALLY DEFERRED foreign key may exist inside a transaction, and COMMIT
fails while any such row remains (a statement outside a transaction is judged at its end;
a rolled-back savepoint takes its violations with it). So:
- `ledger_unbalanced_transaction` holds one row per transaction whose legs do not (yet)
  sum to zero, and every one of its rows violates a deferred foreign key into
  `ledger_unbalanced_never`, a table that is always empty (inserting into it is refused).
- Inserting a transaction adds its row (total 0, no legs). Inserting a posting adds the
  leg to its transaction's row (creating the row again if the transaction had balanced
  before) and removes the row once the legs sum to zero with at least two of them: O(1)
  per posting, so a 20,000-leg refund costs 20,000 small index updates, not a re-sum per leg.
- The row can be removed only when the postings really balance: a BEFORE DELETE trigger
  re-sums the transaction's postings from the table (once per balanced transaction, an
  index range), and its `never` column cannot be changed. Hand-editing `total` or `legs`
  therefore cannot smuggle an unbalanced transaction through.
What it cannot stop: a connection that turns `PRAGMA foreign_keys` off (Django does so
only inside migrations and loaddata) skips the zero-sum check, as `ALTER TABLE ... DISABLE
TRIGGER` or `pgtrigger.ignore()` would on PostgreSQL; `ledger_verify` still re-checks every
transaction. A migration that rebuilds one of these tables (SQLite's ALTER TABLE remake)
drops its triggers: `ledger_verify` names any guard missing, and the fix is a migration
calling `install` again.
"""

from django.db.backends.base.schema import BaseDatabaseSchemaEditor


def _refuse(table: str, what: str) -> str:
    return f"SELECT RAISE(ABORT, 'ledger: {table} is append-only, {what} refused');"


# (trigger name, SQL). Names are what `ledger_verify` looks for.
_APPEND_ONLY_TABLES = {
    "ledger_transaction": (
        "EXISTS (SELECT 1 FROM ledger_transaction t WHERE t.id = NEW.id"
        " OR (NEW.reference IS NOT NULL AND t.reference = NEW.reference)"
        " OR (NEW.kind = 'payout' AND t.kind = 'payout' AND t.mission_id = NEW.mission_id))"
    ),
    "ledger_posting": (
        "EXISTS (SELECT 1 FROM ledger_posting p WHERE p.id = NEW.id"
        " OR (p.account_id = NEW.account_id AND p.version = NEW.version))"
    ),
    "ledger_event": (
        "EXISTS (SELECT 1 FROM ledger_event e WHERE e.id = NEW.id"
        " OR (e.mission_id = NEW.mission_id AND ("
        "(NEW.kind = 'created' AND e.kind = 'created')"
        " OR (NEW.kind = 'settled' AND e.kind = 'settled')"
        " OR (NEW.kind IN ('rejected', 'succeeded', 'failed', 'expired', 'cancelled')"
        " AND e.kind IN ('rejected', 'succeeded', 'failed', 'expired', 'cancelled')))))"
    ),
}

TABLES = [
    """CREATE TABLE ledger_unbalanced_never (id INTEGER PRIMARY KEY)""",
    """CREATE TABLE ledger_unbalanced_transaction (
        transaction_id INTEGER PRIMARY KEY,
        total INTEGER NOT NULL,
        legs INTEGER NOT NULL,
        never INTEGER NOT NULL DEFAULT 0
            REFERENCES ledger_unbalanced_never (id) DEFERRABLE INITIALLY DEFERRED
    )""",
]


def _triggers() -> list[tuple[str, str]]:
    triggers = []
    for table, collides in _APPEND_ONLY_TABLES.items():
        triggers += [
            (
                f"{table}_append_only_update",
                f"CREATE TRIGGER {table}_append_only_update BEFORE UPDATE ON {table} "
                f"BEGIN {_refuse(table, 'UPDATE')} END",
            ),
            (
                f"{table}_append_only_delete",
                f"CREATE TRIGGER {table}_append_only_delete BEFORE DELETE ON {table} "
                f"BEGIN {_refuse(table, 'DELETE')} END",
            ),
            (
                f"{table}_append_only_replace",
                f"CREATE TRIGGER {table}_append_only_replace BEFORE INSERT ON {table} WHEN {collides} "
                f"BEGIN {_refuse(table, 'an INSERT over an existing row')} END",
            ),
        ]
    triggers += [
        (
            "ledger_transaction_starts_unbalanced",
            "CREATE TRIGGER ledger_transaction_starts_unbalanced AFTER INSERT ON ledger_transaction "
            "BEGIN INSERT INTO ledger_unbalanced_transaction (transaction_id, total, legs) VALUES (NEW.id, 0, 0); END",
        ),
        (
            "ledger_posting_sum_to_zero",
            "CREATE TRIGGER ledger_posting_sum_to_zero AFTER INSERT ON ledger_posting BEGIN "
            "INSERT INTO ledger_unbalanced_transaction (transaction_id, total, legs) "
            "SELECT NEW.transaction_id, 0, 0 WHERE NOT EXISTS "
            "(SELECT 1 FROM ledger_unbalanced_transaction WHERE transaction_id = NEW.transaction_id); "
            "UPDATE ledger_unbalanced_transaction SET total = total + NEW.amount, legs = legs + 1 "
            "WHERE transaction_id = NEW.transaction_id; "
            "DELETE FROM ledger_unbalanced_transaction "
            "WHERE transaction_id = NEW.transaction_id AND total = 0 AND legs >= 2; END",
        ),
        (
            "ledger_unbalanced_only_when_balanced",
            "CREATE TRIGGER ledger_unbalanced_only_when_balanced BEFORE DELETE ON ledger_unbalanced_transaction "
            "WHEN (SELECT COALESCE(SUM(amount), 0) <> 0 OR COUNT(*) < 2 FROM ledger_posting "
            "WHERE transaction_id = OLD.transaction_id) "
            "BEGIN SELECT RAISE(ABORT, 'ledger: the postings of a transaction do not sum to zero'); END",
        ),
        (
            "ledger_unbalanced_never_changes",
            "CREATE TRIGGER ledger_unbalanced_never_changes BEFORE UPDATE OF never, transaction_id "
            "ON ledger_unbalanced_transaction "
            "BEGIN SELECT RAISE(ABORT, 'ledger: the zero-sum guard is not edited'); END",
        ),
        (
            "ledger_unbalanced_never_stays_empty",
            "CREATE TRIGGER ledger_unbalanced_never_stays_empty BEFORE INSERT ON ledger_unbalanced_never "
            "BEGIN SELECT RAISE(ABORT, 'ledger: the zero-sum guard is not edited'); END",
        ),
    ]
    return triggers


TRIGGER_NAMES = tuple(name for name, _sql in _triggers())


def install(schema_editor: BaseDatabaseSchemaEditor) -> None:
    """Create the guard tables and triggers; a no-op on any backend but SQLite."""
    if schema_editor.connection.vendor != "sqlite":
        return
    for sql in TABLES:
        schema_editor.execute(sql)
    for _name, sql in _triggers():
        schema_editor.execute(sql)


def reinstall_trigger(schema_editor: BaseDatabaseSchemaEditor, name: str) -> None:
    """Replace one guard trigger by its current definition (a migration that changes it)."""
    if schema_editor.connection.vendor != "sqlite":
        return
    schema_editor.execute(f"DROP TRIGGER IF EXISTS {name}")
    schema_editor.execute(dict(_triggers())[name])


def uninstall(schema_editor: BaseDatabaseSchemaEditor) -> None:
    if schema_editor.connection.vendor != "sqlite":
        return
    for name in TRIGGER_NAMES:
        schema_editor.execute(f"DROP TRIGGER IF EXISTS {name}")
    schema_editor.execute("DROP TABLE IF EXISTS ledger_unbalanced_transaction")
    schema_editor.execute("DROP TABLE IF EXISTS ledger_unbalanced_never")


def missing_guards(connection) -> list[str]:
    """The guard triggers absent from this SQLite database (empty on other backends)."""
    if connection.vendor != "sqlite":
        return []
    with connection.cursor() as cursor:
        cursor.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")
        present = {name for (name,) in cursor.fetchall()}
    return [name for name in TRIGGER_NAMES if name not in present]
