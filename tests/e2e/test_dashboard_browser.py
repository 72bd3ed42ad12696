"""The dashboard in a real browser (Debian's Chromium), started with the Docker image's own command.

What an attendee on the public URL can do (classify their own photo, see the breed), what they
cannot (presenter pages, bursts, 50 MB files, guessing the token, claiming an IAP identity), and
how fast the page paints and answers against the local model server.
"""

from __future__ import annotations

import json
import re
import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlparse

import httpx
import pytest
from dockerimage import REPO
from PIL import Image
from playwright.sync_api import Page, expect
from support import OUTPUT, PRESENTER, TOKEN, CuttableProxy

from lib.breeds import display_name
from lib.client import classify_sync
from lib.registry import find_backend, read_models_toml
from lib.settings import load_settings

pytestmark = pytest.mark.slow

HEADING = "What breed is this pet?"
TOO_FAST = re.compile(r"You're going too fast — try again in \d+ s")


def open_classify(page: Page, url: str) -> float:
    """Open the app and wait for the Classify page to paint; milliseconds from navigation start."""
    start = time.perf_counter()
    page.goto(url)
    page.get_by_role("heading", name=HEADING).wait_for()
    return (time.perf_counter() - start) * 1000


def pick_only(page: Page, backend: str) -> None:
    """Clear the backends multiselect and pick one backend from its dropdown."""
    box = page.locator('[data-testid="stMultiSelect"]')
    box.get_by_role("button", name=re.compile("clear", re.I)).click()
    box.locator("input").click()
    page.get_by_role("option", name=re.compile(rf"^{re.escape(backend)} · ")).click()  # "pets-tuned · tuned"
    page.keyboard.press("Escape")
    expect(box.locator('[data-tag] > span[title]')).to_have_text([re.compile(rf"^{re.escape(backend)} · ")])


def answer(page: Page, backend: str):
    return page.locator('[data-testid="stMetric"]', has_text=backend).locator('[data-testid="stMetricValue"]')


def upload(page: Page, path: Path) -> None:
    page.locator('[data-testid="stFileUploader"] input[type="file"]').set_input_files(str(path))


def nav_links(page: Page) -> list[str]:
    """Page titles in the sidebar navigation (icons dropped), once the menu is drawn (it comes whole)."""
    links = page.locator('[data-testid="stSidebarNav"] a')
    links.first.wait_for()
    return [text.split()[-1] for text in links.all_inner_texts()]


def tuned_says(local_server: str, photo: Path) -> str:
    """What pets-tuned answers for this photo, asked directly over HTTP (the page must show the same)."""
    settings = load_settings({"LOCAL_MODELS_PORT": str(urlparse(local_server).port)})
    backend = find_backend(read_models_toml(settings=settings), "pets-tuned")
    # Playwright's sync API keeps an event loop running on this thread: ask from another one.
    with ThreadPoolExecutor(1) as pool:
        prediction = pool.submit(classify_sync, [backend], photo.read_bytes()).result()[0]
    return display_name(prediction.breed)


def distinct_answers(local_server: str, pets: Path, n: int, first: Path | None = None) -> dict[Path, str]:
    """`n` photos whose pets-tuned answers all differ (so each new answer on the page is recognisable)."""
    expected: dict[Path, str] = {}
    for photo in ([first] if first else []) + sorted(pets.glob("*.jpg"))[::7]:
        breed = tuned_says(local_server, photo)
        if breed not in expected.values():
            expected[photo] = breed
        if len(expected) == n:
            return expected
    raise AssertionError(f"fewer than {n} photos with distinct answers in {pets}")


def served(local_server: str, model: str) -> float:
    """Requests the local model server has answered for `model` (from its /metrics)."""
    text = httpx.get(local_server.removesuffix("/v1") + "/metrics").text
    match = re.search(rf'vllm:request_success_total{{model_name="{model}"}} ([0-9.e+]+)', text)
    return float(match.group(1)) if match else 0.0


SHOWN_AT = """([selector, text]) => {
    const hit = [...document.querySelectorAll(selector)].some(e => e.innerText.trim() === text);
    return hit ? performance.now() : null;
}"""


def shown_at_ms(page: Page, selector: str, text: str) -> float:
    """The page's clock (ms since navigation start) when `text` appears in `selector`, checked every frame."""
    return page.wait_for_function(SHOWN_AT, arg=[selector, text], polling="raf").json_value()


def test_upload_a_photo_pick_pets_tuned_see_the_breed_and_report_the_time(
        new_page, dashboard, local_server, pets) -> None:
    # havanese_120 first (pets-tuned knows it), then photos of other breeds, each answered differently
    expected = distinct_answers(local_server, pets, 5, first=pets / "havanese_120.jpg")
    assert expected[pets / "havanese_120.jpg"] == "Havanese"

    page = new_page()
    page.goto(dashboard)
    # Times come from the browser's own clock, checked every animation frame (Playwright's expect()
    # polls at 100/250/500 ms steps, which would add up to half a second to a measurement).
    paint_ms = shown_at_ms(page, "h1", HEADING)
    fcp_ms = page.evaluate("""() => new Promise(resolve => new PerformanceObserver(list => {
        const fcp = list.getEntries().find(e => e.name === 'first-contentful-paint');
        if (fcp) resolve(fcp.startTime);
    }).observe({type: 'paint', buffered: true}))""")
    pick_only(page, "pets-tuned")
    expect(page).to_have_url(re.compile(r"backends=pets-tuned$"))  # the choice survives a reload

    answer_ms = []
    for photo, breed in expected.items():
        start = page.evaluate("() => performance.now()")
        upload(page, photo)
        answer_ms.append(shown_at_ms(page, '[data-testid="stMetricValue"]', breed) - start)
    assert page.locator('[data-testid="stMetric"]').count() == 1  # pets-tuned only
    expect(answer(page, "pets-tuned")).to_have_text(list(expected.values())[-1])

    figures = {"load_to_classify_paint_ms": round(paint_ms), "first_contentful_paint_ms": round(fcp_ms),
               "upload_to_breed_ms": [round(ms) for ms in answer_ms],
               "upload_to_breed_median_ms": round(statistics.median(answer_ms)),
               "upload_to_breed_max_ms": round(max(answer_ms))}
    (OUTPUT / "timings.json").write_text(json.dumps(figures, indent=2))
    print(json.dumps(figures))
    # Reported, not asserted: a timing bound fails on a busy machine for reasons that are not the app's.


def test_a_reload_keeps_the_choice_and_resends_nothing(new_page, dashboard, local_server) -> None:
    page = new_page()
    open_classify(page, dashboard)
    pick_only(page, "pets-tuned")
    page.get_by_text("Sample photos").click()
    page.get_by_role("button", name="Random photo").wait_for()
    expect(answer(page, "pets-tuned")).not_to_have_text("")
    shown = answer(page, "pets-tuned").inner_text()
    caption = page.get_by_text(re.compile(r"^Sample: ")).inner_text()
    asked = served(local_server, "pets-tuned")

    page.reload()  # a lost WebSocket or a reload: a new session, the same page
    page.get_by_role("heading", name=HEADING).wait_for()
    expect(answer(page, "pets-tuned")).to_have_text(shown)
    expect(page.get_by_text(re.compile(r"^Sample: "))).to_have_text(caption)
    assert page.locator('[data-testid="stMetric"]').count() == 1
    assert served(local_server, "pets-tuned") == asked  # answered from the cache: no new model request


def test_a_lost_websocket_reconnects_to_the_same_session(new_page, dashboard, pets) -> None:
    """Cloud Run ends a WebSocket at the request timeout: the browser reconnects and the session goes on."""
    proxy = CuttableProxy(urlparse(dashboard).port)
    try:
        page = new_page()
        sockets: list = []
        page.on("websocket", lambda ws: sockets.append(ws))
        open_classify(page, f"http://127.0.0.1:{proxy.port}/?backends=pets-tuned")
        upload(page, pets / "havanese_120.jpg")
        expect(answer(page, "pets-tuned")).to_have_text("Havanese")
        assert proxy.cut() >= 1
        deadline = time.monotonic() + 15
        while len(sockets) < 2 and time.monotonic() < deadline:
            page.wait_for_timeout(100)
        assert len(sockets) >= 2, "the browser did not open a new WebSocket"
        # the same server-side session: the uploaded photo is still there, so a new question about it works
        page.get_by_text("Constrained answer").click()
        expect(page.locator('[data-testid="stCode"]').first).to_contain_text('"breed": "havanese"')
        expect(answer(page, "pets-tuned")).to_have_text("Havanese")
        expect(page.locator('[data-testid="stFileUploader"]').get_by_text("havanese_120.jpg")).to_be_visible()
    finally:
        proxy.close()


def test_attendees_read_the_accuracy_report_and_see_its_charts(new_page, dashboard) -> None:
    if "pages/accuracy.py" not in (REPO / "streamlit_app.py").read_text():
        pytest.skip("pages/accuracy.py is not in streamlit_app.PUBLIC yet")
    page = new_page()
    open_classify(page, dashboard)
    page.locator('[data-testid="stSidebarNav"]').get_by_text("Accuracy").click()
    expect(page).to_have_url(re.compile(r"/accuracy"))
    charts = page.locator('[data-testid="stPlotlyChart"], [data-testid="stVegaLiteChart"]')
    expect(charts.first).to_be_visible(timeout=30_000)  # per breed
    expect(page.get_by_text("Baseline accuracy")).to_be_visible()
    page.get_by_role("tab", name="Confusion").click()
    expect(charts.filter(visible=True).first).to_be_visible()
    expect(page.get_by_text("This page is for the presenter")).to_have_count(0)


def test_attendees_see_only_the_public_pages(new_page, dashboard) -> None:
    page = new_page()
    open_classify(page, dashboard)
    links = nav_links(page)
    assert "Fleet" not in links and "Live" not in links
    assert set(links) <= {"Classify", "Accuracy"}
    for path in ("live", "fleet", "tuning", "cost"):
        page.goto(f"{dashboard}/{path}")
        expect(page.get_by_text("Page not found")).to_be_visible()
        page.get_by_role("heading", name=HEADING).wait_for()  # the public default page, nothing else
        assert "Fleet" not in page.inner_text("body").split(HEADING)[-1]


def test_the_first_visitor_of_a_new_instance_gets_the_apps_own_menu(new_page, fresh_dashboard) -> None:
    """The very first run of a fresh process is routed by streamlit_app.py, whatever the URL asks for."""
    page = new_page()
    page.goto(f"{fresh_dashboard}/fleet")
    expect(page.get_by_text("Page not found")).to_be_visible()
    page.get_by_role("heading", name=HEADING).wait_for()
    assert nav_links(page) == ["Classify", "Accuracy"]
    expect(page.get_by_text("Cloud Run services")).to_have_count(0)
    expect(page.get_by_text("This page is for the presenter")).to_have_count(0)


def sign_in(page: Page, token: str) -> None:
    expander = page.locator('[data-testid="stExpander"]', has_text="Presenter sign-in")
    if not expander.get_by_label("Presenter token").is_visible():
        expander.get_by_text("Presenter sign-in").click()
    expander.get_by_label("Presenter token").fill(token)
    expander.get_by_role("button", name="Sign in").click()


def test_the_presenter_token_reveals_the_presenter_pages_and_wrong_guesses_are_throttled(
        new_page, dashboard) -> None:
    guesser = {"X-Forwarded-For": "198.51.100.7"}  # as Cloud Run's front end would set it
    page = new_page(guesser)
    open_classify(page, dashboard)
    sign_in(page, "not-the-token")
    expect(page.get_by_text("That presenter token is not right.")).to_be_visible()
    sign_in(page, "still-wrong")
    expect(page.get_by_text("That presenter token is not right.")).to_be_visible()
    sign_in(page, "wrong-again")
    expect(page.get_by_text(re.compile(r"Too many wrong tokens: try again in \d+ s"))).to_be_visible()
    # a new session from the same address is still refused, even with the right token
    again = new_page(guesser)
    open_classify(again, dashboard)
    sign_in(again, TOKEN)
    throttled = re.compile(r"Too many wrong tokens from your address. Try again in \d+ s")
    expect(again.get_by_text(throttled)).to_be_visible()
    assert "Fleet" not in nav_links(again)

    # the presenter, from another address, with the right token
    presenter = new_page({"X-Forwarded-For": "192.0.2.10"})
    open_classify(presenter, dashboard)
    sign_in(presenter, TOKEN)
    expect(presenter.locator('[data-testid="stSidebarNav"]').get_by_text("Fleet")).to_be_visible()
    assert TOKEN not in presenter.url and TOKEN not in presenter.content()
    presenter.locator('[data-testid="stSidebarNav"]').get_by_text("Fleet").click()
    expect(presenter).to_have_url(re.compile(r"/fleet"))
    expect(presenter.get_by_role("heading", name=HEADING)).to_have_count(0)
    assert TOKEN not in presenter.url and TOKEN not in presenter.content()
    # everybody else is still an attendee
    other = new_page()
    open_classify(other, dashboard)
    assert "Fleet" not in nav_links(other)


def test_a_header_claiming_iap_identity_is_ignored_unless_iap_is_trusted(new_page, dashboard, iap_dashboard) -> None:
    claim = {"X-Goog-Authenticated-User-Email": f"accounts.google.com:{PRESENTER}"}
    page = new_page(claim)
    open_classify(page, dashboard)  # TRUST_IAP unset: the header is ignored
    assert "Fleet" not in nav_links(page)
    page.goto(f"{dashboard}/fleet")
    expect(page.get_by_text("Page not found")).to_be_visible()
    # where IAP is configured (and would be in front), the same header names the presenter
    trusted = new_page(claim)
    open_classify(trusted, iap_dashboard)
    expect(trusted.locator('[data-testid="stSidebarNav"]').get_by_text("Fleet")).to_be_visible()
    stranger = new_page({"X-Goog-Authenticated-User-Email": "accounts.google.com:someone@example.com"})
    open_classify(stranger, iap_dashboard)
    assert "Fleet" not in nav_links(stranger)


def test_a_burst_of_uploads_is_slowed_down_and_others_keep_working(new_page, dashboard, local_server, pets) -> None:
    expected = distinct_answers(local_server, pets, 8)
    page = new_page({"X-Forwarded-For": "203.0.113.50"})
    open_classify(page, dashboard)
    pick_only(page, "pets-tuned")
    too_fast = page.get_by_text(TOO_FAST)
    refused_at = None
    for i, (photo, breed) in enumerate(expected.items()):
        upload(page, photo)
        shown = page.locator('[data-testid="stMetricValue"]', has_text=re.compile(f"^{re.escape(breed)}$"))
        expect(shown.or_(too_fast)).to_be_visible()
        if too_fast.count():
            refused_at = i
            break
    assert refused_at == 5, f"refused at upload {refused_at}"  # RATE_SESSION_BURST=5 in this dashboard
    # another visitor is served meanwhile
    other = new_page({"X-Forwarded-For": "203.0.113.51"})
    open_classify(other, dashboard)
    pick_only(other, "pets-tuned")
    upload(other, pets / "havanese_120.jpg")
    expect(answer(other, "pets-tuned")).to_have_text("Havanese")


def test_oversized_uploads_are_refused_with_a_clear_message(new_page, dashboard, tmp_path) -> None:
    page = new_page()
    open_classify(page, dashboard)
    # 50 MB: the widget refuses it, and the server refuses it too (413) if the widget is bypassed
    big = tmp_path / "big.jpg"
    big.write_bytes(b"\xff\xd8\xff" + bytes(50 * 2**20))
    upload(page, big)
    expect(page.get_by_text(re.compile(r"File must be 10(\.0)?\s?MB or smaller"))).to_be_visible()
    assert page.locator('[data-testid="stMetric"]').count() == 0

    small = tmp_path / "small.jpg"
    Image.new("RGB", (64, 64), (120, 80, 40)).save(small, "JPEG")
    with page.expect_request(lambda r: r.method == "PUT" and "/_stcore/upload_file/" in r.url) as sent:
        upload(page, small)
    put = sent.value
    # replay the widget's own upload (same session, XSRF cookie and token) with the 50 MB file
    cookies = {c["name"]: c["value"] for c in page.context.cookies()}
    with big.open("rb") as body:
        resp = httpx.put(put.url, headers={"X-Xsrftoken": put.headers["x-xsrftoken"]}, cookies=cookies,
                         files={"file": ("big.jpg", body, "image/jpeg")}, timeout=60)
    assert resp.status_code == 413, resp.text
    # between the page's limit (UPLOAD_MAX_MB=1 here) and Streamlit's: refused by the page before decoding
    noisy = tmp_path / "noisy.png"
    Image.effect_noise((1100, 1000), 100).convert("RGB").save(noisy, "PNG")
    assert 1 * 2**20 < noisy.stat().st_size < 10 * 2**20
    upload(page, noisy)
    expect(page.get_by_text(re.compile(r"This file is \d+\.\d MB; photos up to 1 MB are accepted"))).to_be_visible()
    # and the app still works for this visitor
    upload(page, small)
    expect(page.locator('[data-testid="stMetric"]').first).to_be_visible()


def test_backend_choices_in_the_url_are_names_not_addresses(new_page, dashboard) -> None:
    """?backends= takes registry names only: an address there is dropped and never fetched."""
    hits: list[str] = []
    import http.server
    import threading

    class Trap(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            hits.append(self.path)
            self.send_response(200)
            self.end_headers()

        do_POST = do_GET

        def log_message(self, *args):
            pass

    trap = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Trap)
    threading.Thread(target=trap.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{trap.server_port}/v1"
        page = new_page()
        open_classify(page, f"{dashboard}/?backends={url},pets-tuned")
        box = page.locator('[data-testid="stMultiSelect"]')
        expect(box.locator('[data-tag] > span[title]')).to_have_text(["pets-tuned · tuned"])
        page.wait_for_timeout(500)
        assert hits == []
    finally:
        trap.shutdown()
        trap.server_close()
