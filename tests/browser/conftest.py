"""Browser journeys: Playwright (sync API) driving Debian's Chromium against a live server.

Not part of the normal suite: collected only with ``-m browser`` or ``MKT_BROWSER=1`` (what
``make browser`` sets). Skipped, saying why, when playwright, Chromium or axe-core
(``.ci/fetch-axe``) is missing. Every page a journey opens is checked by axe-core (no serious or
critical violation) and saved as a PNG under ``MKT_BROWSER_ARTIFACTS/<journey>/``.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent.parent
CHROMIUM = Path(os.environ.get("MKT_CHROMIUM", "/usr/bin/chromium"))
AXE = ROOT / ".vendor-specs" / "axe.min.js"
ARTIFACTS = Path(os.environ.get("MKT_BROWSER_ARTIFACTS") or ROOT / "data/test/browser-artifacts")
PASSWORD = "correct horse battery"  # tests.factories.UserFactory's
BLOCKING = ("serious", "critical")

# Violations in Django admin's own markup, which our templates do not render: (rule, selector
# pattern). Django's admin/edit_inline/tabular.html labels a tabular inline's inputs by the
# column header only (no <label>, no aria-label), a known Django admin accessibility gap; the
# mapping rows (the only tabular inline our journeys open) inherit it.
_TABULAR_INPUT = r"^#id_mappings-(\d+|__prefix__)-"
AXE_EXCLUDED: tuple[tuple[str, str], ...] = (
    ("label", _TABULAR_INPUT),
    ("select-name", _TABULAR_INPUT),
    ("label-title-only", _TABULAR_INPUT),
)


def _enabled(config: pytest.Config) -> bool:
    return os.environ.get("MKT_BROWSER") == "1" or "browser" in (config.option.markexpr or "")


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """`make test` does not collect the journeys (they need Chromium and take minutes)."""
    if collection_path.suffix == ".py" and collection_path.name.startswith("test_"):
        return None if _enabled(config) else True
    return None


def _missing() -> str | None:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is not installed: make browser installs it (.[browser])"
    if not CHROMIUM.exists():
        return f"no Chromium at {CHROMIUM}: apt-get install chromium"
    if not AXE.exists():
        return f"axe-core is missing ({AXE}): run .ci/fetch-axe"
    return None


@pytest.fixture(scope="session")
def chromium() -> Iterator[object]:
    reason = _missing()
    if reason:
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    # Playwright's sync API keeps an asyncio loop on this thread; the test's ORM calls are
    # still synchronous (pytest-django's documented workaround for Playwright).
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=["--no-sandbox", "--disable-dev-shm-usage"]
        )
        yield browser
        browser.close()


class AccessibilityError(AssertionError):
    pass


AXE_PATH = "/__browser-tests__/axe.min.js"


def serve_axe(context, base_url: str) -> None:
    """axe-core answers at a same-origin address inside the browser only (never the server):
    the pages keep their Content-Security-Policy (``script-src 'self'``), which refuses the
    inline script ``add_script_tag(path=...)`` would add."""
    context.route(
        base_url + AXE_PATH,
        lambda route: route.fulfill(path=str(AXE), content_type="text/javascript"),
    )


def axe_violations(page, base_url: str) -> list[dict]:
    """axe-core's serious and critical violations on the page, less the excluded ones."""
    page.add_script_tag(url=base_url + AXE_PATH)
    result = page.evaluate("async () => await axe.run(document, {resultTypes: ['violations']})")
    found = []
    for violation in result["violations"]:
        if violation["impact"] not in BLOCKING:
            continue
        nodes = [
            node
            for node in violation["nodes"]
            if not any(
                rule == violation["id"] and any(re.search(pattern, str(t)) for t in node["target"])
                for rule, pattern in AXE_EXCLUDED
            )
        ]
        if nodes:
            found.append({**violation, "nodes": nodes})
    return found


def describe(violations: list[dict]) -> str:
    lines = []
    for violation in violations:
        targets = [" ".join(map(str, node["target"])) for node in violation["nodes"][:3]]
        lines.append(f"{violation['id']} ({violation['impact']}): {violation['help']} at {targets}")
    return "\n".join(lines)


class Journey:
    """One journey's browser context: ``step(name)`` checks the page with axe-core and saves a
    screenshot; ``login(user)`` signs in through the real login page once and keeps the
    storage state for any further context."""

    def __init__(self, browser, base_url: str, name: str):
        self.browser = browser
        self.base_url = base_url
        self.folder = ARTIFACTS / name
        self.folder.mkdir(parents=True, exist_ok=True)
        for old in [
            *self.folder.glob("*.png"),
            *self.folder.glob("*.axe.json"),
            *self.folder.glob("*.csv"),
        ]:
            old.unlink()
        self.steps = 0
        self.state: Path | None = None
        self.context = None
        self.page = None
        self.problems: list[str] = []

    def url(self, path: str) -> str:
        return self.base_url + path

    def _watch(self, page) -> None:
        page.on(
            "console",
            lambda message: (
                self.problems.append(f"{page.url}: {message.text}")
                if message.type == "error" and "Content Security Policy" in message.text
                else None
            ),
        )

    def login(self, user) -> None:
        context = self.browser.new_context()
        page = context.new_page()
        page.goto(self.url("/admin/login/?next=/admin/"))
        page.get_by_label("Username").fill(user.username)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Log in").click()
        page.wait_for_url(self.url("/admin/"))
        self.state = self.folder / "storage-state.json"
        context.storage_state(path=str(self.state))
        context.close()
        self.open_context()

    def open_context(self, **kwargs):
        if self.context is not None:
            self.context.close()
        self.context = self.browser.new_context(
            storage_state=str(self.state) if self.state else None,
            viewport={"width": 1366, "height": 900},
            **kwargs,
        )
        self.context.set_default_timeout(15_000)
        serve_axe(self.context, self.base_url)
        self.page = self.context.new_page()
        self._watch(self.page)
        return self.page

    def step(self, name: str) -> None:
        self.steps += 1
        slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
        self.page.screenshot(path=str(self.folder / f"{self.steps:02d}-{slug}.png"), full_page=True)
        assert not self.problems, "\n".join(self.problems)
        violations = axe_violations(self.page, self.base_url)
        # axe-core itself tries a few inline styles while it measures (refused by the policy,
        # harmlessly): what the page did was checked above.
        self.page.wait_for_timeout(100)
        self.problems.clear()
        if violations:
            (self.folder / f"{self.steps:02d}-{slug}.axe.json").write_text(
                json.dumps(violations, indent=2)
            )
            raise AccessibilityError(
                f"step {name!r} ({self.page.url}): axe-core found\n{describe(violations)}"
            )

    def close(self) -> None:
        if self.context is not None:
            self.context.close()
        if self.state and self.state.exists():
            self.state.unlink()  # a session cookie: not an artefact


@pytest.fixture
def journey(request, chromium, live_server) -> Iterator[Journey]:
    name = request.node.name.removeprefix("test_")
    made = Journey(chromium, live_server.url, name)
    yield made
    made.close()
