from django import forms
from django.contrib.auth.forms import UsernameField
from django.contrib.auth.validators import UnicodeUsernameValidator
from django.utils.translation import gettext_lazy as _


class SignupForm(forms.Form):
    # Django's UsernameField: NFKC before the checks, as the service stores it.
    username = UsernameField(label=_("Username"), max_length=150, validators=[UnicodeUsernameValidator()])
    email = forms.EmailField(label=_("Email"), max_length=254)
    password = forms.CharField(label=_("Password"), strip=False, widget=forms.PasswordInput)
    is_streamer = forms.BooleanField(label=_("I am a streamer"), required=False)
