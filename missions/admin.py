from django.contrib import admin, messages

from missionhub.admin import ServiceOnlyAdmin
from missionhub.errors import MissionHubError

from . import services
from .models import Mission, SweepFailure


@admin.register(Mission)
class MissionAdmin(ServiceOnlyAdmin):
    """Missions are read-only here: status, pot and settlement move only through services."""

    list_display = (
        "id",
        "title",
        "streamer_id",
        "creator_id",
        "status",
        "pot",
        "contributor_count",
        "deadline",
        "settled_at",
    )
    list_filter = ("status", "is_active")
    search_fields = ("title", "=streamer_id", "=creator_id")
    ordering = ("-id",)
    actions = ["cancel_missions"]
    readonly_fields = [f.name for f in Mission._meta.fields]

    def has_cancel_permission(self, request) -> bool:
        return request.user.has_perm("missions.cancel_mission")

    @admin.action(permissions=["cancel"], description="Cancel the selected missions and refund every contributor")
    def cancel_missions(self, request, queryset):
        cancelled = 0
        for mission_id in queryset.values_list("pk", flat=True):
            try:
                services.mission_cancel(mission_id=mission_id, staff_id=request.user.pk)
            except MissionHubError as exc:
                self.message_user(request, f"Mission {mission_id}: {exc.message}", messages.WARNING)
            else:
                cancelled += 1
        self.message_user(request, f"Cancelled {cancelled} mission(s); refunds follow.", messages.SUCCESS)


@admin.register(SweepFailure)
class SweepFailureAdmin(ServiceOnlyAdmin):
    """What the sweep could not do, and when it tries again; written only by the sweep."""

    list_display = ("mission_id", "step", "consecutive", "attempts", "failed_at", "retry_at", "resolved_at")
    list_filter = ("step", ("resolved_at", admin.EmptyFieldListFilter))
    search_fields = ("=mission__id",)
    ordering = ("-failed_at",)
    readonly_fields = [f.name for f in SweepFailure._meta.fields]
