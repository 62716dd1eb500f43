"""Settings for LLMOps Tracker, driven by environment variables (12-factor).

With nothing configured the app runs embedded: SQLite and Celery's filesystem transport.
Every variable is listed in `.env.example`.
"""

import datetime as dt
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = BASE_DIR / "var"

env = environ.Env()
if (BASE_DIR / ".env").exists():
    environ.Env.read_env(BASE_DIR / ".env")

DEBUG = env.bool("DJANGO_DEBUG", default=True)
if not DEBUG:
    # Production never falls back to a known key or to the development hosts.
    _missing = [name for name in ("DJANGO_SECRET_KEY", "DJANGO_ALLOWED_HOSTS") if not env.str(name, default="").strip()]
    if _missing:
        raise ImproperlyConfigured(
            f"DJANGO_DEBUG is false, so {' and '.join(_missing)} must be set (see .env.example and README, Deploy)."
        )
SECRET_KEY = env("DJANGO_SECRET_KEY", default="dev-only-insecure-key-change-me")
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])
SITE_URL = env("SITE_URL", default="http://127.0.0.1:8000")

# Production: TLS ends at a proxy that sets X-Forwarded-Proto (README, Deploy); cookies only over HTTPS.
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# How many proxies in front append to X-Forwarded-For (1 behind the TLS proxy of the Deploy docs); 0: none,
# the client is REMOTE_ADDR. Read by tracker.security.client_address only (sign-in, reset, API throttle).
TRUSTED_PROXY_COUNT = env.int("DJANGO_TRUSTED_PROXY_COUNT", default=0)
SECURE_SSL_REDIRECT = env.bool("DJANGO_SECURE_SSL_REDIRECT", default=not DEBUG)
SECURE_HSTS_SECONDS = env.int("DJANGO_SECURE_HSTS_SECONDS", default=0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS", default=not DEBUG)
SECURE_HSTS_PRELOAD = env.bool("DJANGO_SECURE_HSTS_PRELOAD", default=not DEBUG)
# Cookies only over HTTPS; `make run` (scripts/run.py) turns this off for plain HTTP on 127.0.0.1.
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = env.bool("DJANGO_SECURE_COOKIES", default=not DEBUG)
# Templates hand the CSRF token to forms and htmx; scripts never read the cookie.
CSRF_COOKIE_HTTPONLY = not DEBUG

# Cache (API throttle counters, shared by every process): Redis when CACHE_URL is set, else this process's memory.
_cache_url = env("CACHE_URL", default="")
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
if _cache_url:
    CACHES["default"] = {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": _cache_url}

# Prometheus /metrics: 404 until a bearer token or allowed networks (IPs or CIDRs) are set.
METRICS_TOKEN = env("METRICS_TOKEN", default="")
METRICS_ALLOWED_IPS = env.list("METRICS_ALLOWED_IPS", default=[])
WORKER_METRICS_PORT = env.int("WORKER_METRICS_PORT", default=0)

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django.forms",  # Django's widget templates, for FORM_RENDERER below
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "axes",  # sign-in lockouts per (account, address): projects/auth.py
    "projects",
    "ops",
    "webhooks",  # signed webhooks: docs/webhooks.md
]

MIDDLEWARE = [
    "tracker.middleware.RequestLogMiddleware",
    "tracker.middleware.ProbeMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "tracker.security.SecurityHeadersMiddleware",
    "tracker.security.RequestSizeLimitMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "projects.audit.AuditActorMiddleware",
    "projects.middleware.CurrentOrganizationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "axes.middleware.AxesMiddleware",  # a sign-in refused by a lockout answers 429 (AXES_LOCKOUT_CALLABLE)
    "tracker.middleware.StatementTimeoutMiddleware",  # last: its process_exception sees the view's error first
]

ROOT_URLCONF = "tracker.urls"
# Widgets render through TEMPLATES, so templates/django/forms/ can replace a costly widget template.
FORM_RENDERER = "django.forms.renderers.TemplatesSetting"
WSGI_APPLICATION = "tracker.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "tracker.context_processors.current_organization",
            ],
            # tracker/ is no app, so its template library is named here.
            "libraries": {"formatting": "tracker.templatetags.formatting"},
        },
    },
]

DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
DATABASES["default"]["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", default=0 if DEBUG else 60)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Web, worker and beat share one file: wait for locks instead of failing at once.
    DATABASES["default"].setdefault("OPTIONS", {})["timeout"] = 20
    # The test database lives in memory unless pytest asks for a file.
    DATABASES["default"]["TEST"] = {"NAME": None}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
# Web processes (tracker.wsgi: gunicorn, runserver) cancel any statement running longer than this and
# answer 503; migrations, management commands and the Celery worker have no such ceiling. 0: none.
DATABASE_WEB_STATEMENT_TIMEOUT_MS = env.int("DATABASE_WEB_STATEMENT_TIMEOUT_MS", default=5000)

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": 10},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
    # Not a check: Django tells validators of every password change (view, reset, admin, changepassword),
    # and this one revokes the user's personal API tokens then.
    {"NAME": "projects.auth.RevokeTokensOnPasswordChange"},
]

# Bodies above this are refused unread (a bulk ingest of 10,000 cost entries is about 3 MB).
MAX_REQUEST_BODY_BYTES = env.int("MAX_REQUEST_BODY_BYTES", default=20 * 1024 * 1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = MAX_REQUEST_BODY_BYTES
# The OTLP receiver (docs/otlp.md): an export's size as sent and once decompressed (else 413), how long
# counted spans' keys are kept (spans older than that are refused: resending can never double-count),
# and the Retry-After of a 503.
OTLP_MAX_BODY_BYTES = env.int("OTLP_MAX_BODY_BYTES", default=4 * 1024 * 1024)
OTLP_MAX_DECOMPRESSED_BYTES = env.int("OTLP_MAX_DECOMPRESSED_BYTES", default=16 * 1024 * 1024)
OTLP_SPAN_KEY_RETENTION_DAYS = env.int("OTLP_SPAN_KEY_RETENTION_DAYS", default=7)
OTLP_RETRY_AFTER_SECONDS = env.int("OTLP_RETRY_AFTER_SECONDS", default=5)
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"

# Sign-in (projects/auth.py). django-axes locks an account for one client address only, after
# SIGNIN_MAX_FAILURES_PER_ACCOUNT failures from it, for SIGNIN_LOCKOUT_SECONDS after the last one: a
# stranger cannot lock the owner out from her own address. An address failing across accounts is
# slowed down instead (refused for 1 s, 2 s, 4 s … up to SIGNIN_ADDRESS_MAX_PAUSE_SECONDS once it has
# SIGNIN_MAX_FAILURES_PER_ADDRESS failures within SIGNIN_FAILURE_WINDOW_SECONDS), never locked.
AUTHENTICATION_BACKENDS = ["axes.backends.AxesStandaloneBackend", "projects.auth.SignInBackend"]
AXES_HANDLER = "projects.auth.FailOpenCacheHandler"
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_FAILURE_LIMIT = env.int("SIGNIN_MAX_FAILURES_PER_ACCOUNT", default=5)
AXES_COOLOFF_TIME = dt.timedelta(seconds=env.int("SIGNIN_LOCKOUT_SECONDS", default=900))
AXES_USERNAME_CALLABLE = "projects.auth.signin_username"
AXES_CLIENT_IP_CALLABLE = "tracker.security.client_address"
AXES_RESET_ON_SUCCESS = True
AXES_ENABLE_ADMIN = False  # the cache handler writes no AccessAttempt rows: the admin pages would stay empty
SIGNIN_MAX_FAILURES_PER_ADDRESS = env.int("SIGNIN_MAX_FAILURES_PER_ADDRESS", default=30)
SIGNIN_FAILURE_WINDOW_SECONDS = env.int("SIGNIN_FAILURE_WINDOW_SECONDS", default=900)
SIGNIN_ADDRESS_MAX_PAUSE_SECONDS = env.int("SIGNIN_ADDRESS_MAX_PAUSE_SECONDS", default=60)
# Password reset requests, per client address and per e-mail address, within the window; beyond, no e-mail.
PASSWORD_RESET_MAX_PER_ADDRESS = env.int("PASSWORD_RESET_MAX_PER_ADDRESS", default=5)
PASSWORD_RESET_MAX_PER_ACCOUNT = env.int("PASSWORD_RESET_MAX_PER_ACCOUNT", default=3)
PASSWORD_RESET_WINDOW_SECONDS = env.int("PASSWORD_RESET_WINDOW_SECONDS", default=3600)
# A lockout keeps the page the view rendered (the sign-in form says when to retry), answered with 429.
AXES_LOCKOUT_CALLABLE = "projects.auth.signin_lockout_response"
# API tokens (docs/api.md): personal ones expire (default and longest lifetime, in days) and are capped
# per user, service tokens per organization; owners are e-mailed this many days before expiry.
API_TOKEN_LIFETIME_DAYS = env.int("API_TOKEN_LIFETIME_DAYS", default=90)
API_TOKEN_MAX_LIFETIME_DAYS = env.int("API_TOKEN_MAX_LIFETIME_DAYS", default=365)
API_TOKENS_PER_USER = env.int("API_TOKENS_PER_USER", default=10)
API_SERVICE_TOKENS_PER_ORGANIZATION = env.int("API_SERVICE_TOKENS_PER_ORGANIZATION", default=10)
API_TOKEN_EXPIRY_WARNING_DAYS = env.int("API_TOKEN_EXPIRY_WARNING_DAYS", default=7)
SESSION_COOKIE_AGE = env.int("SESSION_COOKIE_AGE", default=8 * 3600)
# Invitations to join an organization: how long a link works, how many one admin may send per
# organization per hour, and how soon one invitation may be sent again.
INVITATION_TTL_DAYS = env.int("INVITATION_TTL_DAYS", default=7)
INVITATIONS_PER_HOUR = env.int("INVITATIONS_PER_HOUR", default=20)
INVITATION_RESEND_MINUTES = env.int("INVITATION_RESEND_MINUTES", default=10)
SESSION_COOKIE_HTTPONLY = True
SESSION_EXPIRE_AT_BROWSER_CLOSE = env.bool("SESSION_EXPIRE_AT_BROWSER_CLOSE", default=False)

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
# Django's date display follows the app's one format (tracker/formats/en/formats.py).
FORMAT_MODULE_PATH = ["tracker.formats"]

STATIC_URL = "static/"
STATIC_ROOT = env.path("DJANGO_STATIC_ROOT", default=BASE_DIR / "staticfiles")
# Production serves hashed, compressed names with far-future caching (collectstatic at image build);
# `make run` (DEBUG off too) serves the files where they lie, so it needs no minutes-long collectstatic.
if env.bool("DJANGO_STATIC_COLLECTED", default=not DEBUG):
    STORAGES = {
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
        "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
    }
else:
    WHITENOISE_USE_FINDERS = True
STATICFILES_DIRS = [BASE_DIR / "static"]
# Uploaded import files (docs/imports.md) are kept in the default storage, under MEDIA_ROOT: the web
# process writes them and the worker reads them, so both must see the same directory (a shared volume
# in docker-compose.yml). Import uploads may be up to IMPORT_MAX_UPLOAD_BYTES (other bodies keep
# MAX_REQUEST_BODY_BYTES); they are streamed to disk, never held in memory.
MEDIA_ROOT = env.path("DJANGO_MEDIA_ROOT", default=VAR_DIR / "media")
MEDIA_URL = "media/"  # never served: import files are read by the worker only
IMPORT_MAX_UPLOAD_BYTES = env.int("IMPORT_MAX_UPLOAD_BYTES", default=2 * 1024**3)
# Files browsers ask for at the root without reading a page (/favicon.ico), served by whitenoise.
WHITENOISE_ROOT = BASE_DIR / "static" / "root"

LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/accounts/login/"

EMAIL_BACKEND = env("EMAIL_BACKEND", default="django.core.mail.backends.console.EmailBackend")
EMAIL_FILE_PATH = env("EMAIL_FILE_PATH", default=str(VAR_DIR / "mail"))  # for the file-based backend
# Where the CSV import page keeps an uploaded file between its preview and its import (docs/imports.md).
IMPORT_UPLOADS_DIR = env("IMPORT_UPLOADS_DIR", default=str(VAR_DIR / "imports"))
EMAIL_HOST = env("EMAIL_HOST", default="localhost")
EMAIL_PORT = env.int("EMAIL_PORT", default=25)
EMAIL_HOST_USER = env("EMAIL_HOST_USER", default="")
EMAIL_HOST_PASSWORD = env("EMAIL_HOST_PASSWORD", default="")
EMAIL_USE_TLS = env.bool("EMAIL_USE_TLS", default=False)
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", default="LLMOps Tracker <tracker@localhost>")

# Celery: Redis in production; the filesystem transport when nothing is configured.
CELERY_BROKER_URL = env("CELERY_BROKER_URL", default="filesystem://")
if CELERY_BROKER_URL.startswith("filesystem://"):
    _queue_dir = VAR_DIR / "celery-queue"
    _queue_dir.mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_queue_dir),
        "data_folder_out": str(_queue_dir),
        "processed_folder": str(VAR_DIR / "celery-processed"),
        "control_folder": str(VAR_DIR / "celery-control"),  # else control/ in the checkout
        "store_processed": False,
    }
else:
    # An unacknowledged message comes back after this many seconds (worker lost mid-task).
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "visibility_timeout": env.int("CELERY_VISIBILITY_TIMEOUT", default=3600),
    }
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=False)
CELERY_WORKER_CONCURRENCY = env.int("CELERY_WORKER_CONCURRENCY", default=None)  # None: one process per CPU
CELERY_TASK_SOFT_TIME_LIMIT = env.int("CELERY_TASK_SOFT_TIME_LIMIT", default=600)
CELERY_TASK_TIME_LIMIT = env.int("CELERY_TASK_TIME_LIMIT", default=660)
CELERY_BEAT_SCHEDULE_FILENAME = env("CELERY_BEAT_SCHEDULE_FILENAME", default=str(VAR_DIR / "celerybeat-schedule"))

# Logs: LOG_FORMAT=json writes one JSON object per line (requests, tasks), text is for people.
LOG_FORMAT = env("LOG_FORMAT", default="text")
if LOG_FORMAT not in ("json", "text"):
    raise ImproperlyConfigured(f"LOG_FORMAT must be json or text, not {LOG_FORMAT!r}.")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_id": {"()": "tracker.logging.RequestIdFilter"}},
    "formatters": {
        "text": {"format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"},
        "json": {"()": "tracker.logging.JsonFormatter"},
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT, "filters": ["request_id"]}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", default="INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        # tracker.request and tracker.task already log each request and task once, with more fields.
        "django.server": {"level": "INFO" if LOG_FORMAT == "text" else "WARNING"},
        "celery.app.trace": {"level": "INFO" if LOG_FORMAT == "text" else "WARNING"},
    },
}

# REST API (see docs/api.md).
REST_FRAMEWORK = {
    "DEFAULT_SCHEMA_CLASS": "tracker.api_views.ApiAutoSchema",
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "projects.tokens.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": [
        "rest_framework.permissions.IsAuthenticated",
        "projects.tokens.ServiceTokenScope",  # a service token reads, and writes only where its scope says
    ],
    "DEFAULT_RENDERER_CLASSES": ["tracker.api.JSONRenderer"],  # an echoed lone surrogate is escaped, not a 500
    "DEFAULT_PARSER_CLASSES": ["tracker.api.JSONParser"],  # deep nesting is a 400, not a 500
    "DEFAULT_PAGINATION_CLASS": "tracker.api.Pagination",
    "DEFAULT_FILTER_BACKENDS": [
        "tracker.api.FilterBackend",  # django-filter over SyncFilterSet, skipped when no filter is asked for
        "tracker.api.SearchFilter",  # a NUL byte in ?search= is a 400
        "tracker.api.OrderingFilter",  # an unknown ordering is a 400
    ],
    "DEFAULT_THROTTLE_CLASSES": ["tracker.api.UserRateThrottle"],
    # "api": per user, whatever session or token they call with; "expensive": also per organization, on bulk
    # ingestion and report requests. A 429 carries Retry-After; every answer carries RateLimit-* headers.
    # For DRF's own address lookups; our throttle asks tracker.security.client_address, which agrees.
    "NUM_PROXIES": TRUSTED_PROXY_COUNT,
    "DEFAULT_THROTTLE_RATES": {
        "api": env("API_THROTTLE_RATE", default="1200/minute"),
        "expensive": env("API_EXPENSIVE_THROTTLE_RATE", default="60/minute"),
        # OTLP exports per organization (docs/otlp.md); an SDK's batch is 512 spans.
        "otlp": env("OTLP_THROTTLE_RATE", default="1200/minute"),
    },
    "EXCEPTION_HANDLER": "tracker.api.exception_handler",
    "COERCE_DECIMAL_TO_STRING": True,
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
}
# ?search= (API) and the web UI's search: more or longer terms are a 400 naming the limit. Each term is
# matched against every search field of every row, so these bound the cost of a search.
SEARCH_MAX_TERMS = env.int("SEARCH_MAX_TERMS", default=5)
SEARCH_MAX_TERM_LENGTH = env.int("SEARCH_MAX_TERM_LENGTH", default=100)
# Incremental sync: a cursor page serves rows up to the start of the oldest open transaction, less this
# allowance for the app servers' clocks against the database's (docs/api.md, "Integrations").
API_SYNC_CLOCK_MARGIN_SECONDS = env.float("API_SYNC_CLOCK_MARGIN_SECONDS", default=2.0)
# Idempotency-Key (docs/api.md, "Idempotency keys"): hours a key and its stored answer are kept; seconds after
# which a claim whose request never answered (its server died) may be taken by a retry: above GUNICORN_TIMEOUT.
API_IDEMPOTENCY_KEY_HOURS = env.int("API_IDEMPOTENCY_KEY_HOURS", default=24)
API_IDEMPOTENCY_LOCK_SECONDS = env.int("API_IDEMPOTENCY_LOCK_SECONDS", default=120)
SPECTACULAR_SETTINGS = {
    "TITLE": "LLMOps Tracker API",
    "VERSION": "1.0.0",
    "DESCRIPTION": "Projects, costs, token usage, quality and risks of an LLM portfolio. See docs/api.md.",
    "SERVE_INCLUDE_SCHEMA": False,
    # Swagger UI from our own static files (no CDN; the CSP allows only 'self' scripts).
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "SCHEMA_PATH_PREFIX": "/api/v1",
    "COMPONENT_SPLIT_REQUEST": True,
    # Relative: the server that serves the schema (at /api/schema/) serves the API.
    "SERVERS": [{"url": "/", "description": "The server that serves this schema."}],
    "CONTACT": {"name": "LLMOps Tracker maintainers"},
    # The shared headers and the tags (tracker/api_views.py), after drf-spectacular's own enum naming;
    # then Idempotency-Key on POSTs, ETag/If-None-Match/304 on JSON GETs (tracker/api_conditional.py).
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "tracker.api_views.schema_postprocess",
        "tracker.api_conditional.document_conditional_requests",
    ],
    "ENUM_NAME_OVERRIDES": {
        "ProviderEnum": "ops.models.Provider",
        "ModelProviderEnum": "ops.models.ModelProvider",
        "CostCategoryEnum": "ops.models.CostCategory",
        "StageEnum": "projects.models.Stage",
        "HealthEnum": "projects.models.Health",
        "RoleEnum": "projects.models.Role",
        "RiskStatusEnum": "ops.models.RiskStatus",
        "SeverityEnum": "ops.models.Severity",
        "SignalRuleEnum": "ops.models.SignalRule",
        "RiskCategoryEnum": "ops.models.RiskCategory",
        "CostSourceEnum": "ops.models.CostSource",
        "RiskSourceEnum": "ops.models.RiskSource",
        "ComponentKindEnum": "ops.models.ComponentKind",
        "ReportKindEnum": "ops.models.ReportKind",
        "ReportStateEnum": "ops.models.ReportState",
        "WebhookEndpointKindEnum": "webhooks.models.EndpointKind",
        "WebhookEndpointStateEnum": "webhooks.models.EndpointState",
        "WebhookDeliveryStatusEnum": "webhooks.models.DeliveryStatus",
        "WebhookEventTypeEnum": "webhooks.models.EventType",
    },
}

# Risk signals (see docs/reports.md): thresholds of the daily rules.
# The burn-rate forecast needs this much history.
RISK_SIGNAL_FORECAST_MIN_DAYS = env.int("RISK_SIGNAL_FORECAST_MIN_DAYS", default=14)
# A day's spend above its 28-day median + SPEND_ANOMALY_K × MAD is an anomaly (ops/services/signals.py).
SPEND_ANOMALY_K = env.float("SPEND_ANOMALY_K", default=5.0)
RISK_SIGNAL_STALE_STATUS_DAYS = env.int("RISK_SIGNAL_STALE_STATUS_DAYS", default=14)
RISK_SIGNAL_STAGE_MAX_DAYS = env.int("RISK_SIGNAL_STAGE_MAX_DAYS", default=120)  # production and retired exempt
RISK_SIGNAL_DEPRECATION_DAYS = env.int("RISK_SIGNAL_DEPRECATION_DAYS", default=90)
RISK_SIGNAL_UNPRICED_LOOKBACK_DAYS = env.int("RISK_SIGNAL_UNPRICED_LOOKBACK_DAYS", default=30)
RISK_SIGNAL_PROVIDER_SHARE_PCT = env.int("RISK_SIGNAL_PROVIDER_SHARE_PCT", default=70)
RISK_SIGNAL_PROVIDER_WINDOW_DAYS = env.int("RISK_SIGNAL_PROVIDER_WINDOW_DAYS", default=90)
# Billed (FOCUS) vs estimated spend of a project's month differing by more than this % of the billed
# amount raises billing_drift; the rule looks at the last N months (this one included).
RISK_SIGNAL_BILLING_DRIFT_PCT = env.int("RISK_SIGNAL_BILLING_DRIFT_PCT", default=10)
RISK_SIGNAL_BILLING_DRIFT_MONTHS = env.int("RISK_SIGNAL_BILLING_DRIFT_MONTHS", default=3)
# A risk acceptance lasts at most this many days before a manager has to decide again.
RISK_ACCEPTANCE_MAX_DAYS = env.int("RISK_ACCEPTANCE_MAX_DAYS", default=365)
# Reports: weeks of missed reports produced on catch-up; a pending report older than this is re-enqueued.
REPORT_CATCH_UP_WEEKS = env.int("REPORT_CATCH_UP_WEEKS", default=4)
REPORT_PENDING_REQUEUE_MINUTES = env.int("REPORT_PENDING_REQUEUE_MINUTES", default=15)
REPORT_LIST_LIMIT = env.int("REPORT_LIST_LIMIT", default=50)  # rows kept per list in a report (counts stay exact)
# Reports cover days from REPORT_PERIOD_EARLIEST to REPORT_PERIOD_DAYS_AHEAD days after today; a user may
# have REPORT_PENDING_PER_USER on-demand reports waiting (pending or running) at once.
REPORT_PERIOD_EARLIEST = dt.date.fromisoformat(env("REPORT_PERIOD_EARLIEST", default="2000-01-01"))
REPORT_PERIOD_DAYS_AHEAD = env.int("REPORT_PERIOD_DAYS_AHEAD", default=366)
REPORT_PENDING_PER_USER = env.int("REPORT_PENDING_PER_USER", default=5)

# Webhooks (docs/webhooks.md). Endpoints on private, loopback or link-local addresses are refused unless
# allowed (tests and a receiver on the same host need 127.0.0.1). An attempt waits at most the timeout to
# connect and again to read, and reads at most WEBHOOK_RESPONSE_MAX_BYTES of the answer. Failed attempts
# are retried after WEBHOOK_RETRY_BASE_SECONDS × 4^(n-1) (1 min … 17 h: about a day over 7 attempts);
# an endpoint whose attempts failed WEBHOOK_DISABLE_AFTER_FAILURES times in a row is disabled. A rotated
# secret keeps signing for WEBHOOK_SECRET_GRACE_HOURS.
WEBHOOK_ALLOW_PRIVATE_NETWORKS = env.bool("WEBHOOK_ALLOW_PRIVATE_NETWORKS", default=False)
WEBHOOK_TIMEOUT_SECONDS = env.float("WEBHOOK_TIMEOUT_SECONDS", default=5.0)
WEBHOOK_RESPONSE_MAX_BYTES = env.int("WEBHOOK_RESPONSE_MAX_BYTES", default=4096)
WEBHOOK_MAX_ATTEMPTS = env.int("WEBHOOK_MAX_ATTEMPTS", default=7)
WEBHOOK_RETRY_BASE_SECONDS = env.int("WEBHOOK_RETRY_BASE_SECONDS", default=60)
WEBHOOK_DISABLE_AFTER_FAILURES = env.int("WEBHOOK_DISABLE_AFTER_FAILURES", default=15)
WEBHOOK_SECRET_GRACE_HOURS = env.int("WEBHOOK_SECRET_GRACE_HOURS", default=24)
WEBHOOK_ENDPOINTS_PER_ORGANIZATION = env.int("WEBHOOK_ENDPOINTS_PER_ORGANIZATION", default=20)
