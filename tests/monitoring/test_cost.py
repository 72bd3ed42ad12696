"""Cost: the arithmetic, step by step, and the editable price table's validation."""

from __future__ import annotations

from datetime import date

import pytest

from lib.cost import DEFAULT_PRICES, PriceRow, compare, instance_seconds_from_counts, table_from_rows
from lib.errors import UserError

ROW = PriceRow(
    gpu="g",
    cloud_run_gpu_usd_per_s=0.0002,
    cloud_run_vcpu_usd_per_s=0.00001,
    cloud_run_gib_usd_per_s=0.000001,
    cloud_run_vcpu=4,
    cloud_run_gib=16,
    machine="m",
    machine_usd_per_h=1.0,
    gke_fee_usd_per_h=0.1,
)


def test_ten_minutes_of_instance_time_in_an_hour():
    c = compare(ROW, instance_s=600, window_s=3600)
    per_s = 0.0002 + 4 * 0.00001 + 16 * 0.000001  # 0.000256
    assert c.cloud_run_usd == pytest.approx(600 * per_s)
    assert c.always_on_usd == pytest.approx(1.0) and c.gke_usd == pytest.approx(1.1)
    assert c.cloud_run_usd_per_month == pytest.approx(600 * per_s * 730)
    assert c.always_on_usd_per_month == pytest.approx(730.0)
    assert c.break_even_mean_instances == pytest.approx(1.0 / (per_s * 3600))
    assert c.cheaper == "Cloud Run"
    assert [s.value for s in c.steps][:3] == [pytest.approx(per_s), pytest.approx(c.cloud_run_usd), 1.0]
    assert "600 s x" in c.steps[1].formula


def test_busy_all_the_time_the_machine_wins():
    c = compare(ROW, instance_s=2 * 3600, window_s=3600)  # two instances up all hour
    assert c.cheaper == "always-on"


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"instance_s": 10, "window_s": 0}, "window"),
        ({"instance_s": -1, "window_s": 10}, "instance time"),
        ({"instance_s": 1, "window_s": 10, "machines": 0}, "machine"),
    ],
)
def test_bad_numbers_are_refused(kwargs, message):
    with pytest.raises(UserError, match=message):
        compare(ROW, **kwargs)


def test_the_default_table_is_dated_and_every_gpu_has_a_price():
    assert DEFAULT_PRICES.as_of.year >= 2026 and "cloud.google.com/run/pricing" in DEFAULT_PRICES.source
    assert {r.gpu for r in DEFAULT_PRICES.rows} >= {"nvidia-l4"}
    with pytest.raises(UserError, match="known"):
        DEFAULT_PRICES.row("tpu")


def test_edited_rows_are_validated():
    rows = [r.model_dump() for r in DEFAULT_PRICES.rows]
    rows[0]["machine_usd_per_h"] = 0.9
    table = table_from_rows(rows, as_of=date(2027, 1, 2))
    assert table.row("nvidia-l4").machine_usd_per_h == 0.9 and table.as_of == date(2027, 1, 2)
    rows[0]["cloud_run_gpu_usd_per_s"] = -1
    with pytest.raises(UserError, match="nvidia-l4.*cloud_run_gpu_usd_per_s"):
        table_from_rows(rows, as_of=date(2027, 1, 2))
    with pytest.raises(UserError, match="empty"):
        table_from_rows([], as_of=date(2027, 1, 2))


def test_instance_time_integrates_a_count_series():
    assert instance_seconds_from_counts([(0, 1), (60, 3), (120, 0)]) == 60 + 180
    assert instance_seconds_from_counts([(0, 2)], until_s=30) == 60
    assert instance_seconds_from_counts([]) == 0
