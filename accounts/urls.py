from django.urls import path

from . import views

urlpatterns = [
    path("login", views.LoginView.as_view(), name="login"),
    path("signup", views.signup, name="signup"),
    path("logout", views.logout_view, name="logout"),
    path("account/password", views.password_change, name="password-change"),
    path("password-reset", views.password_reset, name="password-reset"),
    path("password-reset/done", views.password_reset_done, name="password-reset-done"),
    path("password-reset/complete", views.password_reset_complete, name="password-reset-complete"),
    path("password-reset/<uidb64>/<token>", views.password_reset_confirm, name="password-reset-confirm"),
    path("i18n/setlang/", views.language_switch, name="set_language"),
]
