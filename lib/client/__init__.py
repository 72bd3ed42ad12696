"""The one client: every call to a model backend (pages, CLI, harness, load generator) goes through it."""

from lib.client.backend import (
    DEFAULT_RETRY,
    NO_RETRY,
    PROMPT,
    BackendClient,
    Health,
    Prediction,
    RetryPolicy,
    TokenProvider,
    ask_all,
    breed_response_format,
    chat_request,
    check_health,
    classify_many,
    classify_sync,
    make_http_client,
    probe_health,
)
from lib.client.idtokens import GoogleIdTokens
from lib.client.pool import ClientPool

__all__ = [
    "DEFAULT_RETRY", "NO_RETRY", "PROMPT", "BackendClient", "Health", "Prediction", "RetryPolicy", "TokenProvider",
    "ask_all", "breed_response_format", "chat_request", "check_health", "classify_many",
    "classify_sync", "make_http_client", "probe_health", "GoogleIdTokens", "ClientPool",
]
