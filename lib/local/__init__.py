"""The embedded default: EfficientNet-Lite0 on the CPU, its OpenAI-compatible server, and starting it."""

from lib.local.imagenet import BREED_OF_CLASS, PET_LABELS
from lib.local.model import DRAFT, INPUT_SIZE, Backbone, Features, TunedHead, base_answer, preprocess, weights_path
from lib.local.process import (
    PARENT_FD_ENV,
    is_healthy,
    launch_dashboard,
    port_in_use,
    start_local_server,
    stop_process,
    wait_healthy,
    watch_parent,
)
from lib.local.server import MODELS, create_app, serve

__all__ = [
    "BREED_OF_CLASS", "PET_LABELS", "DRAFT", "INPUT_SIZE", "Backbone", "Features", "TunedHead", "base_answer",
    "preprocess", "weights_path",
    "PARENT_FD_ENV", "is_healthy", "launch_dashboard", "port_in_use", "start_local_server", "stop_process",
    "wait_healthy", "watch_parent", "MODELS", "create_app", "serve",
]
