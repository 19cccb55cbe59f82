"""Settings behaviour, each case in a fresh interpreter with its own environment."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PRODUCTION = {
    "DEBUG": "false",
    "SECRET_KEY": "k" * 10 + "a-long-random-production-secret-0123456789-abcdefghijklmnop",
    "ALLOWED_HOSTS": "missionhub.example.com",
}


def _run(args, env_overrides, tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in {"SECRET_KEY", "DEBUG", "EMAIL_PROVIDER"}}
    env.update({"MISSIONHUB_VAR_DIR": str(tmp_path), "DJANGO_SETTINGS_MODULE": "missionhub.settings"})
    env.update(env_overrides)
    return subprocess.run(
        [sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=False
    )


def test_production_without_secret_key_refuses_to_start(tmp_path):
    result = _run(["manage.py", "check"], {"DEBUG": "false"}, tmp_path)

    assert result.returncode != 0
    assert "SECRET_KEY is not set" in result.stderr


def test_check_deploy_reports_nothing_in_production(tmp_path):
    result = _run(["manage.py", "check", "--deploy", "--fail-level", "DEBUG"], PRODUCTION, tmp_path)

    assert result.returncode == 0, result.stderr
    assert "no issues" in result.stdout


def test_development_generates_and_keeps_a_secret_key(tmp_path):
    code = "from django.conf import settings; print(settings.SECRET_KEY)"
    first = _run(["-c", f"import django; django.setup(); {code}"], {}, tmp_path)
    second = _run(["-c", f"import django; django.setup(); {code}"], {}, tmp_path)

    assert first.returncode == 0, first.stderr
    assert len(first.stdout.strip()) >= 50
    assert first.stdout == second.stdout


def test_an_unknown_email_provider_is_a_clear_error(tmp_path):
    result = _run(["manage.py", "check"], {"EMAIL_PROVIDER": "pigeon"}, tmp_path)

    assert result.returncode != 0
    assert "EMAIL_PROVIDER='pigeon'" in result.stderr


def test_an_email_provider_takes_its_key_from_the_environment(tmp_path):
    code = "from django.conf import settings; print(settings.EMAIL_BACKEND, settings.ANYMAIL)"
    result = _run(
        ["-c", f"import django; django.setup(); {code}"],
        {"EMAIL_PROVIDER": "postmark", "POSTMARK_SERVER_TOKEN": "tok-123"},
        tmp_path,
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "anymail.backends.postmark.EmailBackend {'POSTMARK_SERVER_TOKEN': 'tok-123'}"


def test_postgresql_urls_configure_both_databases(tmp_path):
    code = (
        "from django.conf import settings; d = settings.DATABASES; "
        "print(d['default']['ENGINE'], d['default']['NAME'], d['accounts']['NAME'], "
        "d['default']['CONN_MAX_AGE'])"
    )
    result = _run(
        ["-c", f"import django; django.setup(); {code}"],
        {
            "DATABASE_URL": "postgres://app@db.internal:5432/missions",
            "ACCOUNTS_DATABASE_URL": "postgres://app@db.internal:5432/people",
        },
        tmp_path,
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["django.db.backends.postgresql", "missions", "people", "60"]


def test_a_metrics_network_that_is_not_a_cidr_is_a_clear_error(tmp_path):
    result = _run(["manage.py", "check"], {"METRICS_ALLOWED_NETWORKS": "10.0.0.0/8,prometheus"}, tmp_path)

    assert result.returncode != 0
    assert "METRICS_ALLOWED_NETWORKS: 'prometheus' is not a network" in result.stderr


def test_metrics_networks_are_read_from_the_environment(tmp_path):
    code = "from django.conf import settings; print(settings.METRICS_ALLOWED_NETWORKS, settings.METRICS_TOKEN)"
    result = _run(
        ["-c", f"import django; django.setup(); {code}"],
        {"METRICS_ALLOWED_NETWORKS": "10.0.0.0/8,fd00::/8", "METRICS_TOKEN": "tok-9"},
        tmp_path,
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "['10.0.0.0/8', 'fd00::/8'] tok-9"


def test_the_sign_in_limits_come_from_the_environment(tmp_path):
    code = (
        "from django.conf import settings; r = settings.REST_FRAMEWORK['DEFAULT_THROTTLE_RATES']; "
        "print(r['login'], r['login_address'])"
    )
    result = _run(
        ["-c", f"import django; django.setup(); {code}"],
        {"THROTTLE_LOGIN": "5/min", "THROTTLE_LOGIN_ADDRESS": "100/hour"},
        tmp_path,
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["5/min", "100/hour"]


def test_a_fee_outside_0_to_10000_basis_points_refuses_to_start(tmp_path):
    for fee in ("-1", "10001", "20000"):
        result = _run(["manage.py", "check"], {"MISSIONHUB_FEE_BPS": fee}, tmp_path)

        assert result.returncode != 0, fee
        assert "MISSIONHUB_FEE_BPS" in result.stderr, result.stderr


def test_a_fee_of_0_to_10000_basis_points_starts(tmp_path):
    code = "from django.conf import settings; print(settings.MISSIONHUB_FEE_BPS)"
    for fee in ("0", "10000"):
        result = _run(["-c", f"import django; django.setup(); {code}"], {"MISSIONHUB_FEE_BPS": fee}, tmp_path)

        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == fee


def test_a_redis_broker_that_stops_answering_times_out_in_seconds(tmp_path):
    code = (
        "from missionhub.celery import app; o = app.conf.broker_transport_options; "
        "print(o['socket_timeout'], o['socket_connect_timeout'], o['visibility_timeout'])"
    )
    env = {"CELERY_BROKER_URL": "redis://127.0.0.1:6399/0"}
    result = _run(["-c", f"import django; django.setup(); {code}"], env, tmp_path)

    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["2", "2", "3600"]


def test_the_jwt_user_cache_is_on_only_with_a_shared_cache(tmp_path):
    code = (
        "from django.conf import settings; "
        "print(settings.MISSIONHUB_USER_CACHE_SECONDS, settings.CACHES['default']['BACKEND'])"
    )
    runs = [
        {"REDIS_URL": ""},
        {"REDIS_URL": "redis://cache.internal:6379/1"},
        {"REDIS_URL": "redis://cache.internal:6379/1", "MISSIONHUB_USER_CACHE_SECONDS": "0"},
    ]

    results = [_run(["-c", f"import django; django.setup(); {code}"], env, tmp_path) for env in runs]

    assert [r.returncode for r in results] == [0, 0, 0], [r.stderr for r in results]
    assert [r.stdout.split() for r in results] == [
        ["0", "django.core.cache.backends.locmem.LocMemCache"],
        ["300", "missionhub.cache.RedisCache"],
        ["0", "missionhub.cache.RedisCache"],
    ]


def test_connection_health_checks_are_off_unless_asked_for(tmp_path):
    code = "from django.conf import settings; print([d['CONN_HEALTH_CHECKS'] for d in settings.DATABASES.values()])"
    urls = {
        "DATABASE_URL": "postgres://app@db.internal:5432/missions",
        "ACCOUNTS_DATABASE_URL": "postgres://app@db.internal:5432/people",
    }

    shipped = _run(["-c", f"import django; django.setup(); {code}"], urls, tmp_path)
    asked = _run(["-c", f"import django; django.setup(); {code}"], {**urls, "CONN_HEALTH_CHECKS": "1"}, tmp_path)

    assert (shipped.returncode, asked.returncode) == (0, 0), shipped.stderr + asked.stderr
    assert (shipped.stdout.strip(), asked.stdout.strip()) == ("[False, False]", "[True, True]")
