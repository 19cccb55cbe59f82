from django.urls import path

from . import api

urlpatterns = [
    path("users/me", api.UserMeApi.as_view(), name="api-users-me"),
]
