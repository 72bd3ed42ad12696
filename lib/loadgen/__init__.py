"""The load generator: what to send (`schedule`), how (`engine`), records (`records`), meaning (`summary`).

plan = LoadPlan(url=chat_url("http://127.0.0.1:8100/v1"), model="pets-tuned",
                profile=LoadProfile(mode="poisson", rate_rps=20, duration_s=30),
                payloads=tuple(prepare_payloads(pets_dir, "pets-tuned")), out_path=Path("run.jsonl"))
result = asyncio.run(run_load(plan))          # or load_job(LoadRun(plan)).start() from a page
"""

from lib.loadgen.engine import (
    LoadPlan,
    LoadResult,
    LoadRun,
    Payload,
    chat_url,
    load_job,
    prepare_payloads,
    run_load,
    text_payload,
)
from lib.loadgen.merge import merge_files, summarize_file
from lib.loadgen.records import RequestRecord, RunHeader, read_run
from lib.loadgen.schedule import LoadProfile, Ramp, arrival_offsets_s, parse_ramp, rate_at_rps, task_share
from lib.loadgen.store import list_saved_runs, local_records_dir, save_run
from lib.loadgen.summary import LoadSummary, Percentiles, TimelineBin, summarize, timeline

__all__ = [
    "LoadPlan",
    "LoadResult",
    "LoadRun",
    "Payload",
    "chat_url",
    "load_job",
    "prepare_payloads",
    "run_load",
    "text_payload",
    "merge_files",
    "summarize_file",
    "RequestRecord",
    "RunHeader",
    "read_run",
    "list_saved_runs",
    "local_records_dir",
    "save_run",
    "LoadProfile",
    "Ramp",
    "arrival_offsets_s",
    "parse_ramp",
    "rate_at_rps",
    "task_share",
    "LoadSummary",
    "Percentiles",
    "TimelineBin",
    "summarize",
    "timeline",
]
