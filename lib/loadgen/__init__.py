"""The load generator: what to send (`schedule`), how (`engine`), records (`records`), meaning (`summary`).

plan = LoadPlan(url=chat_url("http://127.0.0.1:8100/v1"), model="pets-tuned",
                profile=LoadProfile(mode="poisson", rate_rps=20, duration_s=30),
                payloads=tuple(prepare_payloads(pets_dir, "pets-tuned")), out_path=Path("run.jsonl"))
result = asyncio.run(run_load(plan))          # or load_job(LoadRun(plan)).start() from a page
"""

from lib.loadgen.engine import (
    ClientKind,
    LoadPlan,
    LoadResult,
    LoadRun,
    Payload,
    backend_headers,
    chat_url,
    load_job,
    make_sender,
    prepare_payloads,
    run_load,
    text_payload,
)
from lib.loadgen.merge import measured_window, merge_files, summarize_file
from lib.loadgen.rawhttp import RawSender
from lib.loadgen.records import RecordWriter, RequestRecord, RunFile, RunHeader, read_run
from lib.loadgen.schedule import (
    MAX_SCHEDULED,
    MODES,
    LoadProfile,
    Mode,
    Ramp,
    arrival_offsets_s,
    concurrency_share,
    parse_ramp,
    rate_at_rps,
    task_share,
)
from lib.loadgen.send import Sender, SendResult, status_error
from lib.loadgen.store import list_saved_runs, local_records_dir, save_run
from lib.loadgen.summary import LAG_LIMIT_MS, RATE_FLOOR, LoadSummary, Percentiles, TimelineBin, summarize, timeline

__all__ = [
    # engine: how to send it
    "ClientKind", "LoadPlan", "LoadResult", "LoadRun", "Payload", "backend_headers", "chat_url", "load_job",
    "make_sender", "prepare_payloads", "run_load", "text_payload",
    # senders: one POST, never raising
    "RawSender", "Sender", "SendResult", "status_error",
    # schedule: what to send, when
    "MAX_SCHEDULED", "MODES", "LoadProfile", "Mode", "Ramp", "arrival_offsets_s", "concurrency_share", "parse_ramp",
    "rate_at_rps", "task_share",
    # records and their files
    "RecordWriter", "RequestRecord", "RunFile", "RunHeader", "read_run",
    "measured_window", "merge_files", "summarize_file",
    "list_saved_runs", "local_records_dir", "save_run",
    # summary: what it means
    "LAG_LIMIT_MS", "RATE_FLOOR", "LoadSummary", "Percentiles", "TimelineBin", "summarize", "timeline",
]
