"""`python -m lib loadgen ...`: run a load, `loadgen merge` the tasks of a job, `loadgen job --dry-run`.

Each command is a thin wrapper: build a plan, call the engine or the merge function, print a short
table and one JSON object as the last line.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import glob
import json
import signal
import sys
from pathlib import Path
from typing import Any

from lib.data import default_data_dir
from lib.errors import UserError
from lib.loadgen.engine import (
    LoadPlan,
    LoadRun,
    Payload,
    backend_headers,
    chat_url,
    prepare_payloads,
    text_payload,
)
from lib.loadgen.merge import merge_files, summarize_file
from lib.loadgen.schedule import LoadProfile, parse_ramp
from lib.loadgen.summary import LoadSummary
from lib.settings import load_settings

__all__ = ["add_commands", "plan_from_args", "format_summary"]


def _positive_float(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None


def add_load_options(parser: argparse.ArgumentParser) -> None:
    """The options of a load run (shared by `loadgen` and `loadgen job`)."""
    target = parser.add_argument_group("target")
    target.add_argument("--url", help="base URL ending /v1 (or the full /chat/completions URL)")
    target.add_argument("--model", help="model name to put in each request")
    target.add_argument("--backend",
                        help="a backend name (models.toml or Cloud Run discovery) instead of --url/--model")
    target.add_argument("--images", help="folder of photos to send (default: PETS_DIR, data/pets, ../shared/pets)")
    target.add_argument("--max-images", type=int, help="use only the first N photos")
    target.add_argument(
        "--max-side", type=int, help="longest side of the photos sent, px (default MAX_IMAGE_SIDE)"
    )
    target.add_argument("--text", action="store_true", help="send a tiny text-only request instead of photos")
    target.add_argument(
        "--constrained", action="store_true", help="ask for the JSON-schema constrained answer"
    )
    load = parser.add_argument_group("load")
    load.add_argument("--mode", choices=["constant", "poisson", "concurrency"], default="poisson")
    load.add_argument("--rate", type=_positive_float, help="requests per second (open loop)")
    load.add_argument("--ramp", help="linear:FROM:TO:SECONDS, e.g. linear:5:100:60")
    load.add_argument("--concurrency", type=int, help="closed-loop workers (mode concurrency)")
    load.add_argument(
        "--duration", type=_positive_float, default=60.0, help="seconds after warm-up (default 60)"
    )
    load.add_argument(
        "--warmup", type=_positive_float, default=0.0, help="seconds sent first and left out of figures"
    )
    load.add_argument("--max-requests", type=int, help="stop after N requests")
    load.add_argument("--seed", type=int, default=0, help="schedule seed (all tasks of a job must share it)")
    load.add_argument("--timeout", type=_positive_float, default=60.0, help="per-request timeout in seconds")
    load.add_argument("--max-connections", type=int, default=1024)
    load.add_argument(
        "--spin-wait",
        action="store_true",
        help="busy-wait the last 2 ms before each send: exact on an idle core, worse on a shared one",
    )
    load.add_argument(
        "--client",
        choices=["auto", "raw", "aiohttp", "httpx"],
        default="auto",
        help="auto: the raw client for http://, aiohttp for https://; httpx: the project's shared client",
    )
    split = parser.add_argument_group("split across Cloud Run Job tasks")
    split.add_argument("--task-index", type=int, help="default: CLOUD_RUN_TASK_INDEX or 0")
    split.add_argument("--task-count", type=int, help="default: CLOUD_RUN_TASK_COUNT or 1")


def add_commands(sub: argparse._SubParsersAction) -> None:
    """Register `loadgen` (run), `loadgen merge` and `loadgen job`."""
    parser = sub.add_parser(
        "loadgen",
        help="send load (open or closed loop) and record every request",
        description="Send load to an OpenAI-compatible endpoint and record every request.",
    )
    add_load_options(parser)
    parser.add_argument("--out", help="records file (JSONL); {task} is replaced by the task index")
    parser.set_defaults(func=run_command)
    commands = parser.add_subparsers(dest="loadgen_command", metavar="SUBCOMMAND")
    merge = commands.add_parser("merge", help="one summary from the records files of a job's tasks")
    merge.add_argument("files", nargs="+", help="records files (globs allowed)")
    merge.set_defaults(func=merge_command)
    job = commands.add_parser("job", help="the Cloud Run Job that runs this load on N tasks (dry run)")
    add_load_options(job)
    job.add_argument("--dry-run", action="store_true", required=True, help="print the gcloud commands")
    job.add_argument("--name", default="pets-loadgen")
    job.add_argument("--image", required=True, help="container image holding this project")
    job.add_argument("--tasks", type=int, default=2, help="parallel tasks; the rate is split across them")
    job.add_argument("--region")
    job.add_argument("--project")
    job.add_argument("--bucket", help="bucket mounted at /results for the records")
    job.set_defaults(func=job_command)


def _target(args: argparse.Namespace) -> tuple[str, str, dict[str, str]]:
    if args.backend:
        from lib.registry import resolve_backend

        backend = resolve_backend(args.backend)
        headers = asyncio.run(backend_headers(backend))
        return chat_url(backend.base_url), args.model or backend.model, headers
    if not args.url or not args.model:
        raise UserError("give --url URL and --model NAME (or --backend NAME from models.toml)")
    return chat_url(args.url), args.model, {}


def profile_from_args(args: argparse.Namespace) -> LoadProfile:
    """The load shape asked for on the command line; bad values raise `UserError`."""
    if args.rate is not None and args.ramp:
        raise UserError("give either --rate or --ramp, not both")
    if args.mode == "concurrency" and (args.rate is not None or args.ramp):
        raise UserError("mode concurrency is closed loop: use --concurrency C, not --rate/--ramp")
    return LoadProfile(
        mode=args.mode,
        rate_rps=args.rate,
        ramp=parse_ramp(args.ramp) if args.ramp else None,
        concurrency=args.concurrency,
        duration_s=args.duration,
        warmup_s=args.warmup,
        max_requests=args.max_requests,
        seed=args.seed,
    )


def payloads_from_args(args: argparse.Namespace, model: str) -> tuple[Payload, ...]:
    settings = load_settings()
    if args.text:
        return (text_payload(model),)
    folder = args.images or default_data_dir(settings.pets_dir)
    max_side = args.max_side or settings.max_image_side
    if not 16 <= max_side <= 4096:
        raise UserError(f"--max-side must be between 16 and 4096 px, got {max_side}")
    return tuple(
        prepare_payloads(
            folder, model, max_side=max_side, constrained=args.constrained, limit=args.max_images
        )
    )


def plan_from_args(args: argparse.Namespace) -> LoadPlan:
    """Everything decided before the clock: target, shape, encoded photos, task share, output file."""
    profile = profile_from_args(args)  # cheap checks first, before encoding photos
    url, model, headers = _target(args)
    settings = load_settings()
    index = settings.task_index if args.task_index is None else args.task_index
    count = settings.task_count if args.task_count is None else args.task_count
    if not args.out:
        raise UserError("give --out FILE for the records (JSONL)")
    out = args.out.replace("{task}", str(index))
    if count > 1 and "{task}" not in args.out:
        p = Path(out)
        out = str(p.with_name(f"{p.stem}-task{index}{p.suffix}"))
    return LoadPlan(
        url=url,
        model=model,
        profile=profile,
        payloads=payloads_from_args(args, model),
        out_path=Path(out),
        task_index=index,
        task_count=count,
        timeout_s=args.timeout,
        max_connections=args.max_connections,
        client=args.client,
        headers=headers,
        spin_wait=args.spin_wait,
    )


def format_summary(s: LoadSummary) -> str:
    """A few human lines; the JSON follows."""
    lines = [
        f"requests: {s.requests_sent} sent, {s.requests_ok} ok, {s.requests_failed} failed"
        + (f", {s.requests_interrupted} interrupted" if s.requests_interrupted else "")
        + (f" ({s.warmup_excluded} warm-up left out)" if s.warmup_excluded else "")
    ]
    if s.target_rate_rps is not None:
        lines.append(
            f"rate: target {s.target_rate_rps:.1f}/s, achieved {s.achieved_rate_rps:.1f}/s "
            f"({(s.achieved_fraction or 0):.1%}), ok {s.ok_rate_rps:.1f}/s"
        )
    else:
        lines.append(f"rate: achieved {s.achieved_rate_rps:.1f}/s, ok {s.ok_rate_rps:.1f}/s")
    for label, p in (("latency", s.latency_ms), ("ttfb", s.ttfb_ms), ("schedule lag", s.schedule_lag_ms)):
        if p is not None:
            lines.append(
                f"{label} ms: p50 {p.p50_ms:.1f}  p90 {p.p90_ms:.1f}  p95 {p.p95_ms:.1f}  "
                f"p99 {p.p99_ms:.1f}  max {p.max_ms:.1f}"
            )
    if s.errors_by_kind:
        lines.append(
            "errors: "
            + ", ".join(
                f"{k} {v} (e.g. {s.error_examples.get(k, '')[:80]})" for k, v in s.errors_by_kind.items()
            )
        )
    lines += [f"warning: {w}" for w in s.warnings]
    return "\n".join(lines)


def _emit(summary: LoadSummary, **extra: Any) -> None:
    print(format_summary(summary))
    print(json.dumps({**extra, **summary.to_dict()}))


def run_command(args: argparse.Namespace) -> int:
    """`loadgen`: run one task's share of the load; Ctrl-C stops it and keeps what was recorded."""
    plan = plan_from_args(args)
    run = LoadRun(plan)
    planned = "closed loop" if run.schedule_s is None else f"{run.schedule_s.size} requests"
    print(
        f"loadgen: {planned} to {plan.url} (model {plan.model}, "
        f"task {plan.task_index + 1}/{plan.task_count}, "
        f"{len(plan.payloads)} payloads); records -> {plan.out_path}",
        file=sys.stderr,
    )

    async def main() -> None:
        loop = asyncio.get_running_loop()
        with contextlib.suppress(NotImplementedError, RuntimeError):  # not the main thread, or no signals here
            loop.add_signal_handler(signal.SIGINT, run.stop)
        await run.run()

    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        run.stop()
    summary = summarize_file(plan.out_path) if run.stopped else run.summary()
    _emit(
        summary, records_path=str(plan.out_path), url=plan.url, model=plan.model, task_index=plan.task_index
    )
    if run.stopped:
        print("interrupted: the records so far are kept and summarised above", file=sys.stderr)
        return 130
    return 0


def merge_command(args: argparse.Namespace) -> int:
    """`loadgen merge`: one summary for all tasks of a job."""
    paths: list[str] = []
    for pattern in args.files:
        matches = sorted(glob.glob(pattern))
        paths += matches or [pattern]
    summary, notes = merge_files(paths)
    for note in notes:
        print(f"note: {note}", file=sys.stderr)
    _emit(summary, files=paths, notes=notes)
    return 0


# Cloud Run sets CLOUD_RUN_TASK_INDEX/COUNT in each task; a forwarded value would give every task the same share.
NOT_FORWARDED = frozenset({"task_index", "task_count"})
IMAGE_PHOTOS = "/app/pets"  # where the job's image is expected to hold photos when --images is not given


def load_option_actions() -> list[argparse.Action]:
    """The load options as `add_load_options` defines them (the one list `loadgen job` forwards from)."""
    parser = argparse.ArgumentParser(add_help=False)
    add_load_options(parser)
    return [action for action in parser._actions if action.option_strings]  # argparse has no public list


def _arg_text(value: object) -> str:
    if isinstance(value, float):  # exact, and short for whole numbers: 60.0 -> "60", 0.1 -> "0.1"
        return str(int(value)) if value.is_integer() else repr(value)
    return str(value)


def forwarded_load_args(args: argparse.Namespace) -> list[str]:
    """The `loadgen` options each task of the job runs with: every load option that has a value."""
    argv: list[str] = []
    for action in load_option_actions():
        if action.dest in NOT_FORWARDED:
            continue
        flag = max(action.option_strings, key=len)
        value = getattr(args, action.dest)
        if action.dest == "images" and value is None and not args.text:
            value = IMAGE_PHOTOS
        if action.nargs == 0:  # a switch (store_true and the like): present when it is not at its default
            if value != action.default:
                argv.append(flag)
        elif isinstance(action, argparse._AppendAction):
            for item in value or []:
                argv += [flag, _arg_text(item)]
        elif action.nargs is None or action.nargs == "?":
            if value is not None:
                argv += [flag, _arg_text(value)]
        else:  # fail at the dry run rather than drop the option from N cloud tasks
            raise TypeError(f"loadgen job cannot forward {flag} (nargs={action.nargs!r}); teach forwarded_load_args")
    return argv


def job_command(args: argparse.Namespace) -> int:
    """`loadgen job --dry-run`: the gcloud commands for an N-task load job (records to a mounted bucket)."""
    from lib.cloudrun import JobSpec, bucket_volume, build_spec, format_command, render_job_create, render_job_execute

    profile_from_args(args)  # fail here, not in N cloud tasks
    if args.max_side is not None and not 16 <= args.max_side <= 4096:  # the tasks' check, in payloads_from_args
        raise UserError(f"--max-side must be between 16 and 4096 px, got {args.max_side}")
    if args.tasks < 1:
        raise UserError("--tasks must be at least 1")
    settings = load_settings()
    load_args = ["loadgen", *forwarded_load_args(args), "--out", "/results/loadgen/" + args.name + "-{task}.jsonl"]
    volumes = (
        [bucket_volume("results", args.bucket, "/results", read_only=False, flag="--bucket")] if args.bucket else []
    )
    spec = build_spec(
        JobSpec,
        name=args.name,
        image=args.image,
        project=args.project or settings.google_cloud_project,
        region=args.region or settings.region,
        tasks=args.tasks,
        parallelism=args.tasks,
        max_retries=0,
        command=["python", "-m", "lib"],
        args=load_args,
        volumes=volumes,
    )
    create = format_command(render_job_create(spec))
    execute = format_command(render_job_execute(spec))
    print(
        f"# each task reads CLOUD_RUN_TASK_INDEX/COUNT and sends 1/{args.tasks} of the schedule\n{create}\n\n"
        f"{execute}\n\n# then: python -m lib loadgen merge 'results/loadgen/{args.name}-*.jsonl'"
    )
    print(
        json.dumps({"dry_run": True, "create": render_job_create(spec), "execute": render_job_execute(spec)})
    )
    return 0
