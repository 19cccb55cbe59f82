from django import forms
from django.conf import settings
from django.contrib.auth import forms as auth_forms
from django.contrib.auth import password_validation
from django.contrib.auth.forms import UsernameField
from django.contrib.auth.validators import UnicodeUsernameValidator
from django.utils import translation
from django.utils.translation import gettext_lazy as _

from missionhub.validators import refuse_control_characters

from . import services


class SignupForm(forms.Form):
    # Django's UsernameField: NFKC before the checks, as the service stores it.
    username = UsernameField(
        label=_("Username"), max_length=150, validators=[refuse_control_characters, UnicodeUsernameValidator()]
    )
    email = forms.EmailField(label=_("Email"), max_length=254, validators=[refuse_control_characters])
    password = forms.CharField(label=_("Password"), strip=False, widget=forms.PasswordInput)
    is_streamer = forms.BooleanField(label=_("I am a streamer"), required=False)


class PasswordChangeForm(forms.Form):
    """The fields of /account/password; the checks that matter are the service's."""

    old_password = forms.CharField(
        label=_("Current password"),
        max_length=128,
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password", "autofocus": True}),
    )
    new_password1 = forms.CharField(
        label=_("New password"),
        max_length=128,
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )
    new_password2 = forms.CharField(
        label=_("New password again"),
        max_length=128,
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["new_password1"].help_text = password_validation.password_validators_help_text_html()

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("new_password1") and cleaned.get("new_password2") != cleaned["new_password1"]:
            self.add_error("new_password2", forms.ValidationError(_("The two new passwords differ."), code="mismatch"))
        return cleaned


class PasswordResetForm(auth_forms.PasswordResetForm):
    """Django's reset request. The email speaks the user's language, not the requester's, and
    its link starts with MISSIONHUB_SITE_URL, never the request's Host header."""

    def send_mail(self, subject_template_name, email_template_name, context, *args, **kwargs):
        context = {**context, "site_url": settings.MISSIONHUB_SITE_URL}
        with translation.override(context["user"].language):
            super().send_mail(subject_template_name, email_template_name, context, *args, **kwargs)


class PasswordResetSetForm(auth_forms.SetPasswordForm):
    """Django's new-password form of the emailed link, saved by the service that revokes tokens."""

    def save(self, commit=True):
        services.user_password_set(user=self.user, password=self.cleaned_data["new_password1"])
        return self.user
