#!/usr/bin/env bash
# Issue 8 on a GPU: the throughput table of benchmarks/throughput.py (MLP and conv VAE,
# batch 128 and 1024, XLA off/on, steps_per_execution 1 and 16, float32 and
# mixed_float16, pythae raw loop and pipeline on CUDA), one prepared run that fits a
# 15-minute device lease: 3 rounds of ~1 s epochs, evaluation speed, peak RSS.
#
# Usage (from anywhere):
#   bash benchmarks/gpu_throughput.sh            # on a machine with a GPU
#   bash benchmarks/gpu_throughput.sh --smoke    # the same steps, tiny, on a CPU
#
# Environment:
#   PYTHON       the Python with vaezoo and a CUDA build of TensorFlow (default: python3)
#   PEER_PYTHON  a Python with torch (CUDA) and pythae; unset or missing: no peer
#   OUT          folder for the JSON report, the markdown table and the log
#                (default: runs/gpu_throughput under the repository)
#
# TensorFlow must already be installed where PYTHON runs: its wheel (hundreds of MB)
# cannot travel to a lent device machine, whose image holds PyTorch but not TensorFlow.
set -euo pipefail
cd "$(dirname "$0")/.."

smoke=0
case "${1:-}" in
    --smoke) smoke=1 ;;
    "") ;;
    *) echo "usage: $0 [--smoke]" >&2; exit 2 ;;
esac

python=${PYTHON:-python3}
out=${OUT:-runs/gpu_throughput}
mkdir -p "$out"
export VAEZOO_DATA=${VAEZOO_DATA:-$(pwd)/../shared/data}
export PYTHONUNBUFFERED=1

"$python" - <<'EOF'
import sys
try:
    import tensorflow as tf
    import vaezoo  # noqa: F401
except ImportError as error:
    sys.exit(f"gpu_throughput.sh: {error}; install vaezoo with a CUDA build of TensorFlow first")
print("tensorflow", tf.__version__, "GPUs:", [d.name for d in tf.config.list_physical_devices("GPU")])
EOF
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true

peer=(--no-peer)
if [ -n "${PEER_PYTHON:-}" ] && [ -x "${PEER_PYTHON}" ]; then
    peer=(--peer-python "$PEER_PYTHON")
fi

if [ "$smoke" -eq 1 ]; then
    args=(--smoke)
else
    args=(--device gpu --networks mlp conv --batch-sizes 128 1024 --xla off on --spe 1 16
          --precision float32 mixed_float16 --extras mlp --rounds 3 --seconds 1.0
          --eval-examples 200 --peer-eval-examples 20 --eval-k 5000 "${peer[@]}")
fi

# stdout (the JSON report and the table) goes to the log; progress stays on stderr.
"$python" benchmarks/throughput.py "${args[@]}" \
    --json "$out/gpu_throughput.json" --markdown "$out/gpu_throughput.md" > "$out/gpu_throughput.log"
cat "$out/gpu_throughput.md"
