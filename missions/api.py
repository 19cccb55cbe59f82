from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.permissions import IsAuthenticated, IsAuthenticatedOrReadOnly
from rest_framework.response import Response
from rest_framework.views import APIView

from ledger.api import IDEMPOTENCY_PARAMETERS, idempotent_response
from missionhub.fields import CashField, SettingRangeIntegerField
from missionhub.schema import Pagination, error_responses
from missionhub.throttling import MONEY_THROTTLES
from missionhub.validators import refuse_control_characters

from . import selectors, services
from .models import Mission


class MissionOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    title = serializers.CharField()
    description = serializers.CharField()
    streamer = serializers.CharField(source="streamer_username", help_text="The streamer's username.")
    creator = serializers.CharField(source="creator_username", help_text="The creator's username.")
    status = serializers.ChoiceField(choices=Mission.Status.choices)
    is_active = serializers.BooleanField()
    pot = serializers.IntegerField()
    contributor_count = serializers.IntegerField()
    deadline = serializers.DateTimeField()
    created_at = serializers.DateTimeField()
    decided_at = serializers.DateTimeField(allow_null=True)
    settled_at = serializers.DateTimeField(allow_null=True)


def mission_data(mission: Mission) -> dict:
    return dict(MissionOutputSerializer(selectors.missions_attach_usernames([mission])[0]).data)


def _pledge_amount() -> CashField:
    return CashField(min_setting="MISSIONHUB_PLEDGE_MIN", max_setting="MISSIONHUB_PLEDGE_MAX")


# The URL takes digits only; ids start at 1 (0 is a well-formed id of no mission: 404).
MISSION_ID = OpenApiParameter("mission_id", {"type": "integer", "minimum": 1}, OpenApiParameter.PATH)


class MissionListCreateApi(APIView):
    permission_classes = [IsAuthenticatedOrReadOnly]
    throttle_classes = MONEY_THROTTLES
    pagination_class = Pagination

    class FilterSerializer(serializers.Serializer):
        status = serializers.ChoiceField(choices=Mission.Status.choices, required=False)
        streamer = serializers.CharField(required=False, max_length=150, validators=[refuse_control_characters])
        creator = serializers.CharField(required=False, max_length=150, validators=[refuse_control_characters])
        active = serializers.BooleanField(required=False, allow_null=True, default=None)

    class InputSerializer(serializers.Serializer):
        # No control characters (CR, LF, NUL, tab, ...) in any of the three: one line of text each.
        title = serializers.CharField(max_length=120, validators=[refuse_control_characters])
        description = serializers.CharField(
            max_length=2000, allow_blank=True, default="", validators=[refuse_control_characters]
        )
        streamer = serializers.CharField(
            max_length=150, help_text="The streamer's username.", validators=[refuse_control_characters]
        )
        amount = _pledge_amount()
        duration_seconds = SettingRangeIntegerField(
            min_setting="MISSIONHUB_MIN_MISSION_SECONDS", max_setting="MISSIONHUB_MAX_MISSION_SECONDS"
        )

    @extend_schema(
        parameters=[FilterSerializer],
        responses={200: MissionOutputSerializer(many=True), **error_responses(400)},
    )
    def get(self, request):
        filters = self.FilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(selectors.mission_list(**filters.validated_data), request, view=self)
        missions = selectors.missions_attach_usernames(page)
        return paginator.get_paginated_response(MissionOutputSerializer(missions, many=True).data)

    @extend_schema(
        request=InputSerializer,
        responses={201: MissionOutputSerializer, **error_responses(422)},
        parameters=IDEMPOTENCY_PARAMETERS,
    )
    def post(self, request):
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        return idempotent_response(
            request,
            action=lambda idempotency: services.mission_create(
                creator_id=request.user.pk, idempotency=idempotency, **serializer.validated_data
            ),
            render=lambda mission: (status.HTTP_201_CREATED, mission_data(mission)),
        )


class MissionDetailApi(APIView):
    """A mission. Nobody edits or deletes one: PUT, PATCH and DELETE answer 405."""

    schema_refused_methods = ("PUT", "PATCH", "DELETE")

    @extend_schema(responses={200: MissionOutputSerializer}, parameters=[MISSION_ID])
    def get(self, request, mission_id: int):
        return Response(mission_data(selectors.mission_get(mission_id=mission_id)))


class PledgeApi(APIView):
    permission_classes = [IsAuthenticatedOrReadOnly]
    throttle_classes = MONEY_THROTTLES

    class InputSerializer(serializers.Serializer):
        amount = _pledge_amount()

    class OutputSerializer(serializers.Serializer):
        id = serializers.IntegerField()
        amount = serializers.IntegerField()
        pot = serializers.IntegerField()
        balance = serializers.IntegerField(help_text="The pledger's wallet balance afterwards.")

    class ContributorSerializer(serializers.Serializer):
        username = serializers.CharField()
        amount = serializers.IntegerField()

    @extend_schema(responses={200: ContributorSerializer(many=True)}, parameters=[MISSION_ID])
    def get(self, request, mission_id: int):
        contributors = selectors.mission_contributors(mission_id=mission_id)
        return Response(self.ContributorSerializer(contributors, many=True).data)

    @extend_schema(
        request=InputSerializer,
        responses={201: OutputSerializer, **error_responses(403, 409, 422)},
        parameters=[MISSION_ID, *IDEMPOTENCY_PARAMETERS],
    )
    def post(self, request, mission_id: int):
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        return idempotent_response(
            request,
            action=lambda idempotency: services.pledge_create(
                mission_id=mission_id,
                user_id=request.user.pk,
                amount=serializer.validated_data["amount"],
                idempotency=idempotency,
            ),
            render=lambda pledge: (status.HTTP_201_CREATED, dict(self.OutputSerializer(pledge).data)),
        )


class MissionDecideApi(APIView):
    """The mission's streamer accepts, rejects, succeeds or fails it, before its deadline."""

    permission_classes = [IsAuthenticated]
    decision = ""  # set per URL: accept, reject, success or fail

    @extend_schema(
        request=None, responses={200: MissionOutputSerializer, **error_responses(403, 409)}, parameters=[MISSION_ID]
    )
    def post(self, request, mission_id: int):
        _ = request.data  # no input, but a body that does not parse is refused, as on every POST
        mission = services.mission_decide(mission_id=mission_id, user_id=request.user.pk, action=self.decision)
        return Response(mission_data(mission))


class MissionEventsApi(APIView):
    class OutputSerializer(serializers.Serializer):
        id = serializers.IntegerField()
        kind = serializers.CharField()
        actor = serializers.CharField(allow_null=True, help_text="Username; empty for the system (expiry).")
        amount = serializers.IntegerField(allow_null=True)
        created_at = serializers.DateTimeField()

    @extend_schema(
        responses={200: OutputSerializer(many=True)},
        parameters=[MISSION_ID],
    )
    def get(self, request, mission_id: int):
        return Response(self.OutputSerializer(selectors.mission_timeline(mission_id=mission_id), many=True).data)
