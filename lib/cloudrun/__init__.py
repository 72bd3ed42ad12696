"""Cloud Run: service and job specs (rendered as gcloud commands or applied through `run_v2`),
discovery of deployed model services, cold-start measurement and job submission.

Importing it loads the Admin API client library (`google-cloud-run`); code that only sometimes talks to
Cloud Run imports from here inside the function that does.
"""

from lib.cloudrun.admin import (
    Clients,
    ExecutionInfo,
    JobInfo,
    ServiceInfo,
    apply_job,
    apply_service,
    follow_execution,
    get_execution,
    job_message,
    list_executions,
    list_jobs,
    list_services,
    make_clients,
    run_job,
    service_message,
)
from lib.cloudrun.cli import add_job_arguments  # the job flags `finetune submit` shares
from lib.cloudrun.coldstart import (
    COLD_START_RETRY,
    ColdStartResult,
    load_cold_starts,
    measure_cold_start,
    measure_cold_start_sync,
    save_cold_start,
)
from lib.cloudrun.dashboard import dashboard_spec, render_dashboard_deploy, run_gcloud
from lib.cloudrun.discovery import (
    DiscoveredService,
    ServedModel,
    discover,
    discover_cached,
    discovery_regions,
    probe_services,
    to_backends,
)
from lib.cloudrun.gcloud import (
    format_command,
    probe_flag,
    render_deploy,
    render_job_create,
    render_job_execute,
    split_list,
)
from lib.cloudrun.jobs import (
    FinetuneJobOptions,
    bucket_volume,
    finetune_spec,
    parse_pairs,
    parse_volumes,
    submit_job,
)
from lib.cloudrun.specs import (
    GPU_TYPES,
    BucketVolume,
    GpuType,
    JobSpec,
    ProbeSpec,
    ServiceSpec,
    SpecError,
    build_spec,
    max_num_seqs_from_args,
    memory_gib,
)

__all__ = [
    # specs: validated before anything is sent to Google
    "GPU_TYPES", "BucketVolume", "GpuType", "JobSpec", "ProbeSpec", "ServiceSpec", "SpecError", "build_spec",
    "max_num_seqs_from_args", "memory_gib",
    # the same specs as the exact gcloud argv (dry run)
    "format_command", "probe_flag", "render_deploy", "render_job_create", "render_job_execute", "split_list",
    # the Admin API
    "Clients", "ExecutionInfo", "JobInfo", "ServiceInfo", "apply_job", "apply_service", "follow_execution",
    "get_execution", "job_message", "list_executions", "list_jobs", "list_services", "make_clients", "run_job",
    "service_message",
    # jobs: submit and follow; the Gemma training job
    "FinetuneJobOptions", "bucket_volume", "finetune_spec", "parse_pairs", "parse_volumes", "submit_job",
    "add_job_arguments",
    # discovery of model services
    "DiscoveredService", "ServedModel", "discover", "discover_cached", "discovery_regions", "probe_services",
    "to_backends",
    # cold starts
    "COLD_START_RETRY", "ColdStartResult", "load_cold_starts", "measure_cold_start", "measure_cold_start_sync",
    "save_cold_start",
    # the dashboard as a Cloud Run service
    "dashboard_spec", "render_dashboard_deploy", "run_gcloud",
]
