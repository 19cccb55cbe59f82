"""A crowded mission built in a few set-based statements (PostgreSQL's generate_series):
row for row what tests.missions.factories.make_crowded_mission(with_users=False) writes,
at 10,000 backers in a few seconds instead of ten or more."""

# ruff: noqa: S608 - the statements are built from table names only; values are parameters

from django.db import connection, transaction

from ledger.models import Account, Contribution, Event, Posting, TopupCharge, Transaction
from missions.models import Mission
from tests.missions.factories import make_mission


def backer_ids(mission_id: int) -> tuple[int, int]:
    """The range of user ids [first, end) of a crowd's backers (no accounts rows)."""
    first = 10_000_000 * mission_id
    return first, first + 10_000_000


def make_crowded_mission_sql(*, contributors: int, amount: int = 100, streamer=None) -> Mission:
    """An open mission with `contributors` backers who each topped up and pledged `amount`:
    a balanced top-up with its completed charge and a pledge each, gap-free posting chains,
    `pledged` events, contributions, the pot and the count. The backers have no accounts
    rows (their emails fail as "user deleted")."""
    mission = make_mission(streamer=streamer)
    quote = connection.ops.quote_name
    t = {
        "account": quote(Account._meta.db_table),
        "transaction": quote(Transaction._meta.db_table),
        "charge": quote(TopupCharge._meta.db_table),
        "posting": quote(Posting._meta.db_table),
        "event": quote(Event._meta.db_table),
        "contribution": quote(Contribution._meta.db_table),
        "mission": quote(Mission._meta.db_table),
    }
    first, _ = backer_ids(mission.pk)
    args = {"n": contributors, "amount": amount, "mission": mission.pk, "first": first}
    statements = [
        "CREATE TEMPORARY TABLE crowd ON COMMIT DROP AS "
        "SELECT i, %(first)s + i AS user_id, 'crowd_' || %(mission)s || '_' || i AS reference "
        "FROM generate_series(0, %(n)s - 1) i",
        f"INSERT INTO {t['account']} (kind, user_id, balance, version) SELECT 'wallet', user_id, 0, 2 FROM crowd",
        f"INSERT INTO {t['transaction']} (kind, actor_id, reference) SELECT 'topup', user_id, reference FROM crowd",
        # each top-up's completed charge, as wallet_topup records it
        f"INSERT INTO {t['charge']} (user_id, amount, provider_key, status, reference, transaction_id, "
        f"created_at, updated_at) SELECT c.user_id, %(amount)s, gen_random_uuid(), 'completed', c.reference, "
        f"topup.id, now(), now() "
        f"FROM crowd c JOIN {t['transaction']} topup ON topup.reference = c.reference",
        f"INSERT INTO {t['transaction']} (kind, mission_id, actor_id) SELECT 'pledge', %(mission)s, user_id FROM crowd",
        # the escrow's legs continue its chain, in the crowd's order (external keeps none)
        f"INSERT INTO {t['posting']} (transaction_id, account_id, amount, balance_after, version) "
        f"SELECT topup.id, ext.id, -%(amount)s, NULL::bigint, NULL::bigint "
        f"FROM crowd c JOIN {t['transaction']} topup ON topup.reference = c.reference "
        f"CROSS JOIN {t['account']} ext WHERE ext.kind = 'external' "
        f"UNION ALL SELECT topup.id, w.id, %(amount)s, %(amount)s, 1 "
        f"FROM crowd c JOIN {t['transaction']} topup ON topup.reference = c.reference "
        f"JOIN {t['account']} w ON w.kind = 'wallet' AND w.user_id = c.user_id "
        f"UNION ALL SELECT pledge.id, w.id, -%(amount)s, 0, 2 "
        f"FROM crowd c JOIN {t['transaction']} pledge ON pledge.kind = 'pledge' "
        f"AND pledge.mission_id = %(mission)s AND pledge.actor_id = c.user_id "
        f"JOIN {t['account']} w ON w.kind = 'wallet' AND w.user_id = c.user_id "
        f"UNION ALL SELECT pledge.id, esc.id, %(amount)s, esc.balance + %(amount)s * (c.i + 1), esc.version + c.i + 1 "
        f"FROM crowd c JOIN {t['transaction']} pledge ON pledge.kind = 'pledge' "
        f"AND pledge.mission_id = %(mission)s AND pledge.actor_id = c.user_id "
        f"CROSS JOIN {t['account']} esc WHERE esc.kind = 'escrow' AND esc.mission_id = %(mission)s",
        f"INSERT INTO {t['event']} (mission_id, kind, actor_id, amount) "
        f"SELECT %(mission)s, 'pledged', user_id, %(amount)s FROM crowd",
        f"INSERT INTO {t['contribution']} (mission_id, user_id, total, pledges) "
        f"SELECT %(mission)s, user_id, %(amount)s, 1 FROM crowd",
        f"UPDATE {t['account']} SET balance = balance + %(amount)s * %(n)s, version = version + %(n)s "
        f"WHERE kind = 'escrow' AND mission_id = %(mission)s",
        f"UPDATE {t['mission']} SET pot = pot + %(amount)s * %(n)s, contributor_count = contributor_count + %(n)s "
        f"WHERE id = %(mission)s",
    ]
    with transaction.atomic(using="default"), connection.cursor() as cursor:
        cursor.execute(f"SELECT 1 FROM {t['account']} WHERE kind = 'escrow' FOR UPDATE")
        for sql in statements:
            cursor.execute(sql, args)
    mission.refresh_from_db()
    return mission
