from rest_framework import status

from missionhub.errors import MissionHubError


class UsernameTaken(MissionHubError):
    code = "username_taken"
    field = "username"
    message = "That username is taken."


class EmailTaken(MissionHubError):
    code = "email_taken"
    field = "email"
    message = "An account with that email address exists."


class NotYourToken(MissionHubError):
    code = "token_not_yours"
    http_status = status.HTTP_403_FORBIDDEN
    message = "That refresh token belongs to another user."
