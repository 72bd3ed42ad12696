"""Accuracy: the harness asks a backend about labelled photos, records every answer, and counts figures."""

from lib.accuracy.catalog import Catalog, catalog, how_made
from lib.accuracy.harness import EvalOptions, EvalResult, Progress, evaluate, evaluation_job, run_evaluation
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
    RunInfo,
    RunRecords,
    finished,
    git_commit,
    has_run,
    list_runs,
    parse_records,
    read_info,
    read_records,
    write_info,
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
    "Catalog", "catalog", "how_made",
    "EvalOptions", "EvalResult", "Progress", "evaluate", "evaluation_job", "run_evaluation",
    "ERROR", "BreedMetrics", "Comparison", "Confusion", "RunMetrics", "bootstrap_interval", "compare", "confusion",
    "frame", "mcnemar_exact_p", "per_breed", "summarize",
    "EvalRecord", "RecordWriter", "RunInfo", "RunRecords", "finished", "git_commit", "has_run", "list_runs",
    "parse_records", "read_info", "read_records", "write_info",
    "ComparisonView", "RunView", "answer_text", "compare_runs", "comparison_frame", "confusion_figure",
    "default_pair", "format_points", "headline_rows", "html_report", "load_run", "per_breed_figure", "photo_path",
    "records_csv", "side_answer",
]
