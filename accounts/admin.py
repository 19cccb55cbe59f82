from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin

from .models import User


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    list_display = ("username", "email", "is_streamer", "is_staff", "is_active", "date_joined")
    list_filter = ("is_streamer", "is_staff", "is_active")
    fieldsets = (*DjangoUserAdmin.fieldsets, ("MissionHub", {"fields": ("is_streamer",)}))
    add_fieldsets = (
        *DjangoUserAdmin.add_fieldsets,
        ("MissionHub", {"fields": ("email", "is_streamer")}),
    )
