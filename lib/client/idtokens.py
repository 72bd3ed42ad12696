"""Google-signed ID tokens for Cloud Run URLs, from the ambient credentials, cached per audience.

Service-account keys, workload identity and the metadata server mint a token for any audience; a
developer's `gcloud auth application-default login` credentials carry one ID token that Cloud Run
also accepts, used as the fallback.
"""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

__all__ = ["GoogleIdTokens"]

_REUSE_S = 45 * 60  # ID tokens live an hour; renew well before


class GoogleIdTokens:
    """An async token provider `await tokens(audience)`; credentials are loaded once and re-targeted."""

    def __init__(self, max_workers: int = 8) -> None:
        self._pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="id-token")
        self._lock = threading.Lock()
        self._local = threading.local()
        self._base: Any = None
        self._cache: dict[str, tuple[str, float]] = {}

    def _request(self) -> Any:
        if not hasattr(self._local, "request"):
            import google.auth.transport.requests

            self._local.request = google.auth.transport.requests.Request()
        return self._local.request

    def _fetch(self, audience: str) -> str:
        import google.auth
        import google.oauth2.id_token
        from google.auth import exceptions

        request = self._request()
        try:
            with self._lock:
                if self._base is None:
                    self._base = google.oauth2.id_token.fetch_id_token_credentials(audience, request=request)
            credentials = (self._base.with_target_audience(audience) if hasattr(self._base, "with_target_audience")
                           else google.oauth2.id_token.fetch_id_token_credentials(audience, request=request))
            credentials.refresh(request)
            return credentials.token
        except exceptions.DefaultCredentialsError:
            user, _ = google.auth.default(scopes=["openid", "https://www.googleapis.com/auth/userinfo.email"])
            user.refresh(request)
            token = getattr(user, "id_token", None)
            if not token:
                raise
            return token

    async def __call__(self, audience: str) -> str:
        cached = self._cache.get(audience)
        if cached and time.monotonic() - cached[1] < _REUSE_S:
            return cached[0]
        token = await asyncio.get_running_loop().run_in_executor(self._pool, self._fetch, audience)
        self._cache[audience] = (token, time.monotonic())
        return token

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
