"""Browser tests: Debian's Chromium driven by Playwright (sync API) against pytest-django's
live server, with decisions settled by the session's real Celery worker.

Playwright's sync API keeps an event loop running in the test's thread, and Django
refuses ORM calls from a thread with a running loop. The browser therefore lives for one
test (a function-scoped fixture, torn down before the ledger check and the flush at the
test's end), and the test bodies talk to the app through the pages only.
"""

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, sync_playwright

from tests.e2e.browser import CHROMIUM, CHROMIUM_ARGS, SCREENSHOTS, Camera, Person

E2E_DIR = Path(__file__).resolve().parent


def pytest_collection_modifyitems(config, items):
    """No Chromium, no browser tests: skip every test of this folder, saying why."""
    if CHROMIUM.exists():
        return
    skip = pytest.mark.skip(
        reason=f"{CHROMIUM} is missing: install Debian's chromium (apt-get install chromium) to run tests/e2e"
    )
    for item in items:
        if E2E_DIR in Path(str(item.path)).parents:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def screenshots_dir() -> Path:
    """var/screenshots/{desktop,phone}/, emptied of the previous run's pictures."""
    for size in ("desktop", "phone"):
        folder = SCREENSHOTS / size
        folder.mkdir(parents=True, exist_ok=True)
        for old in folder.glob("*.png"):
            old.unlink()
    return SCREENSHOTS


@pytest.fixture
def browser(live_server, celery_worker_process) -> Iterator[Browser]:
    """Chromium for one test (see this module's docstring for why not for the session)."""
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def camera(browser, screenshots_dir) -> Iterator[Callable[..., Camera]]:
    """`camera("failed")`: a Camera whose files are named failed-<name>.png."""
    cameras: list[Camera] = []

    def make(story: str = "") -> Camera:
        cameras.append(Camera(browser, screenshots_dir, story))
        return cameras[-1]

    yield make
    for one in cameras:
        one.close()


@pytest.fixture
def suffix() -> str:
    """Usernames unique across the session (the worker outlives each test's database)."""
    return str(time.monotonic_ns())[-7:]


@pytest.fixture
def person(browser, live_server, camera, suffix) -> Iterator[Callable[..., Person]]:
    """`person("alice", "failed")`: alice<suffix> in a new browser context, her pages
    saved by the story's camera."""
    people: list[Person] = []
    cameras: dict[str, Camera] = {}  # one per story, shared by its people

    def make(name: str, story: str = "") -> Person:
        if story not in cameras:
            cameras[story] = camera(story)
        people.append(Person(browser, live_server.url, f"{name}{suffix}", cameras[story]))
        return people[-1]

    yield make
    for someone in people:
        someone.close()
