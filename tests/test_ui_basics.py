"""The UI's basics (issue 16): one date format, labels for codes, a favicon, the product's 404 under
`make run`, the project page on SQLite, and `make run` itself (the logins once, Ctrl-C ends with 0)."""

import datetime as dt
import importlib.util
import json
import os
import pty
import re
import select
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import pytest
from django.template import Context, Template
from django.utils import formats

from ops.tests.factories import RiskFactory
from projects.models import AuditEvent, Role
from projects.tests.factories import MembershipFactory, OrganizationFactory, UserFactory
from webhooks.models import EventType
from webhooks.services import webhook_endpoint_create, webhook_endpoint_secret_rotate

ROOT = Path(__file__).resolve().parent.parent
spec = importlib.util.spec_from_file_location("run_script", ROOT / "scripts" / "run.py")
run_script = importlib.util.module_from_spec(spec)
spec.loader.exec_module(run_script)


def test_django_displays_dates_in_the_one_format():
    """{{ value }} unfiltered, |date without a format and the admin read as the pages' `when` does."""
    day, moment = dt.date(2026, 12, 1), dt.datetime(2026, 12, 1, 10, 0)
    assert formats.date_format(day) == "1 Dec 2026"
    assert formats.date_format(moment, "DATETIME_FORMAT") == "1 Dec 2026, 10:00"
    assert formats.date_format(day, "SHORT_DATE_FORMAT") == "1 Dec 2026"
    assert Template("{{ day }} · {{ day|date }}").render(Context({"day": day})) == "1 Dec 2026 · 1 Dec 2026"
    # What date fields accept and render is unchanged.
    assert formats.get_format("DATE_INPUT_FORMATS")[0] == "%Y-%m-%d"


@pytest.mark.django_db
def test_webhook_secret_rotation_history_reads_the_date_for_people():
    org = OrganizationFactory(timezone="Europe/Paris")
    admin = UserFactory()
    MembershipFactory(user=admin, organization=org, role=Role.ADMIN)
    endpoint, _ = webhook_endpoint_create(
        organization=org, by=admin, url="https://hooks.example.com/x", events=[EventType.choices[0][0]]
    )
    webhook_endpoint_secret_rotate(endpoint=endpoint, by=admin)
    detail = AuditEvent.objects.filter(changes__has_key="secret").get().changes["secret"][1]
    assert re.fullmatch(r"rotated; the previous one signs until \d{1,2} [A-Z][a-z]{2} \d{4}, \d{2}:\d{2}", detail)


@pytest.mark.django_db
def test_risk_references_show_their_labels(client, org, project, viewer):
    risk = RiskFactory(project=project, nist_refs=["human_ai_configuration", "confabulation"], owasp_refs=["LLM09"])
    client.force_login(viewer)
    page = client.get(risk.get_absolute_url()).content.decode()
    assert "Human-AI configuration, Confabulation; LLM09 Misinformation" in page
    assert "human_ai_configuration" not in page


@pytest.mark.django_db
def test_favicon_answers_at_the_root_and_is_linked(client, org, viewer):
    response = client.get("/favicon.ico")
    assert response.status_code == 200
    assert b"".join(response.streaming_content)[:4] == b"\x00\x00\x01\x00"  # an ICO file
    client.force_login(viewer)
    page = client.get("/").content.decode()
    assert '<link rel="icon" href="/favicon.ico" sizes="48x48">' in page
    assert '<link rel="icon" href="/static/favicon.svg" type="image/svg+xml">' in page


@pytest.mark.django_db
def test_an_empty_organizations_dashboard_shows_the_first_steps(client):
    org = OrganizationFactory()
    admin, viewer = UserFactory(), UserFactory()
    MembershipFactory(user=admin, organization=org, role=Role.ADMIN)
    MembershipFactory(user=viewer, organization=org, role=Role.VIEWER)
    client.force_login(admin)
    page = client.get("/").content.decode()
    for step, link in (
        ("Add the first project", 'href="/projects/new/"'),
        ("Connect usage", 'href="/account/tokens/"'),
        ("Invite people", 'href="/settings/members/"'),
    ):
        assert step in page and link in page
    assert "docs/otlp.md" in page
    client.force_login(viewer)  # nothing to do but wait for a contributor
    page = client.get("/").content.decode()
    assert "Add the first project" not in page and "A contributor or manager can add the first one." in page


# Run in a process of its own: settings read the environment once, at start.
SQLITE_RUN = textwrap.dedent(
    """
    import datetime as dt, json, os
    from decimal import Decimal
    import django
    django.setup()
    from django.conf import settings
    from django.core.management import call_command
    from django.test import Client
    call_command("check")
    settings.MIGRATION_MODULES = {app: None for app in ("admin", "auth", "contenttypes", "sessions", "axes",
                                                        "projects", "ops", "webhooks")}
    call_command("migrate", run_syncdb=True, verbosity=0)
    from ops.tests.factories import BudgetFactory, CostEntryFactory
    from projects.models import Role
    from projects.tests.factories import MembershipFactory, OrganizationFactory, ProjectFactory, UserFactory
    org = OrganizationFactory()
    user = UserFactory()
    MembershipFactory(user=user, organization=org, role=Role.MANAGER)
    project = ProjectFactory(organization=org)
    today = dt.date.today()
    BudgetFactory(project=project, amount=Decimal("1000"), period_start=today.replace(day=1),
                  period_end=today + dt.timedelta(days=40))
    CostEntryFactory(project=project, amount=Decimal("120.25"), date=today)
    CostEntryFactory(project=project, amount=Decimal("0.10"), date=today)
    from ops.selectors.portfolio import project_cost_figures
    figures = project_cost_figures(project=project, as_of=today)
    # The weekly reports: their compiled statements bind the period's dates as SQLite's ORM writes them (text).
    from ops.models import Report
    from ops.selectors.reports import report_week
    from ops.services import report_build
    from ops.tests.factories import RiskFactory
    RiskFactory(project=project)
    start, end = report_week(today)
    built = {}
    for kind in ("status", "risk"):
        report = Report.objects.create(organization=org, kind=kind, period_start=start, period_end=end)
        built[kind] = report_build(report_id=report.pk).data
    client = Client(HTTP_HOST="127.0.0.1")
    client.force_login(user)
    missing = client.get("/no-such-page/")
    print(json.dumps({
        "engine": settings.DATABASES["default"]["ENGINE"],
        "debug": settings.DEBUG,
        "cookies_secure": settings.SESSION_COOKIE_SECURE,
        "ssl_redirect": settings.SECURE_SSL_REDIRECT,
        "pages": {path: client.get(path).status_code for path in (project.get_absolute_url(), "/", "/projects/")},
        "spend": str(figures.spend.amount),
        "budget_spend": str(figures.budgets.overall.spend),
        "reports": [built["status"]["totals"]["projects"], built["status"]["totals"]["spend_to_date"],
                    built["risk"]["totals"]["open"], built["risk"]["new"]["count"]],
        "missing": [missing.status_code, "Django tried these URL patterns" in missing.content.decode(),
                    "Page not found" in missing.content.decode()],
    }))
    """
)


def test_make_run_environment_on_sqlite_answers_the_project_page_and_the_products_404(tmp_path):
    """`make run`'s environment (DEBUG off, plain HTTP) on SQLite: pages answer, figures and reports exact, our 404."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("DJANGO_")}
    env = run_script.run_environment(environ, var_dir=tmp_path / "var") | {
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        "DJANGO_SETTINGS_MODULE": "tracker.settings",
        "PYTHONPATH": str(ROOT),
        "CELERY_BROKER_URL": "memory://",
    }
    assert (tmp_path / "var" / "secret-key").stat().st_mode & 0o077 == 0
    done = subprocess.run(
        [sys.executable, "-c", SQLITE_RUN], cwd=ROOT, env=env, capture_output=True, text=True, timeout=180
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["engine"] == "django.db.backends.sqlite3"
    assert (result["debug"], result["cookies_secure"], result["ssl_redirect"]) == (False, False, False)
    assert set(result["pages"].values()) == {200}, result["pages"]
    assert Decimal(result["spend"]) == Decimal(result["budget_spend"]) == Decimal("120.35")
    assert result["reports"] == [1, "120.35", 1, 1]  # the week's project, its spend, its open and new risk
    assert result["missing"] == [404, False, True]


def test_make_run_debug_is_asked_for_explicitly(tmp_path):
    asked = run_script.run_environment({"DJANGO_DEBUG": "true"}, var_dir=tmp_path)
    assert asked == {"DJANGO_DEBUG": "true"}  # Django's own development defaults apply
    assert not (tmp_path / "secret-key").exists()
    default = run_script.run_environment({}, var_dir=tmp_path)
    assert default["DJANGO_DEBUG"] == "false"
    assert run_script.run_environment({}, var_dir=tmp_path)["DJANGO_SECRET_KEY"] == default["DJANGO_SECRET_KEY"]


def test_make_run_banner_says_where_the_logins_are_without_printing_them(tmp_path):
    credentials = tmp_path / ".demo-credentials"
    assert "Demo logins" not in run_script.banner(credentials)
    credentials.write_text("demo-manager  s3cret-Pass-word  manager\n")
    banner = run_script.banner(credentials)
    assert "Demo logins: in .demo-credentials" in banner
    assert "s3cret" not in banner


def _in_terminal(command: list[str], cwd: Path, *, ready: Callable[[], bool], timeout: float = 60) -> tuple[int, str]:
    """Run `command` in a pseudo-terminal, press Ctrl-C once `ready()`; return its exit status and output."""
    pid, fd = pty.fork()
    if pid == 0:  # the child: the terminal's session leader, as a shell would start make
        os.chdir(cwd)
        os.execvp(command[0], command)
    out, pressed, end = b"", False, time.monotonic() + timeout
    while time.monotonic() < end:
        if select.select([fd], [], [], 0.1)[0]:
            try:
                out += os.read(fd, 65536)
            except OSError:  # the terminal closed: the command ended
                break
        if not pressed and ready():
            time.sleep(0.3)
            os.write(fd, b"\x03")
            pressed = True
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    return os.waitstatus_to_exitcode(status), out.decode(errors="replace")


def test_ctrl_c_under_make_stops_every_server_and_exits_0(tmp_path):
    """The recipe's way, with sleepers for servers: make hears no Ctrl-C, the script stops the three."""
    pids = tmp_path / "pids"
    driver = tmp_path / "driver.py"
    driver.write_text(
        textwrap.dedent(
            f"""
            import importlib.util, sys
            spec = importlib.util.spec_from_file_location("run_script", {str(ROOT / "scripts" / "run.py")!r})
            run = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(run)
            sleeper = [sys.executable, "-c", "import os, time; open({str(pids)!r}, 'a').write(f'{{os.getpid()}} '); "
                       "time.sleep(120)"]
            run.SERVERS = {{"web": sleeper, "worker": sleeper, "beat": sleeper}}
            with run.foreground():
                sys.exit(run.serve({{}}))
            """
        )
    )
    (tmp_path / "Makefile").write_text(f"run:\n\t@{sys.executable} {driver}\n")
    status, output = _in_terminal(
        ["make", "run"], tmp_path, ready=lambda: pids.exists() and len(pids.read_text().split()) == 3
    )
    assert status == 0, output
    assert "Error" not in output
    started = pids.read_text().split()
    assert len(started) == 3
    for pid in started:
        with pytest.raises(ProcessLookupError):
            os.kill(int(pid), 0)
