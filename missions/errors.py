from django.utils.translation import gettext_lazy as _
from rest_framework import status

from missionhub.errors import MissionHubError
from missionhub.validators import CONTROL_CHARACTERS_MESSAGE


class MissionNotFound(MissionHubError):
    code = "mission_not_found"
    http_status = status.HTTP_404_NOT_FOUND
    message = _("No such mission.")


class MissionClosed(MissionHubError):
    code = "mission_closed"
    http_status = status.HTTP_409_CONFLICT
    message = _("This mission is closed.")


class InvalidTransition(MissionHubError):
    code = "invalid_transition"
    http_status = status.HTTP_409_CONFLICT
    message = _("The mission's status does not allow that.")


class NotMissionStreamer(MissionHubError):
    code = "not_mission_streamer"
    http_status = status.HTTP_403_FORBIDDEN
    message = _("Only the mission's streamer can decide it.")


class StreamerCannotPledge(MissionHubError):
    code = "streamer_cannot_pledge"
    http_status = status.HTTP_403_FORBIDDEN
    message = _("A streamer cannot pledge to their own mission.")


class StreamerNotFound(MissionHubError):
    code = "streamer_not_found"
    field = "streamer"
    message = _("No user has that username.")


class NotAStreamer(MissionHubError):
    code = "not_a_streamer"
    field = "streamer"
    message = _("That user is not a streamer.")


class OwnMission(MissionHubError):
    code = "own_mission"
    field = "streamer"
    message = _("A streamer cannot create a mission for themselves.")


class InvalidDuration(MissionHubError):
    code = "invalid_duration"
    field = "duration_seconds"
    message = _("The duration is outside the allowed range.")


class EmailSendFailed(Exception):
    """At least one email could not be handed to the provider; the task retries."""


class InvalidText(MissionHubError):
    """A typed text holds control characters (see missionhub.validators)."""

    code = "invalid"
    message = CONTROL_CHARACTERS_MESSAGE

    def __init__(self, *, field: str, message: str | None = None):
        super().__init__(message)
        self.field = field
