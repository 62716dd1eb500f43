"""Locust workload of `bench.load`: signed-in web pages mixed with API writes, no think time.

Each simulated client signs in once through the web form (its own session), then loops over the
dashboard, the project list, a project page, a status update and a bulk cost ingest of 50–100 rows
(API, its own token). Clients wait for one another to be signed in: the measured window (`seconds`)
starts then, with the statistics reset, so it holds only the mixed workload; the sign-in figures are
reported apart. At the end the figures go to the JSON file `summary`.

Everything comes from the JSON file named by LOAD_CONFIG, written by `bench.load`: `logins`
[[username, password]…], `tokens` [key…], `projects` [id…], `clients`, `seconds`, `summary` (a path).
Run through `python -m bench load`. The leading underscore keeps `python -m bench` from taking this
file for a benchmark module (it has no `run()`, and importing locust patches the process with gevent).
"""

import datetime as dt
import itertools
import json
import os
import random
import re
import time
import uuid
from pathlib import Path

import gevent
from gevent.event import Event
from locust import HttpUser, constant, events, task

CONFIG = json.loads(Path(os.environ["LOAD_CONFIG"]).read_text())
CSRF_INPUT = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')
CATEGORIES = ["inference", "storage", "training", "fine_tuning", "data_labeling", "licensing", "personnel", "other"]
RUN = uuid.uuid4().hex[:8]  # external ids stay unique if the same database is loaded again
_slots = itertools.count()
_signed_in = Event()
_state: dict = {"attempts": 0, "signin": None, "window_started": None}


def _figures(entry) -> dict:
    return {
        "requests": entry.num_requests,
        "failures": entry.num_failures,
        "p50_ms": entry.get_response_time_percentile(0.5) if entry.num_requests else None,
        "p95_ms": entry.get_response_time_percentile(0.95) if entry.num_requests else None,
        "p99_ms": entry.get_response_time_percentile(0.99) if entry.num_requests else None,
        "max_ms": round(entry.max_response_time) if entry.num_requests else None,
    }


def _failures(stats) -> list[dict]:
    return [{"endpoint": e.name, "error": str(e.error), "occurrences": e.occurrences} for e in stats.errors.values()]


def _window_start(environment) -> None:
    """Once every client has tried to sign in: keep the sign-in figures, reset, run for `seconds`."""
    stats = environment.stats
    _state["signin"] = {
        "seconds": round(time.monotonic() - _state["started"], 1),
        "endpoints": {e.name: _figures(e) for e in stats.entries.values()},
        "failures": _failures(stats),
        "exceptions": len(environment.runner.exceptions),
    }
    stats.reset_all()
    _state["window_started"] = time.monotonic()
    gevent.spawn_later(CONFIG["seconds"], environment.runner.quit)
    _signed_in.set()


@events.test_start.add_listener
def _test_start(environment, **kwargs) -> None:
    _state["started"] = time.monotonic()


@events.quitting.add_listener
def _write_summary(environment, **kwargs) -> None:
    stats = environment.stats
    started = _state["window_started"]
    summary = {
        "measured": started is not None,
        "seconds": round(time.monotonic() - started, 1) if started else None,
        "signin": _state["signin"],
        "endpoints": {e.name: _figures(e) for e in sorted(stats.entries.values(), key=lambda e: e.name)},
        "total": _figures(stats.total),
        "failures": _failures(stats),
        "exceptions": [
            {"error": e["msg"], "occurrences": e["count"], "traceback": e["traceback"]}
            for e in environment.runner.exceptions.values()
        ],
    }
    Path(CONFIG["summary"]).write_text(json.dumps(summary, indent=2))


class TrackerUser(HttpUser):
    wait_time = constant(0)

    def on_start(self) -> None:
        slot = next(_slots)
        self.slot = slot
        self.batches = itertools.count()
        self.rng = random.Random(slot)
        self.api_headers = {"Authorization": f"Bearer {CONFIG['tokens'][slot % len(CONFIG['tokens'])]}"}
        self.web_headers: dict[str, str] = {}
        try:
            self._sign_in(*CONFIG["logins"][slot % len(CONFIG["logins"])])
        finally:
            _state["attempts"] += 1
            if _state["attempts"] == CONFIG["clients"]:
                _window_start(self.environment)
        _signed_in.wait()

    def _sign_in(self, username: str, password: str) -> None:
        # Production cookies are Secure and this client speaks plain HTTP to gunicorn (TLS ends at a
        # proxy in production), so requests' jar would never send them back: carry them in a header.
        with self.client.get("/accounts/login/", name="sign-in form", catch_response=True) as page:
            token = CSRF_INPUT.search(page.text)
            csrf_cookie = page.cookies.get("csrftoken")
            if page.status_code != 200 or not (token and csrf_cookie):
                page.failure(f"no CSRF token on the sign-in page ({page.status_code})")
                return
        with self.client.post(
            "/accounts/login/",
            data={"username": username, "password": password, "csrfmiddlewaretoken": token.group(1), "next": "/"},
            headers={"Cookie": f"csrftoken={csrf_cookie}"},
            allow_redirects=False,
            name="sign-in",
            catch_response=True,
        ) as response:
            session = response.cookies.get("sessionid")
            if response.status_code != 302 or not session:
                # Left signed out: its page requests then fail too (302 to the sign-in page).
                response.failure(f"sign-in as {username} refused ({response.status_code})")
                return
        self.web_headers = {"Cookie": f"sessionid={session}"}

    def _page(self, path: str, name: str) -> None:
        # A lost session would answer a 302 to the sign-in page: count it as the failure it is.
        with self.client.get(
            path, headers=self.web_headers, allow_redirects=False, name=name, catch_response=True
        ) as response:
            if response.status_code != 200:
                response.failure(f"{response.status_code} {response.headers.get('Location', '')}")

    @task(3)
    def dashboard(self) -> None:
        self._page("/", "dashboard")

    @task(3)
    def project_list(self) -> None:
        self._page("/projects/?sort=-spend", "project list")

    @task(3)
    def project_page(self) -> None:
        self._page(f"/projects/{self.rng.choice(CONFIG['projects'])}/", "project page")

    @task(2)
    def status_update(self) -> None:
        # Yesterday: never "in the future" whatever the organization's time zone.
        body = {
            "project": self.rng.choice(CONFIG["projects"]),
            "date": (dt.date.today() - dt.timedelta(days=1)).isoformat(),
            "health": self.rng.choice(["green", "amber", "red"]),
            "progress": self.rng.randint(0, 100),
            "summary": "Load test: weekly status.",
        }
        self.client.post("/api/v1/status-updates/", json=body, headers=self.api_headers, name="status update (API)")

    @task(1)
    def bulk_costs(self) -> None:
        batch = next(self.batches)
        today = dt.date.today()
        entries = [
            {
                "project": self.rng.choice(CONFIG["projects"]),
                "date": (today - dt.timedelta(days=self.rng.randint(1, 60))).isoformat(),
                "category": self.rng.choice(CATEGORIES),
                "amount": f"{self.rng.uniform(1, 500):.2f}",
                "external_id": f"load-{RUN}-{self.slot}-{batch}-{row}",
            }
            for row in range(self.rng.randint(50, 100))
        ]
        with self.client.post(
            "/api/v1/costs/bulk/",
            json={"entries": entries},
            headers=self.api_headers,
            name="bulk costs (API)",
            catch_response=True,
        ) as response:
            # Every external id is new: anything but 201 with all rows created is an error.
            if response.status_code != 201 or response.json().get("created") != len(entries):
                response.failure(f"{response.status_code} {response.text[:200]}")
