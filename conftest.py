"""Fixtures shared by every test: services must be reachable, a portfolio to work on."""

import os
import re
import socket
from collections.abc import Iterator
from urllib.parse import urlparse

import pytest

# Every API answer a test receives is checked against the OpenAPI schema (tests/openapi_check.py).
pytest_plugins = ["tests.openapi_check"]


def _reachable(url: str, default_port: int) -> bool:
    parsed = urlparse(url)
    try:
        with socket.create_connection((parsed.hostname or "127.0.0.1", parsed.port or default_port), timeout=2):
            return True
    except OSError:
        return False


def pytest_sessionstart(session: pytest.Session) -> None:
    """Fail at once, with a clear message, when PostgreSQL or Redis is down (never skip)."""
    from django.conf import settings

    db = settings.DATABASES["default"]
    if db["ENGINE"] != "django.db.backends.postgresql":
        pytest.exit("Tests run on PostgreSQL: set DATABASE_URL=postgres://… (make test does).", returncode=3)
    missing = []
    if not _reachable(f"postgres://{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}", 5432):
        missing.append(f"PostgreSQL at {db['HOST']}:{db['PORT']}")
    if not _reachable(redis_url(), 6379):
        missing.append(f"Redis at {redis_url()}")
    if missing:
        pytest.exit("Services down: " + ", ".join(missing) + " (.ci/run starts them).", returncode=3)


def redis_url() -> str:
    return os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")


@pytest.fixture(autouse=True)
def _cheap_password_hashing(request: pytest.FixtureRequest, settings) -> None:
    """Hash the test users' passwords with MD5: the factories make hundreds of users, and Django's
    PBKDF2 (a million rounds, ~0.3 s each here) would spend minutes of every run on them.

    Tests whose users sign in to a server in another process (`real_password_hashing`) keep the
    real hashers: that process, on the production settings, could not check an MD5 hash.
    """
    if request.node.get_closest_marker("real_password_hashing") is None:
        # First, so new hashes are cheap; the others still check hashes made before (module fixtures).
        settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher", *settings.PASSWORD_HASHERS]


@pytest.fixture(autouse=True)
def _every_subject_on_one_line() -> Iterator[None]:
    """Check every e-mail any test has the app send: a control or line break in a subject is a header injection."""
    yield
    from django.core import mail

    broken = [
        m.subject for m in getattr(mail, "outbox", []) if re.search(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]", m.subject)
    ]
    assert not broken, f"subjects with a control or line break: {broken!r}"


@pytest.fixture
def expensive_unthrottled(settings) -> None:
    """Lift the per-organization rate of bulk ingestion and report requests, for tests that send hundreds."""
    rates = {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], "expensive": "1000000/minute"}
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": rates}


# --- A portfolio to work on (a test module defines its own where it needs something else) -------


@pytest.fixture
def org():
    from projects.tests.factories import OrganizationFactory

    return OrganizationFactory()


@pytest.fixture
def project(org):
    from projects.tests.factories import ProjectFactory

    return ProjectFactory(organization=org)


@pytest.fixture
def viewer(org):
    from projects.models import Role
    from projects.tests.factories import member

    return member(org, Role.VIEWER)


@pytest.fixture
def contributor(org):
    from projects.models import Role
    from projects.tests.factories import member

    return member(org, Role.CONTRIBUTOR)


@pytest.fixture
def manager(org):
    from projects.models import Role
    from projects.tests.factories import member

    return member(org, Role.MANAGER)
