"""Baseline versus tuned, ready to show: loaded runs with their figures, plotly charts, the CSV of
records and a self-contained HTML report (plotly.js and thumbnails inlined, readable offline).

The Accuracy page and the downloadable report draw from the same functions, so they cannot disagree.
"""

from __future__ import annotations

import base64
import html
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterable, Sequence

import pandas as pd

from lib.accuracy.metrics import (
    BreedMetrics,
    Comparison,
    Confusion,
    RunMetrics,
    compare,
    confusion,
    frame,
    per_breed,
    summarize,
)
from lib.accuracy.records import RunInfo, read_records
from lib.breeds import BREED_IDS, UNKNOWN, display_name
from lib.data import IMAGE_SUFFIXES
from lib.store import Store

if TYPE_CHECKING:  # plotly loads with the first chart, not with every command that imports lib.accuracy
    import plotly.graph_objects as go

__all__ = [
    "RunView", "ComparisonView", "load_run", "compare_runs", "default_pair", "headline_rows", "per_breed_figure",
    "confusion_figure", "comparison_frame", "records_csv", "html_report", "photo_path", "answer_text", "side_answer",
    "format_points",
]

BASE_COLOR, TUNED_COLOR = "#9aa5b1", "#e4572e"


@dataclass(frozen=True)
class RunView:
    """One run read from the results root: its description, one row per photo, and its figures."""

    info: RunInfo
    frame: pd.DataFrame
    metrics: RunMetrics
    breeds: tuple[BreedMetrics, ...]
    torn: bool


@dataclass(frozen=True)
class ComparisonView:
    """Two runs and their paired comparison on the photos both answered."""

    baseline: RunView
    tuned: RunView
    comparison: Comparison


def load_run(store: Store, run_id: str) -> RunView:
    """Read a run and compute its figures (a torn last line is left out and flagged)."""
    run = read_records(store, run_id)
    df = frame(run.records)
    return RunView(run.info, df, summarize(df), per_breed(df), run.torn)


def compare_runs(baseline: RunView, tuned: RunView) -> ComparisonView:
    """Pair two loaded runs."""
    return ComparisonView(baseline, tuned, compare(baseline.frame, tuned.frame))


def default_pair(runs: Sequence[RunInfo]) -> tuple[str | None, str | None]:
    """The latest run marked base and the latest marked tuned (runs newest first); else the two latest."""
    base = next((r.run_id for r in runs if r.role == "base"), None)
    tuned = next((r.run_id for r in runs if r.role == "tuned"), None)
    if base and tuned:
        return base, tuned
    ids = [r.run_id for r in runs]
    if tuned and not base:
        base = next((i for i in ids if i != tuned), None)
    elif base and not tuned:
        tuned = next((i for i in ids if i != base), None)
    else:
        tuned, base = (ids + [None, None])[:2]
    return base, tuned


def format_points(delta: float | None) -> str:
    """A difference of two accuracies (fractions) in percentage points: 0.338 -> "+33.8 pts"; "n/a" if unknown."""
    if delta is None or math.isnan(delta):
        return "n/a"
    return f"{100 * delta:+.1f} pts"


def _pct(x: float) -> str:
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.1%}"


def headline_rows(view: ComparisonView) -> list[tuple[str, str, str]]:
    """(figure, baseline, tuned) rows, formatted: the numbers the page and the report both show."""
    a, b = view.baseline.metrics, view.tuned.metrics
    return [
        ("Photos", f"{a.n}", f"{b.n}"),
        ("Accuracy (95% interval)", f"{_pct(a.accuracy)} [{_pct(a.accuracy_low)}, {_pct(a.accuracy_high)}]",
         f"{_pct(b.accuracy)} [{_pct(b.accuracy_low)}, {_pct(b.accuracy_high)}]"),
        ("Macro-F1", f"{a.macro_f1:.3f}", f"{b.macro_f1:.3f}"),
        ("Cat or dog right", _pct(a.species_accuracy), _pct(b.species_accuracy)),
        ("Not a breed (unknown)", _pct(a.unknown_rate), _pct(b.unknown_rate)),
        ("Errors (no answer)", f"{a.errors}", f"{b.errors}"),
        ("Median latency", _ms(a.latency_p50_ms), _ms(b.latency_p50_ms)),
    ]


def _ms(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.0f} ms"


def per_breed_figure(view: ComparisonView) -> go.Figure:
    """Grouped bars: accuracy per breed, baseline next to tuned, breeds in the dataset's order."""
    import plotly.graph_objects as go

    a = {m.breed: m for m in view.baseline.breeds}
    b = {m.breed: m for m in view.tuned.breeds}
    breeds = [x for x in BREED_IDS if x in a or x in b]
    names = [display_name(x) for x in breeds]
    fig = go.Figure()
    for label, source, color in (("baseline: " + view.baseline.info.backend, a, BASE_COLOR),
                                 ("tuned: " + view.tuned.info.backend, b, TUNED_COLOR)):
        fig.add_bar(
            x=names, y=[source[x].accuracy if x in source else None for x in breeds], name=label, marker_color=color,
            customdata=[[source[x].correct, source[x].n] if x in source else [0, 0] for x in breeds],
            hovertemplate="%{x}: %{y:.0%} (%{customdata[0]} of %{customdata[1]})<extra>" + label + "</extra>",
        )
    fig.update_layout(barmode="group", yaxis={"title": "accuracy", "tickformat": ".0%", "range": [0, 1.05]},
                      xaxis={"tickangle": -45}, height=420, margin={"l": 40, "r": 10, "t": 30, "b": 120},
                      legend={"orientation": "h", "y": 1.1})
    return fig


def confusion_figure(view: RunView) -> go.Figure:
    """37 x 39 heatmap: true breed (rows) by answer (columns, plus unknown and error), share of each row."""
    import plotly.graph_objects as go

    conf: Confusion = confusion(view.frame)
    counts = conf.counts
    totals = counts.sum(axis=1, keepdims=True)
    share = counts / totals.clip(min=1)
    rows = [display_name(x) for x in conf.labels]
    cols = [display_name(x) if x in BREED_IDS else ("Unknown" if x == UNKNOWN else "Error") for x in conf.columns]
    fig = go.Figure(go.Heatmap(
        z=share, x=cols, y=rows, customdata=counts, colorscale="Blues", zmin=0, zmax=1,
        hovertemplate="true %{y}, answered %{x}: %{customdata} (%{z:.0%})<extra></extra>",
        colorbar={"title": "share", "tickformat": ".0%"},
    ))
    fig.update_layout(height=720, margin={"l": 10, "r": 10, "t": 30, "b": 10},
                      xaxis={"title": "answer", "tickangle": -60, "side": "top"},
                      yaxis={"title": "true breed", "autorange": "reversed"})
    return fig


def answer_text(breed: str, error: str | None) -> str:
    """How an answer reads to a person: the breed's name, "not a breed" or the error."""
    if error is not None and error == error:  # NaN from an outer join is "no error"
        return f"no answer ({error})"
    return "not a breed" if breed == UNKNOWN else display_name(breed)


def side_answer(row: pd.Series, side: str) -> str:
    """One side's answer in a `comparison_frame` row ("not asked" when that run skipped the photo)."""
    breed = row[f"{side}_breed"]
    return answer_text(breed, row[f"{side}_error"]) if isinstance(breed, str) else "not asked"


def comparison_frame(view: ComparisonView) -> pd.DataFrame:
    """One row per photo in either run: the truth and both answers side by side, plus the verdict."""
    cols = ["photo_id", "truth", "breed", "correct", "raw", "error", "latency_ms"]
    a = view.baseline.frame[cols].rename(columns={c: f"baseline_{c}" for c in cols[2:]})
    b = view.tuned.frame[cols].rename(columns={c: f"tuned_{c}" for c in cols[2:]})
    df = a.merge(b, on=["photo_id", "truth"], how="outer", sort=True)
    fixed, broken = set(view.comparison.fixed), set(view.comparison.broken)
    df["change"] = df["photo_id"].map(lambda p: "fixed" if p in fixed else "broken" if p in broken else "")
    return df


def records_csv(view: ComparisonView) -> bytes:
    """The comparison's records as CSV (one row per photo, both runs)."""
    return comparison_frame(view).to_csv(index=False).encode()


def photo_path(photo_id: str, folders: Iterable[str | Path | None]) -> Path | None:
    """The photo file for an id in the first folder that has it (`folder` or `folder/images`), else None."""
    for folder in folders:
        if not folder:
            continue
        for base in (Path(folder), Path(folder) / "images"):
            for suffix in IMAGE_SUFFIXES:
                candidate = base / f"{photo_id}{suffix}"
                if candidate.is_file():
                    return candidate
    return None


def _figure_html(fig: go.Figure, first: bool) -> str:
    return fig.to_html(full_html=False, include_plotlyjs="inline" if first else False,
                       config={"displaylogo": False, "responsive": True})


def _gallery(title: str, ids: Sequence[str], rows: pd.DataFrame, thumb: Callable[[str], bytes | None],
             limit: int) -> str:
    if not ids:
        return f"<h3>{html.escape(title)}</h3><p>None.</p>"
    cards = []
    for photo_id in ids[:limit]:
        row = rows.loc[photo_id]
        answers = {side: side_answer(row, side) for side in ("baseline", "tuned")}
        data = thumb(photo_id)
        img = (f'<img src="data:image/jpeg;base64,{base64.b64encode(data).decode()}" alt="{html.escape(photo_id)}">'
               if data else '<div class="nophoto">photo not available</div>')
        cards.append(
            f'<figure>{img}<figcaption><b>{html.escape(photo_id)}</b>'
            f'<br>true: {html.escape(display_name(row["truth"]))}'
            f'<br>baseline: {html.escape(answers["baseline"])}<br>tuned: {html.escape(answers["tuned"])}'
            "</figcaption></figure>")
    more = f"<p>…and {len(ids) - limit} more (see the CSV).</p>" if len(ids) > limit else ""
    return f"<h3>{html.escape(title)} ({len(ids)})</h3><div class='gallery'>{''.join(cards)}</div>{more}"


def html_report(view: ComparisonView, *, thumbnail: Callable[[str], bytes | None], link: str | None = None,
                gallery_limit: int = 48) -> str:
    """A single HTML file with the headline figures, charts, galleries and method; works offline."""
    a, b, c = view.baseline, view.tuned, view.comparison
    table = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(x)}</td><td>{html.escape(y)}</td></tr>"
                    for k, x, y in headline_rows(view))
    cmp = comparison_frame(view).set_index("photo_id")
    stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    run_line = lambda v: (f"<li><b>{html.escape(v.info.backend)}</b> (model {html.escape(v.info.model)}, run "  # noqa: E731
                          f"<code>{html.escape(v.info.run_id)}</code>, split {html.escape(v.info.split)}, "
                          f"{'constrained' if v.info.constrained else 'free-text'} answers"
                          f"{', commit ' + html.escape(v.info.git_commit) if v.info.git_commit else ''})</li>")
    verdict = (f"Tuning changed accuracy by <b>{format_points(c.delta)}</b> (95% interval "
               f"{format_points(c.delta_low)} to {format_points(c.delta_high)}) on {c.n} shared photos: "
               f"it fixed {len(c.fixed)} and broke {len(c.broken)} "
               f"(exact McNemar p = {c.mcnemar_p:.2g}).") if c.n else "The two runs share no photos."
    link_html = f'<p>Live version: <a href="{html.escape(link)}">{html.escape(link)}</a></p>' if link else ""
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Pet breeds: baseline vs tuned</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 1200px; padding: 0 1rem; color: #222; }}
table {{ border-collapse: collapse; }}
th, td {{ padding: .3rem .8rem; border-bottom: 1px solid #ddd; text-align: left; }}
.gallery {{ display: flex; flex-wrap: wrap; gap: .8rem; }}
figure {{ margin: 0; width: 170px; font-size: .8rem; }} figure img {{ width: 160px; border-radius: 4px; }}
.nophoto {{ width: 160px; height: 120px; background: #eee; display: flex; align-items: center;
            justify-content: center; }}
</style></head><body>
<h1>Pet breeds: does tuning help?</h1>
<p>{verdict}</p>
<ul>{run_line(a)}{run_line(b)}</ul>
<table><tr><th></th><th>Baseline: {html.escape(a.info.backend)}</th>
<th>Tuned: {html.escape(b.info.backend)}</th></tr>{table}</table>
<h2>Accuracy per breed</h2>{_figure_html(per_breed_figure(view), True)}
<h2>Confusion of the tuned run</h2>{_figure_html(confusion_figure(b), False)}
<h2>Photos that changed</h2>
{_gallery("Fixed by tuning", c.fixed, cmp, thumbnail, gallery_limit)}
{_gallery("Broken by tuning", c.broken, cmp, thumbnail, gallery_limit)}
<h2>Method</h2>
<p>Each photo was asked once per model; every answer is a record (the raw text, the breed parsed from it, latency,
errors). Accuracy counts a photo right only when the parsed breed equals the true breed: unknown answers and failed
requests count as wrong. Intervals are 95% percentile bootstraps (fixed seed); macro-F1 averages per-breed F1 over
the breeds present. The McNemar test asks whether fixed and broken photos could be a coin toss.</p>
{link_html}<p><small>Generated {stamp}.</small></p>
</body></html>"""
