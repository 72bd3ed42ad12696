"""The one metrics module: pure functions from evaluation records to frozen figures.

Conventions (the report explains them to attendees): every photo counts once, by its latest record;
an error or an `unknown` answer is a wrong answer; macro-F1 averages over the breeds present in the
truth; intervals are 95% percentile bootstraps with a fixed seed, so the same records always give
the same figures. Everything is vectorised so two 10,000-record runs take milliseconds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pandas as pd

from lib.accuracy.records import EvalRecord
from lib.breeds import BREED_IDS, UNKNOWN, species_of

__all__ = [
    "ERROR", "RunMetrics", "BreedMetrics", "Confusion", "Comparison", "frame", "summarize", "per_breed",
    "confusion", "compare", "mcnemar_exact_p", "bootstrap_interval",
]

ERROR = "error"  # the confusion matrix's column for requests that got no answer
SEED = 20_240_537
RESAMPLES = 2000
_BREED_CODE = {b: i for i, b in enumerate(BREED_IDS)}
_SPECIES = {b: species_of(b) for b in BREED_IDS}


@dataclass(frozen=True)
class RunMetrics:
    """Headline figures for one run; fractions in [0, 1], intervals are 95% bootstrap percentiles."""

    n: int
    correct: int
    accuracy: float
    accuracy_low: float
    accuracy_high: float
    macro_f1: float
    unknown_rate: float  # answered, but not with one of the 37 breeds
    errors: int  # no answer at all (connection, timeout, HTTP error); counted wrong
    error_rate: float
    species_accuracy: float  # cat/dog right, whatever the breed
    latency_p50_ms: float | None
    latency_p95_ms: float | None


@dataclass(frozen=True)
class BreedMetrics:
    """One breed: photos, right answers, accuracy (recall), precision and F1."""

    breed: str
    n: int
    correct: int
    accuracy: float
    precision: float
    f1: float


@dataclass(frozen=True)
class Confusion:
    """Counts: rows are true breeds, columns are answers (`labels` then `unknown` and `error`)."""

    labels: tuple[str, ...]
    columns: tuple[str, ...]
    counts: np.ndarray  # shape (len(labels), len(columns)), int64


@dataclass(frozen=True)
class Comparison:
    """Two runs on the photos they share: what tuning fixed, what it broke, and whether that is chance."""

    n: int  # photos answered by both runs
    baseline_accuracy: float
    tuned_accuracy: float
    delta: float  # tuned minus baseline accuracy, on the shared photos
    delta_low: float
    delta_high: float
    both_right: int
    both_wrong: int
    fixed: tuple[str, ...]  # photo ids wrong in the baseline, right after tuning
    broken: tuple[str, ...]  # photo ids right in the baseline, wrong after tuning
    mcnemar_p: float  # exact two-sided McNemar test on (broken, fixed)
    only_baseline: int  # photos only the baseline answered (not compared)
    only_tuned: int


def frame(records: Sequence[EvalRecord] | pd.DataFrame) -> pd.DataFrame:
    """One row per photo (its latest record): photo_id, truth, breed, ok, correct, latency_ms, raw, error, attempts."""
    if isinstance(records, pd.DataFrame):
        return records
    df = pd.DataFrame.from_records(
        [(r.photo_id, r.truth, r.breed, r.error is None, r.latency_ms, r.raw, r.error, r.attempts) for r in records],
        columns=["photo_id", "truth", "breed", "ok", "latency_ms", "raw", "error", "attempts"],
    )
    if df.empty:
        df = df.astype({"ok": bool, "latency_ms": float, "attempts": int})
    df = df.drop_duplicates("photo_id", keep="last").reset_index(drop=True)
    df["correct"] = df["ok"] & (df["breed"] == df["truth"])
    return df


def bootstrap_interval(successes: int, n: int, *, resamples: int = RESAMPLES, seed: int = SEED) -> tuple[float, float]:
    """95% percentile bootstrap interval of a proportion.

    Resampling n photos with replacement makes the count of right answers Binomial(n, successes/n)
    exactly, so drawing that count is the bootstrap itself at O(resamples) cost.
    """
    if n == 0:
        return (math.nan, math.nan)
    draws = np.random.default_rng(seed).binomial(n, successes / n, size=resamples) / n
    low, high = np.percentile(draws, [2.5, 97.5])
    return float(low), float(high)


def _f1_parts(truth: np.ndarray, pred: np.ndarray,
              labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per label: support, true positives, precision, F1 (0 where undefined)."""
    k = len(labels)
    index = {label: i for i, label in enumerate(labels)}
    t = np.array([index[x] for x in truth], dtype=np.int64) if len(truth) else np.zeros(0, np.int64)
    p = np.array([index.get(x, -1) for x in pred], dtype=np.int64) if len(pred) else np.zeros(0, np.int64)
    support = np.bincount(t, minlength=k)
    tp = np.bincount(t[t == p], minlength=k)
    predicted = np.bincount(p[p >= 0], minlength=k)
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(predicted > 0, tp / np.maximum(predicted, 1), 0.0)
        recall = np.where(support > 0, tp / np.maximum(support, 1), 0.0)
        f1 = np.where(precision + recall > 0, 2 * precision * recall / np.maximum(precision + recall, 1e-300), 0.0)
    return support, tp, precision, f1


def _labels(df: pd.DataFrame) -> np.ndarray:
    """The breeds present in the truth, in the dataset's class order (unknown ids last, sorted)."""
    present = set(df["truth"].unique())
    ordered = [b for b in BREED_IDS if b in present] + sorted(present - set(BREED_IDS))
    return np.array(ordered, dtype=object)


def _answers(df: pd.DataFrame) -> np.ndarray:
    """What each photo was answered with for F1 purposes: errors and unknowns match no breed."""
    return np.where(df["ok"].to_numpy(bool), df["breed"].to_numpy(object), UNKNOWN)


def summarize(records: Sequence[EvalRecord] | pd.DataFrame, *, seed: int = SEED) -> RunMetrics:
    """Headline figures for one run."""
    df = frame(records)
    n = len(df)
    if n == 0:
        nan = math.nan
        return RunMetrics(0, 0, nan, nan, nan, nan, nan, 0, nan, nan, None, None)
    correct = int(df["correct"].sum())
    low, high = bootstrap_interval(correct, n, seed=seed)
    labels = _labels(df)
    _, _, _, f1 = _f1_parts(df["truth"].to_numpy(object), _answers(df), labels)
    ok = df["ok"].to_numpy(bool)
    errors = int((~ok).sum())
    unknown = int((ok & (df["breed"].to_numpy(object) == UNKNOWN)).sum())
    truth_species = df["truth"].map(_SPECIES)
    answer_species = df["breed"].map(_SPECIES)
    species_right = int((ok & answer_species.notna().to_numpy() & (truth_species == answer_species).to_numpy()).sum())
    latencies = df.loc[df["ok"], "latency_ms"].to_numpy(float)
    p50, p95 = (np.percentile(latencies, [50, 95]) if len(latencies) else (None, None))
    return RunMetrics(
        n=n, correct=correct, accuracy=correct / n, accuracy_low=low, accuracy_high=high,
        macro_f1=float(f1.mean()), unknown_rate=unknown / n, errors=errors, error_rate=errors / n,
        species_accuracy=species_right / n,
        latency_p50_ms=None if p50 is None else float(p50), latency_p95_ms=None if p95 is None else float(p95),
    )


def per_breed(records: Sequence[EvalRecord] | pd.DataFrame) -> tuple[BreedMetrics, ...]:
    """Per true breed: accuracy (recall), precision and F1, in the dataset's class order."""
    df = frame(records)
    labels = _labels(df)
    support, tp, precision, f1 = _f1_parts(df["truth"].to_numpy(object), _answers(df), labels)
    return tuple(
        BreedMetrics(str(b), int(s), int(t), float(t / s) if s else math.nan, float(p), float(f))
        for b, s, t, p, f in zip(labels, support, tp, precision, f1, strict=True)
    )


def confusion(records: Sequence[EvalRecord] | pd.DataFrame, labels: Sequence[str] = BREED_IDS) -> Confusion:
    """Truth x answer counts; answers outside `labels` land in `unknown`, failed requests in `error`."""
    df = frame(records)
    labels = tuple(labels)
    columns = (*labels, UNKNOWN, ERROR)
    index = {label: i for i, label in enumerate(labels)}
    rows = df["truth"].map(index).to_numpy(dtype=float, na_value=np.nan)
    answer = df["breed"].map(index).fillna(len(labels)).to_numpy(dtype=np.int64)
    answer = np.where(df["ok"].to_numpy(bool), answer, len(labels) + 1)
    keep = ~np.isnan(rows)
    flat = rows[keep].astype(np.int64) * len(columns) + answer[keep]
    counts = np.bincount(flat, minlength=len(labels) * len(columns)).reshape(len(labels), len(columns))
    return Confusion(labels, columns, counts)


def mcnemar_exact_p(b: int, c: int) -> float:
    """Exact two-sided McNemar p-value for discordant counts b and c (binomial, p=1/2), e.g. (1, 9) -> 0.0215."""
    if b < 0 or c < 0:
        raise ValueError("discordant counts must be >= 0")
    n = b + c
    if n == 0:
        return 1.0
    tail, term = 0, 1  # term = C(n, i), stepped exactly in integers: C(n, i+1) = C(n, i) * (n-i) / (i+1)
    for i in range(min(b, c) + 1):
        tail += term
        term = term * (n - i) // (i + 1)
    return min(1.0, 2 * tail / 2**n)  # Python divides big integers exactly before rounding to float


def compare(baseline: Sequence[EvalRecord] | pd.DataFrame, tuned: Sequence[EvalRecord] | pd.DataFrame,
            *, seed: int = SEED) -> Comparison:
    """Paired comparison on the photos both runs answered (photo ids must agree on the truth)."""
    a, b = frame(baseline), frame(tuned)
    joined = a[["photo_id", "truth", "correct"]].merge(
        b[["photo_id", "truth", "correct"]], on="photo_id", suffixes=("_a", "_b"), validate="one_to_one")
    mismatch = joined[joined["truth_a"] != joined["truth_b"]]
    if len(mismatch):
        first = mismatch.iloc[0]
        raise ValueError(f"the runs disagree on the truth of {first['photo_id']}: "
                         f"{first['truth_a']} vs {first['truth_b']}; they used different photo sets")
    ra, rb = joined["correct_a"].to_numpy(bool), joined["correct_b"].to_numpy(bool)
    n = len(joined)
    ids = joined["photo_id"].to_numpy(object)
    fixed = tuple(sorted(ids[~ra & rb], key=str.lower))
    broken = tuple(sorted(ids[ra & ~rb], key=str.lower))
    both_right, both_wrong = int((ra & rb).sum()), int((~ra & ~rb).sum())
    if n:
        cells = np.array([both_right, len(fixed), len(broken), both_wrong], dtype=float) / n
        draws = np.random.default_rng(seed).multinomial(n, cells, size=RESAMPLES)
        deltas = (draws[:, 1] - draws[:, 2]) / n
        low, high = (float(x) for x in np.percentile(deltas, [2.5, 97.5]))
        acc_a, acc_b = float(ra.mean()), float(rb.mean())
    else:
        low = high = acc_a = acc_b = math.nan
    return Comparison(
        n=n, baseline_accuracy=acc_a, tuned_accuracy=acc_b, delta=acc_b - acc_a if n else math.nan,
        delta_low=low, delta_high=high, both_right=both_right, both_wrong=both_wrong, fixed=fixed, broken=broken,
        mcnemar_p=mcnemar_exact_p(len(broken), len(fixed)),
        only_baseline=len(a) - n, only_tuned=len(b) - n,
    )
