"""The local model server over real HTTP: OpenAI-compatible answers, errors in OpenAI's shape, metrics."""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path

import httpx
import pytest
from PIL import Image

from lib.client import chat_request
from lib.data import list_photos, split_photos
from lib.images import prepare_jpeg

pytestmark = pytest.mark.slow


def body_for(image: bytes, model: str = "pets-tuned", **extra) -> dict:
    return chat_request(model, image, **extra)


def post(url: str, payload, **kw) -> httpx.Response:
    content = payload if isinstance(payload, (bytes, str)) else json.dumps(payload)
    return httpx.post(f"{url}/chat/completions", content=content, headers={"Content-Type": "application/json"},
                      timeout=30, **kw)


def test_health_and_models(local_server: str) -> None:
    root = local_server.removesuffix("/v1")
    assert httpx.get(f"{root}/health").json()["status"] == "ok"
    models = httpx.get(f"{local_server}/models").json()
    assert models["object"] == "list"
    assert [m["id"] for m in models["data"]] == ["pets-base", "pets-tuned"]
    assert models["data"][1]["parent"] == "pets-base"


def test_free_text_and_constrained_answers(local_server: str, pets: Path) -> None:
    jpeg = prepare_jpeg((pets / "pug_112.jpg").read_bytes())
    free = post(local_server, body_for(jpeg)).json()
    assert free["object"] == "chat.completion"
    assert free["choices"][0]["message"]["content"] == "Pug"
    constrained = post(local_server, body_for(jpeg, constrained=True)).json()
    assert json.loads(constrained["choices"][0]["message"]["content"]) == {"breed": "pug"}
    base = post(local_server, body_for(jpeg, model="pets-base")).json()
    assert base["choices"][0]["message"]["content"] == "pug"


def test_streaming_answer_is_server_sent_events(local_server: str, pets: Path) -> None:
    jpeg = prepare_jpeg((pets / "pug_112.jpg").read_bytes())
    text = post(local_server, {**body_for(jpeg), "stream": True}).text
    events = [line[6:] for line in text.splitlines() if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    assert json.loads(events[0])["choices"][0]["delta"]["content"] == "Pug"


# Held-out photos (never seen by the shipped head): pets-tuned names each one, including breeds
# that ImageNet, and so pets-base, does not know (Bombay, Maine Coon, Ragdoll, Havanese, Shiba Inu...).
HELD_OUT = [
    ("Abyssinian_101.jpg", "Abyssinian"), ("Bombay_125.jpg", "Bombay"), ("Maine_Coon_139.jpg", "Maine_Coon"),
    ("Ragdoll_114.jpg", "Ragdoll"), ("Persian_143.jpg", "Persian"), ("Siamese_173.jpg", "Siamese"),
    ("Sphynx_127.jpg", "Sphynx"), ("Egyptian_Mau_138.jpg", "Egyptian_Mau"), ("Russian_Blue_100.jpg", "Russian_Blue"),
    ("american_bulldog_168.jpg", "american_bulldog"), ("havanese_120.jpg", "havanese"),
    ("shiba_inu_126.jpg", "shiba_inu"), ("english_setter_149.jpg", "english_setter"),
    ("german_shorthaired_153.jpg", "german_shorthaired"), ("japanese_chin_170.jpg", "japanese_chin"),
    ("keeshond_119.jpg", "keeshond"), ("pug_142.jpg", "pug"), ("saint_bernard_140.jpg", "saint_bernard"),
    ("staffordshire_bull_terrier_149.jpg", "staffordshire_bull_terrier"),
    ("wheaten_terrier_159.jpg", "wheaten_terrier"),
]


@pytest.mark.parametrize(("filename", "breed"), HELD_OUT, ids=[f for f, _ in HELD_OUT])
def test_pets_tuned_names_held_out_photos(local_server: str, pets: Path, filename: str, breed: str) -> None:
    _, test = split_photos(list_photos(pets))
    assert filename.removesuffix(".jpg") in {p.id for p in test}, "the table must only hold held-out photos"
    reply = post(local_server, body_for(prepare_jpeg((pets / filename).read_bytes()), constrained=True)).json()
    assert json.loads(reply["choices"][0]["message"]["content"]) == {"breed": breed}


def png_16bit() -> bytes:
    import numpy as np

    out = io.BytesIO()
    Image.fromarray(np.full((64, 64), 40000, dtype=np.uint16)).save(out, format="PNG")
    return out.getvalue()


def uri(data: bytes, mime: str = "image/jpeg") -> str:
    return f"data:{mime};base64," + base64.b64encode(data).decode()


def with_url(url: str, model: str = "pets-tuned") -> dict:
    return {"model": model, "messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": url}}, {"type": "text", "text": "breed?"}]}]}


BAD_REQUESTS = [
    ("malformed json", b"{not json", 400, "invalid_request"),
    ("json array", b"[1, 2]", 400, "invalid_request"),
    ("no messages", {"model": "pets-tuned", "messages": []}, 400, "invalid_request"),
    ("no model", {"messages": [{"role": "user", "content": "hi"}]}, 400, "invalid_request"),
    ("text only", {"model": "pets-tuned", "messages": [{"role": "user", "content": "what breed?"}]}, 400,
     "missing_image"),
    ("remote image url", with_url("https://example.com/cat.jpg"), 400, "invalid_image_url"),
    ("file url", with_url("file:///etc/passwd"), 400, "invalid_image_url"),
    ("not an image", with_url(uri(b"hello world")), 400, "invalid_image"),
    ("zero bytes", with_url("data:image/jpeg;base64,"), 400, "invalid_image"),
    ("truncated jpeg", with_url(uri(prepare_jpeg(Image.new("RGB", (300, 300), (9, 9, 9)))[:500])), 400,
     "invalid_image"),
    ("unknown model", with_url(uri(b"x"), model="gpt-7"), 404, "model_not_found"),
    ("bad response_format", {**with_url(uri(b"x")), "response_format": {"type": "xml"}}, 400,
     "unsupported_response_format"),
    ("negative max_tokens", {**with_url(uri(b"x")), "max_tokens": -1}, 400, "invalid_request"),
]


@pytest.mark.parametrize(("case", "payload", "status", "code"), BAD_REQUESTS, ids=[c[0] for c in BAD_REQUESTS])
def test_bad_requests_get_openai_style_errors(local_server: str, case: str, payload, status: int, code: str) -> None:
    response = post(local_server, payload)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code and error["message"]


def test_unusual_but_valid_images_are_answered(local_server: str) -> None:
    response = post(local_server, with_url(uri(png_16bit(), "image/png")))
    assert response.status_code == 200
    assert response.json()["choices"][0]["message"]["content"]


def test_the_server_survives_bad_input_and_counts_it(local_server: str, pets: Path) -> None:
    post(local_server, with_url(uri(b"garbage")))
    jpeg = prepare_jpeg((pets / "pug_112.jpg").read_bytes())
    assert post(local_server, body_for(jpeg)).status_code == 200
    metrics = httpx.get(local_server.removesuffix("/v1") + "/metrics").text
    assert 'vllm:request_success_total{model_name="pets-tuned"}' in metrics
    assert 'pets:request_errors_total{code="invalid_image",model_name="pets-tuned"}' in metrics
    assert 'vllm:e2e_request_latency_seconds_count{model_name="pets-tuned"}' in metrics


def test_a_retrained_head_is_served_without_a_restart(tmp_path: Path, pets: Path) -> None:
    import dataclasses
    import shutil
    import time

    from lib.breeds import BREED_IDS
    from lib.local import TunedHead, start_local_server
    from testkit import REPO, free_port

    artifacts = tmp_path / "pets-tuned"
    shutil.copytree(REPO / "artifacts" / "pets-tuned", artifacts)
    port = free_port()
    proc = start_local_server("127.0.0.1", port, "--artifacts", str(artifacts), log_file=tmp_path / "log")
    url = f"http://127.0.0.1:{port}/v1"
    jpeg = prepare_jpeg((pets / "pug_142.jpg").read_bytes())
    try:
        assert post(url, body_for(jpeg)).json()["choices"][0]["message"]["content"] == "Pug"
        head = TunedHead.load(artifacts)
        bias = head.bias.copy()
        bias[BREED_IDS.index("beagle")] += 1000.0  # a head that calls everything a beagle
        dataclasses.replace(head, bias=bias).save(artifacts)
        time.sleep(1.2)
        answers = {post(url, body_for(jpeg)).json()["choices"][0]["message"]["content"] for _ in range(2)}
        assert "Beagle" in answers
    finally:
        proc.terminate()
        proc.wait(10)


def test_overload_is_refused_at_once_with_retry_after(tmp_path: Path, pets: Path) -> None:
    import asyncio

    from lib.client import NO_RETRY, BackendClient, make_http_client
    from lib.local import start_local_server
    from lib.registry import Backend
    from testkit import free_port

    port = free_port()
    proc = start_local_server("127.0.0.1", port, "--max-queue", "2", log_file=tmp_path / "log")
    backend = Backend(name="t", base_url=f"http://127.0.0.1:{port}/v1", model="pets-tuned", family="local")
    body = chat_request("pets-tuned", (pets / "pug_142.jpg").read_bytes())

    async def burst() -> list:
        async with make_http_client(max_connections=40) as http:
            client = BackendClient(backend, http=http, retry=NO_RETRY)
            return await asyncio.gather(*(client.send(body) for _ in range(40)))

    try:
        results = asyncio.run(burst())
        refused = [p for p in results if p.status == 503]
        assert refused and all(p.error_kind == "cold_start" and "overloaded" in p.error for p in refused)
        assert sum(p.ok for p in results) >= 3  # the queue's worth is answered
        median = lambda xs: sorted(xs)[len(xs) // 2]  # noqa: E731
        # Refused at once, not after queueing: they come back sooner than the answered ones.
        assert median([p.latency_ms for p in refused]) < median([p.latency_ms for p in results if p.ok])
        metrics = httpx.get(f"http://127.0.0.1:{port}/metrics").text
        assert 'code="overloaded"' in metrics
    finally:
        proc.terminate()
        proc.wait(10)
