"""The admin's rule for money rows: staff look, and act only through actions."""

from django.contrib import admin
from django.core.exceptions import PermissionDenied


class ServiceOnlyAdmin(admin.ModelAdmin):
    """Rows nobody adds, edits or deletes by hand, however privileged (a Save writes the
    whole row back without its lock, over whatever a service committed meanwhile).

    Staff act through admin actions that call services, each behind its own permission
    (`@admin.action(permissions=["cancel"])` with `has_cancel_permission`). Posting an
    action one may not run is refused with 403, not shown as "no action selected".
    """

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def changelist_view(self, request, extra_context=None):
        if request.method == "POST":
            allowed = self.get_actions(request)
            if any(name and name not in allowed for name in request.POST.getlist("action")):
                raise PermissionDenied
        return super().changelist_view(request, extra_context)
