"""Production settings (DJANGO_DEBUG=false), each checked in a fresh process with the environment of a deployment."""

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

from conftest import redis_url

ROOT = Path(__file__).resolve().parent.parent

# Variables a developer's shell or CI may carry that would change what these processes see.
_APP_VARIABLES = ("DJANGO_", "DATABASE_URL", "CELERY_", "CACHE_URL", "LOG_FORMAT", "METRICS_", "PROMETHEUS_")


def _env(**overrides: str) -> dict[str, str]:
    base = {key: value for key, value in os.environ.items() if not key.startswith(_APP_VARIABLES)}
    base.update(DJANGO_SETTINGS_MODULE="tracker.settings", DATABASE_URL=os.environ["DATABASE_URL"])
    return {**base, **overrides}


def _production(**overrides: str) -> dict[str, str]:
    production = {
        "DJANGO_DEBUG": "false",
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
        "DJANGO_ALLOWED_HOSTS": "tracker.example.com",
        "DJANGO_CSRF_TRUSTED_ORIGINS": "https://tracker.example.com",
    }
    return _env(**{**production, **overrides})


def _python(script: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


def _settings(env: dict[str, str], *names: str) -> dict:
    script = (
        "import django, json; django.setup(); from django.conf import settings; "
        f"print(json.dumps({{n: getattr(settings, n) for n in {list(names)!r}}}, default=str))"
    )
    done = _python(script, env)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_production_refuses_to_start_without_a_secret_key():
    env = _production()
    del env["DJANGO_SECRET_KEY"]

    done = _python("import django; django.setup()", env)

    assert done.returncode != 0
    assert "ImproperlyConfigured: DJANGO_DEBUG is false, so DJANGO_SECRET_KEY must be set" in done.stderr


def test_production_refuses_to_start_without_allowed_hosts():
    env = _production(DJANGO_ALLOWED_HOSTS="")

    done = _python("import django; django.setup()", env)

    assert done.returncode != 0
    assert "so DJANGO_ALLOWED_HOSTS must be set" in done.stderr
    assert "DJANGO_SECRET_KEY" not in done.stderr


def test_check_deploy_reports_no_warning_with_production_settings():
    done = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=_production(),
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert done.returncode == 0, done.stdout + done.stderr
    assert "System check identified no issues (0 silenced)." in done.stdout
    assert "WARNING" not in done.stdout + done.stderr


def test_production_hardens_cookies_transport_and_static_files():
    values = _settings(
        _production(),
        "DEBUG",
        "SESSION_COOKIE_SECURE",
        "SESSION_COOKIE_HTTPONLY",
        "CSRF_COOKIE_SECURE",
        "CSRF_COOKIE_HTTPONLY",
        "SECURE_HSTS_SECONDS",
        "SECURE_HSTS_INCLUDE_SUBDOMAINS",
        "SECURE_PROXY_SSL_HEADER",
        "SECURE_SSL_REDIRECT",
        "CSRF_TRUSTED_ORIGINS",
        "STORAGES",
        "DATABASES",
    )

    assert values["DEBUG"] is False
    assert values["SESSION_COOKIE_SECURE"] and values["SESSION_COOKIE_HTTPONLY"]
    assert values["CSRF_COOKIE_SECURE"] and values["CSRF_COOKIE_HTTPONLY"]
    assert values["SECURE_HSTS_SECONDS"] == 31536000
    assert values["SECURE_HSTS_INCLUDE_SUBDOMAINS"] is True
    assert values["SECURE_PROXY_SSL_HEADER"] == ["HTTP_X_FORWARDED_PROTO", "https"]
    assert values["SECURE_SSL_REDIRECT"] is True
    assert values["CSRF_TRUSTED_ORIGINS"] == ["https://tracker.example.com"]
    assert values["STORAGES"]["staticfiles"]["BACKEND"] == "whitenoise.storage.CompressedManifestStaticFilesStorage"
    assert values["DATABASES"]["default"]["CONN_MAX_AGE"] == 60
    assert values["DATABASES"]["default"]["CONN_HEALTH_CHECKS"] is True


def test_development_defaults_stay_relaxed_for_make_run():
    env = _env()
    del env["DATABASE_URL"]

    values = _settings(env, "DEBUG", "SECURE_SSL_REDIRECT", "SESSION_COOKIE_SECURE", "SECRET_KEY", "DATABASES")

    assert values["DEBUG"] is True
    assert values["SECURE_SSL_REDIRECT"] is False
    assert values["SESSION_COOKIE_SECURE"] is False
    assert values["SECRET_KEY"]
    assert values["DATABASES"]["default"]["ENGINE"] == "django.db.backends.sqlite3"


def test_cache_lives_on_redis_when_cache_url_is_set():
    script = (
        "import django, json; django.setup(); from django.core.cache import caches; import redis, os; "
        "cache = caches['default']; "
        "cache.set('prod-settings-probe', 'shared', 30); "
        "raw = redis.Redis.from_url(os.environ['CACHE_URL']); "
        "print(json.dumps([type(cache).__name__, cache.get('prod-settings-probe'), "
        "len(raw.keys('*prod-settings-probe'))])); cache.delete('prod-settings-probe')"
    )

    done = _python(script, _production(CACHE_URL=redis_url()))

    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1]) == ["RedisCache", "shared", 1]


def test_https_redirect_spares_probes_and_honours_the_proxy_header():
    script = (
        "import django, json; django.setup(); from django.test import Client; c = Client(); "
        "h = c.get('/healthz', HTTP_HOST='10.0.0.7:8000'); "
        "plain = c.get('/admin/', HTTP_HOST='tracker.example.com'); "
        "proxied = c.get('/admin/', HTTP_HOST='tracker.example.com', HTTP_X_FORWARDED_PROTO='https'); "
        "print(json.dumps([h.status_code, plain.status_code, plain.get('Location'), proxied.status_code, "
        "proxied.get('Strict-Transport-Security')]))"
    )

    done = _python(script, _production())

    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1]) == [
        200,
        301,
        "https://tracker.example.com/admin/",
        302,
        "max-age=31536000; includeSubDomains; preload",
    ]


def test_an_unknown_log_format_is_refused():
    done = _python("import django; django.setup()", _env(LOG_FORMAT="xml"))

    assert done.returncode != 0
    assert "LOG_FORMAT must be json or text, not 'xml'" in done.stderr


def test_readyz_works_on_the_embedded_defaults_of_make_run(tmp_path):
    """SQLite and the filesystem broker: readiness is 200 once migrated, the broker being its queue folder."""
    env = _env(DATABASE_URL=f"sqlite:///{tmp_path / 'embedded.sqlite3'}")
    migrate = subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert migrate.returncode == 0, migrate.stderr
    script = (
        "import django; django.setup(); from django.conf import settings; from django.test import Client; "
        "r = Client().get('/readyz'); "
        "print(settings.CELERY_BROKER_URL); print(r.status_code); print(r.content.decode())"
    )

    done = _python(script, env)

    assert done.returncode == 0, done.stderr
    broker, status, body = done.stdout.strip().splitlines()[-3:]
    assert broker == "filesystem://"
    assert status == "200"
    assert json.loads(body)["checks"] == {"database": "ok", "migrations": "ok", "broker": "ok"}
