from datetime import timedelta

from django.utils import timezone

from ledger.idempotency import RETENTION, IdempotentRequest, idempotency_claim, idempotency_replay
from ledger.models import IdempotencyRecord
from tests.utils import both_databases

pytestmark = both_databases


def _request(key: str = "key-1") -> IdempotentRequest:
    return IdempotentRequest(user_id=7, key=key, fingerprint="f" * 64, render=lambda result: (201, result))


def _record(*, age: timedelta) -> IdempotencyRecord:
    record = IdempotencyRecord.objects.create(user_id=7, key="key-1", fingerprint="f" * 64, status_code=201, body={})
    IdempotencyRecord.objects.filter(pk=record.pk).update(created_at=timezone.now() - age)
    return record


class TestIdempotencyReplay:
    def test_looks_a_new_key_up_in_one_select_and_purges_nothing(self, django_assert_num_queries):
        IdempotencyRecord.objects.create(user_id=7, key="other-key", fingerprint="f" * 64, status_code=201, body={})
        IdempotencyRecord.objects.update(created_at=timezone.now() - RETENTION * 2)

        with django_assert_num_queries(1, using="default") as captured:
            found = idempotency_replay(request=_request())

        assert found is None
        assert captured.captured_queries[0]["sql"].startswith("SELECT")
        assert IdempotencyRecord.objects.filter(key="other-key").exists()  # the sweep's to purge

    def test_replays_a_record_within_its_retention(self, django_assert_num_queries):
        record = _record(age=RETENTION - timedelta(minutes=1))

        with django_assert_num_queries(1, using="default"):
            found = idempotency_replay(request=_request())

        assert found == record

    def test_forgets_a_record_past_its_retention_so_that_the_key_is_claimed_again(self):
        _record(age=RETENTION + timedelta(minutes=1))

        found = idempotency_replay(request=_request())
        claimed = idempotency_claim(request=_request())

        assert found is None
        assert IdempotencyRecord.objects.get().pk == claimed.pk
