from django import forms
from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.forms import AdminUserCreationForm, UserChangeForm

from . import selectors
from .errors import UsernameTaken
from .models import User


class _CanonicalUsernameMixin:
    """Staff cannot create or rename a user into another's canonical username either."""

    def clean_username(self):
        username = self.cleaned_data.get("username")
        if username and selectors.username_taken(username=username, exclude_user_id=self.instance.pk):
            raise forms.ValidationError(UsernameTaken.message, code=UsernameTaken.code)
        return username


class UserAddForm(_CanonicalUsernameMixin, AdminUserCreationForm):
    pass


class UserEditForm(_CanonicalUsernameMixin, UserChangeForm):
    pass


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    add_form = UserAddForm
    form = UserEditForm
    list_display = ("username", "email", "is_streamer", "is_staff", "is_active", "date_joined")
    list_filter = ("is_streamer", "is_staff", "is_active")
    search_fields = ("username", "username_canonical", "first_name", "last_name", "email")
    fieldsets = (*DjangoUserAdmin.fieldsets, ("MissionHub", {"fields": ("is_streamer",)}))
    add_fieldsets = (
        *DjangoUserAdmin.add_fieldsets,
        ("MissionHub", {"fields": ("email", "is_streamer")}),
    )
