from django.contrib.auth import update_session_auth_hash
from django.contrib.auth.validators import UnicodeUsernameValidator
from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.authentication import SessionAuthentication
from rest_framework.exceptions import ErrorDetail, NotFound, ValidationError
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework_simplejwt.exceptions import InvalidToken, TokenError
from rest_framework_simplejwt.tokens import RefreshToken
from rest_framework_simplejwt.views import TokenObtainPairView, TokenRefreshView

from missionhub.schema import error_responses
from missionhub.throttling import LOGIN_THROTTLES, RegisterThrottle
from missionhub.validators import refuse_control_characters

from . import selectors, services
from .authentication import TokenRefreshSerializer
from .errors import NotYourToken
from .usernames import username_normalize


def _field_errors(field: str, exc: DjangoValidationError) -> ValidationError:
    """Django's validation error (the password validators') as the API's, with each code kept."""
    errors = [
        ErrorDetail(message, code=error.code or "invalid") for error in exc.error_list for message in error.messages
    ]
    return ValidationError({field: errors})


class UserOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    username = serializers.CharField()
    email = serializers.EmailField()
    is_streamer = serializers.BooleanField()


class UsernameField(serializers.CharField):
    """A username as Django's forms take one: NFKC first, then the length and character checks."""

    def to_internal_value(self, data):
        return username_normalize(super().to_internal_value(data))


class RegisterApi(APIView):
    throttle_classes = [RegisterThrottle]

    class InputSerializer(serializers.Serializer):
        username = UsernameField(max_length=150, validators=[refuse_control_characters, UnicodeUsernameValidator()])
        # Django's EmailValidator lets most control characters through in a quoted local part.
        email = serializers.EmailField(max_length=254, validators=[refuse_control_characters])
        password = serializers.CharField(max_length=128, write_only=True, trim_whitespace=False)
        is_streamer = serializers.BooleanField(default=False)

    @extend_schema(request=InputSerializer, responses={201: UserOutputSerializer}, auth=[])
    def post(self, request):
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            user = services.user_create(**serializer.validated_data, language=request.LANGUAGE_CODE)
        except DjangoValidationError as exc:
            raise _field_errors("password", exc) from exc
        return Response(UserOutputSerializer(user).data, status=status.HTTP_201_CREATED)


class TokenPairOutputSerializer(serializers.Serializer):
    access = serializers.CharField(help_text="Send it as `Authorization: Bearer <access>`; it expires in minutes.")
    refresh = serializers.CharField(help_text="Exchange it at /api/auth/token/refresh for a new pair.")


# simplejwt's serializers are one model for request and response (a client generated from
# them would send `access` and `refresh` and fail to read the answer): the schema describes
# the two halves apart, and simplejwt's serializers still do the work.


class TokenObtainApi(TokenObtainPairView):
    """Exchange a username and password for an access and a refresh token.

    A wrong password and an unknown username get the same 401. Any spelling of the
    username with the same canonical form signs in, and shares that user's limit.
    """

    throttle_classes = LOGIN_THROTTLES

    class InputSerializer(serializers.Serializer):
        username = serializers.CharField()
        password = serializers.CharField(write_only=True, trim_whitespace=False)

    @extend_schema(request=InputSerializer, responses={200: TokenPairOutputSerializer, **error_responses(401)})
    def post(self, request, *args, **kwargs):
        return super().post(request, *args, **kwargs)


class TokenRefreshApi(TokenRefreshView):
    """Exchange a refresh token for a new pair; the old refresh token is blacklisted.

    A refresh token issued before the user's password last changed gets 401 `token_not_valid`;
    one of a deleted or deactivated user gets 401 `no_active_account`.
    """

    serializer_class = TokenRefreshSerializer

    class InputSerializer(serializers.Serializer):
        refresh = serializers.CharField()

    @extend_schema(request=InputSerializer, responses={200: TokenPairOutputSerializer, **error_responses(401)})
    def post(self, request, *args, **kwargs):
        return super().post(request, *args, **kwargs)


class PasswordChangeApi(APIView):
    """Change your password. Every access and refresh token issued before, on any device,
    is refused from now on (401 `token_not_valid`): sign in again with the new password."""

    permission_classes = [IsAuthenticated]

    class InputSerializer(serializers.Serializer):
        old_password = serializers.CharField(max_length=128, write_only=True, trim_whitespace=False)
        new_password = serializers.CharField(max_length=128, write_only=True, trim_whitespace=False)

    @extend_schema(request=InputSerializer, responses={204: None})
    def post(self, request):
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            services.user_password_change(user=request.user, **serializer.validated_data)
        except DjangoValidationError as exc:
            raise _field_errors("new_password", exc) from exc
        if isinstance(request.successful_authenticator, SessionAuthentication):
            update_session_auth_hash(request, request.user)  # a browser calling with its session stays in
        return Response(status=status.HTTP_204_NO_CONTENT)


class LogoutApi(APIView):
    permission_classes = [IsAuthenticated]

    class InputSerializer(serializers.Serializer):
        refresh = serializers.CharField()

    @extend_schema(request=InputSerializer, responses={204: None, **error_responses(403)})
    def post(self, request):
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            token = RefreshToken(serializer.validated_data["refresh"])
        except TokenError as exc:
            raise InvalidToken(exc.args[0]) from exc
        if str(token.get("user_id")) != str(request.user.pk):
            raise NotYourToken()
        token.blacklist()
        return Response(status=status.HTTP_204_NO_CONTENT)


class UserProfileApi(APIView):
    """A user's public profile: nothing private (no email, no balance)."""

    class OutputSerializer(serializers.Serializer):
        username = serializers.CharField()
        is_streamer = serializers.BooleanField()
        date_joined = serializers.DateTimeField()

    @extend_schema(responses={200: OutputSerializer})
    def get(self, request, username: str):
        user = selectors.user_get_by_username(username=username)
        if user is None:
            raise NotFound(code="user_not_found")
        return Response(self.OutputSerializer(user).data)
