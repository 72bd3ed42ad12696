"""Local stand-ins for Google, speaking the real wire formats on loopback.

- `FakeCloudRun`: a gRPC server implementing `google.cloud.run.v2` Services, Jobs and Executions
  with the real protobuf messages from google-cloud-run (no servicer stubs ship, so it is a
  generic handler), paging, long-running operations already done, 403 and 404 projects.
- `ModelServers`: one aiohttp server with a Google-style token endpoint (JWT-bearer grant ->
  `{"id_token": ...}`) and many "services" under path prefixes, each with a behaviour: vLLM-like
  `/v1/models` with adapters, slow, 403, 404; plus a chat endpoint that is 503 while "cold".
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable

import grpc
import proto
from aiohttp import web
from google.cloud import run_v2
from google.iam.v1 import iam_policy_pb2, policy_pb2
from google.longrunning import operations_pb2
from google.protobuf import any_pb2

PROJECT = "test-project"
REGIONS = ["europe-west4", "us-central1", "asia-southeast1"]
FORBIDDEN_PROJECT = "forbidden-project"
MISSING_PROJECT = "missing-project"


def _serialize(message: Any) -> bytes:
    return type(message).serialize(message) if isinstance(message, proto.Message) else message.SerializeToString()


def _done_operation(name: str, response: proto.Message, metadata: proto.Message) -> operations_pb2.Operation:
    packed_response, packed_metadata = any_pb2.Any(), any_pb2.Any()
    packed_response.Pack(type(response).pb(response))
    packed_metadata.Pack(type(metadata).pb(metadata))
    return operations_pb2.Operation(name=name, done=True, response=packed_response, metadata=packed_metadata)


class FakeCloudRun:
    """The Cloud Run Admin API v2 over gRPC on 127.0.0.1; state lives in plain dicts for assertions."""

    def __init__(self) -> None:
        self.services: dict[str, run_v2.Service] = {}
        self.jobs: dict[str, run_v2.Job] = {}
        self.executions: dict[str, run_v2.Execution] = {}
        self.policies: dict[str, policy_pb2.Policy] = {}
        self.calls: list[tuple[str, Any]] = []
        self.execution_steps = 3  # GetExecution calls until an execution finishes
        self.fail_tasks = 0
        self._lock = threading.Lock()
        self._server = grpc.server(ThreadPoolExecutor(max_workers=8))
        self._server.add_generic_rpc_handlers(self._handlers())
        self.port = self._server.add_insecure_port("127.0.0.1:0")

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> "FakeCloudRun":
        self._server.start()
        return self

    def stop(self) -> None:
        self._server.stop(grace=None)

    # --- helpers for tests -------------------------------------------------------------------

    def add_service(
        self, project: str, region: str, name: str, *, url: str, gpu_type: str | None = None,
        labels: dict[str, str] | None = None, min_instances: int = 0, max_instances: int = 3,
        concurrency: int = 8, image: str = "europe-docker.pkg.dev/p/serving/vllm-gemma:1",
    ) -> None:
        limits = {"cpu": "8" if gpu_type else "1", "memory": "32Gi" if gpu_type else "512Mi"}
        template = run_v2.RevisionTemplate(
            scaling=run_v2.RevisionScaling(min_instance_count=min_instances, max_instance_count=max_instances),
            max_instance_request_concurrency=concurrency,
            containers=[run_v2.Container(image=image, resources=run_v2.ResourceRequirements(limits=limits))],
        )
        if gpu_type:
            template.containers[0].resources.limits["nvidia.com/gpu"] = "1"
            template.node_selector = run_v2.NodeSelector(accelerator=gpu_type)
        full = f"projects/{project}/locations/{region}/services/{name}"
        self.services[full] = self._ready(run_v2.Service(name=full, template=template, labels=labels or {}, uri=url))

    @staticmethod
    def _ready(service: run_v2.Service) -> run_v2.Service:
        service.terminal_condition = run_v2.Condition(type_="Ready", state=run_v2.Condition.State.CONDITION_SUCCEEDED)
        service.latest_ready_revision = f"{service.name}/revisions/{service.name.split('/')[-1]}-00001-abc"
        return service

    # --- gRPC plumbing -----------------------------------------------------------------------

    def _handlers(self) -> list[grpc.GenericRpcHandler]:
        def unary(fn: Callable[[Any, grpc.ServicerContext], Any], request_type: Any) -> grpc.RpcMethodHandler:
            deserialize = request_type.deserialize if hasattr(request_type, "deserialize") else request_type.FromString

            def handle(request: Any, context: grpc.ServicerContext) -> Any:
                with self._lock:
                    self.calls.append((fn.__name__, request))
                return fn(request, context)

            return grpc.unary_unary_rpc_method_handler(
                handle, request_deserializer=deserialize, response_serializer=_serialize)

        return [
            grpc.method_handlers_generic_handler("google.cloud.run.v2.Services", {
                "ListServices": unary(self.ListServices, run_v2.ListServicesRequest),
                "GetService": unary(self.GetService, run_v2.GetServiceRequest),
                "CreateService": unary(self.CreateService, run_v2.CreateServiceRequest),
                "UpdateService": unary(self.UpdateService, run_v2.UpdateServiceRequest),
                "GetIamPolicy": unary(self.GetIamPolicy, iam_policy_pb2.GetIamPolicyRequest),
                "SetIamPolicy": unary(self.SetIamPolicy, iam_policy_pb2.SetIamPolicyRequest),
            }),
            grpc.method_handlers_generic_handler("google.cloud.run.v2.Jobs", {
                "CreateJob": unary(self.CreateJob, run_v2.CreateJobRequest),
                "GetJob": unary(self.GetJob, run_v2.GetJobRequest),
                "UpdateJob": unary(self.UpdateJob, run_v2.UpdateJobRequest),
                "ListJobs": unary(self.ListJobs, run_v2.ListJobsRequest),
                "RunJob": unary(self.RunJob, run_v2.RunJobRequest),
            }),
            grpc.method_handlers_generic_handler("google.cloud.run.v2.Executions", {
                "GetExecution": unary(self.GetExecution, run_v2.GetExecutionRequest),
                "ListExecutions": unary(self.ListExecutions, run_v2.ListExecutionsRequest),
            }),
        ]

    @staticmethod
    def _check_project(resource: str, context: grpc.ServicerContext) -> None:
        project = resource.split("/")[1] if resource.startswith("projects/") else ""
        if project == FORBIDDEN_PROJECT:
            context.abort(grpc.StatusCode.PERMISSION_DENIED,
                          f"Permission 'run.services.list' denied on resource '{resource}'")
        if project == MISSING_PROJECT:
            context.abort(grpc.StatusCode.NOT_FOUND, f"Project '{project}' not found")

    @staticmethod
    def _page(items: list[Any], page_size: int, token: str) -> tuple[list[Any], str]:
        size = page_size or 100
        start = int(token or 0)
        end = start + size
        return items[start:end], (str(end) if end < len(items) else "")

    # --- Services ----------------------------------------------------------------------------

    def ListServices(self, request: run_v2.ListServicesRequest, context: grpc.ServicerContext) -> Any:
        self._check_project(request.parent, context)
        prefix = request.parent + "/services/"
        items = [s for n, s in sorted(self.services.items()) if n.startswith(prefix)]
        page, token = self._page(items, request.page_size, request.page_token)
        return run_v2.ListServicesResponse(services=page, next_page_token=token)

    def GetService(self, request: run_v2.GetServiceRequest, context: grpc.ServicerContext) -> Any:
        self._check_project(request.name, context)
        if request.name not in self.services:
            context.abort(grpc.StatusCode.NOT_FOUND, f"Resource '{request.name}' was not found")
        return self.services[request.name]

    def _store_service(self, service: run_v2.Service) -> Any:
        _, project, _, region, _, sid = service.name.split("/")
        service.uri = service.uri or f"https://{sid}-123456789.{region}.run.app"
        self.services[service.name] = self._ready(service)
        return _done_operation(f"projects/{project}/locations/{region}/operations/op-{sid}", service, service)

    def CreateService(self, request: run_v2.CreateServiceRequest, context: grpc.ServicerContext) -> Any:
        self._check_project(request.parent, context)
        service = request.service
        service.name = f"{request.parent}/services/{request.service_id}"
        return self._store_service(service)

    def UpdateService(self, request: run_v2.UpdateServiceRequest, context: grpc.ServicerContext) -> Any:
        self._check_project(request.service.name, context)
        return self._store_service(request.service)

    def GetIamPolicy(self, request: Any, context: grpc.ServicerContext) -> Any:
        return self.policies.get(request.resource, policy_pb2.Policy())

    def SetIamPolicy(self, request: Any, context: grpc.ServicerContext) -> Any:
        self.policies[request.resource] = request.policy
        return request.policy

    # --- Jobs and executions -----------------------------------------------------------------

    def CreateJob(self, request: run_v2.CreateJobRequest, context: grpc.ServicerContext) -> Any:
        self._check_project(request.parent, context)
        job = request.job
        job.name = f"{request.parent}/jobs/{request.job_id}"
        self.jobs[job.name] = job
        return _done_operation(f"{request.parent}/operations/op-{request.job_id}", job, job)

    def GetJob(self, request: run_v2.GetJobRequest, context: grpc.ServicerContext) -> Any:
        self._check_project(request.name, context)
        if request.name not in self.jobs:
            context.abort(grpc.StatusCode.NOT_FOUND, f"Resource '{request.name}' was not found")
        return self.jobs[request.name]

    def UpdateJob(self, request: run_v2.UpdateJobRequest, context: grpc.ServicerContext) -> Any:
        self.jobs[request.job.name] = request.job
        return _done_operation(f"{request.job.name}/operations/update", request.job, request.job)

    def ListJobs(self, request: run_v2.ListJobsRequest, context: grpc.ServicerContext) -> Any:
        self._check_project(request.parent, context)
        items = [j for n, j in sorted(self.jobs.items()) if n.startswith(request.parent + "/jobs/")]
        page, token = self._page(items, request.page_size, request.page_token)
        return run_v2.ListJobsResponse(jobs=page, next_page_token=token)

    def RunJob(self, request: run_v2.RunJobRequest, context: grpc.ServicerContext) -> Any:
        if request.name not in self.jobs:
            context.abort(grpc.StatusCode.NOT_FOUND, f"Resource '{request.name}' was not found")
        job = self.jobs[request.name]
        count = len([e for e in self.executions if e.startswith(request.name + "/")]) + 1
        tasks = request.overrides.task_count or job.template.task_count
        execution = run_v2.Execution(
            name=f"{request.name}/executions/{request.name.split('/')[-1]}-{count:05d}",
            job=request.name.split("/")[-1],
            task_count=tasks, create_time=dt.datetime.now(dt.timezone.utc),
            log_uri=f"https://console.cloud.google.com/logs/viewer?execution={count}",
        )
        self.executions[execution.name] = execution
        job.latest_created_execution = run_v2.ExecutionReference(name=execution.name)
        return _done_operation(f"{request.name}/operations/run-{count}", execution, execution)

    def _advance(self, execution: run_v2.Execution) -> None:
        """Each read moves an execution along: pending -> running -> done after `execution_steps` reads."""
        steps = int(execution.annotations.get("reads", "0")) + 1
        execution.annotations["reads"] = str(steps)
        now = dt.datetime.now(dt.timezone.utc)
        if steps == 1:
            return
        if not execution.start_time:
            execution.start_time = now
        if steps < self.execution_steps:
            execution.running_count = execution.task_count
            return
        execution.running_count = 0
        execution.failed_count = min(self.fail_tasks, execution.task_count)
        execution.succeeded_count = execution.task_count - execution.failed_count
        execution.completion_time = now

    def GetExecution(self, request: run_v2.GetExecutionRequest, context: grpc.ServicerContext) -> Any:
        if request.name not in self.executions:
            context.abort(grpc.StatusCode.NOT_FOUND, f"Resource '{request.name}' was not found")
        execution = self.executions[request.name]
        if not execution.completion_time:
            self._advance(execution)
        return execution

    def ListExecutions(self, request: run_v2.ListExecutionsRequest, context: grpc.ServicerContext) -> Any:
        self._check_project(request.parent, context)
        items = [e for n, e in sorted(self.executions.items(), reverse=True) if n.startswith(request.parent + "/")]
        page, token = self._page(items, request.page_size, request.page_token)
        return run_v2.ListExecutionsResponse(executions=page, next_page_token=token)


# --- HTTP side: token endpoint and model servers ---------------------------------------------------


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _claims(jwt: str) -> dict[str, Any]:
    payload = jwt.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def fake_id_token(audience: str) -> str:
    """A JWT-shaped token (unsigned) naming `audience`, as Google's token endpoint would return."""
    now = int(time.time())
    header = _b64(json.dumps({"alg": "RS256", "typ": "JWT"}).encode())
    claims = _b64(json.dumps({"aud": audience, "iss": "https://accounts.google.com", "iat": now,
                              "exp": now + 3600, "email": "sa@test-project.iam.gserviceaccount.com"}).encode())
    return f"{header}.{claims}.{_b64(b'signature')}"


def write_service_account(path: Path, token_uri: str) -> Path:
    """A service-account key file (fresh RSA key) whose token_uri points at the local token endpoint."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    path.write_text(json.dumps({
        "type": "service_account", "project_id": "test-project", "private_key_id": "k1", "private_key": pem,
        "client_email": "sa@test-project.iam.gserviceaccount.com", "client_id": "1", "token_uri": token_uri,
    }))
    return path


def vllm_models(base: str, adapters: list[str]) -> dict[str, Any]:
    """`/v1/models` as vLLM answers it with `--enable-lora --lora-modules name=path ...`."""
    data = [{"id": base, "object": "model", "owned_by": "vllm", "root": f"/models/{base}", "parent": None}]
    data += [{"id": a, "object": "model", "owned_by": "vllm", "root": f"/adapters/{a}", "parent": base}
             for a in adapters]
    return {"object": "list", "data": data}


class ModelServers:
    """One aiohttp server on loopback: `/token` plus services at `/<svc>/v1/...` with set behaviours."""

    def __init__(self) -> None:
        self.behaviour: dict[str, str] = {}  # svc -> ok | slow | forbidden | nomodels | cold
        self.adapters: dict[str, list[str]] = {}
        self.token_requests = 0
        self.answers: dict[str, str] = {}  # model -> what the chat endpoint answers (default "Abyssinian")
        self.chats: list[tuple[str, str]] = []  # (service, model) of every chat completion answered
        self.public: set[str] = set()  # services deployed --allow-unauthenticated: chats need no ID token
        self.cold_until: dict[str, float] = {}
        self.chat_delay_s = 0.05
        self.slow_s = 5.0
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._runner: web.AppRunner | None = None

    def url(self, svc: str) -> str:
        return f"http://127.0.0.1:{self.port}/{svc}"

    @property
    def token_uri(self) -> str:
        return f"http://127.0.0.1:{self.port}/token"

    def start(self) -> "ModelServers":
        self._thread.start()
        self._ready.wait(10)
        return self

    async def _shutdown(self) -> None:
        await self._runner.cleanup()
        pending = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in pending:  # e.g. a deliberately slow handler still sleeping
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        app = web.Application()
        app.router.add_post("/token", self._token)
        app.router.add_get("/{svc}/v1/models", self._models)
        app.router.add_post("/{svc}/v1/chat/completions", self._chat)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        self._loop.run_until_complete(self._runner.setup())
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        self._loop.run_until_complete(site.start())
        self.port = self._runner.addresses[0][1]
        self._ready.set()
        self._loop.run_forever()

    async def _token(self, request: web.Request) -> web.Response:
        form = await request.post()
        claims = _claims(str(form["assertion"]))
        self.token_requests += 1
        return web.json_response({"id_token": fake_id_token(claims["target_audience"])})

    def _authorized(self, request: web.Request, svc: str) -> bool:
        auth = request.headers.get("Authorization", "")
        if not auth.startswith("Bearer "):
            return False
        try:
            return _claims(auth[7:])["aud"] == self.url(svc)
        except (ValueError, KeyError, IndexError):
            return False

    async def _models(self, request: web.Request) -> web.Response:
        svc = request.match_info["svc"]
        behaviour = self.behaviour.get(svc, "ok")
        if behaviour == "forbidden" or not self._authorized(request, svc):
            return web.Response(status=403, text="Forbidden: caller lacks run.routes.invoke")
        if behaviour == "slow":
            await asyncio.sleep(self.slow_s)
        if behaviour == "nomodels":
            return web.Response(status=404, text="404 page not found")
        return web.json_response(vllm_models("google/gemma-3-4b-it", self.adapters.get(svc, [])))

    async def _chat(self, request: web.Request) -> web.Response:
        svc = request.match_info["svc"]
        if svc not in self.public and not self._authorized(request, svc):  # Cloud Run's front end checks ID tokens
            return web.Response(status=403, text="Forbidden: caller lacks run.routes.invoke")
        if time.monotonic() < self.cold_until.get(svc, 0.0):
            return web.Response(status=503, text="Service Unavailable: starting")
        body = await request.json()
        self.chats.append((svc, body["model"]))
        await asyncio.sleep(self.chat_delay_s)
        return web.json_response({
            "id": "chatcmpl-1", "object": "chat.completion", "model": body["model"],
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": self.answers.get(body["model"], "Abyssinian")}}],
        })


def add_fleet(fake_run: FakeCloudRun, model_servers: ModelServers, count: int, adapters: int = 3) -> None:
    """`count` services spread over REGIONS, alternately with an L4 GPU, each serving a base + adapters."""
    for i in range(count):
        svc = f"svc-{i:03d}"
        model_servers.adapters[svc] = [f"pets-lora-{i:03d}-{k}" for k in range(adapters)]
        fake_run.add_service(PROJECT, REGIONS[i % len(REGIONS)], svc, url=model_servers.url(svc),
                             gpu_type="nvidia-l4" if i % 2 else None, labels={"app": "pets"} if i % 5 else {},
                             min_instances=i % 2, max_instances=3 + i % 4, concurrency=8)
