#!/usr/bin/env bash
# On the GPU machine (no toolchain): the device checks and the benchmark pair,
# from the bundle scripts/cuda/build.sh staged. Results go to ${OUT:-.}.
#
#   tar xJf target-cuda/bundle.tar.xz -C target-cuda && bash target-cuda/bundle/run-gpu.sh
#
# 1. the op gradient checks, CUDA against CPU (the `grad_ops` test binary);
# 2. `host bench train` on CUDA for fm, nfm and din (and the same on CPU);
# 3. the PyTorch counterpart, where torch is installed.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
out=${OUT:-.}
mkdir -p "$out"
LD_LIBRARY_PATH=$(bash "$here/gpu-libs.sh")
export LD_LIBRARY_PATH
export CAUSALREC_NO_PROGRESS=1
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv | tee "$out/gpu.txt"
if [ -x "$here/grad_ops" ]; then
  (cd "$root" && "$here/grad_ops" --test-threads 1) > "$out/grad_ops.txt" 2>&1
  echo "grad_ops exit $?" | tee -a "$out/grad_ops.txt"
fi
for dev in cuda cpu; do
  for m in fm nfm; do
    "$here/host" bench train --model "$m" --rows 100000 --batch 4096 --steps 30 --device "$dev" --json
  done
  "$here/host" bench train --model din --rows 100000 --batch 256 --steps 10 --device "$dev" --json
done > "$out/bench.jsonl" 2> "$out/bench.err"
cat "$out/bench.jsonl"
if python3 -c 'import torch' 2>/dev/null; then
  for m in fm mf; do
    python3 "$here/train_step.py" --model "$m" --rows 100000 --batch 4096 --steps 30 --device cuda --json
  done > "$out/torch.jsonl" 2>&1
  cat "$out/torch.jsonl"
fi
