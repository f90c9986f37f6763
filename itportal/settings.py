"""Settings for itportal, read from the environment (see README, "Configuration").

Every value a deployment must set comes from an environment variable through
django-environ; the defaults are safe for development and the demo only.
"""

from datetime import timedelta
from pathlib import Path

import environ
from celery.schedules import crontab
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _

from itportal import branding, logs

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
env_file = BASE_DIR / ".env"
if env_file.exists():
    environ.Env.read_env(env_file)

DEBUG = env.bool("DEBUG", default=False)
# Without SECRET_KEY (and DEBUG off) Django refuses at the first use of the key (sessions,
# CSRF, signing), so the portal never serves with an empty key; management commands that
# need no key (makemigrations --check, collectstatic) still run.
SECRET_KEY = env.str("SECRET_KEY", default="")
if not SECRET_KEY and DEBUG:
    SECRET_KEY = "insecure-development-key-only-for-debug-mode"  # noqa: S105

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "itportal.apps.PortalAdminConfig",  # django.contrib.admin with the portal's site
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django_tables2",
    "django_filters",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "csp",
    "django_structlog",
    "axes",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",
    "simple_history",
    "itportal",
    "accounts",
    "notifications",
    "catalogue",
    "requests_app",
    "provisioning",
    "assist",
    "metrics",
    "webhooks",
    "privacy",
    "api",
    "runs",
    "governance",
    "home",
]
# Development servers and demo data (devtools/): never installed in production.
DEV_TOOLS = env.bool("DEV_TOOLS", default=DEBUG)
if DEV_TOOLS:
    INSTALLED_APPS.append("devtools")

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # A request_id per request (and user_id, ip) on every log line; Celery carries it on.
    "django_structlog.middlewares.RequestMiddleware",
    # The request's user becomes the author of catalogue history records.
    "simple_history.middleware.HistoryRequestMiddleware",
    # django-otp's, its device read by a statement compiled once.
    "accounts.middleware.OTPMiddleware",
    "accounts.middleware.NoStoreMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    "accounts.middleware.SecondFactorMiddleware",
    "itportal.errors.BadInputMiddleware",
    "accounts.middleware.IdleSessionMiddleware",
    "home.middleware.NavCountsMiddleware",
    # Last, as django-axes requires: turns a locked-out login into its lock-out page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "itportal.urls"

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
                "itportal.context_processors.portal",
                "home.context_processors.navigation",
            ],
        },
    },
]

# Django's default (local memory). The header is kept per process by its template tag
# (itportal/templatetags/portal_layout.py), not in a cache.
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# Django's renderer, its plain widget templates rendered in Python (itportal/renderers.py).
FORM_RENDERER = "itportal.renderers.FastWidgetRenderer"

WSGI_APPLICATION = "itportal.wsgi.application"

# PostgreSQL everywhere: the controlling reports use its window and percentile functions.
DATABASES = {
    "default": env.db("DATABASE_URL", default="postgres://postgres@127.0.0.1:5432/itportal")
}
DATABASES["default"].setdefault("ATOMIC_REQUESTS", False)
if DATABASES["default"]["ENGINE"].endswith("postgresql"):
    # JIT compilation costs a second on the large report queries and saves nothing there.
    DATABASES["default"].setdefault("OPTIONS", {}).setdefault("options", "-c jit=off")
    # An unreachable server fails a request (and /readyz) in seconds instead of hanging.
    DATABASES["default"]["OPTIONS"].setdefault(
        "connect_timeout", env.int("DATABASE_CONNECT_TIMEOUT", default=5)
    )
DATABASES["default"]["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", default=60)
# A kept connection is checked before a request (or task) reuses it: after a PostgreSQL
# restart the first click gets a new connection instead of an error.
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
# Behind PgBouncer in transaction mode (deploy/pgbouncer/) a server-side cursor would outlive
# its transaction's server connection; Django then reads iterator() results client-side.
DATABASES["default"]["DISABLE_SERVER_SIDE_CURSORS"] = env.bool(
    "DATABASE_BEHIND_PGBOUNCER", default=False
)
# Long runs (runs/progress.py) write their progress on a connection of their own, so it shows
# while the work's own transaction is still open.
RUNS_OWN_CONNECTION = True
# /readyz: seconds each dependency (broker, directory) may take to answer.
READYZ_TIMEOUT = env.float("READYZ_TIMEOUT", default=2.0)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Local accounts only (break-glass, people kept only in the portal); directory and SSO
# passwords follow the directory's policy. See SECURITY.md, "Passwords".
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": env.int("PASSWORD_MIN_LENGTH", default=12)},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
# Sessions end with the browser and after SESSION_IDLE_MINUTES without a request
# (accounts.middleware.IdleSessionMiddleware refreshes the expiry while the session is used).
SESSION_IDLE_MINUTES = env.int("SESSION_IDLE_MINUTES", default=30)
SESSION_COOKIE_AGE = SESSION_IDLE_MINUTES * 60
SESSION_EXPIRE_AT_BROWSER_CLOSE = True
# Failed logins (django-axes): after LOGIN_FAILURE_LIMIT failures an account is locked,
# from any address, and so is an address, for any account; IT admins lift locks under
# "Anmeldesperren". LOGIN_LOCKOUT_MINUTES = 0 keeps a lock until it is lifted.
AXES_ENABLED = env.bool("LOGIN_THROTTLING", default=True)
AXES_FAILURE_LIMIT = env.int("LOGIN_FAILURE_LIMIT", default=5)
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
LOGIN_LOCKOUT_MINUTES = env.int("LOGIN_LOCKOUT_MINUTES", default=30)
AXES_COOLOFF_TIME = timedelta(minutes=LOGIN_LOCKOUT_MINUTES) if LOGIN_LOCKOUT_MINUTES else None
AXES_RESET_ON_SUCCESS = True
AXES_USERNAME_CALLABLE = "accounts.lockout.login_name"
AXES_CLIENT_IP_CALLABLE = "accounts.addresses.client_ip"
AXES_LOCKOUT_CALLABLE = "accounts.lockout.lockout_response"
AXES_ENABLE_ADMIN = False  # the portal's own page shows and lifts lock-outs
# Second factor (django-otp): TOTP apps, required for IT admins and superusers.
OTP_TOTP_ISSUER = env.str("OTP_TOTP_ISSUER", default="IT-Portal")
# Reverse proxies whose X-Forwarded-For names the client (addresses or networks); without
# them every login would count against the proxy's address.
TRUSTED_PROXIES = env.list("TRUSTED_PROXIES", default=[])
LOGIN_REDIRECT_URL = "home:start"
LOGOUT_REDIRECT_URL = "login"

# Internationalisation: German first, English selectable.
LANGUAGE_CODE = env.str("LANGUAGE_CODE", default="de")
LANGUAGES = [("de", _("German")), ("en", _("English"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
# English dates day-first with a 24-hour clock (itportal/formats/en); German from Django.
FORMAT_MODULE_PATH = ["itportal.formats"]
TIME_ZONE = env.str("TIME_ZONE", default="Europe/Berlin")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = env.path("STATIC_ROOT", default=BASE_DIR / "var" / "staticfiles")
# KERN, the German administration's design system (npm @kern-ux/native, EUPL-1.2): installed
# from the lockfile in frontend/ by scripts/bootstrap.sh and served under static/kern/ like the
# portal's own files (no CDN; the Containerfile copies it in at build time).
KERN_DIST = BASE_DIR / "frontend" / "node_modules" / "@kern-ux" / "native" / "dist"
STATICFILES_DIRS = [BASE_DIR / "static", ("kern", KERN_DIST)]
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
WHITENOISE_USE_FINDERS = DEBUG

# E-mail: SMTP in production (EMAIL_URL), console in the demo.
vars().update(env.email_url("EMAIL_URL", default="consolemail://"))
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="IT-Portal <itportal@localhost>")
PORTAL_BASE_URL = env.str("PORTAL_BASE_URL", default="http://localhost:8000")
EMAIL_TIMEOUT = env.int("EMAIL_TIMEOUT", default=30)  # seconds per SMTP connection and answer
# Mail outbox (notifications/services.py): tries on temporary errors, backoff with jitter;
# an attempt not finished after MAIL_STALLED_AFTER_SECONDS (the worker died) becomes
# "uncertain" and is not sent again without an IT admin.
MAIL_MAX_ATTEMPTS = env.int("MAIL_MAX_ATTEMPTS", default=8)
MAIL_RETRY_BASE_SECONDS = env.float("MAIL_RETRY_BASE_SECONDS", default=30.0)
MAIL_RETRY_MAX_SECONDS = env.float("MAIL_RETRY_MAX_SECONDS", default=1800.0)
MAIL_STALLED_AFTER_SECONDS = env.int("MAIL_STALLED_AFTER_SECONDS", default=300)
# The mail sweeper (beat, every minute) enqueues again open mails due longer than this ago.
MAIL_SWEEP_AFTER_SECONDS = env.int("MAIL_SWEEP_AFTER_SECONDS", default=60)
MAIL_RETENTION_DAYS = env.int("MAIL_RETENTION_DAYS", default=90)

# Celery: Redis broker. CELERY_TASK_ALWAYS_EAGER runs tasks in-process (demo).
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="redis://127.0.0.1:6379/0")
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=False)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# A killed worker's unacknowledged messages come back after this; it must stay above the
# longest retry countdown (PROVISIONING_RETRY_MAX_SECONDS). The provisioning sweeper
# enqueues lost jobs sooner (PROVISIONING_SWEEP_AFTER_SECONDS, PROVISIONING_LEASE_SECONDS).
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": env.int("CELERY_VISIBILITY_TIMEOUT", default=3600),
    # A broker that went away is noticed (keepalive, health checks, timeouts) instead of a
    # connection hanging; a web process waiting to publish gives up within seconds.
    "socket_connect_timeout": 3,
    "socket_timeout": 15,  # above kombu's 1 s BRPOP
    "socket_keepalive": True,
    "health_check_interval": 25,
    "retry_on_timeout": True,
}
# Workers survive their broker: they reconnect for as long as it takes (Celery's default
# gives up after 100 tries and the worker exits), at start-up too. Running tasks are NOT
# cancelled when the consumer restarts (a lost connection, or the worker watchdog): they
# finish and record their outcome. Cancelling (SIGTERM to the pool process) cut a mail off
# between "sending" and its outcome, and the row ended "uncertain", unsent
# (tests/test_mail_consumer_restart.py). Their acknowledgement cannot be sent on the new
# connection, so Redis may hand the message out again after the visibility timeout: jobs
# and outbox rows find the work done and do nothing twice.
CELERY_BROKER_CONNECTION_RETRY = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_CONNECTION_MAX_RETRIES = None
CELERY_BROKER_CONNECTION_TIMEOUT = 3
CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = False
# The worker watchdog (itportal/watchdog.py): every WORKER_WATCHDOG_SECONDS it checks that a
# worker with a free slot takes the messages waiting in its queues; after
# WORKER_STALLED_AFTER_SECONDS without it the consumer restarts, and if that does not help the
# worker ends (exit code 75) for its supervisor to start a new one. 0 turns it off.
WORKER_WATCHDOG_SECONDS = env.float("WORKER_WATCHDOG_SECONDS", default=15.0)
WORKER_STALLED_AFTER_SECONDS = env.float("WORKER_STALLED_AFTER_SECONDS", default=120.0)
# False: end a stalled worker at once (a fresh process) instead of first restarting its consumer.
WORKER_STALLED_RESTARTS_CONSUMER = env.bool("WORKER_STALLED_RESTARTS_CONSUMER", default=True)
# Publishing (after a commit, in a web request): a few quick tries, then the sweepers.
CELERY_TASK_PUBLISH_RETRY_POLICY = {
    "max_retries": 2,
    "interval_start": 0,
    "interval_step": 0.5,
    "interval_max": 1,
}
CELERY_TASK_TIME_LIMIT = 300
CELERY_TASK_SOFT_TIME_LIMIT = 240
CELERY_TIMEZONE = TIME_ZONE
# One queue per kind of work, each with workers of its own (deploy/systemd/, compose.yaml), so
# a burst of one (a mass order, a mail storm, an endpoint that times out, an hour-long full
# sync) never starves another. All routing is here; tests/test_celery_routing.py fails on a
# task no route names. Exact names win over the patterns.
PORTAL_CELERY_QUEUES = ("provisioning", "notifications", "webhooks", "reports")
CELERY_TASK_ROUTES = {
    # Long periodic batch runs.
    "provisioning.tasks.sync_directory": {"queue": "reports"},
    "provisioning.tasks.reconcile_directory": {"queue": "reports"},
    "requests_app.tasks.approvals_remind_and_escalate": {"queue": "reports"},
    "requests_app.tasks.sla_warn_and_escalate": {"queue": "reports"},
    "webhooks.tasks.prune_webhook_events": {"queue": "reports"},
    "privacy.tasks.apply_retention": {"queue": "reports"},
    "metrics.tasks.refresh_controlling_rollups": {"queue": "reports"},
    "assist.tasks.refresh_reclaim_candidates": {"queue": "reports"},
    "governance.tasks.start_due_recertification": {"queue": "reports"},
    "governance.tasks.recertification_remind_and_escalate": {"queue": "reports"},
    "provisioning.tasks.review_movers": {"queue": "reports"},
    "governance.tasks.scan_segregation_of_duties": {"queue": "reports"},
    "governance.tasks.refresh_group_nesting": {"queue": "reports"},
    "governance.tasks.sod_exceptions_remind_and_lapse": {"queue": "reports"},
    "governance.tasks.close_recertification_stage": {"queue": "reports"},
    "governance.tasks.sweep_stage_closes": {"queue": "reports"},
    "metrics.tasks.compact_gauges": {"queue": "reports"},
    "provisioning.tasks.*": {"queue": "provisioning"},
    "notifications.tasks.*": {"queue": "notifications"},
    "webhooks.tasks.*": {"queue": "webhooks"},
}
CELERY_BEAT_SCHEDULE = {
    "approvals-remind-and-escalate": {
        "task": "requests_app.tasks.approvals_remind_and_escalate",
        "schedule": crontab(minute=15, hour="7-18", day_of_week="mon-fri"),
    },
    "sla-warn-and-escalate": {
        "task": "requests_app.tasks.sla_warn_and_escalate",
        # Quarter-hourly: response targets are in working hours.
        "schedule": crontab(minute="*/15", hour="7-18", day_of_week="mon-fri"),
    },
    "provisioning-sweep": {
        "task": "provisioning.tasks.sweep_provisioning_jobs",
        "schedule": 30.0,
    },
    "directory-sync-incremental": {
        "task": "provisioning.tasks.sync_directory",
        "schedule": 900.0,
        "kwargs": {"full": False},
    },
    "directory-sync-full": {
        "task": "provisioning.tasks.sync_directory",
        "schedule": crontab(minute=0, hour=2),
        "kwargs": {"full": True},
    },
    "directory-reconcile": {
        "task": "provisioning.tasks.reconcile_directory",
        "schedule": crontab(minute=30, hour=3),
    },
    "provisioning-expire-entitlements": {
        "task": "provisioning.tasks.expire_entitlements",
        "schedule": crontab(minute=30, hour=6),
    },
    "webhooks-sweep-deliveries": {
        "task": "webhooks.tasks.sweep_webhook_deliveries",
        "schedule": 60.0,
    },
    "notifications-sweep-mails": {
        "task": "notifications.tasks.sweep_mails",
        "schedule": 60.0,
    },
    # Sent mails and settled webhook events are deleted by the retention run too.
    "privacy-retention": {
        "task": "privacy.tasks.apply_retention",
        "schedule": crontab(minute=15, hour=4),
    },
    # Controlling roll-ups: a closed month or a late change reaches the roll-up within
    # minutes; until then the pages read that month live (same figures, slower).
    "controlling-rollups": {
        "task": "metrics.tasks.refresh_controlling_rollups",
        "schedule": 300.0,
    },
    "reclaim-candidates": {
        "task": "assist.tasks.refresh_reclaim_candidates",
        "schedule": 600.0,
    },
    "provisioning-review-movers": {
        "task": "provisioning.tasks.review_movers",
        "schedule": crontab(minute=40, hour=6),
    },
    "governance-recertification": {
        "task": "governance.tasks.start_due_recertification",
        "schedule": crontab(minute=30, hour=6),
    },
    # Reminders, escalation and stage closes of recertifications (working days only).
    "governance-recertification-remind": {
        "task": "governance.tasks.recertification_remind_and_escalate",
        "schedule": crontab(minute=40, hour=6, day_of_week="mon-fri"),
    },
    # Segregation of duties: the holder report's findings (also after each rule change and
    # grant), and the directory's nested groups that rules over groups follow.
    "governance-sod-scan": {
        "task": "governance.tasks.scan_segregation_of_duties",
        "schedule": crontab(minute=5),
    },
    # Segregation-of-duties exceptions: reminders before expiry (working days), lapse after.
    "governance-sod-exceptions": {
        "task": "governance.tasks.sod_exceptions_remind_and_lapse",
        "schedule": crontab(minute=50, hour=6),
    },
    # A recertification stage's close asked for on the page whose wake-up was lost.
    "governance-sweep-stage-closes": {
        "task": "governance.tasks.sweep_stage_closes",
        "schedule": 300.0,
    },
    "governance-group-nesting": {
        "task": "governance.tasks.refresh_group_nesting",
        "schedule": crontab(minute=0, hour=4),
    },
    # /metrics sums the deltas written since the last compaction.
    "metrics-compact-gauges": {
        "task": "metrics.tasks.compact_gauges",
        "schedule": 60.0,
    },
}
# Seconds one roll-up run may spend before it leaves the remaining months to the next run
# (below CELERY_TASK_SOFT_TIME_LIMIT).
CONTROLLING_ROLLUP_BUDGET_SECONDS = env.int("CONTROLLING_ROLLUP_BUDGET_SECONDS", default=120)

# Recertification (access review): a campaign starts every RECERTIFICATION_INTERVAL_DAYS
# (0: only by hand, under "Rezertifizierungen"); managers then have RECERTIFICATION_DUE_DAYS.
# Segregation-of-duties exceptions: their approver (or, if gone, IT administration and data
# protection) is reminded this many working days before an exception expires, once each;
# at expiry it lapses and the conflict counts again.
SOD_EXCEPTION_REMINDER_WORKING_DAYS = sorted(
    {int(n) for n in env.list("SOD_EXCEPTION_REMINDER_WORKING_DAYS", default=["20", "5"])},
    reverse=True,
)
if not SOD_EXCEPTION_REMINDER_WORKING_DAYS or min(SOD_EXCEPTION_REMINDER_WORKING_DAYS) < 1:
    raise ImproperlyConfigured("SOD_EXCEPTION_REMINDER_WORKING_DAYS: working days, at least 1")
RECERTIFICATION_INTERVAL_DAYS = env.int("RECERTIFICATION_INTERVAL_DAYS", default=365)
RECERTIFICATION_DUE_DAYS = env.int("RECERTIFICATION_DUE_DAYS", default=20)  # working days
# Reminders this many working days before a stage's due date; after it, what is undecided goes
# to the reviewer's line manager (or IT administration), who has RECERTIFICATION_ESCALATION_DAYS
# working days more before the stage closes and its decisions are locked. What nobody decided
# is then removed ("remove") or kept and reported ("report"); each campaign chooses, the
# periodic one takes RECERTIFICATION_UNDECIDED_DEFAULT.
RECERTIFICATION_REMINDER_DAYS = env.int("RECERTIFICATION_REMINDER_DAYS", default=3)
RECERTIFICATION_ESCALATION_DAYS = env.int("RECERTIFICATION_ESCALATION_DAYS", default=5)
RECERTIFICATION_UNDECIDED_DEFAULT = env.str("RECERTIFICATION_UNDECIDED_DEFAULT", default="report")
if RECERTIFICATION_UNDECIDED_DEFAULT not in ("remove", "report"):
    raise ImproperlyConfigured("RECERTIFICATION_UNDECIDED_DEFAULT must be remove or report")

# Directory (OpenLDAP or Active Directory) for provisioning. Empty URL = no automation:
# automated items are then fulfilled by hand. The password comes from the environment only.
DIRECTORY = {
    "dialect": env.str("DIRECTORY_DIALECT", default="openldap"),  # openldap | ad
    "url": env.str("DIRECTORY_URL", default=""),
    "bind_dn": env.str("DIRECTORY_BIND_DN", default=""),
    "bind_password": env.str("DIRECTORY_BIND_PASSWORD", default=""),
    "user_base": env.str("DIRECTORY_USER_BASE", default=""),
    "group_base": env.str("DIRECTORY_GROUP_BASE", default=""),
    "tls": env.str("DIRECTORY_TLS", default="none"),  # none | starttls | ldaps
    "ca_file": env.str("DIRECTORY_CA_FILE", default=""),
    "timeout": env.int("DIRECTORY_TIMEOUT", default=10),
}
if DIRECTORY["dialect"] not in ("openldap", "ad"):
    raise ImproperlyConfigured("DIRECTORY_DIALECT must be 'openldap' or 'ad'.")
if DIRECTORY["tls"] not in ("none", "starttls", "ldaps"):
    raise ImproperlyConfigured("DIRECTORY_TLS must be 'none', 'starttls' or 'ldaps'.")
# Attribute names the sync reads, overriding the dialect's defaults (provisioning/sync.py),
# e.g. DIRECTORY_ATTRIBUTES='{"department": "ou", "title": "description"}'.
DIRECTORY_ATTRIBUTES = env.json("DIRECTORY_ATTRIBUTES", default={})
# Directory login: members of these groups (DNs) get the IT-admin / controlling role.
DIRECTORY_LOGIN = env.bool("DIRECTORY_LOGIN", default=bool(DIRECTORY["url"]))
DIRECTORY_IT_ADMIN_GROUP = env.str("DIRECTORY_IT_ADMIN_GROUP", default="")
DIRECTORY_CONTROLLING_GROUP = env.str("DIRECTORY_CONTROLLING_GROUP", default="")
# Single sign-on with OpenID Connect (README, "Single sign-on"): Keycloak, ADFS, ...
OIDC_ENABLED = env.bool("OIDC_ENABLED", default=False)
OIDC_RP_CLIENT_ID = env.str("OIDC_CLIENT_ID", default="")
OIDC_RP_CLIENT_SECRET = env.str("OIDC_CLIENT_SECRET", default="")
OIDC_OP_AUTHORIZATION_ENDPOINT = env.str("OIDC_AUTHORIZATION_ENDPOINT", default="")
OIDC_OP_TOKEN_ENDPOINT = env.str("OIDC_TOKEN_ENDPOINT", default="")
OIDC_OP_USER_ENDPOINT = env.str("OIDC_USERINFO_ENDPOINT", default="")
OIDC_OP_JWKS_ENDPOINT = env.str("OIDC_JWKS_ENDPOINT", default="")
OIDC_OP_LOGOUT_ENDPOINT = env.str("OIDC_END_SESSION_ENDPOINT", default="")
OIDC_RP_SIGN_ALGO = env.str("OIDC_SIGN_ALGORITHM", default="RS256")
OIDC_RP_SCOPES = env.str("OIDC_SCOPES", default="openid email profile")
OIDC_USERNAME_CLAIM = env.str("OIDC_USERNAME_CLAIM", default="preferred_username")
OIDC_GROUPS_CLAIM = env.str("OIDC_GROUPS_CLAIM", default="groups")
OIDC_IT_ADMIN_GROUP = env.str("OIDC_IT_ADMIN_GROUP", default="")
OIDC_CONTROLLING_GROUP = env.str("OIDC_CONTROLLING_GROUP", default="")
OIDC_CREATE_USER = False  # unknown people are refused, never given an account
OIDC_STORE_ID_TOKEN = True  # for logout through the provider
LOGIN_REDIRECT_URL_FAILURE = (
    "/accounts/login/"  # a path: mozilla-django-oidc does not resolve names
)
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",  # first: a locked-out login reaches no backend
    *(["accounts.oidc.PortalOIDCBackend"] if OIDC_ENABLED else []),
    *(["provisioning.auth.DirectoryBackend"] if DIRECTORY_LOGIN else []),
    "django.contrib.auth.backends.ModelBackend",  # local break-glass accounts
]
PROVISIONING_MAX_ATTEMPTS = env.int("PROVISIONING_MAX_ATTEMPTS", default=8)
PROVISIONING_RETRY_BASE_SECONDS = env.float("PROVISIONING_RETRY_BASE_SECONDS", default=5.0)
PROVISIONING_RETRY_MAX_SECONDS = env.float("PROVISIONING_RETRY_MAX_SECONDS", default=600.0)
# The sweeper (beat, every 30 s) enqueues again what is overdue by this much: a job whose
# message was lost (broker down at the commit) or an approved request without its jobs.
PROVISIONING_SWEEP_AFTER_SECONDS = env.int("PROVISIONING_SWEEP_AFTER_SECONDS", default=60)
# How long a worker owns a running job; past it the job counts as abandoned (worker killed)
# and may run again. Above the run's hard time limit (90 s), so two workers never run it
# at the same time.
PROVISIONING_LEASE_SECONDS = env.int("PROVISIONING_LEASE_SECONDS", default=120)
# Due membership jobs of one group that one worker runs together in one LDAP modify
# (provisioning/batch.py); 1 runs every job on its own. Recording a job and fulfilling its
# request takes up to 0.1 s on a loaded machine: 100 stay well inside a task's 60 s soft
# time limit and a job's lease.
PROVISIONING_BATCH_SIZE = env.int("PROVISIONING_BATCH_SIZE", default=100)
# Redis hands a message again after the visibility timeout: it must outlast a retry's
# countdown (the worker holds the message until then) and a job's lease (the sweeper, not
# a redelivery, recovers a killed worker's job).
if CELERY_BROKER_TRANSPORT_OPTIONS["visibility_timeout"] <= max(
    PROVISIONING_RETRY_MAX_SECONDS, PROVISIONING_LEASE_SECONDS
):
    raise ImproperlyConfigured(
        "CELERY_VISIBILITY_TIMEOUT must be above PROVISIONING_RETRY_MAX_SECONDS and "
        "PROVISIONING_LEASE_SECONDS."
    )
PROVISIONING_EXPIRY_NOTICE_DAYS = env.int("PROVISIONING_EXPIRY_NOTICE_DAYS", default=7)

# Webhooks (docs/webhooks.md). Endpoints must be https:// and public addresses; http:// only
# with WEBHOOKS_ALLOW_HTTP (tests, demo), internal addresses only inside the listed networks.
WEBHOOKS_ALLOW_HTTP = env.bool("WEBHOOKS_ALLOW_HTTP", default=False)
# Keys that encrypt secrets at rest (webhook signing secrets), comma-separated Fernet keys:
# the first encrypts, all decrypt (rotation: SECURITY.md). Required unless DEBUG.
FIELD_ENCRYPTION_KEYS = env.list("FIELD_ENCRYPTION_KEYS", default=[])
WEBHOOKS_ALLOWED_NETWORKS = env.list("WEBHOOKS_ALLOWED_NETWORKS", default=[])
WEBHOOKS_CA_FILE = env.str("WEBHOOKS_CA_FILE", default="")  # CA bundle, e.g. the city's own CA
WEBHOOKS_CONNECT_TIMEOUT = env.float("WEBHOOKS_CONNECT_TIMEOUT", default=5.0)
WEBHOOKS_READ_TIMEOUT = env.float("WEBHOOKS_READ_TIMEOUT", default=10.0)
WEBHOOKS_MAX_ATTEMPTS = env.int("WEBHOOKS_MAX_ATTEMPTS", default=8)
WEBHOOKS_RETRY_BASE_SECONDS = env.float("WEBHOOKS_RETRY_BASE_SECONDS", default=30.0)
WEBHOOKS_RETRY_MAX_SECONDS = env.float("WEBHOOKS_RETRY_MAX_SECONDS", default=3600.0)
WEBHOOKS_SECRET_GRACE_HOURS = env.int("WEBHOOKS_SECRET_GRACE_HOURS", default=24)
WEBHOOKS_SWEEP_BATCH = env.int("WEBHOOKS_SWEEP_BATCH", default=500)
WEBHOOKS_RETENTION_DAYS = env.int("WEBHOOKS_RETENTION_DAYS", default=90)

# Retention (DSGVO Art. 5(1)(e), Art. 17): days after which the nightly retention run
# (privacy/retention.py, beat "privacy-retention") anonymises or deletes each kind of data.
# Figures for controlling (counts, prices, dates, cost centre, department, service) stay.
# The table with what each kind keeps and removes: docs/datenschutz.md.
RETENTION_REQUESTS_DAYS = env.int("RETENTION_REQUESTS_DAYS", default=730)  # after closing
RETENTION_RATING_COMMENTS_DAYS = env.int("RETENTION_RATING_COMMENTS_DAYS", default=365)
RETENTION_JOB_LOGS_DAYS = env.int("RETENTION_JOB_LOGS_DAYS", default=180)  # after finishing
RETENTION_INACTIVE_PEOPLE_DAYS = env.int("RETENTION_INACTIVE_PEOPLE_DAYS", default=365)
RETENTION_LOGIN_RECORDS_DAYS = env.int("RETENTION_LOGIN_RECORDS_DAYS", default=90)
RETENTION_AUDIT_PSEUDONYMISE_DAYS = env.int("RETENTION_AUDIT_PSEUDONYMISE_DAYS", default=730)
# Rows per transaction: each batch commits on its own, so a run over millions of rows
# holds no long locks and a stopped run resumes where it stopped.
RETENTION_BATCH_SIZE = env.int("RETENTION_BATCH_SIZE", default=1000)
# Key of the audit trail's pseudonyms (a keyed hash of the person); SECRET_KEY by default.
RETENTION_PSEUDONYM_KEY = env.str("RETENTION_PSEUDONYM_KEY", default="") or SECRET_KEY

# /metrics (Prometheus): the bearer token by default. Addresses or networks allowed without
# it are an explicit opt-in: behind a reverse proxy on the same host, "127.0.0.1" is everyone.
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")
METRICS_ALLOWED_IPS = env.list("METRICS_ALLOWED_IPS", default=[])

# Approval rules: working days count Monday to Friday without the public
# holidays of the configured German Land (ISO 3166-2 code without "DE-").
PORTAL_HOLIDAY_SUBDIVISION = env.str("PORTAL_HOLIDAY_SUBDIVISION", default="NW")
PORTAL_REMINDER_WORKING_DAYS = env.int("PORTAL_REMINDER_WORKING_DAYS", default=3)
# The bundle (slug) a directory sync offers a new colleague's line manager by mail; empty: none.
PORTAL_JOINER_BUNDLE = env.str("PORTAL_JOINER_BUNDLE", default="neue-mitarbeiterin")
# SLA (requests_app/sla.py): warnings at 50 % and 75 % of the target, breach at 100 %.
# Optionally the 75 % warning comes earlier, this many working days before the resolution
# due date (0: off, the percentages alone, as the SLA promises).
PORTAL_SLA_WARNING_WORKING_DAYS = env.int("PORTAL_SLA_WARNING_WORKING_DAYS", default=0)
# Business hours (local time) on working days: response targets count working hours in them,
# and paused time (a request on hold) is counted in them.
PORTAL_BUSINESS_HOURS_START = env.str("PORTAL_BUSINESS_HOURS_START", default="07:30")
PORTAL_BUSINESS_HOURS_END = env.str("PORTAL_BUSINESS_HOURS_END", default="16:00")
PORTAL_ESCALATION_WORKING_DAYS = env.int("PORTAL_ESCALATION_WORKING_DAYS", default=5)
# Movers (a new department or line manager in the directory): the new manager confirms the
# access within this many working days, is reminded this many working days before, and what
# is still undecided after the due day is removed (provisioning/movers.py).
PORTAL_MOVER_REVIEW_WORKING_DAYS = env.int("PORTAL_MOVER_REVIEW_WORKING_DAYS", default=10)
PORTAL_MOVER_REMINDER_WORKING_DAYS = env.int("PORTAL_MOVER_REMINDER_WORKING_DAYS", default=3)
# Start page: access ending within this many days is shown as expiring; IT admins see open
# requests submitted more than PORTAL_STALE_REQUEST_DAYS ago as overdue.
PORTAL_EXPIRING_WITHIN_DAYS = env.int("PORTAL_EXPIRING_WITHIN_DAYS", default=30)
# How old the navigation's counts may be (seconds; 0: counted on every page). One's own
# changes show at once; others' within this period; the start page always counts afresh.
PORTAL_NAV_COUNTS_SECONDS = env.int("PORTAL_NAV_COUNTS_SECONDS", default=30)
PORTAL_STALE_REQUEST_DAYS = env.int("PORTAL_STALE_REQUEST_DAYS", default=10)
PORTAL_CITY_NAME = env.str("PORTAL_CITY_NAME", default="Stadt Musterstadt")
# Look and feel (README, "Look and feel"): KERN with the city's action colour (links, buttons,
# navigation bar; empty keeps KERN's blue) and the text colour on it, both checked for WCAG AA
# contrast at start-up; the logo is a static file (PORTAL_BRANDING_DIR is served under
# static/branding/, e.g. PORTAL_LOGO=branding/wappen.svg); the KERN "Kopfzeile" above the
# header names the site as the administration's intranet (false: no Kopfzeile).
PORTAL_BRAND_COLOUR, PORTAL_BRAND_ON_COLOUR = branding.brand_colours(
    env.str("PORTAL_BRAND_COLOUR", default=""),
    env.str("PORTAL_BRAND_ON_COLOUR", default="#ffffff"),
)
PORTAL_LOGO = env.str("PORTAL_LOGO", default="img/city-logo.svg")
PORTAL_BRANDING_DIR = env.str("PORTAL_BRANDING_DIR", default="")
if PORTAL_BRANDING_DIR:
    STATICFILES_DIRS.append(("branding", PORTAL_BRANDING_DIR))
PORTAL_KOPFZEILE = env.bool("PORTAL_KOPFZEILE", default=True)
BRANDING_CSS_VERSION = branding.stylesheet_version(PORTAL_BRAND_COLOUR, PORTAL_BRAND_ON_COLOUR)
# Where a catalogue search that finds nothing sends people: the item for requests the catalogue
# does not list (by slug; offered when it exists and is open to them) and the service desk.
PORTAL_GENERAL_REQUEST_ITEM = env.str("PORTAL_GENERAL_REQUEST_ITEM", default="sonstige-anfrage")
PORTAL_SERVICE_DESK_PHONE = env.str("PORTAL_SERVICE_DESK_PHONE", default="")
PORTAL_SERVICE_DESK_EMAIL = env.str("PORTAL_SERVICE_DESK_EMAIL", default="")

# Assistance (docs/assistance.md): all of it, or each part, can be switched off.
ASSIST_ENABLED = env.bool("ASSIST_ENABLED", default=True)
ASSIST_DECISION_SUPPORT = env.bool("ASSIST_DECISION_SUPPORT", default=True)
ASSIST_RECOMMENDATIONS = env.bool("ASSIST_RECOMMENDATIONS", default=True)
ASSIST_ORDERING_IN_WORDS = env.bool("ASSIST_ORDERING_IN_WORDS", default=True)
# Typos in ordering in words: "trigram" (pg_trgm's measure) or "damerau" (also one edit in
# five letters, by rapidfuzz; docs/assistance.md has the figures of both).
ASSIST_WORDS_SIMILARITY = env.str("ASSIST_WORDS_SIMILARITY", default="damerau")
ASSIST_ANOMALIES = env.bool("ASSIST_ANOMALIES", default=True)
# Rarely used entitlements: the holder has signed in neither to the portal nor to the directory
# (its last sign-in, read by the sync) for this many days.
ASSIST_IDLE_DAYS = env.int("ASSIST_IDLE_DAYS", default=90)
# Smallest peer group whose figures are shown: below it one person's holdings could be inferred.
ASSIST_MIN_PEER_GROUP = env.int("ASSIST_MIN_PEER_GROUP", default=5)
# Outlier: fewer than this share of the peers hold the requested item.
ASSIST_OUTLIER_SHARE = env.float("ASSIST_OUTLIER_SHARE", default=0.1)
# Recommended: at least this share of the peers hold the item.
ASSIST_RECOMMEND_SHARE = env.float("ASSIST_RECOMMEND_SHARE", default=0.5)

# Security. HTTPS settings default on outside DEBUG; a reverse proxy terminates TLS.
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=not DEBUG)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=not DEBUG)
SESSION_COOKIE_HTTPONLY = True
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=not DEBUG)
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=not DEBUG)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=not DEBUG)
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# Probes of the load balancer and the orchestrator speak plain HTTP to the node itself.
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"

CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
        "base-uri": ["'self'"],
        "object-src": ["'none'"],
    },
}

# REST API (/api/v1/, see docs/api.md): JSON only, tokens or the portal session.
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "api.authentication.ApiTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["api.parsers.BoundedJSONParser"],
    "DEFAULT_PAGINATION_CLASS": "api.pagination.LimitOffsetPagination",
    "DEFAULT_FILTER_BACKENDS": [
        "django_filters.rest_framework.DjangoFilterBackend",
        "api.ordering.StableOrderingFilter",
    ],
    "DEFAULT_THROTTLE_CLASSES": ["api.throttling.ApiTokenRateThrottle"],
    "DEFAULT_SCHEMA_CLASS": "api.schema.PortalAutoSchema",
    "EXCEPTION_HANDLER": "api.exceptions.exception_handler",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
# Requests per token and time unit (second, minute, hour, day); browser sessions are exempt.
API_TOKEN_RATE = env.str("API_TOKEN_RATE", default="600/minute")
SPECTACULAR_SETTINGS = {
    "TITLE": "itportal API",
    "DESCRIPTION": (
        "REST API of the IT self-service portal: catalogue, requests, approvals, "
        "entitlements, provisioning jobs, controlling reports and API tokens. "
        "See docs/api.md."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAuthenticated"],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {
        "RequestStateEnum": "requests_app.choices.RequestState",
        "JobStateEnum": "provisioning.choices.JobState",
        "EntitlementStateEnum": "provisioning.choices.EntitlementState",
        "FieldTypeEnum": "catalogue.choices.FieldType",
        "ApproverKindEnum": "catalogue.choices.ApproverKind",
        "ApprovalStatusEnum": "requests_app.choices.ApprovalStatus",
        "EventKindEnum": "requests_app.choices.EventKind",
        "ActionKindEnum": "provisioning.choices.ActionKind",
    },
}

DJANGO_TABLES2_TEMPLATE = "tables/table.html"
# "stack": on small screens every row becomes a card, each value under its column's name
# (tables/table.html writes data-label), so no list scrolls sideways on a phone.
DJANGO_TABLES2_TABLE_ATTRS = {"class": "table stack"}

# Logs: one JSON object per line with request_id, task_id and order (itportal/logs.py).
logs.configure()
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"structured": logs.formatter(env.str("LOG_FORMAT", default="json"))},
    "filters": {"quiet_probes": {"()": "itportal.logs.QuietProbes"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "structured"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        # Logins, failures, logouts and lifted lock-outs; names and addresses, no passwords.
        "accounts.login": {"level": "INFO"},
        "django_structlog.middlewares.request": {"filters": ["quiet_probes"]},
    },
}
# Celery keeps the root logger (and so the JSON lines) and passes request_id and order in
# the headers of every task published while they are bound.
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
DJANGO_STRUCTLOG_CELERY_ENABLED = True
# Take X-Request-ID from the proxy (which must overwrite what a client sends, as
# deploy/haproxy/haproxy.cfg does), so proxy and portal lines share the id.
DJANGO_STRUCTLOG_TRUST_UPSTREAM_REQUEST_ID = env.bool("LOG_TRUST_REQUEST_ID", default=False)
