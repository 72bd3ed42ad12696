"""Token buckets: bursts are cut off, tokens come back with time, one client's burst leaves others alone."""

from __future__ import annotations

import threading

import pytest

from lib.access import Rate, RateLimiter, Verdict


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def limiter(clock: Clock, **rates: Rate) -> RateLimiter:
    return RateLimiter(rates or {"session": Rate(per_min=12, burst=6), "client": Rate(per_min=120, burst=60)},
                       clock=clock)


def test_a_burst_of_100_from_one_session_is_cut_at_the_burst() -> None:
    clock = Clock()
    rl = limiter(clock)
    verdicts = [rl.take({"session": "a", "client": "ip:1.2.3.4"}) for _ in range(100)]
    assert sum(v.allowed for v in verdicts) == 6
    refused = verdicts[6]
    assert refused == Verdict(False, pytest.approx(5.0), "session")  # 12 a minute: one every 5 s
    assert refused.wait_s == 5
    # everyone else is served
    assert rl.take({"session": "b", "client": "ip:5.6.7.8"}).allowed


def test_tokens_come_back_with_time() -> None:
    clock = Clock()
    rl = limiter(clock)
    keys = {"session": "a", "client": "ip:1.2.3.4"}
    for _ in range(6):
        assert rl.take(keys).allowed
    assert not rl.take(keys).allowed
    clock.now += 4.9
    assert not rl.take(keys).allowed
    clock.now += 0.2
    assert rl.take(keys).allowed
    clock.now += 3600  # refills up to the burst, never beyond
    assert sum(rl.take(keys).allowed for _ in range(10)) == 6


def test_many_sessions_behind_one_address_share_the_client_bucket() -> None:
    clock = Clock()
    rl = limiter(clock)
    allowed = [rl.take({"session": f"s{i}", "client": "ip:1.2.3.4"}).allowed for i in range(100)]
    assert sum(allowed) == 60
    refused = rl.check({"session": "new", "client": "ip:1.2.3.4"})
    assert refused.scope == "client" and refused.wait_s == 1  # 120 a minute: one every 0.5 s
    assert rl.take({"session": "new", "client": "ip:9.9.9.9"}).allowed


def test_a_refused_request_consumes_nothing() -> None:
    clock = Clock()
    rl = limiter(clock, session=Rate(60, 1), client=Rate(60, 5))
    assert rl.take({"session": "a", "client": "c"}).allowed
    for _ in range(10):
        assert not rl.take({"session": "a", "client": "c"}).allowed
    # the client bucket lost one token only, for the one request that went through
    assert sum(rl.take({"session": f"s{i}", "client": "c"}).allowed for i in range(10)) == 4


def test_check_does_not_consume() -> None:
    rl = limiter(Clock(), guess=Rate(per_min=0.5, burst=5))
    for _ in range(20):
        assert rl.check({"guess": "ip:1.2.3.4"}).allowed
    for _ in range(5):
        rl.take({"guess": "ip:1.2.3.4"})
    refused = rl.check({"guess": "ip:1.2.3.4"})
    assert not refused.allowed and refused.wait_s == 120  # 5 per 10 minutes: the next one in 2 minutes


def test_memory_is_bounded_by_forgetting_full_buckets() -> None:
    clock = Clock()
    rl = RateLimiter({"session": Rate(60, 2)}, clock=clock, max_keys=100)
    for i in range(1000):
        rl.take({"session": f"s{i}"})
        clock.now += 0.01
    assert len(rl) <= 101


def test_threads_never_exceed_the_burst() -> None:
    rl = RateLimiter({"session": Rate(per_min=0.001, burst=50)})
    allowed: list[bool] = []
    lock = threading.Lock()

    def worker() -> None:
        for _ in range(50):
            ok = rl.take({"session": "a"}).allowed
            with lock:
                allowed.append(ok)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(allowed) == 50 and len(allowed) == 400


@pytest.mark.parametrize("per_min, burst", [(0, 1), (-1, 5), (10, 0)])
def test_bad_rates_are_refused(per_min, burst) -> None:
    with pytest.raises(ValueError):
        Rate(per_min, burst)
