import pytest
from django.db import connections

from accounts.models import User
from accounts.selectors import usernames_by_id

pytestmark = pytest.mark.django_db(databases=["default", "accounts"])


def test_usernames_by_id_looks_up_any_number_in_bounded_statements():
    users = User.objects.bulk_create(
        User(username=f"many{i}", username_canonical=f"many{i}", email=f"many{i}@example.com", password="!")
        for i in range(1_201)
    )
    seen: list[int] = []

    def record(execute, sql, params, many, context):
        seen.append(len(params or ()))
        return execute(sql, params, many, context)

    with connections["accounts"].execute_wrapper(record):
        names = usernames_by_id(user_ids=[u.pk for u in users] + [users[0].pk, 999_999_999])

    assert names == {u.pk: u.username for u in users}
    assert len(seen) == 3
    assert max(seen) <= 500


def test_usernames_by_id_of_nobody_asks_nothing(django_assert_num_queries):
    with django_assert_num_queries(0, using="accounts"):
        assert usernames_by_id(user_ids=[]) == {}
