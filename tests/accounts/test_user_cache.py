"""The JWT's user comes from the cache (accounts.user_cache), and every change to the user
refuses or reflects at once on the next request, whatever way the change was made."""

import pytest
from django.core.cache import cache
from django.db import connections, transaction
from rest_framework_simplejwt.tokens import AccessToken

from accounts import services
from accounts.models import User
from accounts.user_cache import _keys, user_for_token
from tests.accounts.factories import PASSWORD, UserFactory
from tests.utils import both_databases, query_counts

pytestmark = both_databases

ME = "/api/users/me"


@pytest.fixture
def signed_in(auth_client):
    """auth_client after one request: its user is in the cache."""
    assert auth_client.get(ME).status_code == 200
    return auth_client


def _code(response) -> str:
    return response.json()["code"]


class TestCachedUser:
    def test_a_signed_in_request_reads_no_user_from_the_accounts_database(self, signed_in):
        counts = query_counts(lambda: signed_in.get(ME))

        assert counts["accounts"] == 0

    def test_without_the_cache_every_request_reads_the_user(self, signed_in, settings):
        settings.MISSIONHUB_USER_CACHE_SECONDS = 0

        counts = query_counts(lambda: signed_in.get(ME))

        assert counts["accounts"] == 1

    def test_the_cached_user_holds_no_password_hash(self, signed_in):
        entry = cache.get(_keys(signed_in.user.pk)[0])

        assert signed_in.user.password not in repr(entry)

    def test_a_cached_user_reads_its_password_when_asked(self, signed_in):
        user, _ = user_for_token(user_id=signed_in.user.pk)

        assert user.get_deferred_fields() == {"password"}
        assert user.check_password(PASSWORD)


class TestInvalidation:
    def test_a_deactivation_saved_refuses_the_next_request(self, signed_in):
        user = User.objects.get(pk=signed_in.user.pk)
        user.is_active = False
        user.save(update_fields=["is_active"])

        response = signed_in.get(ME)

        assert response.status_code == 401
        assert _code(response) == "no_active_account"

    def test_a_deactivation_by_queryset_update_refuses_the_next_request(self, signed_in):
        User.objects.filter(pk=signed_in.user.pk).update(is_active=False)

        response = signed_in.get(ME)

        assert response.status_code == 401
        assert _code(response) == "no_active_account"

    def test_a_bulk_update_refuses_the_next_request(self, signed_in):
        user = User.objects.get(pk=signed_in.user.pk)
        user.is_active = False
        User.objects.bulk_update([user], ["is_active"])

        response = signed_in.get(ME)

        assert response.status_code == 401
        assert _code(response) == "no_active_account"

    def test_a_deletion_refuses_the_next_request(self, signed_in):
        User.objects.get(pk=signed_in.user.pk).delete()

        response = signed_in.get(ME)

        assert response.status_code == 401
        assert _code(response) == "no_active_account"

    def test_a_deletion_by_queryset_refuses_the_next_request(self, signed_in):
        User.objects.filter(pk=signed_in.user.pk).delete()

        response = signed_in.get(ME)

        assert response.status_code == 401
        assert _code(response) == "no_active_account"

    def test_a_password_changed_through_the_api_refuses_the_old_token(self, signed_in):
        old = AccessToken.for_user(signed_in.user)
        changed = signed_in.post(
            "/api/auth/password", {"old_password": PASSWORD, "new_password": "a-new-horse-battery"}, format="json"
        )

        signed_in.credentials(HTTP_AUTHORIZATION=f"Bearer {old}")
        response = signed_in.get(ME)

        assert changed.status_code == 204
        assert response.status_code == 401
        assert _code(response) == "token_not_valid"

    def test_a_password_set_by_the_service_refuses_the_old_token(self, signed_in):
        services.user_password_set(user=User.objects.get(pk=signed_in.user.pk), password="a-new-horse-battery")

        response = signed_in.get(ME)

        assert response.status_code == 401
        assert _code(response) == "token_not_valid"

    def test_a_new_field_value_shows_on_the_next_request(self, signed_in):
        User.objects.filter(pk=signed_in.user.pk).update(is_streamer=True)

        response = signed_in.get(ME)

        assert response.json()["is_streamer"] is True

    def test_other_users_stay_cached(self, signed_in):
        UserFactory().delete()

        counts = query_counts(lambda: signed_in.get(ME))

        assert counts["accounts"] == 0


class TestRaces:
    def test_a_copy_read_before_the_change_committed_is_stale_after_the_commit(
        self, signed_in, django_capture_on_commit_callbacks
    ):
        user_id = signed_in.user.pk
        entry_key, generation_key = _keys(user_id)
        before = cache.get(entry_key)

        with (
            django_capture_on_commit_callbacks(using="accounts", execute=True),
            transaction.atomic(using="accounts"),
        ):
            User.objects.filter(pk=user_id).update(is_active=False)
            # Another request read the row before this commit and stores its copy now,
            # under the generation it read: the one this change has just set.
            cache.set(entry_key, (cache.get(generation_key), *before[1:]))

        response = signed_in.get(ME)

        assert response.status_code == 401
        assert _code(response) == "no_active_account"

    def test_a_lost_generation_never_revives_an_old_copy(self, signed_in):
        user_id = signed_in.user.pk
        cache.delete(_keys(user_id)[1])  # evicted, or expired
        with connections["accounts"].cursor() as cursor:  # a change the ORM never saw
            cursor.execute("UPDATE accounts_user SET is_active = %s WHERE id = %s", [False, user_id])

        response = signed_in.get(ME)

        assert response.status_code == 401
        assert _code(response) == "no_active_account"
