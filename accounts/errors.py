from django.utils.translation import gettext_lazy as _
from rest_framework import status

from missionhub.errors import MissionHubError


class UsernameTaken(MissionHubError):
    code = "username_taken"
    field = "username"
    message = _("That username is taken.")


class UsernameConfusable(MissionHubError):
    code = "username_confusable"
    field = "username"
    message = _("That username mixes alphabets in a way that looks like another name. Choose a different one.")


class EmailTaken(MissionHubError):
    code = "email_taken"
    field = "email"
    message = _("An account with that email address exists.")


class NotYourToken(MissionHubError):
    code = "token_not_yours"
    http_status = status.HTTP_403_FORBIDDEN
    message = _("That refresh token belongs to another user.")


class PasswordIncorrect(MissionHubError):
    code = "password_incorrect"
    field = "old_password"
    message = _("That is not your current password.")
