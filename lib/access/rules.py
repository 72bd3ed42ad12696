"""Who may see the presenter pages, and which client a request comes from. Pure functions, no Streamlit.

Presenter if (a) APP_MODE=presenter (a laptop), (b) TRUST_IAP=true and IAP's
`X-Goog-Authenticated-User-Email` names an address in PRESENTER_EMAILS, or (c) the visitor typed
PRESENTER_TOKEN (compared in constant time). Without TRUST_IAP the IAP header is ignored: anyone
can send it to a public Cloud Run URL.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
from dataclasses import dataclass
from typing import Literal, Mapping

from lib.settings import Settings

__all__ = [
    "IAP_EMAIL_HEADER", "Access", "decide_access", "token_matches", "iap_email", "presenter_emails",
    "client_address", "client_key",
]

IAP_EMAIL_HEADER = "X-Goog-Authenticated-User-Email"

Reason = Literal["app-mode", "iap", "token", "attendee"]


@dataclass(frozen=True)
class Access:
    """The decision for one visitor: `identity` is an email or a label, never a token."""

    presenter: bool
    reason: Reason
    identity: str | None = None


def _header(headers: Mapping[str, str], name: str) -> str | None:
    lowered = name.lower()
    for key, value in headers.items():
        if key.lower() == lowered:
            return value
    return None


def iap_email(headers: Mapping[str, str]) -> str | None:
    """The address IAP vouches for (`accounts.google.com:ada@example.com` -> `ada@example.com`), or None."""
    value = (_header(headers, IAP_EMAIL_HEADER) or "").strip()
    if not value:
        return None
    email = value.split(":", 1)[1] if ":" in value else value
    email = email.strip().lower()
    return email if "@" in email else None


def presenter_emails(settings: Settings) -> frozenset[str]:
    """PRESENTER_EMAILS as a set of lower-case addresses."""
    return frozenset(e.strip().lower() for e in settings.presenter_emails.split(",") if e.strip())


def token_matches(settings: Settings, typed: str | None) -> bool:
    """True when a presenter token is configured and `typed` equals it (constant-time comparison)."""
    if settings.presenter_token is None or not typed:
        return False
    expected = settings.presenter_token.get_secret_value().encode()
    if not expected:
        return False
    # Compare digests so that neither the content nor the length of the token leaks through timing.
    typed_digest = hashlib.sha256(typed.strip().encode()).digest()
    return hmac.compare_digest(typed_digest, hashlib.sha256(expected).digest())


def decide_access(settings: Settings, headers: Mapping[str, str], token: str | None = None) -> Access:
    """Presenter or attendee for one visitor, from settings, request headers and a typed token."""
    if settings.app_mode == "presenter":
        return Access(True, "app-mode", "local presenter mode")
    if settings.trust_iap:
        email = iap_email(headers)
        if email is not None and email in presenter_emails(settings):
            return Access(True, "iap", email)
    if token_matches(settings, token):
        return Access(True, "token", "presenter token")
    return Access(False, "attendee")


def client_address(headers: Mapping[str, str], hops: int = 1) -> str | None:
    """The client IP that the `hops`-th proxy from the app appended to X-Forwarded-For, or None.

    Clients can write anything at the front of the header; Cloud Run's front end appends the
    address it saw, so the trustworthy entry is the `hops`-th from the right (1 on Cloud Run,
    2 behind an external load balancer).
    """
    raw = _header(headers, "X-Forwarded-For") or ""
    hops_seen = [h.strip() for h in raw.split(",") if h.strip()]
    if len(hops_seen) < hops:
        return None
    candidate = hops_seen[-hops]
    try:
        return str(ipaddress.ip_address(candidate))
    except ValueError:
        return None


def client_key(
    headers: Mapping[str, str], session_id: str, *, peer_ip: str | None = None, hops: int = 1,
) -> str:
    """A key for per-client limits: the forwarded client address, else the peer address, else the session."""
    address = client_address(headers, hops) or peer_ip
    return f"ip:{address}" if address else f"session:{session_id}"
