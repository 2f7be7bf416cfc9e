"""Headless Debian Chromium driven by Playwright, as the dashboard tests use it."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from playwright.sync_api import ConsoleMessage, Error, Page, Request, sync_playwright

from tests.conftest import ADMIN_KEY

CHROMIUM = Path("/usr/bin/chromium")
# Without the background-networking flags Chromium keeps trying to reach Google's hosts, which
# this closed network refuses (and slows every start).
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"]


class PageErrors:
    """JavaScript errors, failed requests and requests that left the machine (the dashboard must
    work offline: no CDN, no web fonts), collected for a final assertion."""

    LOCAL = ("http://127.0.0.1:", "http://localhost:", "data:", "blob:", "about:")

    def __init__(self, page: Page) -> None:
        self.messages: list[str] = []
        self.outside: list[str] = []

        def on_page_error(error: Error) -> None:
            self.messages.append(f"pageerror: {error}")

        def on_console(msg: ConsoleMessage) -> None:
            if msg.type == "error":
                self.messages.append(f"console: {msg.text}")

        def on_request(request: Request) -> None:
            if not request.url.startswith(self.LOCAL):
                self.outside.append(request.url)

        page.on("pageerror", on_page_error)
        page.on("console", on_console)
        page.on("request", on_request)

    def assert_none(self, allowed: tuple[str, ...] = ()) -> None:
        unexpected = [m for m in self.messages if not any(a in m for a in allowed)]
        assert not unexpected, "JavaScript errors:\n" + "\n".join(unexpected)
        assert not self.outside, f"the page asked for resources outside this service: {self.outside}"


@contextmanager
def browser_page(width: int = 1280, height: int = 900,
                 key: str | None = ADMIN_KEY) -> Iterator[tuple[Page, PageErrors]]:
    """A fresh page in a fresh browser profile, signed in with `key` (the dashboard's cookie, as
    the sign-in form leaves it; None: signed out); downloads allowed."""
    profile = tempfile.mkdtemp(prefix="vibetune-chromium-")
    try:
        with sync_playwright() as playwright:
            context = playwright.chromium.launch_persistent_context(
                profile, executable_path=str(CHROMIUM), headless=True, args=ARGS,
                viewport={"width": width, "height": height}, accept_downloads=True)
            try:
                if key is not None:
                    context.add_cookies([{"name": "vibetune_key", "value": key, "domain": host, "path": "/",
                                          "httpOnly": True, "sameSite": "Strict"}
                                         for host in ("127.0.0.1", "localhost")])
                page = context.pages[0] if context.pages else context.new_page()
                page.set_default_timeout(30_000)
                yield page, PageErrors(page)
            finally:
                context.close()
    finally:
        shutil.rmtree(profile, ignore_errors=True)


def stays_on_same_document(page: Page) -> None:
    """Mark the current document; `assert_not_reloaded` fails if the page was loaded again."""
    page.evaluate("window.__vibetuneMarker = 'same-document'")


def assert_not_reloaded(page: Page) -> None:
    assert page.evaluate("window.__vibetuneMarker") == "same-document", "the page was reloaded"


def sign_in_with_form(page: Page, url: str, key: str) -> None:
    """Open the dashboard signed out and sign in through its form."""
    page.goto(f"{url}/")
    page.fill("#f-key", key)
    page.click("#sign-in button[type=submit]")
    page.wait_for_selector("#sign-out")
