"""The Content Security Policy in a real browser: every page, the Swagger UI and the
overlay work with `script-src 'self'` and `style-src 'self'` and Chromium reports no
violation; another site may frame the overlay and nothing else."""

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.browser import DESKTOP

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.worker,
    pytest.mark.django_db(transaction=True, databases=["default", "accounts"]),
]


def _watch_csp(page: Page) -> list[str]:
    """The Content Security Policy violations Chromium reports on this page."""
    violations: list[str] = []
    page.on(
        "console",
        lambda message: violations.append(message.text) if "Content Security Policy" in message.text else None,
    )
    return violations


def test_pages_and_the_api_docs_run_under_the_policy_without_a_violation(person, browser, live_server):
    streamer = person("streamer", "csp")
    alice = person("alice", "csp")
    seen = {"streamer": _watch_csp(streamer.page), "alice": _watch_csp(alice.page)}
    streamer.sign_up(streamer=True)
    alice.sign_up()
    alice.top_up(10_000, quick=True)
    mission_id = alice.create_mission(streamer=streamer.username, title="Beat it blindfolded", amount=2_000)
    alice.pledge(mission_id, 1_000, quick=True)  # the mission page's forms and htmx polling
    for path in ("/", "/wallet", "/missions/new", f"/streamers/{streamer.username}", f"/overlay/{streamer.username}"):
        alice.goto(path)
    streamer.goto("/dashboard")
    expect(streamer.page.get_by_role("button", name="Accept", exact=True)).to_be_visible()

    docs = alice.goto("/api/docs")
    # Swagger UI rendered the schema: its initialiser (a separate script) ran.
    expect(docs.locator(".opblock").first).to_be_visible()
    expect(docs.locator(".opblock-summary-path", has_text="/api/missions/{mission_id}/pledges").first).to_be_visible()
    alice.page.wait_for_timeout(3_500)  # one more htmx poll on the overlay's and mission's pages

    assert seen == {"streamer": [], "alice": []}


@contextmanager
def _embedder(html: str) -> Iterator[str]:
    """A streaming tool's page on another origin (127.0.0.1, another port) that embeds
    ours. A real local server: Chromium refuses to let a page it cannot place on the
    network frame a local address."""

    class EmbedderPage(BaseHTTPRequestHandler):
        def do_GET(self):
            body = html.encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), EmbedderPage)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/embed"
    finally:
        server.shutdown()
        server.server_close()


def test_another_site_may_frame_the_overlay_and_nothing_else(person, browser, live_server):
    streamer = person("streamer", "frames")
    streamer.sign_up(streamer=True)
    alice = person("alice", "frames")
    alice.sign_up()
    alice.top_up(10_000, quick=True)
    mission_id = alice.create_mission(streamer=streamer.username, title="Speedrun any%", amount=2_500)
    frames = {
        "overlay": f"{live_server.url}/overlay/{streamer.username}",
        "mission": f"{live_server.url}/missions/{mission_id}",
    }
    iframes = "".join(f'<iframe name="{name}" src="{url}"></iframe>' for name, url in frames.items())

    tool = browser.new_context(**DESKTOP)
    try:
        with _embedder(f"<!doctype html><title>A streaming tool</title>{iframes}") as embedder:
            page = tool.new_page()
            page.goto(embedder)

            overlay = page.frame_locator("iframe[name=overlay]")
            expect(overlay.get_by_test_id("overlay-pot")).to_contain_text("2,500")
            page.wait_for_timeout(1_000)
            mission_frame = page.frame(name="mission")
            assert mission_frame is not None
            assert "Speedrun any%" not in mission_frame.content(), "the mission page was framed by another site"
    finally:
        tool.close()
