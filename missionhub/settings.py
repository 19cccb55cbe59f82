"""MissionHub settings, read from the environment (12-factor).

With nothing set the project runs on one machine with no services: two SQLite files
and an embedded Celery broker under `var/`, local-memory cache, email written to
`var/mail/`. Production sets the variables named in README.md.
"""

import ipaddress
import secrets
from datetime import timedelta
from pathlib import Path

import environ
from csp.constants import NONE, SELF
from django.core.exceptions import ImproperlyConfigured
from kombu import Queue

BASE_DIR = Path(__file__).resolve().parent.parent
env = environ.Env()

# Everything the embedded default writes (SQLite files, broker folders, mail, dev secret).
VAR_DIR = Path(env.str("MISSIONHUB_VAR_DIR", default=str(BASE_DIR / "var"))).resolve()
VAR_DIR.mkdir(parents=True, exist_ok=True)

# Django: debug pages, dev conveniences and the demo data command.
DEBUG = env.bool("DEBUG", default=True)


def _secret_key() -> str:
    if key := env.str("SECRET_KEY", default=""):
        return key
    if not DEBUG:
        raise ImproperlyConfigured(
            "SECRET_KEY is not set. With DEBUG off MissionHub needs a SECRET_KEY in the "
            "environment (50+ random characters), e.g. "
            "python -c 'import secrets; print(secrets.token_urlsafe(64))'"
        )
    # Development only: one random key per checkout, kept so sessions survive restarts.
    path = VAR_DIR / "dev-secret-key"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(64))
    return path.read_text().strip()


# Django: signing of sessions, CSRF tokens and (through simplejwt) JWTs.
SECRET_KEY = _secret_key()
# Django: Host header validation.
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]", "testserver"])
# Django: origins trusted for CSRF on HTTPS (scheme://host).
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    # First, so that its createsuperuser and changepassword (on the accounts database)
    # take the place of django.contrib.auth's.
    "accounts",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "rest_framework_simplejwt.token_blacklist",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_celery_beat",
    "django_prometheus",
    "csp",
    "pgtrigger",
    "anymail",
    "ledger",
    "missions",
]

MIDDLEWARE = [
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # django-csp's, with the header built once (missionhub.middleware).
    "missionhub.middleware.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "missionhub.middleware.PrivateApiNoStoreMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "missionhub.middleware.ViewerTimezoneMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_prometheus.middleware.PrometheusAfterMiddleware",
]

ROOT_URLCONF = "missionhub.urls"
WSGI_APPLICATION = "missionhub.wsgi.application"
# Django: the paths of the contract have no trailing slash, so no redirects to add one.
APPEND_SLASH = False

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]


# --- Databases ------------------------------------------------------------------------


def _sqlite(path: Path) -> dict:
    return {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": path,
        "OPTIONS": {
            # Writers queue on BEGIN IMMEDIATE instead of failing on lock upgrade;
            # WAL lets the web, worker and beat processes read while one writes.
            "transaction_mode": "IMMEDIATE",
            "timeout": 20,
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        },
        # A file, not memory, so that a Celery worker started by a test sees the test data.
        "TEST": {"NAME": path.with_name(f"test_{path.name}")},
    }


def _database(url_var: str, sqlite_name: str) -> dict:
    url = env.str(url_var, default="")
    if not url:
        return _sqlite(VAR_DIR / f"{sqlite_name}.sqlite3")
    config = env.db_url_config(url)
    if config["ENGINE"] == "django.db.backends.sqlite3":
        return _sqlite(Path(config["NAME"]))
    if config["ENGINE"] != "django.db.backends.postgresql":
        raise ImproperlyConfigured(f"{url_var} must be a postgres:// (or sqlite:///) URL.")
    config["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60)
    # Off: a `SELECT 1` on each database before every request's first query cost more than
    # the rare failure it prevents. A connection that dropped (a restart, a failover) fails
    # the one request that finds it, and Django closes it when that request ends (its error
    # makes close_if_unusable_or_obsolete test it), so the next request reconnects. Within
    # CONN_MAX_AGE no connection sits idle long enough for a proxy's idle timeout to cut it.
    # (tests/test_connections_pg.py; the figures in bench/README.md.)
    config["CONN_HEALTH_CHECKS"] = env.bool("CONN_HEALTH_CHECKS", default=False)
    return config


# Django ORM. missionhub/routers.py sends users, auth, sessions and admin to "accounts".
DATABASES = {
    "default": _database("DATABASE_URL", "default"),
    "accounts": _database("ACCOUNTS_DATABASE_URL", "accounts"),
}
DATABASE_ROUTERS = ["missionhub.routers.AppLabelRouter"]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"


# --- Users and passwords ----------------------------------------------------------------

# Django auth: the user model with `is_streamer`.
AUTH_USER_MODEL = "accounts.User"
# Django auth: Argon2 first; the others only verify old hashes.
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
# Django auth: validate_password() in registration and sign-up.
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# Django auth: pages behind login_required send people here.
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/"


# --- Internationalisation ---------------------------------------------------------------

LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English"), ("ko", "한국어")]
LOCALE_PATHS = [BASE_DIR / "locale"]
# Django formats: our own short date-time per language (missionhub/formats/<lang>/formats.py).
FORMAT_MODULE_PATH = ["missionhub.formats"]
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True


# --- Static files -----------------------------------------------------------------------

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(env.str("STATIC_ROOT", default=str(VAR_DIR / "staticfiles")))
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
# Django staticfiles / whitenoise: hashed, compressed files in production.
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}


# --- Cache ------------------------------------------------------------------------------

REDIS_URL = env.str("REDIS_URL", default="")
# Django cache: DRF throttles and the idempotency of pages read it.
CACHES = {
    "default": (
        # Django's, reusing one client per pool (missionhub.cache).
        {"BACKEND": "missionhub.cache.RedisCache", "LOCATION": REDIS_URL}
        if REDIS_URL
        else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
    )
}


# accounts.user_cache: how long the user a JWT names is kept in that cache (0: read from the
# accounts database on every request). Off without REDIS_URL: local memory is per process,
# and a change made in another one (a second worker, manage.py changepassword) would not
# reach it.
MISSIONHUB_USER_CACHE_SECONDS = env.int("MISSIONHUB_USER_CACHE_SECONDS", default=300 if REDIS_URL else 0)


# --- API --------------------------------------------------------------------------------


def _rate(name: str, default: str) -> str:
    return env.str(f"THROTTLE_{name.upper()}", default=default)


# Django REST framework.
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # simplejwt's, also refusing tokens issued before the password last changed.
        "accounts.authentication.JWTAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.AllowAny"],
    # AnonThrottle and UserThrottle, counted in one round trip (missionhub.throttling).
    "DEFAULT_THROTTLE_CLASSES": ["missionhub.throttling.DefaultThrottles"],
    "DEFAULT_THROTTLE_RATES": {
        # Sign-in, per account (canonical username) and, separately, per address.
        "login": _rate("login", "10/min"),
        "login_address": _rate("login_address", "60/min"),
        "register": _rate("register", "30/hour"),
        "money": _rate("money", "120/min"),
        "user": _rate("user", "600/min"),
        "anon": _rate("anon", "120/min"),
    },
    # Number of proxies in front of the app whose X-Forwarded-For is trusted (0: none).
    "NUM_PROXIES": env.int("NUM_PROXIES", default=0),
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    # JSON only, nested at most 32 levels (deeper: 400 parse_error, not a RecursionError).
    "DEFAULT_PARSER_CLASSES": ["missionhub.parsers.JSONParser"],
    "DEFAULT_SCHEMA_CLASS": "missionhub.schema.AutoSchema",
    "EXCEPTION_HANDLER": "missionhub.errors.api_exception_handler",
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 20,
}

# simplejwt: short access tokens, rotated refresh tokens blacklisted after use; every token
# carries a digest of the password hash, so a changed password revokes it (accounts.authentication).
SIMPLE_JWT = {
    "ACCESS_TOKEN_LIFETIME": timedelta(minutes=env.int("JWT_ACCESS_MINUTES", default=15)),
    "REFRESH_TOKEN_LIFETIME": timedelta(days=env.int("JWT_REFRESH_DAYS", default=7)),
    "ROTATE_REFRESH_TOKENS": True,
    "BLACKLIST_AFTER_ROTATION": True,
    "UPDATE_LAST_LOGIN": False,
    "AUTH_HEADER_TYPES": ("Bearer",),
    "CHECK_REVOKE_TOKEN": True,
}

# drf-spectacular: /api/schema and /api/docs.
SPECTACULAR_SETTINGS = {
    "TITLE": "MissionHub API",
    "DESCRIPTION": "Viewer-funded streamer missions: wallets, missions, pledges, decisions.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # Swagger UI's files come from the drf-spectacular-sidecar package, not a CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # The API is documented for JWT bearer tokens only (pages use the session cookie).
    "AUTHENTICATION_WHITELIST": ["accounts.authentication.JWTAuthentication"],
    # missionhub.schema: the methods a view refuses on purpose, documented as 405s.
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "missionhub.schema.add_refused_methods",
    ],
}


# --- MissionHub -------------------------------------------------------------------------

# missions.services: shortest and longest mission a creator may ask for.
MISSIONHUB_MIN_MISSION_SECONDS = env.int("MISSIONHUB_MIN_MISSION_SECONDS", default=60)
MISSIONHUB_MAX_MISSION_SECONDS = env.int("MISSIONHUB_MAX_MISSION_SECONDS", default=7 * 24 * 3600)
# missions beat task: how often the expiry sweep runs.
MISSIONHUB_EXPIRE_SWEEP_SECONDS = env.int("MISSIONHUB_EXPIRE_SWEEP_SECONDS", default=15)
# missions beat task `missions.ledger_check`: how often a worker runs ledger_verify for the
# monitoring page (missions/ledger_checks.py), which shows the stored result.
MISSIONHUB_LEDGER_CHECK_SECONDS = env.int("MISSIONHUB_LEDGER_CHECK_SECONDS", default=300)
# missions and ledger serializers: cash per pledge (the creator's first one too) and per top-up.
MISSIONHUB_PLEDGE_MIN = env.int("MISSIONHUB_PLEDGE_MIN", default=100)
MISSIONHUB_PLEDGE_MAX = env.int("MISSIONHUB_PLEDGE_MAX", default=1_000_000)
MISSIONHUB_TOPUP_MIN = env.int("MISSIONHUB_TOPUP_MIN", default=1_000)
MISSIONHUB_TOPUP_MAX = env.int("MISSIONHUB_TOPUP_MAX", default=1_000_000)
# missions.services.mission_settle: the platform's cut of a payout, in basis points (100 = 1%).
MISSIONHUB_FEE_BPS = env.int("MISSIONHUB_FEE_BPS", default=0)
if not 0 <= MISSIONHUB_FEE_BPS <= 10_000:  # above 10,000 a payout would take cash from the streamer
    raise ImproperlyConfigured(f"MISSIONHUB_FEE_BPS={MISSIONHUB_FEE_BPS} is outside 0..10000 basis points.")
# ledger.payments: the class that charges top-ups (the sandbox approves everything).
MISSIONHUB_PAYMENT_PROVIDER = env.str("MISSIONHUB_PAYMENT_PROVIDER", default="ledger.payments.SandboxProvider")
# missions emails: the public address of the site, for links in emails.
MISSIONHUB_SITE_URL = env.str("MISSIONHUB_SITE_URL", default="http://127.0.0.1:8000").rstrip("/")
# missions.services.mission_emails_send: tries before an email failing for a passing reason is marked failed.
MISSIONHUB_EMAIL_MAX_ATTEMPTS = env.int("MISSIONHUB_EMAIL_MAX_ATTEMPTS", default=8)
# missions.services: the first wait before an email that failed for a passing reason is
# tried again, and before a unit of the sweep's work that raised (each doubles, to an hour).
MISSIONHUB_EMAIL_RETRY_SECONDS = env.int("MISSIONHUB_EMAIL_RETRY_SECONDS", default=30)
MISSIONHUB_SWEEP_RETRY_SECONDS = env.int("MISSIONHUB_SWEEP_RETRY_SECONDS", default=15)
# missions.services: how long a sender owns an email it claimed; one whose sender died
# between the provider's answer and marking it sent goes out again after this long.
MISSIONHUB_EMAIL_CLAIM_SECONDS = env.int("MISSIONHUB_EMAIL_CLAIM_SECONDS", default=300)
# missions.tasks: how many due missions one sweep transaction expires.
MISSIONHUB_SWEEP_BATCH = env.int("MISSIONHUB_SWEEP_BATCH", default=100)
# missions.services.mission_settle: contributors refunded (or emailed) per database
# transaction. Each chunk holds its contributors' wallets only while it runs: a few
# hundred milliseconds on PostgreSQL, and on SQLite, where a chunk holds the one write
# lock, small enough that no other writer waits a second.
MISSIONHUB_SETTLE_CHUNK = env.int(
    "MISSIONHUB_SETTLE_CHUNK",
    default=500 if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3" else 2_000,
)
# missions.views: the mission page shows this many of its biggest backers and of its
# latest events, and how many more there are.
MISSIONHUB_PAGE_BACKERS = env.int("MISSIONHUB_PAGE_BACKERS", default=50)
MISSIONHUB_PAGE_EVENTS = env.int("MISSIONHUB_PAGE_EVENTS", default=50)
# An ended mission's settlement, or an email, whose task was sent this long ago and has
# not run is sent again by the sweep (never more often): work still queued is not
# queued twice.
MISSIONHUB_RESEND_GRACE_SECONDS = env.int("MISSIONHUB_RESEND_GRACE_SECONDS", default=30)
# ledger.services.topup_charges_reconcile: a top-up charge still pending this long after
# it was opened is asked about at the payment provider by the sweep, then completed or
# abandoned. Longer than any provider call may take.
MISSIONHUB_TOPUP_RECONCILE_SECONDS = env.int("MISSIONHUB_TOPUP_RECONCILE_SECONDS", default=120)


# --- Metrics ----------------------------------------------------------------------------

# missionhub.health.metrics: with DEBUG off, /metrics answers `Authorization: Bearer <this>`
# (empty: no token is accepted) ...
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")
# ... or a client address in these networks (comma-separated CIDRs, e.g. the pod network;
# the address is REMOTE_ADDR, or X-Forwarded-For's as far as NUM_PROXIES trusts it).
METRICS_ALLOWED_NETWORKS = env.list("METRICS_ALLOWED_NETWORKS", default=[])
for _network in METRICS_ALLOWED_NETWORKS:
    try:
        ipaddress.ip_network(_network, strict=False)
    except ValueError as exc:
        raise ImproperlyConfigured(f"METRICS_ALLOWED_NETWORKS: {_network!r} is not a network ({exc}).") from exc


# --- Celery -----------------------------------------------------------------------------

# Celery's transport options on Redis (tests.faults' own brokers use them too).
MISSIONHUB_REDIS_BROKER_OPTIONS = {
    "visibility_timeout": 3600,
    # A broker that stops answering with its connections open (a partition, a hung host)
    # fails a publish after this many seconds instead of holding the request or the sweep
    # forever; above the worker's 1 s BRPOP, so its idle polls never time out.
    "socket_timeout": 2,
    "socket_connect_timeout": 2,
    # Queues are read in the order of CELERY_TASK_QUEUES: settlements before emails.
    "queue_order_strategy": "priority",
}
# Celery: Redis in production; by default the embedded broker (missionhub.broker), one
# file per message under var/broker, for a single machine.
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="embedded://localhost")
if CELERY_BROKER_URL.startswith("embedded://"):
    CELERY_BROKER_TRANSPORT_OPTIONS = {"data_folder": str(VAR_DIR / "broker")}
    # The embedded broker has no broadcast; workers run without remote control.
    CELERY_WORKER_ENABLE_REMOTE_CONTROL = False
else:
    CELERY_BROKER_TRANSPORT_OPTIONS = MISSIONHUB_REDIS_BROKER_OPTIONS
# Money first: settlements and the sweep have their own queue, which a worker empties
# before it takes an email (Redis reads the queues in this order), so a backlog of emails
# never delays a payout or a refund. A worker started without -Q consumes both.
CELERY_TASK_DEFAULT_QUEUE = "celery"
CELERY_TASK_QUEUES = (Queue("money"), Queue("celery"))
CELERY_TASK_ROUTES = {"missions.settle_mission": {"queue": "money"}, "missions.sweep": {"queue": "money"}}
# Celery: only the smoke `ping` task keeps a result; the rest ignore results.
CELERY_RESULT_BACKEND = env.str(
    "CELERY_RESULT_BACKEND",
    default=(
        CELERY_BROKER_URL if CELERY_BROKER_URL.startswith("redis") else "file://" + str(VAR_DIR / "celery-results")
    ),
)
if CELERY_RESULT_BACKEND.startswith("file://"):
    Path(CELERY_RESULT_BACKEND.removeprefix("file://")).mkdir(parents=True, exist_ok=True)
CELERY_TASK_IGNORE_RESULT = True
CELERY_RESULT_EXPIRES = 3600
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
# Celery: a task is acknowledged after it ran, and a worker takes one message at a time.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Celery: a request that enqueues on commit must not hang on a broker that is down.
CELERY_TASK_PUBLISH_RETRY_POLICY = {
    "max_retries": 2,
    "interval_start": 0,
    "interval_step": 0.2,
    "interval_max": 0.5,
}
CELERY_TIMEZONE = "UTC"
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
# Celery beat (django-celery-beat copies it into its tables): the expiry and recovery sweep,
# and the ledger check shown on the monitoring page.
CELERY_BEAT_SCHEDULE = {
    "missions-sweep": {
        "task": "missions.sweep",
        "schedule": float(MISSIONHUB_EXPIRE_SWEEP_SECONDS),
        "options": {"expires": float(MISSIONHUB_EXPIRE_SWEEP_SECONDS)},
    },
    "ledger-check": {
        "task": "missions.ledger_check",
        "schedule": float(MISSIONHUB_LEDGER_CHECK_SECONDS),
        "options": {"expires": float(MISSIONHUB_LEDGER_CHECK_SECONDS)},
    },
}


# --- Email ------------------------------------------------------------------------------

# anymail provider -> the setting that carries its key, read from the same-named variable.
_EMAIL_PROVIDER_KEYS = {
    "amazon_ses": [],
    "brevo": ["BREVO_API_KEY"],
    "mailgun": ["MAILGUN_API_KEY", "MAILGUN_SENDER_DOMAIN"],
    "mailjet": ["MAILJET_API_KEY", "MAILJET_SECRET_KEY"],
    "postmark": ["POSTMARK_SERVER_TOKEN"],
    "resend": ["RESEND_API_KEY"],
    "sendgrid": ["SENDGRID_API_KEY"],
    "sparkpost": ["SPARKPOST_API_KEY"],
}
EMAIL_PROVIDER = env.str("EMAIL_PROVIDER", default="")
if EMAIL_PROVIDER:
    if EMAIL_PROVIDER not in _EMAIL_PROVIDER_KEYS:
        raise ImproperlyConfigured(f"EMAIL_PROVIDER={EMAIL_PROVIDER!r} is not one of {sorted(_EMAIL_PROVIDER_KEYS)}.")
    EMAIL_BACKEND = f"anymail.backends.{EMAIL_PROVIDER}.EmailBackend"
    ANYMAIL = {key: env.str(key) for key in _EMAIL_PROVIDER_KEYS[EMAIL_PROVIDER]}
else:
    # Django mail: each message becomes a file under var/mail/.
    EMAIL_BACKEND = env.str("EMAIL_BACKEND", default="django.core.mail.backends.filebased.EmailBackend")
    EMAIL_FILE_PATH = VAR_DIR / "mail"
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="MissionHub <no-reply@missionhub.local>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL


# --- Security (production) ----------------------------------------------------------------

if not DEBUG:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
    # Probes and the Prometheus scraper speak plain HTTP inside the cluster.
    SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
SECURE_CONTENT_TYPE_NOSNIFF = True
# Django clickjacking middleware: no page may be framed (the overlay's view is exempt).
X_FRAME_OPTIONS = "DENY"
# django-csp (csp.middleware.CSPMiddleware): this site's own files only, no inline script
# or style, no framing. Views relax it with csp.decorators: the OBS overlay may be framed
# by any site, /api/docs' stylesheet draws data: images.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF],
        "font-src": [SELF],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    },
}


# --- Logging ----------------------------------------------------------------------------

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {
        # Django's defaults give "django" a console handler of its own (when DEBUG) that
        # printed each of its records a second time beside the root's; it propagates only.
        "django": {"handlers": [], "level": "INFO", "propagate": True},
        "django.db.backends": {"level": "WARNING"},
    },
}
