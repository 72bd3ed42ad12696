#!/bin/sh
# Start vLLM on Cloud Run's $PORT. MODEL is a local path (baked or a mounted bucket), a gs:// URI (with
# --load-format=runai_streamer) or a Hugging Face id. Every other vLLM flag comes from the service's
# args (`python -m lib deploy service ... --args=--max-num-seqs=8,--enable-lora,...`).
set -eu
if [ -z "${MODEL:-}" ]; then
  echo "MODEL is not set: deploy with --env MODEL=/models/<path> (bucket volume), gs://... or a baked image" >&2
  exit 64
fi
exec vllm serve "$MODEL" --host 0.0.0.0 --port "${PORT:-8080}" "$@"
