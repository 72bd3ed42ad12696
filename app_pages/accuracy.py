"""Accuracy: a baseline run and a tuned run on the same photos, side by side, with the photos behind the numbers.

Attendees read it (pick runs, charts, galleries, downloads, a link to this comparison); the presenter
can also start a new evaluation and watch it run. All figures come from `lib.report`/`lib.metrics`.
"""

from __future__ import annotations

import time
from pathlib import Path
from urllib.parse import urlencode

import streamlit as st

from app_pages import _common as common
from lib.accuracy import (
    Catalog,
    ComparisonView,
    EvalOptions,
    EvalResult,
    Progress,
    RunInfo,
    RunView,
    catalog,
    compare_runs,
    comparison_frame,
    confusion_figure,
    evaluation_job,
    format_points,
    headline_rows,
    how_made,
    html_report,
    load_run,
    per_breed_figure,
    photo_path,
    read_info,
    records_csv,
    side_answer,
)
from lib.breeds import BREED_IDS, display_name
from lib.data import Split, default_data_dir
from lib.errors import UserError
from lib.jobs import Job
from lib.store import Store

GALLERY_LIMIT = 24


def is_presenter() -> bool:
    """Who may start evaluations: the dashboard's one presenter check."""
    return common.is_presenter()


@st.cache_data(ttl=10, show_spinner=False)
def runs_catalog(root_uri: str, shipped: str) -> Catalog:
    """The results store's runs plus the ones shipped with the code, newest first (re-listed every 10 s)."""
    return catalog(root_uri, shipped)


@st.cache_data(max_entries=16, show_spinner="Reading the runs...")
def run_view(store_uri: str, run_id: str, version: float) -> RunView:
    """A run with its figures; `version` changes when the run does, so finished runs are read once."""
    return load_run(Store(store_uri), run_id)


@st.cache_data(max_entries=16, show_spinner=False)
def comparison_view(baseline: tuple[str, str, float], tuned: tuple[str, str, float]) -> ComparisonView:
    return compare_runs(run_view(*baseline), run_view(*tuned))


@st.cache_resource
def jobs() -> dict[str, Job[EvalResult]]:
    """Evaluations started from this page, shared by every session of the app (one presenter, many viewers)."""
    return {}


def version(info: RunInfo) -> float:
    # An unfinished run may grow: re-read it at most every 5 s; a finished one never changes.
    return info.finished_unix_s or float(int(time.time() // 5))


def thumb(path: Path | None) -> bytes | None:
    try:
        return common.thumbnail(path) if path else None
    except Exception:  # a damaged photo costs its picture, not the page
        return None


def presenter_panel(data_dir: Path) -> None:
    """Start an evaluation in the background and follow it live."""
    with st.expander("Run a new evaluation", expanded=False):
        chosen = common.backend_picker("eval-backend", default=("pets-tuned",), multi=False)
        left, mid, right = st.columns(3)
        splits: list[Split] = ["test", "all", "train"]
        split = left.selectbox("Photos", splits, key="eval-split",
                               help="test: the photos the tuned model never saw (the honest comparison)")
        limit = mid.number_input("Limit (0 = all)", min_value=0, value=0, step=10, key="eval-limit")
        concurrency = right.number_input("Concurrency", min_value=1, max_value=256, value=8, key="eval-concurrency")
        constrained = st.toggle("Constrained answer (JSON schema)", key="eval-constrained")
        busy = jobs().get("current")
        running = busy is not None and busy.running
        if st.button("Run evaluation", key="run-eval", type="primary", disabled=running or not chosen):
            options = EvalOptions(
                backend=chosen[0], data_dir=data_dir, root=common.settings().results_root,
                concurrency=int(concurrency), constrained=constrained, split=split, limit=int(limit) or None,
                new_run=True, max_image_side=common.settings().max_image_side,
            )
            jobs()["current"] = evaluation_job(options).start()
        live_progress()


@st.fragment(run_every="1s")
def live_progress() -> None:
    job = jobs().get("current")
    if job is None:
        return
    snap = job.snapshot()
    p: Progress | None = snap.progress
    if snap.running:
        done, total = (p.done, p.total) if p else (0, 1)
        st.progress(done / max(total, 1), text=f"{snap.name}: {done} of {total} photos"
                    + (f" · {p.errors} errors · {p.correct} right" if p else ""))
        if st.button("Stop", key="stop-eval"):
            job.stop()
    elif snap.state == "failed":
        st.error(f"The evaluation failed: {snap.error}")
    elif snap.result is not None:
        r = snap.result
        if snap.state == "stopped" and not r.complete:
            st.info(f"Run {r.run_id} stopped after {r.metrics.n} photos; run the same evaluation again to "
                    "finish it (only the missing photos are asked).")
        else:
            st.success(f"Run {r.run_id}: {r.metrics.n} photos, accuracy {r.metrics.accuracy:.1%}, "
                       f"{r.metrics.errors} errors ({r.wall_s:.0f} s).")
        if not st.session_state.get(f"seen-{r.run_id}"):
            st.session_state[f"seen-{r.run_id}"] = True
            runs_catalog.clear()
            # The picker for the new run's role moves to it (a baseline run to the baseline picker).
            role = read_info(Store(common.settings().results_root), r.run_id).role
            st.session_state["baseline-run" if role == "base" else "tuned-run"] = r.run_id
            st.rerun(scope="app")


def pick(label: str, key: str, param: str, listing: Catalog, default: str | None) -> str:
    ids = [r.run_id for r in listing.runs]
    labels = {i: listing.label(i) for i in ids}
    wanted = st.query_params.get(param)
    if wanted and wanted not in labels:
        st.warning(f"Run {wanted!r} from the link is not among the runs here; showing the latest instead.")
        wanted = None
    start = wanted or default or ids[0]
    if key not in st.session_state:
        st.session_state[key] = start
    return st.selectbox(label, ids, format_func=lambda i: labels[i], key=key)


def gallery(title: str, ids: tuple[str, ...], rows, folders: list) -> None:
    st.markdown(f"**{title}: {len(ids)} photos**")
    if not ids:
        st.caption("None.")
        return
    shown = ids[:GALLERY_LIMIT]
    paths = {pid: photo_path(pid, folders) for pid in shown}
    if not any(paths.values()):
        st.info("The photos of these runs are not on this machine (looked in: "
                + ", ".join(str(f) for f in folders if f) + "); their answers are listed instead.")
    cols = st.columns(6)
    for i, pid in enumerate(shown):
        row = rows.loc[pid]
        with cols[i % 6]:
            data = thumb(paths[pid])
            if data:
                st.image(data, width="stretch")
            st.caption(f"**{pid}** · true: {display_name(row['truth'])} · baseline: {side_answer(row, 'baseline')} "
                       f"· tuned: {side_answer(row, 'tuned')}")
    if len(ids) > GALLERY_LIMIT:
        st.caption(f"...and {len(ids) - GALLERY_LIMIT} more: download the CSV for all of them.")


st.title("Does tuning help?")
st.caption("The same photos, asked of the base model and of the tuned model. Every answer is recorded; the figures "
           "below are counted from those records.")
settings = common.settings()
data_dir = default_data_dir(settings.pets_dir)

if is_presenter():  # first: whatever is wrong with the results below, a new run can always be started
    presenter_panel(data_dir)

listing = runs_catalog(settings.results_root, str(settings.shipped_results))
if listing.problem:  # a bucket that does not exist or cannot be reached: one sentence, the shipped runs still show
    st.error(listing.problem)
runs = list(listing.runs)

if not runs:
    st.info("No evaluation runs yet. Start the local models (`python -m lib serve-local`) and run "
            "`python -m lib eval --backend pets-base` and `python -m lib eval --backend pets-tuned`"
            + (", or use *Run a new evaluation* above." if is_presenter() else "."))
    st.stop()

by_id = {r.run_id: r for r in runs}
default_base, default_tuned = listing.default_pair()
left, right = st.columns(2)
with left:
    base_id = pick("Baseline run", "baseline-run", "baseline", listing, default_base)
with right:
    tuned_id = pick("Tuned run", "tuned-run", "tuned", listing, default_tuned)
st.query_params.update({"baseline": base_id, "tuned": tuned_id})
made = how_made([by_id[base_id], by_id[tuned_id]], shipped=listing.shipped)
if {base_id, tuned_id} & listing.shipped:
    st.info(made + (" Run a new evaluation above to measure your own." if is_presenter() else ""))
else:
    st.caption(made)

try:
    view = comparison_view((listing.stores[base_id], base_id, version(by_id[base_id])),
                           (listing.stores[tuned_id], tuned_id, version(by_id[tuned_id])))
except (UserError, ValueError) as exc:
    st.error(f"These two runs cannot be compared: {exc}")
    st.stop()
a, b, c = view.baseline, view.tuned, view.comparison
for v in (a, b):
    if v.torn:
        st.warning(f"Run {v.info.run_id} ends in a torn line (it was interrupted mid-write); that line is left out.")
    if v.info.finished_unix_s is None:
        st.info(f"Run {v.info.run_id} is unfinished: {v.metrics.n} of {v.info.photo_count} photos so far.")
if base_id == tuned_id:
    st.warning("You picked the same run twice; choose a tuned run to compare.")
if c.only_baseline or c.only_tuned:
    st.info(f"Compared on the {c.n} photos both runs answered ({c.only_baseline} only in the baseline, "
            f"{c.only_tuned} only in the tuned run).")

st.subheader("Headline")
m1, m2, m3 = st.columns(3)
m1.metric(f"Baseline accuracy · {a.info.backend}", f"{a.metrics.accuracy:.1%}",
          help=f"95% interval {a.metrics.accuracy_low:.1%} to {a.metrics.accuracy_high:.1%}")
m2.metric(f"Tuned accuracy · {b.info.backend}", f"{b.metrics.accuracy:.1%}",
          delta=format_points(c.delta) if c.n else None,
          help=f"95% interval {b.metrics.accuracy_low:.1%} to {b.metrics.accuracy_high:.1%}")
m3.metric("Photos fixed / broken by tuning", f"{len(c.fixed)} / {len(c.broken)}",
          help="exact McNemar test: could fixed versus broken be a coin toss?")
if c.n:
    st.markdown(f"On **{c.n}** shared photos tuning changed accuracy by **{format_points(c.delta)}** (95% interval "
                f"{format_points(c.delta_low)} to {format_points(c.delta_high)}); "
                f"exact McNemar p = **{c.mcnemar_p:.2g}**.")
st.table({"": [r[0] for r in headline_rows(view)], "Baseline": [r[1] for r in headline_rows(view)],
          "Tuned": [r[2] for r in headline_rows(view)]})

tab_breeds, tab_conf, tab_photos, tab_drill, tab_share = st.tabs(
    ["Per breed", "Confusion", "Fixed and broken", "One photo", "Download and share"])
rows = comparison_frame(view).set_index("photo_id")
folders: list[str | Path | None] = [a.info.data_dir, b.info.data_dir, data_dir]

with tab_breeds:
    st.plotly_chart(per_breed_figure(view), width="stretch", key="per-breed")

with tab_conf:
    which = st.radio("Run", ["tuned", "baseline"], horizontal=True, key="confusion-run")
    st.plotly_chart(confusion_figure(b if which == "tuned" else a), width="stretch", key="confusion")

with tab_photos:
    gallery("Fixed by tuning", c.fixed, rows, folders)
    gallery("Broken by tuning", c.broken, rows, folders)

with tab_drill:
    breeds = [x for x in BREED_IDS if x in set(rows["truth"])]
    breed = st.selectbox("Breed", breeds, format_func=display_name, key="drill-breed")
    ids = rows.index[rows["truth"] == breed].tolist()
    photo_id = st.selectbox("Photo", ids, key="drill-photo")
    if photo_id:
        row = rows.loc[photo_id]
        pic, one, two = st.columns([2, 3, 3])
        data = thumb(photo_path(photo_id, folders))
        if data:
            pic.image(data, width="stretch")
        else:
            pic.caption("Photo not available on this machine.")
        for col, side, run in ((one, "baseline", a), (two, "tuned", b)):
            with col:
                st.markdown(f"**{side.title()}** · {run.info.backend}")
                right_answer = row[f"{side}_correct"]
                st.write(side_answer(row, side) + (" ✅" if right_answer == True else " ❌"))  # noqa: E712 (NaN-safe)
                st.code(row[f"{side}_raw"] if isinstance(row[f"{side}_raw"], str) and row[f"{side}_raw"]
                        else "(no answer)", language=None)
                if isinstance(row[f"{side}_latency_ms"], float):
                    st.caption(f"{row[f'{side}_latency_ms']:.0f} ms")

with tab_share:
    name = f"{a.info.backend}-vs-{b.info.backend}"
    st.download_button("Records (CSV)", data=lambda: records_csv(view), file_name=f"{name}.csv", mime="text/csv",
                       key="csv")
    st.download_button(
        "Report (HTML, works offline)", file_name=f"{name}.html", mime="text/html", key="html",
        data=lambda: html_report(view, thumbnail=lambda pid: thumb(photo_path(pid, folders))),
    )
    query = urlencode({"baseline": base_id, "tuned": tuned_id})
    base_url = (st.context.url or "").split("?", 1)[0]
    st.markdown("Link to this comparison:")
    st.code(f"{base_url}?{query}" if base_url else f"?{query}", language=None)
