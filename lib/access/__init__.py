"""Who may see what: presenter or attendee, and the abuse limits on the public URL."""

from lib.access.ratelimit import Rate, RateLimiter, Verdict
from lib.access.rules import (
    IAP_EMAIL_HEADER,
    Access,
    client_address,
    client_key,
    decide_access,
    iap_email,
    presenter_emails,
    token_matches,
)

__all__ = [
    "Rate", "RateLimiter", "Verdict", "IAP_EMAIL_HEADER", "Access", "client_address", "client_key",
    "decide_access", "iap_email", "presenter_emails", "token_matches",
]
