from django import forms
from django.contrib.auth.validators import UnicodeUsernameValidator
from django.utils.translation import gettext_lazy as _

from missionhub.validators import refuse_control_characters


class SignupForm(forms.Form):
    username = forms.CharField(
        label=_("Username"), max_length=150, validators=[refuse_control_characters, UnicodeUsernameValidator()]
    )
    email = forms.EmailField(label=_("Email"), max_length=254, validators=[refuse_control_characters])
    password = forms.CharField(label=_("Password"), strip=False, widget=forms.PasswordInput)
    is_streamer = forms.BooleanField(label=_("I am a streamer"), required=False)
