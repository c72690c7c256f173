"""A real headless Chromium for the pages' tests, with every request that would leave the
machine blocked and every failure written down; screenshots for docs/."""

import shutil
from urllib.parse import urlparse

import pytest
from conftest import ROOT, Server

playwright = pytest.importorskip("playwright.sync_api", reason="make test installs playwright")
ARTIFACTS = ROOT / "tests" / "artifacts"
DOCS = ROOT / "docs"


class Watched:
    """A page whose failures are all written down; only loopback (and file:) may be reached."""

    def __init__(self, browser, allow_file: bool = False, viewport: tuple[int, int] = (1400, 900),
                 **context) -> None:
        # `context`: more of the browser context's options (a phone's geolocation, say)
        self.context = browser.new_context(viewport={"width": viewport[0], "height": viewport[1]}, **context)
        self.page = self.context.new_page()
        self.blocked, self.failed, self.errors, self.dialogs = [], [], [], []
        self.context.route("**/*", self._route(allow_file))
        self.page.on("requestfailed", lambda r: self.failed.append(f"{r.url} {r.failure}"))
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("dialog", lambda d: (self.dialogs.append(d.message), d.dismiss()))

    def _route(self, allow_file: bool):
        def handle(route):
            url = urlparse(route.request.url)
            local = url.scheme in ("data", "blob") or (url.scheme == "file" and allow_file) or \
                url.hostname in ("127.0.0.1", "localhost")
            if local:
                route.continue_()
            else:
                self.blocked.append(route.request.url)
                route.abort()
        return handle

    def clean(self) -> None:
        assert self.blocked == [], f"requests left the machine: {self.blocked[:5]}"
        assert self.failed == [], f"failed requests: {self.failed[:5]}"
        assert self.errors == [], f"console errors: {self.errors[:5]}"
        assert self.dialogs == [], f"a dialog opened: {self.dialogs}"

    def close(self) -> None:
        self.context.close()


def shot(page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / name))
    DOCS.mkdir(exist_ok=True)
    shutil.copyfile(ARTIFACTS / name, DOCS / name)


def login(watched: Watched, server: Server, key: str, page: str) -> None:
    watched.page.goto(f"{server.url}/login?key={key}&next={page}")
    watched.page.wait_for_load_state("networkidle")


