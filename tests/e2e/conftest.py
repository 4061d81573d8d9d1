"""Browser tests: headless Debian chromium driven by Playwright (sync API) against pytest-django's live_server.

One browser per module, a fresh context + page per test; every test leaves a screenshot under
test-artifacts/screenshots/<test name>.png (git-ignored), also when it fails.
"""

import os
import re
import shutil
import warnings
from pathlib import Path

import pytest
from playwright.sync_api import Error as PlaywrightError

from tests.conftest import need_service

PASSWORD = "pw-for-tests-1"
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
# Playwright's default for every expect(); htmx swaps take milliseconds, a slow CI machine more.
EXPECT_TIMEOUT_MS = 10_000


def chromium_path() -> str | None:
    found = shutil.which("chromium")
    if found:
        return found
    return "/usr/bin/chromium" if os.access("/usr/bin/chromium", os.X_OK) else None


@pytest.fixture(scope="module")
def browser(django_db_setup):
    path = chromium_path()
    if path is None:
        need_service("chromium is not installed")
    from django.db import connections
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=EXPECT_TIMEOUT_MS)
    # While Playwright's sync API is alive it marks its event loop as running in this thread, and Django's
    # connections (an asgiref Local, thread-critical) then come from a context-local store: the test sees
    # new connection objects; close them before the loop stops.
    with pytest.MonkeyPatch.context() as env, sync_playwright() as p:
        # With that loop "running", the test's own ORM calls (making data, checking the database) would
        # raise SynchronousOnlyOperation. Set only while the browser runs: subprocesses started by other
        # tests (manage.py check --deploy) must not inherit it.
        env.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        browser = p.chromium.launch(executable_path=path, headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()
            connections.close_all()


@pytest.fixture
def page(request, browser, live_server):
    """A fresh context and page; a screenshot at the end of the test (pass or fail).

    The browser asks for English (Accept-Language: en-US) so assertions on UI text are stable; Chinese
    is reached through the language switcher. Depends on live_server so the screenshot is taken while
    the server and the data are still there.
    """
    context = browser.new_context(
        locale="en-US", viewport={"width": 1400, "height": 900}, base_url=live_server.url
    )
    context.set_default_timeout(EXPECT_TIMEOUT_MS)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.js_errors = errors
    yield page
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    name = re.sub(r"[^\w.-]+", "_", request.node.name)
    try:
        page.evaluate("window.scrollTo(0, 0)")  # a sticky navbar drawn mid-page otherwise
        page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)
    except PlaywrightError as exc:  # a crashed page must not hide the test's own result
        warnings.warn(f"no screenshot for {request.node.nodeid}: {exc}", stacklevel=1)
    finally:
        context.close()


@pytest.fixture
def login(page):
    """login(username) signs in through the real login form and waits for the home page."""
    from playwright.sync_api import expect

    def _login(username: str, password: str = PASSWORD):
        page.goto("/accounts/login/")
        page.fill("#id_username", username)
        page.fill("#id_password", password)
        page.locator("[data-testid=login-form] button[type=submit]").click()
        expect(page.locator("[data-testid=user-menu]")).to_be_visible()
        page.wait_for_load_state("load")
        return page

    return _login


@pytest.fixture
def assert_static_loaded(page):
    """Fails when Bootstrap's CSS or htmx did not load (static files not served by the live server)."""

    def _check():
        page.wait_for_load_state("load")
        assert page.evaluate("typeof window.htmx") == "object", "htmx did not load"
        assert page.evaluate("typeof window.bootstrap") == "object", "bootstrap.bundle.js did not load"
        # Bootstrap's reboot sets the body font stack; an unstyled page keeps the browser default.
        family = page.evaluate("getComputedStyle(document.body).fontFamily")
        assert "system-ui" in family or "apple-system" in family, f"bootstrap.css did not load ({family})"

    return _check
