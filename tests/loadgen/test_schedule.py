"""Arrival schedules: counts, rates, ramps, seeds, task splits, and bad shapes refused."""

from __future__ import annotations

import numpy as np
import pytest

from lib.errors import UserError
from lib.loadgen import (
    LoadProfile,
    Ramp,
    arrival_offsets_s,
    concurrency_share,
    parse_ramp,
    rate_at_rps,
    task_share,
)


def test_constant_rate_sends_exactly_rate_times_duration_evenly_spaced():
    offsets = arrival_offsets_s(LoadProfile(mode="constant", rate_rps=50, duration_s=4))
    assert offsets.size == 200
    assert np.allclose(np.diff(offsets), 0.02)
    assert offsets[0] == 0.0 and offsets[-1] < 4


def test_poisson_is_seeded_and_has_exponential_gaps():
    a = arrival_offsets_s(LoadProfile(mode="poisson", rate_rps=1000, duration_s=20, seed=7))
    b = arrival_offsets_s(LoadProfile(mode="poisson", rate_rps=1000, duration_s=20, seed=7))
    c = arrival_offsets_s(LoadProfile(mode="poisson", rate_rps=1000, duration_s=20, seed=8))
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    assert abs(a.size - 20_000) < 5 * np.sqrt(20_000)
    gaps = np.diff(a)
    assert gaps.std() / gaps.mean() == pytest.approx(1.0, abs=0.05)  # exponential: CV 1
    assert np.all(np.diff(a) >= 0) and a[-1] < 20


@pytest.mark.parametrize("mode", ["constant", "poisson"])
def test_linear_ramp_follows_the_rate(mode):
    profile = LoadProfile(mode=mode, ramp=parse_ramp("linear:5:100:60"), duration_s=60, seed=1)
    offsets = arrival_offsets_s(profile)
    assert abs(offsets.size - (5 + 100) / 2 * 60) < 5 * np.sqrt(3150)
    first, last = np.sum(offsets < 10), np.sum(offsets >= 50)
    assert first == pytest.approx((5 + 20.83) / 2 * 10, rel=0.25)
    assert last == pytest.approx((84.17 + 100) / 2 * 10, rel=0.15)
    assert rate_at_rps(profile, 0) == 5 and rate_at_rps(profile, 30) == pytest.approx(52.5)


def test_ramp_then_hold_and_warmup_at_the_starting_rate():
    profile = LoadProfile(mode="constant", ramp=Ramp(10, 20, 5), duration_s=10, warmup_s=2)
    offsets = arrival_offsets_s(profile)
    assert np.sum(offsets < 2) == 20  # warm-up: 2 s at 10/s
    assert offsets.size == 20 + 75 + 100  # ramp 10->20 over 5 s, then 5 s at 20/s
    assert rate_at_rps(profile, 1) == 10 and rate_at_rps(profile, 100) == 20


def test_max_requests_cuts_the_schedule():
    assert (
        arrival_offsets_s(LoadProfile(mode="constant", rate_rps=100, duration_s=10, max_requests=7)).size == 7
    )


def test_tasks_split_the_schedule_exactly():
    offsets = arrival_offsets_s(LoadProfile(mode="poisson", rate_rps=300, duration_s=5, seed=3))
    shares = [task_share(offsets, i, 3) for i in range(3)]
    assert sorted(np.concatenate(shares).tolist()) == offsets.tolist()
    assert all(abs(s.size - offsets.size / 3) <= 1 for s in shares)
    assert [concurrency_share(10, i, 3) for i in range(3)] == [4, 3, 3]


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"mode": "poisson", "rate_rps": 0}, "rate must be > 0"),
        ({"mode": "constant", "rate_rps": -3}, "rate must be > 0"),
        ({"mode": "poisson", "rate_rps": 5, "duration_s": -1}, "duration must be a positive"),
        ({"mode": "poisson", "rate_rps": 5, "duration_s": 0}, "duration must be a positive"),
        ({"mode": "poisson", "rate_rps": 5, "warmup_s": -1}, "warm-up"),
        ({"mode": "concurrency"}, "--concurrency"),
        ({"mode": "poisson", "rate_rps": 5, "max_requests": 0}, "max requests"),
        ({"mode": "burst", "rate_rps": 5}, "unknown mode"),
        ({"mode": "constant", "rate_rps": 1e9, "duration_s": 1e3}, "limit"),
    ],
)
def test_bad_profiles_are_refused_with_a_clear_message(kwargs, message):
    with pytest.raises(UserError, match=message):
        LoadProfile(**kwargs)


@pytest.mark.parametrize(
    "text", ["linear:5:100", "exp:1:2:3", "linear:a:2:3", "linear:5:100:0", "linear:0:0:10", "linear:-1:5:10"]
)
def test_bad_ramps_are_refused(text):
    with pytest.raises(UserError, match="ramp"):
        parse_ramp(text)


def test_bad_task_index_is_refused():
    with pytest.raises(UserError, match="task index"):
        task_share(np.arange(5.0), 3, 3)


def test_a_ramp_built_in_code_is_checked_too():
    with pytest.raises(UserError, match="not both 0"):
        Ramp(0, 0, 10)
    with pytest.raises(UserError, match="SECONDS"):
        Ramp(1, 2, 0)
