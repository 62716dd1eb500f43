"""Browser fixtures: Debian's Chromium driven by Playwright against pytest-django's live server."""

import os
from pathlib import Path

import pytest

# Playwright's sync API runs an event loop in this thread; Django would otherwise refuse ORM calls.
os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
ROOT = Path(__file__).resolve().parent.parent
SCREENSHOTS = ROOT / "screenshots"
# axe-core, pinned in package.json (`make test` runs `npm ci` first).
AXE_SOURCE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
LAPTOP = {"width": 1366, "height": 768}
PHONE = {"width": 390, "height": 844}


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser, live_server):
    """A fresh browser tab at laptop size; fails the test on any console error (e.g. a CSP violation)."""
    context = browser.new_context(viewport=LAPTOP, base_url=live_server.url)
    page = context.new_page()
    page.set_default_timeout(10_000)
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    yield page
    context.close()
    assert not errors, f"Browser console errors: {errors}"


@pytest.fixture
def screenshot():
    """Save a full-page screenshot of `page` at laptop and phone sizes under screenshots/."""
    SCREENSHOTS.mkdir(exist_ok=True)

    def take(page, name: str) -> None:
        for label, size in (("laptop", LAPTOP), ("phone", PHONE)):
            page.set_viewport_size(size)
            page.wait_for_timeout(150)
            page.screenshot(path=SCREENSHOTS / f"{name}-{label}.png", full_page=True)
        page.set_viewport_size(LAPTOP)

    return take


@pytest.fixture(scope="session")
def axe():
    """`axe(page)` opens every collapsible panel, runs axe-core in the page and returns its violations.

    Each violation is reduced to (rule id, impact, the first offending elements) so a failing
    assertion says what to fix. The script is evaluated over the DevTools protocol, which the
    page's Content-Security-Policy does not govern.
    """
    source = AXE_SOURCE.read_text()

    def run(page) -> list[tuple[str, str, list]]:
        page.evaluate("document.querySelectorAll('details').forEach(d => { d.open = true; })")
        if not page.evaluate("typeof window.axe !== 'undefined'"):
            page.evaluate(source)
        return page.evaluate(
            """async () => (await axe.run(document, {resultTypes: ["violations"]})).violations
                 .map(v => [v.id, v.impact, v.nodes.slice(0, 3).map(n => n.target.join(" "))])"""
        )

    return run
