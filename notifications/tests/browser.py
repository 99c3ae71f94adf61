"""Browser fixtures: Playwright for Python driving the system Chromium, headless, against the
real admin served by pytest-django's ``live_server``.

``fixtures.py`` (the suite's pytest plugin, loaded by the root ``conftest.py``) star-imports
this module, so every test can ask for:

- ``browser`` (module scope): a headless Chromium. Tests that use it are skipped, with the
  reason, when there is no Chromium (``apt-get install chromium``) or no ``playwright``;
  under CI (``CI`` set) a missing browser fails them instead, so CI never skips them quietly.
- ``page``: a fresh page (cookies of its own) whose base URL is the live server, so
  ``page.goto("/admin/")`` works. The test fails if a static file answers 4xx/5xx, a script
  throws, or the Content-Security-Policy refuses something the page uses: an unstyled or
  broken admin is what a person would see.
- ``admin_credentials``: pytest-django's ``admin_user`` with a known password.
- ``admin_page``: ``page``, logged in through the real login form as that superuser.

Helpers: ``log_in(page, username, password)``. Tests put ``pytestmark = pytest.mark.browser``
at the top (``-m "not browser"`` leaves them out).

Django and Playwright's sync API: while Playwright runs, its asyncio loop counts as *running*
in the main thread (its greenlets switch away mid-``run_until_complete``), so Django's
async-safety check would refuse every ORM call from the test and from pytest-django's database
teardown. Nothing runs on that loop while test code runs, so the check is a false alarm here:
``DJANGO_ALLOW_ASYNC_UNSAFE`` is set for exactly as long as Playwright runs. That is why
``browser`` is module-scoped, not session-scoped: a session-wide Playwright would leave every
later test in the suite inside a "running" loop (no ORM without the override, no
``asyncio.run``). Keep browser tests in modules of their own (``test_browser_*.py``).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import pytest

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

__all__ = ["admin_credentials", "admin_page", "browser", "log_in", "page"]

# The live server (only browser tests use it) binds 127.0.0.1, not every address "localhost" has.
os.environ.setdefault("DJANGO_LIVE_TEST_SERVER_ADDRESS", "127.0.0.1")

NO_CHROMIUM = "no Chromium: install the Debian package chromium (`apt-get install chromium`)"
# Root needs --no-sandbox. The rest keep Chromium from calling home: the network here is
# closed, and its background connections would only be refused, many at a time.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TIMEOUT_MS = 15_000  # clicks, fills and page loads
EXPECT_TIMEOUT_MS = 10_000  # expect(...) assertions
ADMIN_PASSWORD = "browser-test-Pa55"


def find_chromium() -> str | None:
    """``$CHROMIUM``, else ``chromium`` on PATH, else Debian's /usr/bin/chromium."""
    for candidate in (os.environ.get("CHROMIUM"), shutil.which("chromium"), "/usr/bin/chromium"):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


def launch_chromium(playwright, executable: str) -> Browser:
    """Headless system Chromium; Playwright gives it a fresh temporary profile and removes it."""
    return playwright.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_ARGS)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    executable = find_chromium()
    if executable is None:
        if os.environ.get("CI"):
            pytest.fail(NO_CHROMIUM + "; CI must run the browser tests")
        pytest.skip(NO_CHROMIUM)
    sync_api.expect.set_options(timeout=EXPECT_TIMEOUT_MS)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        with sync_api.sync_playwright() as playwright:
            chromium = launch_chromium(playwright, executable)
            try:
                yield chromium
            finally:
                chromium.close()


@pytest.fixture
def page(browser: Browser, live_server) -> Iterator[Page]:
    from django.conf import settings

    context = browser.new_context(
        base_url=live_server.url,
        viewport={"width": 1280, "height": 900},
        locale="en-US",
        timezone_id="UTC",
    )
    context.set_default_timeout(TIMEOUT_MS)
    new_page = context.new_page()
    static_path = urlsplit(settings.STATIC_URL).path
    static_path = static_path if static_path.startswith("/") else "/" + static_path
    problems: list[str] = []
    new_page.on("pageerror", lambda error: problems.append(f"script error: {error}"))
    # What the Content-Security-Policy refused: a page that needs it relaxed is a bug.
    new_page.on(
        "console",
        lambda message: (
            problems.append(f"CSP: {message.text}")
            if message.type == "error" and "Content Security Policy" in message.text
            else None
        ),
    )
    new_page.on(
        "response",
        lambda response: (
            problems.append(f"{response.status} {response.url}")
            if response.status >= 400 and urlsplit(response.url).path.startswith(static_path)
            else None
        ),
    )
    yield new_page
    context.close()
    # A test may expect the policy to refuse something off-site (ReDoc's logo from its CDN).
    expected = getattr(new_page, "expected_csp_refusals", ())
    problems = [p for p in problems if not (p.startswith("CSP:") and any(e in p for e in expected))]
    if problems:
        pytest.fail("the page did not load cleanly:\n" + "\n".join(problems))


@pytest.fixture
def admin_credentials(admin_user) -> tuple[str, str]:
    """(username, password) of pytest-django's ``admin_user``, a superuser made for the test."""
    admin_user.set_password(ADMIN_PASSWORD)
    admin_user.save(update_fields=["password"])
    return admin_user.get_username(), ADMIN_PASSWORD


def log_in(page: Page, username: str, password: str) -> None:
    """Fill in and submit the admin's login form, as a person would."""
    page.goto("/admin/login/?next=/admin/")
    page.get_by_label("Username:").fill(username)
    page.get_by_label("Password:").fill(password)
    page.get_by_role("button", name="Log in").click()


@pytest.fixture
def admin_page(page: Page, admin_credentials: tuple[str, str]) -> Page:
    from playwright.sync_api import expect

    username, password = admin_credentials
    log_in(page, username, password)
    expect(page.locator("#user-tools")).to_contain_text(f"Welcome, {username}")
    return page
