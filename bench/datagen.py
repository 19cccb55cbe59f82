"""Generated data, written set-based in SQL (PostgreSQL): users, wallets with balances,
missions with escrows, pledges. Imported after django.setup().

The rows are those the services would write (a transaction and two postings per pledge,
gap-free version chains, cached balances, the mission's pot and contributor count, a
`pledged` event, the contributions), so ledger_verify checks them with the rest. Triggers are off while
loading (session_replication_role = replica, for this transaction only): the zero-sum
row trigger would fire once per posting; ledger_verify checks the sums afterwards.
"""

from django.contrib.auth.hashers import make_password
from django.db import connections, transaction

PLEDGE = 100


def _cursor(alias: str):
    return connections[alias].cursor()


def users(*, prefix: str, count: int, is_streamer: bool = False) -> list[int]:
    """`count` users named <prefix><n> in the accounts database; their ids."""
    password = make_password(None)  # unusable: nobody signs in, the bench mints JWTs
    with transaction.atomic(using="accounts"), _cursor("accounts") as cursor:
        cursor.execute(
            """
            INSERT INTO accounts_user (password, is_superuser, username, username_canonical, first_name,
                last_name, email, is_staff, is_active, date_joined, is_streamer, language)
            SELECT %s, false, %s || n, lower(%s || n), '', '', %s || n || '@bench.invalid', false, true,
                now(), %s, 'en'
            FROM generate_series(1, %s) AS n
            RETURNING id
            """,
            [password, prefix, prefix, prefix, is_streamer, count],
        )
        return sorted(row[0] for row in cursor.fetchall())


def _replica(cursor) -> None:
    cursor.execute("SET LOCAL session_replication_role = replica")


def topups(user_ids: list[int], *, amount: int) -> None:
    """A wallet for each user (if missing) and one top-up of `amount` from `external`."""
    with transaction.atomic(using="default"), _cursor("default") as cursor:
        _replica(cursor)
        cursor.execute(
            "INSERT INTO ledger_account (kind, balance, version, created_at) SELECT 'external', 0, 0, now() "
            "WHERE NOT EXISTS (SELECT 1 FROM ledger_account WHERE kind = 'external')"
        )
        cursor.execute(
            """
            INSERT INTO ledger_account (kind, user_id, balance, version, created_at)
            SELECT 'wallet', u, 0, 0, now() FROM unnest(%s::bigint[]) AS u
            WHERE NOT EXISTS (SELECT 1 FROM ledger_account a WHERE a.kind = 'wallet' AND a.user_id = u)
            """,
            [user_ids],
        )
        cursor.execute("DROP TABLE IF EXISTS bench_topup")
        cursor.execute(
            """
            CREATE TEMP TABLE bench_topup ON COMMIT DROP AS
            SELECT nextval(pg_get_serial_sequence('ledger_transaction', 'id')) AS tx_id, u AS user_id
            FROM unnest(%s::bigint[]) AS u
            """,
            [user_ids],
        )
        cursor.execute(
            "INSERT INTO ledger_transaction (id, kind, actor_id, reference, created_at) "
            "SELECT tx_id, 'topup', user_id, 'bench-topup-' || tx_id, now() FROM bench_topup"
        )
        cursor.execute(
            "INSERT INTO ledger_topupcharge (user_id, amount, provider_key, status, reference, transaction_id, "
            "created_at, updated_at) SELECT user_id, %s, gen_random_uuid(), 'completed', 'bench-topup-' || tx_id, "
            "tx_id, now(), now() FROM bench_topup",
            [amount],
        )
        cursor.execute(
            """
            INSERT INTO ledger_posting (transaction_id, account_id, amount, balance_after, version)
            SELECT t.tx_id, a.id, %s, a.balance + %s, a.version + 1
            FROM bench_topup t JOIN ledger_account a ON a.kind = 'wallet' AND a.user_id = t.user_id
            """,
            [amount, amount],
        )
        cursor.execute(
            """
            INSERT INTO ledger_posting (transaction_id, account_id, amount, balance_after, version)
            SELECT t.tx_id, a.id, -%s, NULL, NULL
            FROM bench_topup t CROSS JOIN ledger_account a WHERE a.kind = 'external'
            """,
            [amount],
        )
        cursor.execute(
            "UPDATE ledger_account SET balance = balance + %s, version = version + 1 "
            "WHERE kind = 'wallet' AND user_id = ANY(%s)",
            [amount, user_ids],
        )


def missions(
    *, count: int, streamer_ids: list[int], creator_id: int, title: str, deadline_hours: float = 24
) -> list[int]:
    """`count` pending missions (round the streamers) with their escrows and `created` events."""
    with transaction.atomic(using="default"), _cursor("default") as cursor:
        _replica(cursor)
        cursor.execute(
            """
            INSERT INTO missions_mission (title, description, streamer_id, creator_id, status, pot,
                contributor_count, deadline, created_at)
            SELECT %s || ' ' || n, 'Generated by the benchmark.', (%s::bigint[])[1 + n %% %s], %s, 'pending', 0, 0,
                now() + make_interval(secs => %s), now() - make_interval(secs => n)
            FROM generate_series(1, %s) AS n
            RETURNING id
            """,
            [title, streamer_ids, len(streamer_ids), creator_id, deadline_hours * 3600, count],
        )
        ids = sorted(row[0] for row in cursor.fetchall())
        cursor.execute(
            "INSERT INTO ledger_account (kind, mission_id, balance, version, created_at) "
            "SELECT 'escrow', m, 0, 0, now() FROM unnest(%s::bigint[]) AS m",
            [ids],
        )
        cursor.execute(
            "INSERT INTO ledger_event (mission_id, kind, actor_id, created_at) "
            "SELECT m, 'created', %s, now() FROM unnest(%s::bigint[]) AS m",
            [creator_id, ids],
        )
        return ids


def pledges(*, mission_ids: list[int], user_ids: list[int], per_user: int, amount: int = PLEDGE) -> int:
    """Each user pledges `amount` `per_user` times, spread round `mission_ids` (fresh missions,
    no pledges yet); returns the number of pledges. Wallets must hold enough."""
    with transaction.atomic(using="default"), _cursor("default") as cursor:
        _replica(cursor)
        cursor.execute(
            """
            CREATE TEMP TABLE bench_pledge ON COMMIT DROP AS
            SELECT nextval(pg_get_serial_sequence('ledger_transaction', 'id')) AS tx_id, u.user_id,
                   (%s::bigint[])[1 + ((u.ord - 1) * %s + k - 1) %% %s] AS mission_id
            FROM unnest(%s::bigint[]) WITH ORDINALITY AS u(user_id, ord), generate_series(1, %s) AS k
            """,
            [mission_ids, per_user, len(mission_ids), user_ids, per_user],
        )
        cursor.execute("SELECT count(*) FROM bench_pledge")
        total = cursor.fetchone()[0]
        cursor.execute(
            "INSERT INTO ledger_transaction (id, kind, mission_id, actor_id, created_at) "
            "SELECT tx_id, 'pledge', mission_id, user_id, now() FROM bench_pledge"
        )
        for kind, owner, sign in (("wallet", "user_id", -1), ("escrow", "mission_id", 1)):
            cursor.execute(
                f"""
                INSERT INTO ledger_posting (transaction_id, account_id, amount, balance_after, version)
                SELECT p.tx_id, a.id, %s,
                       a.balance + %s * row_number() OVER w, a.version + row_number() OVER w
                FROM bench_pledge p JOIN ledger_account a ON a.kind = '{kind}' AND a.{owner} = p.{owner}
                WINDOW w AS (PARTITION BY a.id ORDER BY p.tx_id)
                """,  # noqa: S608 (constants)
                [sign * amount, sign * amount],
            )
            cursor.execute(
                f"""
                UPDATE ledger_account a SET balance = a.balance + %s * s.n, version = a.version + s.n
                FROM (SELECT {owner} AS owner, count(*) AS n FROM bench_pledge GROUP BY {owner}) s
                WHERE a.kind = '{kind}' AND a.{owner} = s.owner
                """,  # noqa: S608 (constants)
                [sign * amount],
            )
        cursor.execute(
            """
            UPDATE missions_mission m SET pot = m.pot + %s * s.n, contributor_count = m.contributor_count + s.people
            FROM (SELECT mission_id, count(*) AS n, count(DISTINCT user_id) AS people FROM bench_pledge
                  GROUP BY mission_id) s
            WHERE m.id = s.mission_id
            """,
            [amount],
        )
        cursor.execute(
            "INSERT INTO ledger_event (mission_id, kind, actor_id, amount, created_at) "
            "SELECT mission_id, 'pledged', user_id, %s, now() FROM bench_pledge",
            [amount],
        )
        cursor.execute(
            "INSERT INTO ledger_contribution (mission_id, user_id, total, pledges) "
            "SELECT mission_id, user_id, %s * count(*), count(*) FROM bench_pledge GROUP BY mission_id, user_id",
            [amount],
        )
        return total
