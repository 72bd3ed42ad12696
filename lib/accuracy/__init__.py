"""Accuracy: the harness asks a backend about labelled photos, records every answer, and counts figures."""

from lib.accuracy.harness import EvalJob, EvalOptions, EvalResult, Progress, evaluate, run_evaluation
from lib.accuracy.metrics import (
    ERROR,
    BreedMetrics,
    Comparison,
    Confusion,
    RunMetrics,
    bootstrap_interval,
    compare,
    confusion,
    frame,
    mcnemar_exact_p,
    per_breed,
    summarize,
)
from lib.accuracy.records import (
    EvalRecord,
    RecordWriter,
    ResultsRoot,
    RunInfo,
    RunRecords,
    finished,
    git_commit,
    new_run_id,
    parse_records,
)
from lib.accuracy.report import (
    ComparisonView,
    RunView,
    answer_text,
    compare_runs,
    comparison_frame,
    confusion_figure,
    default_pair,
    format_points,
    headline_rows,
    html_report,
    load_run,
    per_breed_figure,
    photo_path,
    records_csv,
    side_answer,
)

__all__ = [
    "EvalJob", "EvalOptions", "EvalResult", "Progress", "evaluate", "run_evaluation",
    "ERROR", "BreedMetrics", "Comparison", "Confusion", "RunMetrics", "bootstrap_interval", "compare", "confusion",
    "frame", "mcnemar_exact_p", "per_breed", "summarize",
    "EvalRecord", "RecordWriter", "ResultsRoot", "RunInfo", "RunRecords", "finished", "git_commit", "new_run_id",
    "parse_records",
    "ComparisonView", "RunView", "answer_text", "compare_runs", "comparison_frame", "confusion_figure",
    "default_pair", "format_points", "headline_rows", "html_report", "load_run", "per_breed_figure", "photo_path",
    "records_csv", "side_answer",
]
