"""Liveness and readiness for the platform's probes, and Prometheus' scrape."""

import hmac
import ipaddress
import logging

from django.conf import settings
from django.db import connections
from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from django_prometheus.exports import ExportToDjangoView
from rest_framework.throttling import BaseThrottle

from .celery import app as celery_app

logger = logging.getLogger(__name__)


def _database_answers(alias: str) -> bool:
    with connections[alias].cursor() as cursor:
        cursor.execute("SELECT 1")
        return cursor.fetchone() == (1,)


def _broker_answers() -> bool:
    with celery_app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=1, timeout=2)
        return conn.connected


CHECKS = {
    "database_default": lambda: _database_answers("default"),
    "database_accounts": lambda: _database_answers("accounts"),
    "broker": _broker_answers,
}


@never_cache
@require_GET
def healthz(request):
    """The process is up and serving requests; touches nothing else."""
    return JsonResponse({"status": "ok"})


@never_cache
@require_GET
def readyz(request):
    """Both databases and the broker answer; 503 naming what failed otherwise."""
    failed = []
    for name, check in CHECKS.items():
        try:
            ok = check()
        except Exception:
            logger.warning("readiness check %s failed", name, exc_info=True)
            ok = False
        if not ok:
            failed.append(name)
    if failed:
        return JsonResponse({"status": "unavailable", "failed": failed}, status=503)
    return JsonResponse({"status": "ok", "checks": list(CHECKS)})


def _has_metrics_token(request) -> bool:
    expected = settings.METRICS_TOKEN
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if not expected or scheme.lower() != "bearer" or not given:
        return False
    return hmac.compare_digest(given.encode(), expected.encode())


def _from_metrics_network(request) -> bool:
    # The client address as the throttles see it: REMOTE_ADDR, or the X-Forwarded-For
    # entry that NUM_PROXIES trusted proxies added.
    try:
        address = ipaddress.ip_address(BaseThrottle().get_ident(request) or "")
    except ValueError:
        return False
    if address.version == 6 and address.ipv4_mapped:
        address = address.ipv4_mapped
    return any(address in ipaddress.ip_network(network, strict=False) for network in settings.METRICS_ALLOWED_NETWORKS)


@never_cache
@require_GET
def metrics(request):
    """django-prometheus' exporter (request metrics, and the business metrics computed from
    the database at each scrape). With DEBUG off only for `Authorization: Bearer
    <METRICS_TOKEN>` or a client in METRICS_ALLOWED_NETWORKS; 403 otherwise."""
    if not settings.DEBUG and not (_has_metrics_token(request) or _from_metrics_network(request)):
        return JsonResponse(
            {"code": "permission_denied", "detail": "Metrics need METRICS_TOKEN or an allowed network."}, status=403
        )
    return ExportToDjangoView(request)
