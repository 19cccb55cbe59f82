"""The product in Korean and in English: pages, the language switch, amounts, the viewer's
time zone, and API errors whose machine codes never change with the language."""

import re
import zoneinfo
from datetime import UTC, datetime, timedelta

import pytest
from django.conf import settings
from django.utils import dateformat, timezone, translation

from ledger.models import Event
from missionhub.middleware import TZ_COOKIE
from missions.forms import one_time_key
from tests.accounts.factories import UserFactory
from tests.ledger.factories import fund
from tests.missions.factories import make_mission
from tests.utils import both_databases

pytestmark = both_databases

SEOUL = zoneinfo.ZoneInfo("Asia/Seoul")
# A timeline entry: <time datetime="ISO 8601">M j, H:i</time> (the countdown has a class first).
TIMELINE_TIME = re.compile(r'<time datetime="([^"]+)">([^<]+)</time>')


@pytest.fixture
def mission(db):
    """A pending mission with one backer and a pot of 12,345 cash."""
    return make_mission(streamer=UserFactory(is_streamer=True, username="streamy"), amount=12_345)


@pytest.fixture
def viewer_client(client, user):
    """The test client signed in as `user`, who has 50,000 cash."""
    fund(user, 50_000)
    client.force_login(user)
    return client


def _page(client, url: str, language: str | None = None) -> str:
    headers = {"HTTP_ACCEPT_LANGUAGE": language} if language else {}
    response = client.get(url, **headers)
    assert response.status_code == 200, url
    return response.content.decode()


def _timeline_entry(html: str) -> tuple[datetime, str]:
    """The first timeline entry of a mission page: its instant and the text shown."""
    stamp, text = TIMELINE_TIME.search(html).groups()
    return datetime.fromisoformat(stamp), text


def _shown(moment: datetime, zone) -> str:
    """What the timeline shows for `moment` in `zone` (English month names)."""
    with translation.override("en"):
        return dateformat.format(timezone.localtime(moment, zone), "M j, H:i")


def _minutes_of_day(text: str) -> int:
    hours, minutes = re.search(r"(\d\d):(\d\d)$", text).groups()
    return int(hours) * 60 + int(minutes)


class TestKorean:
    def test_the_home_page_speaks_korean(self, client, mission):
        html = _page(client, "/", "ko")

        assert '<html lang="ko">' in html
        assert "도전에 캐시를 걸어 보세요." in html
        assert "진행 중인 미션" in html
        assert "상금 많은 순" in html
        assert "후원자 1명" in html
        assert ">로그인</a>" in html
        assert ">회원가입</a>" in html
        assert "Live missions" not in html

    def test_a_mission_page_speaks_korean(self, client, mission):
        html = _page(client, f"/missions/{mission.pk}", "ko")

        assert '<html lang="ko">' in html
        assert '<span class="label">상금</span>' in html
        assert '<span class="label">남은 시간</span>' in html
        assert "타임라인" in html
        assert "미션 생성 · 12,345 캐시" in html
        assert '<span class="badge status-pending">대기 중</span>' in html
        assert "하고 이 미션에 캐시를 보태 보세요." in html
        assert "Timeline" not in html

    def test_the_wallet_page_speaks_korean(self, viewer_client):
        html = _page(viewer_client, "/wallet", "ko")

        assert '<html lang="ko">' in html
        assert '<h1 id="balance-heading">지갑</h1>' in html
        assert '<h2 id="topup-heading">충전</h2>' in html
        assert "테스트 결제 환경이에요. 모든 충전이 승인돼요." in html
        assert '<th class="optional">일시</th><th>내용</th>' in html
        assert "<td>충전</td>" in html
        assert "로그아웃" in html
        assert "History" not in html

    def test_the_login_page_speaks_korean(self, client):
        html = _page(client, "/login", "ko")

        assert '<html lang="ko">' in html
        assert "<title>로그인 · MissionHub</title>" in html
        assert "처음이신가요?" in html
        assert "회원가입하기" in html
        assert "사용자 이름" in html
        assert "비밀번호" in html
        assert "Sign in" not in html

    def test_a_top_up_is_confirmed_in_korean(self, viewer_client):
        response = viewer_client.post(
            "/wallet", {"amount": "10000", "form_key": one_time_key()}, HTTP_ACCEPT_LANGUAGE="ko", follow=True
        )

        assert response.status_code == 200
        assert "지갑에 10,000 캐시를 충전했어요." in response.content.decode()

    def test_a_pledge_is_confirmed_in_korean(self, viewer_client, mission):
        url = f"/missions/{mission.pk}/pledge"

        response = viewer_client.post(
            url, {"amount": "500", "form_key": one_time_key()}, HTTP_ACCEPT_LANGUAGE="ko", follow=True
        )

        html = response.content.decode()
        assert "500 캐시를 후원했어요. 지금 상금은 12,845 캐시예요." in html
        assert "후원 · 500 캐시" in html


class TestEnglish:
    def test_the_home_page_speaks_english(self, client, mission):
        html = _page(client, "/", "en")

        assert '<html lang="en">' in html
        assert "Put cash behind a challenge." in html
        assert "Live missions" in html
        assert "1 backer" in html
        assert ">Sign in</a>" in html
        assert "진행 중인 미션" not in html

    def test_a_mission_page_speaks_english(self, client, mission):
        html = _page(client, f"/missions/{mission.pk}", "en")

        assert '<html lang="en">' in html
        assert '<span class="label">Pot</span>' in html
        assert "created the mission · 12,345 cash" in html
        assert '<span class="badge status-pending">Pending</span>' in html
        assert "타임라인" not in html

    def test_the_wallet_page_speaks_english(self, viewer_client):
        html = _page(viewer_client, "/wallet", "en")

        assert '<html lang="en">' in html
        assert '<h2 id="topup-heading">Top up</h2>' in html
        assert "<td>Top-up</td>" in html
        assert "지갑" not in html

    def test_the_login_page_speaks_english(self, client):
        html = _page(client, "/login", "en")

        assert '<html lang="en">' in html
        assert "New here?" in html
        assert "Username" in html
        assert "로그인" not in html

    def test_a_browser_without_a_preference_gets_english(self, client):
        html = _page(client, "/")

        assert '<html lang="en">' in html

    def test_an_unsupported_language_gets_english(self, client):
        html = _page(client, "/", "fr-FR,fr;q=0.9")

        assert '<html lang="en">' in html


class TestLanguageSwitch:
    def test_choosing_korean_sets_the_cookie_and_later_pages_speak_korean(self, client):
        response = client.post("/i18n/setlang/", {"language": "ko", "next": "/"})

        assert response.status_code == 302
        assert response["Location"] == "/"
        assert response.cookies[settings.LANGUAGE_COOKIE_NAME].value == "ko"
        assert '<html lang="ko">' in _page(client, "/")
        assert "처음이신가요?" in _page(client, "/login")

    def test_the_chosen_language_wins_over_the_browsers(self, client):
        client.post("/i18n/setlang/", {"language": "ko", "next": "/"})

        html = _page(client, "/", "en-US,en;q=0.9")

        assert '<html lang="ko">' in html

    def test_switching_back_gives_english_again(self, client):
        client.post("/i18n/setlang/", {"language": "ko", "next": "/"})

        client.post("/i18n/setlang/", {"language": "en", "next": "/"})

        assert '<html lang="en">' in _page(client, "/", "ko")

    def test_an_unknown_language_sets_no_cookie(self, client):
        response = client.post("/i18n/setlang/", {"language": "xx", "next": "/"})

        assert response.status_code == 302
        assert settings.LANGUAGE_COOKIE_NAME not in response.cookies

    def test_the_footer_form_offers_both_languages(self, client):
        html = _page(client, "/", "ko")

        assert '<form class="lang" action="/i18n/setlang/" method="post">' in html
        assert '<option value="ko" lang="ko" selected>한국어</option>' in html
        assert '<option value="en" lang="en">English</option>' in html


@pytest.mark.parametrize("language", ["en", "ko"])
class TestAmounts:
    def test_the_pot_has_thousands_separators(self, client, mission, language):
        html = _page(client, f"/missions/{mission.pk}", language)

        assert '<span class="value pot" data-testid="pot">12,345</span>' in html

    def test_the_mission_cards_have_thousands_separators(self, client, mission, language):
        html = _page(client, "/", language)

        assert "<strong>12,345</strong>" in html

    def test_the_wallet_balance_has_thousands_separators(self, viewer_client, language):
        html = _page(viewer_client, "/wallet", language)

        assert '<span class="value" data-testid="balance">50,000</span>' in html
        assert "+100,000</button>" in html


class TestViewerTimeZone:
    def test_seoul_shows_the_timeline_nine_hours_ahead_of_utc(self, client, mission):
        created = Event.objects.get(mission_id=mission.pk, kind=Event.Kind.CREATED).created_at
        url = f"/missions/{mission.pk}"
        utc_instant, utc_text = _timeline_entry(_page(client, url, "en"))

        client.cookies[TZ_COOKIE] = "Asia/Seoul"
        seoul_instant, seoul_text = _timeline_entry(_page(client, url, "en"))

        assert seoul_instant == utc_instant == created
        assert utc_instant.utcoffset() == timedelta(0)
        assert seoul_instant.utcoffset() == timedelta(hours=9)
        assert utc_text == _shown(created, UTC)
        assert seoul_text == _shown(created, SEOUL)
        assert (_minutes_of_day(seoul_text) - _minutes_of_day(utc_text)) % (24 * 60) == 9 * 60

    def test_the_zone_applies_to_korean_pages_too(self, client, mission):
        created = Event.objects.get(mission_id=mission.pk, kind=Event.Kind.CREATED).created_at
        client.cookies[TZ_COOKIE] = "Asia/Seoul"

        _instant, text = _timeline_entry(_page(client, f"/missions/{mission.pk}", "ko"))

        assert text.endswith(_shown(created, SEOUL)[-5:])
        assert text.startswith(f"{timezone.localtime(created, SEOUL).month}월")

    @pytest.mark.parametrize("zone", ["Mars/Olympus_Mons", "../../etc/passwd", "UTC+9", "A" * 80])
    def test_an_invalid_zone_falls_back_to_utc(self, client, mission, zone):
        created = Event.objects.get(mission_id=mission.pk, kind=Event.Kind.CREATED).created_at
        client.cookies[TZ_COOKIE] = zone

        instant, text = _timeline_entry(_page(client, f"/missions/{mission.pk}", "en"))

        assert instant.utcoffset() == timedelta(0)
        assert text == _shown(created, UTC)


class TestApiErrors:
    def test_a_missing_mission_keeps_its_code_in_korean(self, api_client):
        english = api_client.get("/api/missions/999999", HTTP_ACCEPT_LANGUAGE="en")
        korean = api_client.get("/api/missions/999999", HTTP_ACCEPT_LANGUAGE="ko")

        assert english.status_code == korean.status_code == 404
        assert english.json()["code"] == korean.json()["code"] == "mission_not_found"
        assert english.json()["detail"] == "No such mission."
        assert korean.json()["detail"] == "미션을 찾을 수 없어요."

    def test_a_refused_pledge_keeps_its_code_and_field_in_korean(self, auth_client, mission):
        url = f"/api/missions/{mission.pk}/pledges"

        response = auth_client.post(url, {"amount": 500}, format="json", HTTP_ACCEPT_LANGUAGE="ko")

        body = response.json()
        assert response.status_code == 400
        assert body["code"] == "insufficient_funds"
        assert body["detail"] == "지갑에 캐시가 부족해요."
        assert body["errors"]["amount"][0] == {"message": "지갑에 캐시가 부족해요.", "code": "insufficient_funds"}

    def test_a_validation_error_keeps_its_code_in_korean(self, auth_client, mission):
        url = f"/api/missions/{mission.pk}/pledges"

        response = auth_client.post(url, {"amount": "500"}, format="json", HTTP_ACCEPT_LANGUAGE="ko")

        assert response.status_code == 400
        assert response.json()["code"] == "invalid"
        assert response.json()["detail"] == "금액은 캐시 단위의 정수로 입력해 주세요."
