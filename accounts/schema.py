"""OpenAPI: our JWTAuthentication is simplejwt's bearer scheme (drf-spectacular matches
authentication classes exactly, not their subclasses)."""

from drf_spectacular.contrib.rest_framework_simplejwt import SimpleJWTScheme


class JWTScheme(SimpleJWTScheme):
    target_class = "accounts.authentication.JWTAuthentication"
