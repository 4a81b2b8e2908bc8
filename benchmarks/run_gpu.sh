#!/usr/bin/env bash
# One device session, every GPU benchmark once (~8 minutes on an H100), results under benchmarks/results/
# (or $OUT when the device tool provides it). Installs nothing beyond the project itself.
#   bash benchmarks/run_gpu.sh            # on the GPU machine
#   SMOKE=1 bash benchmarks/run_gpu.sh    # tiny sizes on CPU, to check the script before spending GPU time
set -uo pipefail
cd "$(dirname "$0")/.."
out="${OUT:-benchmarks/results}"
mkdir -p "$out"
export KEDRO_DISABLE_TELEMETRY=1
python -c "import diffusion_bridge" 2>/dev/null || pip install -q -e . >/dev/null
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader 2>/dev/null | tee "$out/gpu.txt"

if [ "${SMOKE:-0}" = 1 ]; then
  dev=cpu; embed="--images 16 --captions 32 --loop-items 4 --batch-size 8 --workers 2 --image-size 64x48"
  bridge="--n 32 --loop-items 4"; train="--seconds 6 --quality-seconds 3 --n-train 2000"; caption="--n 16 --n-single 2"
else
  dev=cuda; embed="--model ViT-B-32 --images 5000 --captions 25000 --loop-items 500 --batch-size 256 --workers 14"
  bridge="--n 5000 --loop-items 200"; train="--seconds 30 --quality-seconds 120"; caption="--preset gpt2 --n 5000"
fi

# correctness first: the CUDA paths of the bridge and the trainer against their CPU references
timeout 300 python -m pytest -q -x tests/test_bridge.py tests/diffusion/test_samplers.py 2>&1 | tail -3 | tee "$out/tests.txt"
timeout 600 python benchmarks/embed_throughput.py --device $dev $embed --out "$out/embed_gpu.json" 2>&1 | tee "$out/embed_gpu.txt"
timeout 300 python benchmarks/bridge_throughput.py --device $dev $bridge --out "$out/bridge_gpu.json" 2>&1 | tee "$out/bridge_gpu.txt"
timeout 600 python benchmarks/train_throughput.py --device $dev $train 2>&1 | tee "$out/train_gpu.txt"
timeout 300 python benchmarks/caption_throughput.py --device $dev $caption 2>&1 | tee "$out/caption_gpu.txt"
