import math

from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth import login, logout, update_session_auth_hash
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.contrib.auth.forms import AuthenticationForm
from django.core.exceptions import ValidationError
from django.shortcuts import redirect, render
from django.urls import reverse, reverse_lazy
from django.utils.translation import gettext as _
from django.views import i18n as i18n_views
from django.views.decorators.http import require_http_methods, require_POST

from missionhub.errors import MissionHubError
from missionhub.throttling import RegisterThrottle, login_throttle_wait

from . import services
from .errors import PasswordIncorrect
from .forms import PasswordChangeForm, PasswordResetForm, PasswordResetSetForm, SignupForm


def _throttled(request, throttle_class) -> bool:
    return request.method == "POST" and not throttle_class().allow_request(request, None)


class LoginView(auth_views.LoginView):
    """The sign-in page, behind the sign-in limits every way in shares (missionhub.throttling).

    Over a limit the password is not even checked: a 429 with the message and the form.
    """

    template_name = "accounts/login.html"
    form_class = AuthenticationForm
    redirect_authenticated_user = True

    def post(self, request, *args, **kwargs):
        wait = login_throttle_wait(request)
        if wait is None:
            return super().post(request, *args, **kwargs)
        messages.error(request, _("Too many sign-in attempts. Wait a minute and try again."), extra_tags="throttled")
        form = self.get_form_class()(request, initial={"username": request.POST.get("username", "")[:150]})
        response = self.render_to_response(self.get_context_data(form=form), status=429)
        response["Retry-After"] = str(max(1, math.ceil(wait)))
        return response


class AdminLoginView(LoginView):
    """`/admin/login/`, routed before the admin's own: AdminSite.login with the same limits."""

    template_name = "admin/login.html"
    form_class = AdminAuthenticationForm
    redirect_authenticated_user = False

    def dispatch(self, request, *args, **kwargs):
        request.current_app = admin.site.name
        if request.method == "GET" and admin.site.has_permission(request):
            return redirect("admin:index")
        return super().dispatch(request, *args, **kwargs)

    def get_default_redirect_url(self):
        return reverse("admin:index", current_app=admin.site.name)

    def get_context_data(self, **kwargs):
        return {
            **super().get_context_data(**kwargs),
            **admin.site.each_context(self.request),
            "title": _("Log in"),
            "subtitle": None,
            "app_path": self.request.get_full_path(),
            "username": self.request.user.get_username(),
        }


@require_http_methods(["GET", "POST"])
def signup(request):
    if request.user.is_authenticated:
        return redirect("/")
    form = SignupForm(request.POST or None)
    if request.method == "POST":
        if _throttled(request, RegisterThrottle):
            form.add_error(None, _("Too many sign-ups from your address. Try again later."))
            return render(request, "accounts/signup.html", {"form": form}, status=429)
        if form.is_valid():
            try:
                user = services.user_create(**form.cleaned_data, language=request.LANGUAGE_CODE)
            except ValidationError as exc:
                form.add_error("password", exc)
            except MissionHubError as exc:
                form.add_error(exc.field, exc.message)
            else:
                login(request, user, backend="django.contrib.auth.backends.ModelBackend")
                messages.success(request, _("Welcome to MissionHub, %(name)s!") % {"name": user.username})
                return redirect("/")
    return render(request, "accounts/signup.html", {"form": form}, status=400 if form.errors else 200)


@require_POST
def language_switch(request):
    """Django's set_language, and the signed-in user's emails follow the new language."""
    response = i18n_views.set_language(request)
    language = request.POST.get("language", "")
    if request.user.is_authenticated and language in dict(settings.LANGUAGES):
        services.user_language_set(user=request.user, language=language)
    return response


@require_http_methods(["GET", "POST"])
def logout_view(request):
    if request.method == "POST":
        logout(request)
        messages.info(request, _("You are signed out."))
        return redirect("/")
    return render(request, "accounts/logout.html")


@login_required
@require_http_methods(["GET", "POST"])
def password_change(request):
    form = PasswordChangeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            services.user_password_change(
                user=request.user,
                old_password=form.cleaned_data["old_password"],
                new_password=form.cleaned_data["new_password1"],
            )
        except PasswordIncorrect as exc:
            form.add_error("old_password", exc.message)
        except ValidationError as exc:
            form.add_error("new_password1", exc)
        else:
            update_session_auth_hash(request, request.user)  # this session stays; the others end
            messages.success(
                request, _("Your password is changed. Your other sessions and every API token are signed out.")
            )
            return redirect("password-change")
    return render(request, "accounts/password_change.html", {"form": form}, status=400 if form.errors else 200)


# Password reset by email: Django's views, our templates and forms (accounts.forms).
password_reset = auth_views.PasswordResetView.as_view(
    form_class=PasswordResetForm,
    template_name="accounts/password_reset_form.html",
    email_template_name="accounts/password_reset_email.txt",
    subject_template_name="accounts/password_reset_subject.txt",
    success_url=reverse_lazy("password-reset-done"),
)
password_reset_done = auth_views.PasswordResetDoneView.as_view(template_name="accounts/password_reset_done.html")
password_reset_confirm = auth_views.PasswordResetConfirmView.as_view(
    form_class=PasswordResetSetForm,
    template_name="accounts/password_reset_confirm.html",
    success_url=reverse_lazy("password-reset-complete"),
)
password_reset_complete = auth_views.PasswordResetCompleteView.as_view(
    template_name="accounts/password_reset_complete.html"
)
