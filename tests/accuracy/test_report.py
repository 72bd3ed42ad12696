"""The downloadable report and CSV: self-contained HTML (no network needed), the same figures as the page."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

from lib.accuracy import (
    compare_runs,
    default_pair,
    format_points,
    headline_rows,
    html_report,
    list_runs,
    load_run,
    records_csv,
)
from lib.store import Store
from testkit.evalkit import make_photos, write_run


def view(tmp_path: Path):
    root = Store(tmp_path / "r")
    write_run(root, "b", [("pug_1", "pug", "beagle"), ("pug_2", "pug", "pug"), ("beagle_1", "beagle", "beagle")],
              role="base", started=1)
    write_run(root, "t", [("pug_1", "pug", "pug"), ("pug_2", "pug", "pug"), ("beagle_1", "beagle", "pug")],
              role="tuned", started=2, errors={"beagle_1": "no answer within 60 s"})
    return compare_runs(load_run(root, "b"), load_run(root, "t"))


def test_the_html_report_is_self_contained_and_carries_the_figures(tmp_path: Path) -> None:
    photos = make_photos(tmp_path / "p", per_breed=2, breeds=("pug", "beagle"))
    v = view(tmp_path)
    page = html_report(v, thumbnail=lambda pid: (photos / f"{pid}.jpg").read_bytes(), link="http://x/?baseline=b")
    assert not re.search(r'<script[^>]+src=', page)  # plotly.js inlined: readable offline
    assert "data:image/jpeg;base64," in page
    for _label, base, tuned in headline_rows(v):
        assert base in page and tuned in page
    assert "Fixed by tuning (1)" in page and "Broken by tuning (1)" in page
    assert "no answer (no answer within 60 s)" in page  # the failed request is shown, not hidden


def test_the_csv_has_one_row_per_photo_with_both_answers(tmp_path: Path) -> None:
    rows = list(csv.DictReader(io.StringIO(records_csv(view(tmp_path)).decode())))
    assert [r["photo_id"] for r in rows] == ["beagle_1", "pug_1", "pug_2"]
    assert rows[0]["change"] == "broken" and rows[0]["tuned_error"] == "no answer within 60 s"
    assert rows[1]["change"] == "fixed" and rows[1]["baseline_breed"] == "beagle" and rows[1]["tuned_breed"] == "pug"


def test_default_pair_is_the_latest_of_each_role(tmp_path: Path) -> None:
    root = Store(tmp_path)
    write_run(root, "b1", [("pug_1", "pug", "pug")], role="base", started=1)
    write_run(root, "t1", [("pug_1", "pug", "pug")], role="tuned", started=2)
    write_run(root, "b2", [("pug_1", "pug", "pug")], role="base", started=3)
    write_run(root, "x", [("pug_1", "pug", "pug")], role=None, started=4)
    assert default_pair(list_runs(root)) == ("b2", "t1")
    assert default_pair([r for r in list_runs(root) if r.role is None]) == (None, "x")  # newest is "tuned"


def test_differences_of_accuracy_are_in_percentage_points(tmp_path: Path) -> None:
    assert (format_points(0.338), format_points(-0.05), format_points(0.0)) == ("+33.8 pts", "-5.0 pts", "+0.0 pts")
    assert format_points(float("nan")) == format_points(None) == "n/a"
    root = Store(tmp_path / "r")
    write_run(root, "b", [("pug_1", "pug", "beagle"), ("pug_2", "pug", "beagle"), ("beagle_1", "beagle", "beagle")],
              role="base", started=1)
    write_run(root, "t", [("pug_1", "pug", "pug"), ("pug_2", "pug", "pug"), ("beagle_1", "beagle", "beagle")],
              role="tuned", started=2)
    page = html_report(compare_runs(load_run(root, "b"), load_run(root, "t")), thumbnail=lambda _: None)
    assert "Tuning changed accuracy by <b>+66.7 pts</b> (95% interval " in page and "+66.7%" not in page
