#!/usr/bin/env bash
# Build the CUDA host on a machine with no CUDA toolkit and no GPU, and stage
# what the GPU machine needs (it has no Rust toolchain and no network).
#
#   scripts/cuda/build.sh            # -> target-cuda/bundle/
#
# The toolkit comes from NVIDIA's CUDA 13.0 wheels on the Python package index
# (../shared/tools/cuda-env.sh; CUDA_COMPUTE_CAP defaults to 90, Hopper). Only
# the host links candle's CUDA backend: plugins are built against `sdk` alone,
# hold no tensor engine, and are the same files for CPU and CUDA hosts.
# The bundle holds the host, every plugin, the release test binary of the op
# gradient checks (`grad_ops`, which replays every check on CUDA and compares
# with the CPU when it finds a GPU), gpu-libs.sh and run-gpu.sh, stripped, and
# as target-cuda/bundle.tar.xz to carry to the GPU machine.
set -euo pipefail
cd "$(dirname "$0")/../.."
shared=${CAUSALREC_SHARED:-../shared}
[ -f "$shared/tools/cuda-env.sh" ] || { echo "no $shared/tools/cuda-env.sh (set CAUSALREC_SHARED)" >&2; exit 1; }
cargo fetch -q
# shellcheck disable=SC1090
source <(bash "$shared/tools/cuda-env.sh")
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-target-cuda}
plugins=(-p causalrec-plugin-ctr -p causalrec-plugin-debias -p causalrec-plugin-backdoor
  -p causalrec-plugin-frontdoor -p causalrec-plugin-graph -p causalrec-plugin-seq
  -p causalrec-plugin-iv -p causalrec-plugin-proxy)
cargo build --release --features cuda -p causalrec-host
cargo build --release "${plugins[@]}"
test_bin=$(cargo test --release --features cuda -p causalrec-host --test grad_ops --no-run \
  --message-format=json 2>/dev/null | python3 -c '
import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["name"] == "grad_ops":
        print(m["executable"])')
bundle=$CARGO_TARGET_DIR/bundle
rm -rf "$bundle" && mkdir -p "$bundle"
cp "$CARGO_TARGET_DIR/release/host" "$bundle/"
cp "$CARGO_TARGET_DIR"/release/libcausalrec_*.so "$bundle/"
if [ -n "$test_bin" ]; then cp "$test_bin" "$bundle/grad_ops"; fi
# The device tool carries at most 64 MiB: drop the debug info.
strip "$bundle/host" "$bundle"/*.so
if [ -f "$bundle/grad_ops" ]; then strip "$bundle/grad_ops"; fi
cp scripts/cuda/run-gpu.sh benches/reference/train_step.py "$shared/tools/gpu-libs.sh" "$bundle/"
# Stripped, the host is about 63 MB (candle's PTX kernels) and the test
# binary 53 MB; compressed they fit the device tool's 64 MiB carry (15 MB).
tar -C "$CARGO_TARGET_DIR" -cJf "$CARGO_TARGET_DIR/bundle.tar.xz" bundle
du -sh "$bundle" "$CARGO_TARGET_DIR/bundle.tar.xz"
echo "carry $CARGO_TARGET_DIR/bundle.tar.xz; on the GPU machine, in the repository root:"
echo "  tar xJf $CARGO_TARGET_DIR/bundle.tar.xz -C $CARGO_TARGET_DIR && bash $bundle/run-gpu.sh"
