"""lib.metrics on cases worked out by hand: accuracy, macro-F1, unknown rate, species, confusion, McNemar."""

from __future__ import annotations

import math

import numpy as np
import pytest

from lib.accuracy import EvalRecord, bootstrap_interval, compare, confusion, mcnemar_exact_p, per_breed, summarize


def rec(photo_id: str, truth: str, breed: str, error: str | None = None, latency_ms: float = 10.0) -> EvalRecord:
    return EvalRecord(photo_id, truth, breed, breed, latency_ms, 1, error, "timeout" if error else None)


# Four photos, by hand:
#   1 pug      -> pug       right
#   2 pug      -> beagle    wrong (a dog for a dog)
#   3 beagle   -> beagle    right
#   4 beagle   -> unknown   wrong
# accuracy 2/4. pug: TP 1, FP 0, FN 1 -> P 1, R 1/2, F1 2/3. beagle: TP 1, FP 1, FN 1 -> P 1/2, R 1/2, F1 1/2.
# macro-F1 (2/3 + 1/2) / 2 = 7/12. unknown 1/4. species right: 1, 2, 3 -> 3/4.
FOUR = [rec("pug_1", "pug", "pug"), rec("pug_2", "pug", "beagle"), rec("beagle_1", "beagle", "beagle"),
        rec("beagle_2", "beagle", "unknown")]


def test_four_photos_by_hand() -> None:
    m = summarize(FOUR)
    assert (m.n, m.correct, m.accuracy) == (4, 2, 0.5)
    assert m.macro_f1 == pytest.approx(7 / 12)
    assert m.unknown_rate == 0.25 and m.errors == 0 and m.error_rate == 0
    assert m.species_accuracy == 0.75
    assert m.latency_p50_ms == 10.0


def test_per_breed_by_hand() -> None:
    rows = {b.breed: b for b in per_breed(FOUR)}
    assert list(rows) == ["beagle", "pug"]  # the dataset's class order
    assert (rows["pug"].n, rows["pug"].correct, rows["pug"].accuracy) == (2, 1, 0.5)
    assert rows["pug"].precision == 1.0 and rows["pug"].f1 == pytest.approx(2 / 3)
    assert rows["beagle"].precision == 0.5 and rows["beagle"].f1 == pytest.approx(0.5)


def test_an_error_is_a_wrong_answer_counted_apart_from_unknown() -> None:
    records = [rec("pug_1", "pug", "pug"), rec("pug_2", "pug", "unknown", error="no answer within 1 s"),
               rec("pug_3", "pug", "unknown")]
    m = summarize(records)
    assert (m.n, m.correct, m.errors) == (3, 1, 1)
    assert m.unknown_rate == pytest.approx(1 / 3)  # only the answered-but-unparseable one
    assert m.error_rate == pytest.approx(1 / 3)
    assert m.latency_p50_ms == 10.0  # failed requests are not latencies


def test_the_latest_record_of_a_photo_counts_once() -> None:
    records = [rec("pug_1", "pug", "unknown", error="timeout"), rec("pug_1", "pug", "pug")]
    m = summarize(records)
    assert (m.n, m.correct, m.errors) == (1, 1, 0)


def test_macro_f1_with_a_breed_never_predicted_and_one_never_true() -> None:
    # cat Bengal never answered right; Siamese answered but never true (it costs Bengal's recall and its own
    # precision does not enter the average: only breeds present in the truth are averaged).
    records = [rec("Bengal_1", "Bengal", "Siamese"), rec("pug_1", "pug", "pug")]
    m = summarize(records)
    assert m.macro_f1 == pytest.approx((0.0 + 1.0) / 2)
    assert m.species_accuracy == 1.0  # Siamese is a cat


def test_confusion_rows_are_truth_and_columns_answers_with_unknown_and_error() -> None:
    records = [*FOUR, rec("pug_3", "pug", "unknown", error="refused")]
    conf = confusion(records, labels=("beagle", "pug"))
    assert conf.columns == ("beagle", "pug", "unknown", "error")
    assert conf.counts.tolist() == [[1, 0, 1, 0], [1, 1, 0, 1]]
    full = confusion(records)
    assert full.counts.shape == (37, 39) and full.counts.sum() == 5


@pytest.mark.parametrize(("b", "c", "p"), [
    (1, 9, 0.021484375),   # 2 * (1 + 10) / 2**10
    (0, 5, 0.0625),        # 2 / 2**5
    (3, 3, 1.0),
    (0, 0, 1.0),
    (2, 8, 0.109375),      # 2 * (1 + 10 + 45) / 2**10
    (9, 1, 0.021484375),   # symmetric
])
def test_mcnemar_exact_p_for_known_discordant_counts(b: int, c: int, p: float) -> None:
    assert mcnemar_exact_p(b, c) == pytest.approx(p, rel=1e-12)


def test_mcnemar_is_exact_for_thousands_of_discordant_photos() -> None:
    assert mcnemar_exact_p(2500, 2500) == 1.0
    # Large counts: the exact test meets the continuity-corrected normal approximation.
    z = (abs(2600 - 2400) - 1) / math.sqrt(5000)
    assert mcnemar_exact_p(2400, 2600) == pytest.approx(math.erfc(z / math.sqrt(2)), rel=1e-2)
    assert mcnemar_exact_p(0, 5000) < 1e-300


def test_paired_comparison_fixed_and_broken_by_hand() -> None:
    base = [rec("a_1", "pug", "pug"), rec("a_2", "pug", "beagle"), rec("a_3", "pug", "beagle"),
            rec("a_4", "pug", "pug"), rec("a_5", "pug", "pug")]
    tuned = [rec("a_1", "pug", "pug"), rec("a_2", "pug", "pug"), rec("a_3", "pug", "pug"), rec("a_4", "pug", "beagle"),
             rec("a_6", "pug", "pug")]
    c = compare(base, tuned)
    assert c.n == 4 and (c.only_baseline, c.only_tuned) == (1, 1)
    assert c.fixed == ("a_2", "a_3") and c.broken == ("a_4",)
    assert (c.both_right, c.both_wrong) == (1, 0)
    assert c.baseline_accuracy == 0.5 and c.tuned_accuracy == 0.75 and c.delta == 0.25
    assert c.mcnemar_p == mcnemar_exact_p(1, 2) == 1.0
    assert c.delta_low <= c.delta <= c.delta_high


def test_runs_on_different_photo_sets_with_the_same_ids_are_refused() -> None:
    with pytest.raises(ValueError, match="disagree on the truth of pug_1"):
        compare([rec("pug_1", "pug", "pug")], [rec("pug_1", "beagle", "pug")])


def test_bootstrap_interval_is_fixed_by_its_seed_and_brackets_the_estimate() -> None:
    low, high = bootstrap_interval(80, 100)
    assert (low, high) == bootstrap_interval(80, 100)
    assert 0.70 <= low < 0.80 < high <= 0.88
    # The binomial draw is the bootstrap: compare with a brute-force resample of 80 ones and 20 zeros.
    rng = np.random.default_rng(1)
    data = np.array([1] * 80 + [0] * 20)
    brute = np.percentile(rng.choice(data, size=(4000, 100)).mean(axis=1), [2.5, 97.5])
    assert abs(brute[0] - low) <= 0.02 and abs(brute[1] - high) <= 0.02
    assert all(math.isnan(x) for x in bootstrap_interval(0, 0))  # no photos, no interval


def test_no_records_gives_nan_not_an_exception() -> None:
    m = summarize([])
    assert m.n == 0 and math.isnan(m.accuracy)
