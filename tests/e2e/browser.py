"""What the browser tests are made of: Chromium's launch options, the screen sizes, a
Camera that saves every page at both sizes, and a Person clicking through the pages.

Every page a story visits is saved as a full-page screenshot twice, under
var/screenshots/desktop/ (1366x900) and var/screenshots/phone/ (390x844, a mobile
browser at 2x). The phone copy is taken by a phone context that gets the desktop page's
cookies and loads the same URL, answered with the desktop page's current document: the
session, the language and even one-shot messages are the desktop page's.
"""

import re
from pathlib import Path

from playwright.sync_api import Browser, BrowserContext, Page, expect

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "var" / "screenshots"
DESKTOP = {"viewport": {"width": 1366, "height": 900}}
PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True, "device_scale_factor": 2}
PASSWORD = "follow-the-rabbit-42"
TIMEOUT_MS = 10_000


def cash(text: str) -> int:
    """'12,500 cash' -> 12500."""
    digits = re.sub(r"[^\d-]", "", text)
    assert digits, f"no amount in {text!r}"
    return int(digits)


class Camera:
    """`camera(page, "05-mission")` saves the page at both sizes, named after the story
    (`failed-05-mission.png` for the story "failed"). One phone context per camera."""

    def __init__(self, browser: Browser, folder: Path, story: str):
        self.browser = browser
        self.folder = folder
        self.prefix = f"{story}-" if story else ""
        self._phone: BrowserContext | None = None
        self._phone_page: Page | None = None

    def __call__(self, page: Page, name: str) -> None:
        filename = f"{self.prefix}{name}.png"
        page.wait_for_load_state("load")
        page.screenshot(path=self.folder / "desktop" / filename, full_page=True)
        if self._phone is None:
            self._phone = self.browser.new_context(**PHONE)
            self._phone.set_default_timeout(TIMEOUT_MS)
            self._phone_page = self._phone.new_page()
        self._phone.clear_cookies()
        self._phone.add_cookies(page.context.cookies())
        # The same URL, answered with the desktop page's document as it is now: one-shot
        # flash messages and live (htmx) parts look the same; styles and scripts load as usual.
        url, html = page.url, page.content()
        self._phone_page.route(
            lambda u: u == url, lambda route: route.fulfill(body=html, content_type="text/html; charset=utf-8"), times=1
        )
        self._phone_page.goto(url, wait_until="load")
        self._phone_page.screenshot(path=self.folder / "phone" / filename, full_page=True)

    def close(self) -> None:
        if self._phone is not None:
            self._phone.close()


class Person:
    """One person in their own browser context (their own cookies), on a desktop screen."""

    def __init__(self, browser: Browser, base_url: str, username: str, camera: Camera):
        self.username = username
        self.base_url = base_url
        self.camera = camera
        self.context: BrowserContext = browser.new_context(base_url=base_url, **DESKTOP)
        self.context.set_default_timeout(TIMEOUT_MS)
        self.page: Page = self.context.new_page()
        # The decision buttons ask "are you sure?" with window.confirm: yes.
        self.page.on("dialog", lambda dialog: dialog.accept())

    def shoot(self, name: str) -> None:
        self.camera(self.page, name)

    def goto(self, path: str, shot: str | None = None) -> Page:
        response = self.page.goto(path)
        assert response is not None and response.ok, f"{path}: {response and response.status}"
        if shot:
            self.shoot(shot)
        return self.page

    def url_path(self) -> str:
        return self.page.url.removeprefix(self.base_url)

    def close(self) -> None:
        self.context.close()

    # -- accounts

    def sign_up(self, *, streamer: bool = False, shot: str | None = None) -> None:
        page = self.goto("/signup", shot)
        page.get_by_label("Username").fill(self.username)
        page.get_by_label("Email").fill(f"{self.username}@example.com")
        page.get_by_label("Password").fill(PASSWORD)
        if streamer:
            page.get_by_label("I am a streamer").check()
        page.get_by_role("button", name="Sign up").click()
        expect(page).to_have_url(self.base_url + "/")
        expect(page.locator(".message.success")).to_contain_text(f"Welcome to MissionHub, {self.username}!")

    def sign_in(self, *, shot: str | None = None) -> None:
        page = self.goto("/login", shot)
        page.get_by_label("Username").fill(self.username)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        expect(page).to_have_url(self.base_url + "/")
        expect(page.get_by_role("link", name=f"Sign out ({self.username})")).to_be_visible()

    # -- money

    def top_up(self, amount: int, *, quick: bool, shot: str | None = None) -> None:
        """Top up on /wallet with a quick button (+10,000...) or the amount form."""
        page = self.goto("/wallet", shot)
        before = self.balance_on_page()
        if quick:
            page.get_by_role("button", name=f"+{amount:,}", exact=True).click()
        else:
            page.get_by_label("Another amount").fill(str(amount))
            page.get_by_role("button", name="Top up", exact=True).click()
        expect(page.locator(".message.success")).to_contain_text(f"Added {amount:,} cash to your wallet.")
        assert self.balance_on_page() == before + amount

    def balance_on_page(self) -> int:
        return cash(self.page.get_by_test_id("balance").inner_text())

    def wallet_balance(self, shot: str | None = None) -> int:
        """The balance /wallet shows (data-testid="balance")."""
        self.goto("/wallet", shot)
        return self.balance_on_page()

    # -- missions

    def create_mission(self, *, streamer: str, title: str, amount: int, shot: str | None = None) -> int:
        """Start a mission on /missions/new; returns its id (from the page it lands on)."""
        page = self.goto("/missions/new", shot)
        page.get_by_label("Streamer").fill(streamer)
        page.get_by_label("Challenge").fill(title)
        page.get_by_label("Details").fill("No potions, no shields, no excuses.")
        page.get_by_label("Amount").fill(str(amount))
        page.get_by_role("button", name="Start the mission").click()
        expect(page).to_have_url(re.compile(r"/missions/\d+$"))
        expect(page.get_by_role("heading", level=1)).to_have_text(title)
        return int(self.url_path().rsplit("/", 1)[1])

    def pledge(self, mission_id: int, amount: int, *, quick: bool) -> None:
        """Add to the pot on the mission page: a quick button (+1,000...) or the amount form."""
        page = self.page
        if self.url_path() != f"/missions/{mission_id}":
            self.goto(f"/missions/{mission_id}")
        if quick:
            page.get_by_role("button", name=f"+{amount:,}", exact=True).click()
        else:
            page.get_by_label("Another amount").fill(str(amount))
            page.get_by_role("button", name="Pledge", exact=True).click()
        expect(page.locator(".message.success")).to_contain_text(f"You pledged {amount:,} cash.")
