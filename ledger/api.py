from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from . import selectors


class UserMeApi(APIView):
    """The signed-in user with their wallet balance.

    It lives in the ledger, not in accounts, because accounts sits below the ledger
    and must not import it.
    """

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
