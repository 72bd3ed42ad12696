"""The local model server: an OpenAI-compatible HTTP server for `pets-base` and `pets-tuned` on the CPU.

`python -m lib serve-local --host 127.0.0.1 --port 8100` serves `/v1/models`, `/v1/chat/completions`
(free text, or `{"breed": id}` with a JSON-schema `response_format`), `/health` and `/metrics`.
"""

# No `from __future__ import annotations`: FastAPI reads the handlers' annotations at runtime, and they
# name classes imported inside `create_app`.
import asyncio
import json
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

__all__ = ["create_app", "serve", "MODELS"]

MODELS = ("pets-base", "pets-tuned")
MAX_BODY_BYTES = 30 * 1024 * 1024


class _ImageUrl(BaseModel):
    model_config = ConfigDict(extra="allow")
    url: str


class _Part(BaseModel):
    model_config = ConfigDict(extra="allow")
    type: str
    text: str | None = None
    image_url: _ImageUrl | str | None = None


class _Message(BaseModel):
    model_config = ConfigDict(extra="allow")
    role: Literal["system", "user", "assistant", "developer", "tool"]
    content: str | list[_Part] | None = None


class ChatRequest(BaseModel):
    """The subset of the Chat Completions request this server reads; other fields are accepted and ignored."""

    model_config = ConfigDict(extra="allow")
    model: str
    messages: list[_Message] = Field(min_length=1)
    max_tokens: int | None = Field(default=None, ge=1)
    temperature: float | None = Field(default=None, ge=0, le=2)
    response_format: dict[str, Any] | None = None
    stream: bool = False


class ApiError(Exception):
    """An OpenAI-style error: HTTP status, message, type, param and code."""

    def __init__(self, status: int, message: str, param: str | None = None, code: str | None = None,
                 type_: str = "invalid_request_error") -> None:
        super().__init__(message)
        self.status, self.message, self.param, self.code, self.type = status, message, param, code, type_

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}


def _image_from(request: ChatRequest) -> bytes:
    from lib.images import decode_data_uri

    for message in reversed(request.messages):
        if message.role != "user" or not isinstance(message.content, list):
            continue
        for part in message.content:
            if part.type in ("image_url", "input_image") and part.image_url is not None:
                url = part.image_url if isinstance(part.image_url, str) else part.image_url.url
                try:
                    return decode_data_uri(url)
                except ValueError as exc:
                    raise ApiError(400, str(exc), "messages.content.image_url", "invalid_image_url") from None
    raise ApiError(400, "no image: send a user message with an image_url part (a base64 data: URI)",
                   "messages", "missing_image")


def _wants_json(response_format: dict[str, Any] | None) -> bool:
    if not response_format:
        return False
    kind = response_format.get("type")
    if kind in ("json_schema", "json_object"):
        return True
    if kind == "text":
        return False
    raise ApiError(400, f"response_format.type {kind!r} is not supported (text, json_object, json_schema)",
                   "response_format", "unsupported_response_format")


class Models:
    """The loaded backbone and heads; `answer` runs in a worker thread."""

    def __init__(self, artifacts: Path, cache_dir: Path, threads: int | None) -> None:
        from lib.local.model import Backbone, TunedHead

        self.artifacts = artifacts
        self.backbone = Backbone(cache_dir, threads)
        self.head = TunedHead.load(artifacts)
        self._stamp = self._head_stamp()
        self._checked = time.monotonic()

    def _head_stamp(self) -> float:
        try:
            return (self.artifacts / "head.npz").stat().st_mtime
        except OSError:
            return 0.0

    def reload_if_retrained(self) -> None:
        """Pick up a head retrained in place (e.g. from the Tuning page) without a restart."""
        from lib.errors import UserError
        from lib.local.model import TunedHead

        if time.monotonic() - self._checked < 1.0:
            return
        self._checked = time.monotonic()
        stamp = self._head_stamp()
        if stamp != self._stamp:
            try:
                self.head = TunedHead.load(self.artifacts)
                self._stamp = stamp
            except (UserError, OSError, ValueError):
                pass  # a half-written head: keep serving the old one and look again shortly

    def answer(self, model: str, image: bytes, constrained: bool) -> str:
        from lib.breeds import display_name
        from lib.images import ImageError, open_image
        from lib.local.model import DRAFT, base_answer

        try:
            img = open_image(image, draft=DRAFT)
        except ImageError as exc:
            raise ApiError(400, str(exc), "messages.content.image_url", "invalid_image") from None
        features = self.backbone(img)
        self.reload_if_retrained()
        if model == "pets-base":
            text, _ = base_answer(features, constrained)
        else:
            breed, _ = self.head.answer(features)
            text = breed if constrained else display_name(breed)
        return json.dumps({"breed": text}) if constrained else text


def create_app(artifacts: Path | None = None, cache_dir: Path | None = None, threads: int | None = None,
               workers: int = 1, max_queue: int = 32) -> Any:
    """The FastAPI app; models load in the background and `/health` turns 200 once they are ready.

    At most `max_queue` requests wait for the model; more get 503 with Retry-After at once, as an
    overloaded Cloud Run service would, instead of queueing into timeouts.
    """
    import contextlib

    from fastapi import FastAPI, Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse, PlainTextResponse, Response
    from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
    from prometheus_client.exposition import CONTENT_TYPE_LATEST

    from lib.settings import load_settings

    settings = load_settings()
    artifacts = Path(artifacts or settings.artifacts_dir)
    cache_dir = Path(cache_dir or settings.cache_dir)
    state: dict[str, Any] = {"models": None, "error": None, "started": time.time()}
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="infer")

    registry = CollectorRegistry()
    # vLLM's metric names where they mean the same thing, so one Live page reads both.
    running = Gauge("vllm:num_requests_running", "Requests being answered", ["model_name"], registry=registry)
    waiting = Gauge("vllm:num_requests_waiting", "Requests queued for the model", ["model_name"], registry=registry)
    latency = Histogram("vllm:e2e_request_latency_seconds", "End-to-end request latency", ["model_name"],
                        registry=registry, buckets=(0.005, 0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12))
    success = Counter("vllm:request_success", "Requests answered", ["model_name"], registry=registry)
    failures = Counter("pets:request_errors", "Requests refused", ["model_name", "code"], registry=registry)

    def load() -> None:
        try:
            state["models"] = Models(artifacts, cache_dir, threads)
        except Exception as exc:  # reported by /health instead of killing the server
            state["error"] = f"{type(exc).__name__}: {exc}"

    threading.Thread(target=load, name="load-models", daemon=True).start()
    in_flight = [0]  # requests accepted and not yet answered; touched only on the event loop

    @contextlib.asynccontextmanager
    async def lifespan(_: Any) -> Any:
        yield
        pool.shutdown(wait=False, cancel_futures=True)  # queued inferences must not delay exit

    app = FastAPI(title="pets local model server", docs_url=None, redoc_url=None, lifespan=lifespan)

    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
        headers = {"Retry-After": "1"} if exc.code == "overloaded" else None
        return JSONResponse(exc.body(), status_code=exc.status, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def _bad_request(_: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request"}
        loc = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
        return JSONResponse(ApiError(400, f"invalid request: {loc or 'body'}: {first.get('msg')}",
                                     loc or None, "invalid_request").body(), status_code=400)

    @app.get("/health")
    async def health() -> JSONResponse:
        if state["models"] is not None:
            return JSONResponse({"status": "ok", "models": list(MODELS)})
        status = "error" if state["error"] else "loading"
        return JSONResponse({"status": status, "error": state["error"]}, status_code=503)

    @app.get("/v1/models")
    async def list_models() -> dict[str, Any]:
        created = int(state["started"])
        return {"object": "list", "data": [
            {"id": "pets-base", "object": "model", "created": created, "owned_by": "local",
             "root": "efficientnet-lite0", "parent": None},
            {"id": "pets-tuned", "object": "model", "created": created, "owned_by": "local",
             "root": "efficientnet-lite0", "parent": "pets-base"},
        ]}

    @app.get("/metrics")
    async def metrics() -> Response:
        return PlainTextResponse(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    @app.post("/v1/chat/completions", response_model=None)
    async def chat(request: Request) -> Response:
        start = time.perf_counter()
        body = await request.body()
        if len(body) > MAX_BODY_BYTES:
            raise ApiError(413, f"request body over {MAX_BODY_BYTES // 2**20} MB", None, "body_too_large")
        try:
            req = ChatRequest.model_validate_json(body)
        except ValueError as exc:
            errors = exc.errors() if isinstance(exc, ValidationError) else []
            where = ".".join(str(p) for p in errors[0]["loc"]) if errors and errors[0].get("loc") else "body"
            msg = errors[0]["msg"] if errors else str(exc)
            failures.labels("?", "invalid_request").inc()
            raise ApiError(400, f"invalid request: {where}: {msg}", where, "invalid_request") from None
        if req.model not in MODELS:
            failures.labels(req.model[:40], "model_not_found").inc()
            raise ApiError(404, f"The model {req.model!r} does not exist; served: {', '.join(MODELS)}",
                           "model", "model_not_found")
        models = state["models"]
        if models is None:
            raise ApiError(503, "models are still loading; retry shortly", None, "loading", "server_error")
        image = _image_from(req)
        constrained = _wants_json(req.response_format)
        if in_flight[0] >= max_queue + workers:
            failures.labels(req.model, "overloaded").inc()
            raise ApiError(503, f"overloaded: {in_flight[0]} requests ahead; retry shortly", None, "overloaded",
                           "server_error")
        in_flight[0] += 1
        waiting.labels(req.model).inc()
        try:
            loop = asyncio.get_running_loop()
            job = loop.run_in_executor(pool, _timed_answer, models, req.model, image, constrained, waiting, running)
            text = await job
        except ApiError as exc:
            failures.labels(req.model, exc.code or "error").inc()
            raise
        finally:
            in_flight[0] -= 1
        latency.labels(req.model).observe(time.perf_counter() - start)
        success.labels(req.model).inc()
        return _completion(req, text)

    return app


def _timed_answer(models: Models, model: str, image: bytes, constrained: bool, waiting: Any, running: Any) -> str:
    waiting.labels(model).dec()
    running.labels(model).inc()
    try:
        return models.answer(model, image, constrained)
    finally:
        running.labels(model).dec()


def _completion(req: ChatRequest, text: str) -> Any:
    from fastapi.responses import JSONResponse, StreamingResponse

    ident, created = f"chatcmpl-{uuid.uuid4().hex[:24]}", int(time.time())
    usage = {"prompt_tokens": 0, "completion_tokens": 1, "total_tokens": 1}
    if req.stream:
        def events() -> Any:
            chunk = {"id": ident, "object": "chat.completion.chunk", "created": created, "model": req.model,
                     "choices": [{"index": 0, "delta": {"role": "assistant", "content": text}, "finish_reason": None}]}
            yield f"data: {json.dumps(chunk)}\n\n"
            chunk["choices"] = [{"index": 0, "delta": {}, "finish_reason": "stop"}]
            yield f"data: {json.dumps(chunk)}\n\ndata: [DONE]\n\n"
        return StreamingResponse(events(), media_type="text/event-stream")
    return JSONResponse({
        "id": ident, "object": "chat.completion", "created": created, "model": req.model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        "usage": usage,
    })


def serve(host: str, port: int, artifacts: Path | None = None, threads: int | None = None, workers: int = 1,
          max_queue: int = 32) -> None:
    """Run the server until interrupted."""
    import uvicorn

    uvicorn.run(create_app(artifacts, threads=threads, workers=workers, max_queue=max_queue), host=host, port=port,
                log_level="warning", access_log=False, timeout_graceful_shutdown=2)
