from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from missionhub.fields import CashField
from missionhub.schema import Pagination, error_responses
from missionhub.throttling import MoneyThrottle, UserThrottle, throttle_group

from . import selectors, services
from .idempotency import IdempotentRequest, fingerprint_of, idempotency_run, key_validate


# users/me lives in the ledger, not in accounts: accounts sits below the ledger and must
# not import it, and the balance is the ledger's.
class UserMeApi(APIView):
    """The signed-in user: id, username, email, whether they stream, and their wallet balance."""

    permission_classes = [IsAuthenticated]

    class OutputSerializer(serializers.Serializer):
        id = serializers.IntegerField()
        username = serializers.CharField()
        email = serializers.EmailField()
        is_streamer = serializers.BooleanField()
        balance = serializers.IntegerField()

    @extend_schema(responses={200: OutputSerializer})
    def get(self, request):
        user = request.user
        data = {
            "id": user.pk,
            "username": user.username,
            "email": user.email,
            "is_streamer": user.is_streamer,
            "balance": selectors.wallet_balance(user_id=user.pk),
        }
        return Response(self.OutputSerializer(data).data)


# --- idempotent POSTs ---------------------------------------------------------------------


def idempotent_response(request, *, action, render) -> Response:
    """Run `action(idempotency)` once per `Idempotency-Key` and answer with `render(result)`.

    Without the header the action simply runs. With it, a stored response for the same
    request is replayed (header `Idempotent-Replayed: true`) and nothing moves; the same
    key with a different request is refused (422, `idempotency_key_reused`).
    """
    key = request.headers.get("Idempotency-Key")
    if key is None:
        status_code, body = render(action(None))
        return Response(body, status=status_code)

    idempotency = IdempotentRequest(
        user_id=request.user.pk,
        key=key_validate(key),
        fingerprint=fingerprint_of(method=request.method, path=request.path, data=request.data),
        render=render,
    )
    status_code, body, replayed = idempotency_run(request=idempotency, action=action)
    return Response(body, status=status_code, headers={"Idempotent-Replayed": "true"} if replayed else None)


# --- wallet -------------------------------------------------------------------------------

IDEMPOTENCY_PARAMETERS = [
    OpenApiParameter(
        "Idempotency-Key",
        # As key_validate checks it: 1 to 255 printable ASCII characters.
        {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[ -~]+$"},
        OpenApiParameter.HEADER,
        required=False,
        description="Repeat the POST safely: the same key and body return the first response and move nothing "
        "(a different body with the same key: 422). Keys are kept 24 hours.",
    ),
    OpenApiParameter(
        "Idempotent-Replayed",
        {"type": "string", "enum": ["true"]},
        OpenApiParameter.HEADER,
        required=False,
        response=[201],
        description="Present on a replay: this is the first response to this Idempotency-Key, and nothing moved.",
    ),
]


class WalletApi(APIView):
    permission_classes = [IsAuthenticated]

    class OutputSerializer(serializers.Serializer):
        balance = serializers.IntegerField()

    @extend_schema(responses={200: OutputSerializer})
    def get(self, request):
        return Response({"balance": selectors.wallet_balance(user_id=request.user.pk)})


class TopupApi(APIView):
    permission_classes = [IsAuthenticated]
    throttle_classes = [throttle_group(UserThrottle, MoneyThrottle)]

    class InputSerializer(serializers.Serializer):
        amount = CashField(min_setting="MISSIONHUB_TOPUP_MIN", max_setting="MISSIONHUB_TOPUP_MAX")

    class OutputSerializer(serializers.Serializer):
        id = serializers.IntegerField()
        amount = serializers.IntegerField()
        balance = serializers.IntegerField()

    @extend_schema(
        request=InputSerializer,
        responses={201: OutputSerializer, **error_responses(402, 422)},
        parameters=IDEMPOTENCY_PARAMETERS,
    )
    def post(self, request):
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        return idempotent_response(
            request,
            action=lambda idempotency: services.wallet_topup(
                user_id=request.user.pk, amount=serializer.validated_data["amount"], idempotency=idempotency
            ),
            render=lambda topup: (status.HTTP_201_CREATED, dict(self.OutputSerializer(topup).data)),
        )


class WalletTransactionsApi(APIView):
    """The signed-in user's ledger entries, newest first, a page at a time."""

    permission_classes = [IsAuthenticated]
    pagination_class = Pagination

    class OutputSerializer(serializers.Serializer):
        id = serializers.IntegerField(source="transaction_id")
        kind = serializers.CharField()
        amount = serializers.IntegerField(help_text="Signed from the user's side: positive came in.")
        balance_after = serializers.IntegerField()
        mission = serializers.IntegerField(source="mission_id", allow_null=True)
        created_at = serializers.DateTimeField()

    @extend_schema(responses={200: OutputSerializer(many=True)})
    def get(self, request):
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(selectors.wallet_history(user_id=request.user.pk), request, view=self)
        return paginator.get_paginated_response(self.OutputSerializer(page, many=True).data)
