"""Settings, all from the environment (twelve-factor).

With nothing set: SQLite in the project folder, a Celery broker on the local filesystem
(no server needed), DEBUG on. With DJANGO_ENV=production the variables in
PRODUCTION_REQUIRED must be set, or start-up stops naming the missing one.
"""

import os
from pathlib import Path

import dj_database_url
from celery.schedules import crontab
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
ENV = os.environ.get("DJANGO_ENV", "development")
PRODUCTION = ENV == "production"
PRODUCTION_REQUIRED = ("SECRET_KEY", "DATABASE_URL", "REDIS_URL", "ALLOWED_HOSTS")

if PRODUCTION:
    for _name in PRODUCTION_REQUIRED:
        if not os.environ.get(_name):
            raise ImproperlyConfigured(
                f"DJANGO_ENV=production needs the environment variable {_name}; it is not set."
            )


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


SECRET_KEY = os.environ.get("SECRET_KEY", "dev-only-insecure-key-change-me-in-production-0123456789")
DEBUG = env_bool("DEBUG", not PRODUCTION)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1],testserver")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", "")
# Set by CI: a test that needs Redis, a worker or chromium fails instead of skipping.
REQUIRE_SERVICES = env_bool("SCRM_REQUIRE_SERVICES", False)

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django_htmx",
    "template_partials",
    "crispy_forms",
    "crispy_bootstrap5",
    "ninja",  # its templates and static files: the API docs page without a CDN
    # Our apps, lowest layer first (see docs/architecture.md).
    "accounts",
    "contacts",
    "loyalty",
    "segments",
    "sop",
    "churn",
    "scrm",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    "accounts.middleware.UserTimezoneMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]

ROOT_URLCONF = "scrm.urls"
WSGI_APPLICATION = "scrm.wsgi.application"
AUTH_USER_MODEL = "accounts.User"
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

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
                "django.template.context_processors.i18n",
                "accounts.context_processors.roles",
                "sop.context_processors.sop_nav",
            ],
            # {% partialdef %} everywhere without a {% load %} (htmx fragments, DESIGN.md).
            "builtins": ["template_partials.templatetags.partials"],
        },
    },
]

DATABASES = {
    "default": dj_database_url.config(
        default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}",
        conn_max_age=int(os.environ.get("DB_CONN_MAX_AGE", "60")),
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets the web process read while the worker writes; the timeout rides out short locks.
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 20,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
    }
    # W040: "SQLite does not support indexes with non-key columns". The events' window index and the contacts'
    # (tier, id) index are covering on PostgreSQL (INCLUDE …: contacts/models.py); SQLite builds them without
    # the INCLUDE, which changes speed, not results. Silenced for SQLite only: on PostgreSQL it never fires.
    SILENCED_SYSTEM_CHECKS = ["models.W040"]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = os.environ.get("REDIS_URL", "")
if REDIS_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# Internationalisation: stored in UTC, shown in the user's zone (accounts.User.time_zone).
LANGUAGE_CODE = os.environ.get("LANGUAGE_CODE", "zh-hans")
LANGUAGES = [("zh-hans", "中文"), ("en", "English")]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = os.environ.get("TIME_ZONE", "Asia/Shanghai")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [
    BASE_DIR / "static",
    # npm packages (package.json, `npm ci`), served by whitenoise — never a CDN.
    ("vendor/bootstrap", BASE_DIR / "node_modules/bootstrap/dist"),
    ("vendor/bootstrap-icons", BASE_DIR / "node_modules/bootstrap-icons/font"),
    ("vendor/echarts", BASE_DIR / "node_modules/echarts/dist"),
]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if PRODUCTION
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
MEDIA_ROOT = Path(os.environ.get("MEDIA_ROOT", BASE_DIR / "media"))

CRISPY_ALLOWED_TEMPLATE_PACKS = "bootstrap5"
CRISPY_TEMPLATE_PACK = "bootstrap5"

# Celery: Redis when REDIS_URL is set; otherwise a filesystem broker so a bare machine needs no server.
CELERY_BROKER_URL = REDIS_URL or "filesystem://"
if not REDIS_URL:
    _broker_dir = BASE_DIR / ".celery-broker"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "out"),
        "data_folder_out": str(_broker_dir / "out"),
        "processed_folder": str(_broker_dir / "processed"),
        "control_folder": str(_broker_dir / "control"),  # else kombu writes ./control in the cwd
        "store_processed": False,
    }
    for _sub in ("out", "processed", "control"):
        (_broker_dir / _sub).mkdir(parents=True, exist_ok=True)
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TIMEZONE = TIME_ZONE
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_QUEUES_NAMES = ("default", "dispatch", "bulk")
CELERY_TASK_ROUTES = {
    # Long file work goes to `bulk` so it never delays touchpoints or the event pipeline.
    "contacts.tasks.import_run_task": {"queue": "bulk"},
    "contacts.tasks.export_run_task": {"queue": "bulk"},
    "contacts.tasks.export_cleanup_task": {"queue": "bulk"},
    "segments.tasks.segment_refresh_task": {"queue": "bulk"},
    "segments.tasks.segment_bulk_task": {"queue": "bulk"},
    # scrm.tasks.refresh_touched_contacts_task stays on `default`, beside the event pipeline it mirrors: behind
    # an hour-long import on `bulk` it would break its within-a-minute promise.
    # Touchpoints have their own queue so no import or refresh ever delays a message.
    "sop.tasks.dispatch_due_touchpoints_task": {"queue": "dispatch"},
    "sop.tasks.send_touchpoints_task": {"queue": "dispatch"},
}
CELERY_BEAT_SCHEDULE = {
    "heartbeat": {
        "task": "scrm.tasks.heartbeat_task",
        "schedule": 60.0,
        "kwargs": {"sent_by": "beat"},
        "options": {"expires": 55},
    },
    # Expired export files are deleted (the rows stay as history).
    "export-cleanup": {
        "task": "contacts.tasks.export_cleanup_task",
        "schedule": 3600.0,
        "options": {"expires": 3500},
    },
    # Events whose on-commit task was lost (worker down, broker outage) are applied by this sweep.
    "pipeline-catch-up": {
        "task": "scrm.tasks.process_pending_events_task",
        "schedule": 60.0,
        "options": {"expires": 55},
    },
    # Contacts changed by edits, imports, bulk actions and merges (the contacts.ContactTouch outbox; contacts
    # cannot call segments) reach every dynamic segment within a minute: a run every 30 s drains for up to 25 s.
    "segments-touched": {
        "task": "scrm.tasks.refresh_touched_contacts_task",
        "schedule": 30.0,
        "options": {"expires": 25},
    },
    # 03:00 in TIME_ZONE (DESIGN.md, nightly jobs): every dynamic segment recomputed from its rule.
    "segments-reconcile": {
        "task": "segments.tasks.segments_reconcile_task",
        "schedule": crontab(hour=3, minute=0),
    },
    # SOP: due touchpoints every minute (DESIGN.md, touchpoints are an outbox); segment changes that no
    # pipeline or drain consumed (full refreshes, the reconcile) every 30 s; birthdays hourly (a customer's
    # day starts at their own midnight, so the scan runs through the day; it is idempotent).
    "sop-dispatch": {
        "task": "sop.tasks.dispatch_due_touchpoints_task",
        "schedule": 60.0,
        "options": {"expires": 55},
    },
    "sop-segment-triggers": {
        "task": "sop.tasks.consume_segment_changes_task",
        "schedule": 30.0,
        "options": {"expires": 25},
    },
    "sop-birthdays": {
        "task": "sop.tasks.birthday_triggers_task",
        "schedule": crontab(minute=5),
    },
}
# Nightly jobs (DESIGN.md) join CELERY_BEAT_SCHEDULE as their issues land (celery.schedules.crontab).

# SOP (issue 5). A dispatch run claims batches of this many due touchpoints until none is due or its time is up.
SOP_DISPATCH_BATCH_SIZE = int(os.environ.get("SOP_DISPATCH_BATCH_SIZE", 1000))
SOP_DISPATCH_TIME_BUDGET_SECONDS = 50.0
SOP_WEBHOOK_TIMEOUT_SECONDS = float(os.environ.get("SOP_WEBHOOK_TIMEOUT_SECONDS", 10))
# A touchpoint left "sending" this long (its worker died mid-send) is sent again, with the same idempotency key.
SOP_SENDING_STALE_MINUTES = 10

# Email (the SOP email channel). Development prints mail to the console; production sets EMAIL_HOST.
EMAIL_HOST = os.environ.get("EMAIL_HOST", "")
EMAIL_PORT = int(os.environ.get("EMAIL_PORT", 25))
EMAIL_HOST_USER = os.environ.get("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = os.environ.get("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
EMAIL_TIMEOUT = 15
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "scrm@localhost")
EMAIL_BACKEND = (
    "django.core.mail.backends.smtp.EmailBackend"
    if EMAIL_HOST
    else "django.core.mail.backends.console.EmailBackend"
)

# Data in and out (issue 3).
IMPORT_MAX_UPLOAD_BYTES = int(os.environ.get("IMPORT_MAX_UPLOAD_BYTES", 200 * 1024 * 1024))
EXPORT_LINK_TTL_HOURS = int(os.environ.get("EXPORT_LINK_TTL_HOURS", 24))
API_EVENTS_BATCH_LIMIT = 1000
# The event pipeline applies events in batches of this many; the catch-up sweep runs every minute.
PIPELINE_BATCH_SIZE = 5000

# Heartbeat freshness: a worker or beat silent longer than this shows red on the status page.
HEARTBEAT_STALE_AFTER_SECONDS = 180

# Contact list: how many rows a page shows and how far a filtered total is counted exactly.
CONTACT_PAGE_SIZE = 50
CONTACT_COUNT_CAP = 10_000

if PRODUCTION:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    SECURE_HSTS_SECONDS = int(os.environ.get("SECURE_HSTS_SECONDS", "31536000"))
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
}
