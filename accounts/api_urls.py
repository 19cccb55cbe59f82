from django.urls import path

from . import api

urlpatterns = [
    path("auth/register", api.RegisterApi.as_view(), name="api-register"),
    path("auth/token", api.TokenObtainApi.as_view(), name="api-token"),
    path("auth/token/refresh", api.TokenRefreshApi.as_view(), name="api-token-refresh"),
    path("auth/logout", api.LogoutApi.as_view(), name="api-logout"),
    path("auth/password", api.PasswordChangeApi.as_view(), name="api-password-change"),
    path("users/<str:username>", api.UserProfileApi.as_view(), name="api-user-profile"),
]
