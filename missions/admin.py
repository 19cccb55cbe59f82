from django.contrib import admin, messages

from missionhub.errors import MissionHubError

from . import services
from .models import Mission


@admin.register(Mission)
class MissionAdmin(admin.ModelAdmin):
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

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.action(description="Cancel the selected missions and refund every contributor")
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
