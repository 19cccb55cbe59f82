"""The checks simplejwt 5.5.1 leaves out, and the contract's codes for them.

With CHECK_REVOKE_TOKEN simplejwt writes a digest of the user's password hash into every
token it issues and refuses an access token whose digest no longer matches; but its refresh
endpoint never compares it, so a refresh token issued before a password change still gets a
new pair (fixed upstream after 5.5.1: jazzband/djangorestframework-simplejwt#927), and it
raises User.DoesNotExist for the token of a deleted user, a 500 (#860). Both endpoints here
share one check, `token_user`, and answer 401 `token_not_valid` for a revoked token and
`no_active_account` for a deleted or deactivated user.
"""

from django.utils.translation import gettext_lazy as _
from rest_framework_simplejwt import authentication, serializers
from rest_framework_simplejwt.exceptions import AuthenticationFailed, InvalidToken
from rest_framework_simplejwt.settings import api_settings
from rest_framework_simplejwt.tokens import Token

from .models import User
from .user_cache import user_for_token


def _no_active_account() -> AuthenticationFailed:
    return AuthenticationFailed(_("No active account found for the given token."), "no_active_account")


def token_user(token: Token) -> User:
    """The active user a valid token speaks for. Raises AuthenticationFailed (no such active
    user) and InvalidToken (issued before the user's password last changed).

    The user comes from accounts.user_cache, invalidated by every change to the user, so a
    deactivation, a deletion or a new password refuses the token on the next request."""
    user_id = token.get(api_settings.USER_ID_CLAIM)
    found = user_for_token(user_id=user_id) if user_id else None
    if found is None or not api_settings.USER_AUTHENTICATION_RULE(found[0]):
        raise _no_active_account()
    user, password_digest = found
    if api_settings.CHECK_REVOKE_TOKEN and token.get(api_settings.REVOKE_TOKEN_CLAIM) != password_digest:
        raise InvalidToken(_("The password was changed since this token was issued: sign in again."))
    return user


class JWTAuthentication(authentication.JWTAuthentication):
    """simplejwt's bearer authentication, with the user looked up by `token_user`."""

    def get_user(self, validated_token: Token) -> User:
        return token_user(validated_token)


class TokenRefreshSerializer(serializers.TokenRefreshSerializer):
    """simplejwt's refresh (rotation, blacklist after use), after `token_user`'s checks."""

    def validate(self, attrs):
        refresh = self.token_class(attrs["refresh"])  # a TokenError: the view answers token_not_valid
        try:
            token_user(refresh)
        except InvalidToken:
            refresh.blacklist()  # revoked for good, even if it was never recorded as outstanding
            raise
        try:
            return super().validate(attrs)
        except User.DoesNotExist as exc:  # deleted between the two look-ups
            raise _no_active_account() from exc
