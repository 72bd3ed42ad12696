"""Who is a presenter: app mode, IAP only where trusted, the token in constant time; the client behind proxies."""

from __future__ import annotations

import pytest

from lib.access import Access, client_address, client_key, decide_access, iap_email, token_matches
from lib.settings import load_settings

IAP = "X-Goog-Authenticated-User-Email"
ADA = {IAP: "accounts.google.com:ada@example.com"}


def settings(**env: str):
    return load_settings({"APP_MODE": "attendee", **env})


@pytest.mark.parametrize("env, headers, token, expected", [
    # a laptop (`make run`): every page, no questions asked
    ({"APP_MODE": "presenter"}, {}, None, Access(True, "app-mode", "local presenter mode")),
    # the public default: attendee
    ({}, {}, None, Access(False, "attendee")),
    # IAP vouches for a listed presenter, and IAP is configured
    ({"TRUST_IAP": "true", "PRESENTER_EMAILS": "Ada@Example.com, bob@example.com"}, ADA, None,
     Access(True, "iap", "ada@example.com")),
    # header names are case-insensitive, as HTTP says
    ({"TRUST_IAP": "true", "PRESENTER_EMAILS": "ada@example.com"},
     {IAP.lower(): "accounts.google.com:ada@example.com"}, None, Access(True, "iap", "ada@example.com")),
    # IAP is not in front: the same header is just text anyone can send
    ({"PRESENTER_EMAILS": "ada@example.com"}, ADA, None, Access(False, "attendee")),
    ({"TRUST_IAP": "false", "PRESENTER_EMAILS": "ada@example.com"}, ADA, None, Access(False, "attendee")),
    # IAP is trusted but this person is not a presenter
    ({"TRUST_IAP": "true", "PRESENTER_EMAILS": "bob@example.com"}, ADA, None, Access(False, "attendee")),
    # IAP is trusted but nobody is listed
    ({"TRUST_IAP": "true"}, ADA, None, Access(False, "attendee")),
    # the token from Secret Manager
    ({"PRESENTER_TOKEN": "s3cret-token"}, {}, "s3cret-token", Access(True, "token", "presenter token")),
    ({"PRESENTER_TOKEN": "s3cret-token"}, {}, "  s3cret-token\n", Access(True, "token", "presenter token")),
    ({"PRESENTER_TOKEN": "s3cret-token"}, {}, "s3cret-tokeN", Access(False, "attendee")),
    ({"PRESENTER_TOKEN": "s3cret-token"}, {}, "s3cret", Access(False, "attendee")),
    ({"PRESENTER_TOKEN": "s3cret-token"}, {}, "", Access(False, "attendee")),
    ({"PRESENTER_TOKEN": "s3cret-token"}, {}, None, Access(False, "attendee")),
    # no token configured: nothing typed can match, not even an empty string
    ({}, {}, "", Access(False, "attendee")),
    ({}, {}, "anything", Access(False, "attendee")),
])
def test_presenter_or_attendee(env, headers, token, expected) -> None:
    assert decide_access(settings(**env), headers, token) == expected


def test_the_token_never_shows_in_settings_or_decisions() -> None:
    s = settings(PRESENTER_TOKEN="s3cret-token")
    decision = decide_access(s, {}, "s3cret-token")
    assert "s3cret" not in repr(s) and "s3cret" not in str(s.model_dump())
    assert "s3cret" not in repr(decision)
    assert token_matches(s, "s3cret-token") and not token_matches(s, "s3cret-token2")


@pytest.mark.parametrize("value, email", [
    ("accounts.google.com:ada@example.com", "ada@example.com"),
    ("ADA@EXAMPLE.COM", "ada@example.com"),
    ("accounts.google.com:", None),
    ("not an address", None),
    ("", None),
])
def test_iap_email(value, email) -> None:
    assert iap_email({IAP: value}) == email


@pytest.mark.parametrize("xff, hops, address", [
    ("203.0.113.12", 1, "203.0.113.12"),  # Cloud Run: the address its front end saw
    ("6.6.6.6, 203.0.113.12", 1, "203.0.113.12"),  # a client wrote 6.6.6.6 first: ignored
    ("6.6.6.6, 203.0.113.12, 130.211.0.1", 2, "203.0.113.12"),  # behind an external load balancer
    ("203.0.113.12", 2, None),  # fewer hops than configured proxies: nothing trustworthy
    ("2001:db8::1", 1, "2001:db8::1"),
    ("not-an-ip", 1, None),
    ("", 1, None),
])
def test_the_client_address_is_the_one_the_proxy_appended(xff, hops, address) -> None:
    assert client_address({"X-Forwarded-For": xff}, hops) == address


def test_client_key_falls_back_to_peer_then_session() -> None:
    assert client_key({"x-forwarded-for": "203.0.113.12"}, "s1", peer_ip="10.0.0.1") == "ip:203.0.113.12"
    assert client_key({}, "s1", peer_ip="10.0.0.1") == "ip:10.0.0.1"
    assert client_key({}, "s1") == "session:s1"
