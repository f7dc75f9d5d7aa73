"""User-Agent table (I2, I4): device type, browser, OS and bot verdict for the strings that
matter most, with ua-parser + crawlerdetect behind `UserAgents`."""

from __future__ import annotations

import pytest

from services.ingest.user_agents import MAX_PARSED_CHARS, UserAgentInfo, UserAgents

CASES: list[tuple[str, str, UserAgentInfo]] = [
    ("desktop Chrome on Windows",
     "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
     "Chrome/131.0.0.0 Safari/537.36",
     UserAgentInfo("desktop", "Chrome", "Windows", False)),
    ("desktop Firefox on Linux",
     "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
     UserAgentInfo("desktop", "Firefox", "Linux", False)),
    ("desktop Safari on macOS",
     "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
     "Version/18.1 Safari/605.1.15",
     UserAgentInfo("desktop", "Safari", "macOS", False)),
    ("desktop Edge on Windows",
     "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
     "Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0",
     UserAgentInfo("desktop", "Edge", "Windows", False)),
    ("Chrome on ChromeOS",
     "Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) "
     "Chrome/131.0.0.0 Safari/537.36",
     UserAgentInfo("desktop", "Chrome", "ChromeOS", False)),
    ("iPhone Safari",
     "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 "
     "(KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
     UserAgentInfo("mobile", "Safari", "iOS", False)),
    ("iPhone Chrome",
     "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
     "(KHTML, like Gecko) CriOS/131.0.6778.73 Mobile/15E148 Safari/604.1",
     UserAgentInfo("mobile", "Chrome", "iOS", False)),
    ("Android Chrome",
     "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) "
     "Chrome/131.0.0.0 Mobile Safari/537.36",
     UserAgentInfo("mobile", "Chrome", "Android", False)),
    ("Android Samsung Internet",
     "Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) "
     "SamsungBrowser/26.0 Chrome/122.0.0.0 Mobile Safari/537.36",
     UserAgentInfo("mobile", "Samsung Internet", "Android", False)),
    ("Android Firefox phone",
     "Mozilla/5.0 (Android 14; Mobile; rv:133.0) Gecko/133.0 Firefox/133.0",
     UserAgentInfo("mobile", "Firefox", "Android", False)),
    ("iPad Safari",
     "Mozilla/5.0 (iPad; CPU OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
     "Version/17.5 Mobile/15E148 Safari/604.1",
     UserAgentInfo("tablet", "Safari", "iOS", False)),
    ("Android tablet Chrome (no 'Mobile')",
     "Mozilla/5.0 (Linux; Android 13; SM-X700) AppleWebKit/537.36 (KHTML, like Gecko) "
     "Chrome/131.0.0.0 Safari/537.36",
     UserAgentInfo("tablet", "Chrome", "Android", False)),
    ("Android tablet Firefox",
     "Mozilla/5.0 (Android 14; Tablet; rv:133.0) Gecko/133.0 Firefox/133.0",
     UserAgentInfo("tablet", "Firefox", "Android", False)),
    ("Googlebot",
     "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
     UserAgentInfo("bot", "Googlebot", "", True)),
    ("Googlebot smartphone",
     "Mozilla/5.0 (Linux; Android 6.0.1; Nexus 5X Build/MMB29P) AppleWebKit/537.36 "
     "(KHTML, like Gecko) Chrome/131.0.6778.69 Mobile Safari/537.36 (compatible; Googlebot/2.1; "
     "+http://www.google.com/bot.html)",
     UserAgentInfo("bot", "Googlebot", "Android", True)),
    ("Bingbot",
     "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
     UserAgentInfo("bot", "bingbot", "", True)),
    ("curl", "curl/8.5.0", UserAgentInfo("bot", "curl", "", True)),
    ("python-requests", "python-requests/2.32.3",
     UserAgentInfo("bot", "Python Requests", "", True)),
    ("HeadlessChrome",
     "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
     "HeadlessChrome/131.0.0.0 Safari/537.36",
     UserAgentInfo("bot", "HeadlessChrome", "Linux", True)),
    ("Lighthouse",
     "Mozilla/5.0 (Linux; Android 11; moto g power (2022)) AppleWebKit/537.36 (KHTML, like "
     "Gecko) Chrome/119.0.0.0 Mobile Safari/537.36 Chrome-Lighthouse",
     UserAgentInfo("bot", "Chrome", "Android", True)),
    ("GPTBot",
     "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; GPTBot/1.2; "
     "+https://openai.com/gptbot)",
     UserAgentInfo("bot", "GPTBot", "", True)),
    ("empty", "", UserAgentInfo("bot", "", "", True)),
    ("whitespace only", "   ", UserAgentInfo("bot", "", "", True)),
]


@pytest.fixture(scope="module")
def user_agents() -> UserAgents:
    return UserAgents()


@pytest.mark.parametrize(("ua", "expected"), [(ua, want) for _, ua, want in CASES],
                         ids=[name for name, _, _ in CASES])
def test_user_agent_table(user_agents: UserAgents, ua: str, expected: UserAgentInfo) -> None:
    assert user_agents.classify(ua) == expected


@pytest.mark.parametrize("ua", [
    "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Mobile Safari/537.36 [FB_IAB/FB4A;FBAV/490.0.0.43.62;]",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Mobile/15E148 Instagram 340.0.0.22.109",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36 OPR/115.0.0.0",
], ids=["facebook-in-app", "instagram-in-app", "opera"])
def test_in_app_and_minor_browsers_are_people(user_agents: UserAgents, ua: str) -> None:
    assert not user_agents.classify(ua).is_bot


def test_classification_is_cached_per_string(user_agents: UserAgents) -> None:
    ua = "Mozilla/5.0 (X11; Linux x86_64; rv:129.0) Gecko/20100101 Firefox/129.0"
    first = user_agents.classify(ua)
    hits = user_agents.classify.cache_info().hits
    assert user_agents.classify(ua) is first
    assert user_agents.classify.cache_info().hits == hits + 1


def test_the_cache_is_bounded() -> None:
    small = UserAgents(cache_size=2)
    for n in range(5):
        small.classify(f"Mozilla/5.0 (X11; Linux x86_64; rv:{n}.0) Gecko/20100101 Firefox/{n}.0")
    assert small.classify.cache_info().currsize == 2


def test_a_huge_header_is_matched_on_its_first_characters(user_agents: UserAgents) -> None:
    chrome = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
              "Chrome/131.0.0.0 Safari/537.36 ")
    info = user_agents.classify(chrome + "x" * (MAX_PARSED_CHARS * 20) + " Googlebot/2.1")
    assert info == UserAgentInfo("desktop", "Chrome", "Windows", False)
