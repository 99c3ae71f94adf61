"""The API's documentation pages in Chromium under the service's Content-Security-Policy:
Swagger UI and ReDoc render the operations, and the browser refuses nothing they need (the
``page`` fixture fails a test on any CSP refusal or script error)."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.browser
expect = pytest.importorskip("playwright.sync_api").expect


def test_swagger_ui_renders_the_operations_under_the_csp(page):
    response = page.goto("/api/v1/docs/")
    assert "script-src 'self'" in response.headers["content-security-policy"]
    expect(page.locator(".opblock-summary-path").first).to_be_visible()
    expect(page.get_by_text("/api/v1/users/{id}/contact/invite")).to_be_visible()


def test_redoc_renders_the_operations_under_the_csp(page):
    # ReDoc's footer always asks its CDN for a logo: the policy refuses it (nothing leaves).
    page.expected_csp_refusals = ("'https://cdn.redoc.ly/",)
    response = page.goto("/api/v1/redoc/")
    assert "script-src 'self'" in response.headers["content-security-policy"]
    expect(page.get_by_text("notifications_batch").first).to_be_attached(timeout=30_000)
