"""Read-only views of the ledger for staff: history is never edited by hand."""

from django.contrib import admin

from missionhub.admin import ServiceOnlyAdmin

from .models import Account, Event, IdempotencyRecord, Notification, Posting, SandboxCharge, TopupCharge, Transaction


class ReadOnlyAdmin(ServiceOnlyAdmin):
    """No add, change or delete for anyone; actions, when there are some, call services."""


class PostingInline(admin.TabularInline):
    model = Posting
    fields = ("account", "amount", "balance_after", "version")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Account)
class AccountAdmin(ReadOnlyAdmin):
    list_display = ("id", "kind", "user_id", "mission_id", "balance", "version", "created_at")
    list_filter = ("kind",)
    search_fields = ("=user_id", "=mission_id")
    ordering = ("-id",)


@admin.register(Transaction)
class TransactionAdmin(ReadOnlyAdmin):
    list_display = ("id", "kind", "mission_id", "actor_id", "reference", "created_at")
    list_filter = ("kind",)
    search_fields = ("=mission_id", "=actor_id", "reference")
    ordering = ("-id",)
    inlines = [PostingInline]


@admin.register(Event)
class EventAdmin(ReadOnlyAdmin):
    list_display = ("id", "mission_id", "kind", "actor_id", "amount", "created_at")
    list_filter = ("kind",)
    search_fields = ("=mission_id",)
    ordering = ("-id",)


@admin.register(Notification)
class NotificationAdmin(ReadOnlyAdmin):
    list_display = ("id", "mission_id", "user_id", "kind", "amount", "sent_at", "failed_at", "attempts", "last_error")
    list_filter = ("kind", ("sent_at", admin.EmptyFieldListFilter), ("failed_at", admin.EmptyFieldListFilter))
    search_fields = ("=mission_id", "=user_id")
    ordering = ("-id",)


@admin.register(IdempotencyRecord)
class IdempotencyRecordAdmin(ReadOnlyAdmin):
    list_display = ("id", "user_id", "key", "status_code", "created_at")
    search_fields = ("=user_id", "key")
    ordering = ("-id",)


@admin.register(TopupCharge)
class TopupChargeAdmin(ReadOnlyAdmin):
    list_display = ("id", "user_id", "amount", "status", "reference", "transaction_id", "created_at", "updated_at")
    list_filter = ("status",)
    search_fields = ("=user_id", "reference", "=provider_key")
    ordering = ("-id",)


@admin.register(SandboxCharge)
class SandboxChargeAdmin(ReadOnlyAdmin):
    list_display = ("id", "user_id", "amount", "reference", "created_at")
    search_fields = ("=user_id", "reference")
    ordering = ("-id",)
