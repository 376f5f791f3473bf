#!/usr/bin/env bash
# One machine, one run: `host bench train` and its PyTorch counterpart
# (benches/reference/train_step.py, dense and --sparse) interleaved, RUNS
# times per model, printing every run's examples/s and the medians with
# their ratios. Needs a release host (cargo build --release --workspace)
# and python3 with torch.
#
#   bash benches/compare.sh [RUNS] [MODEL ...]      (default: 5 mf fm nfm din mmgcn)
#
# WARMUP (default 3) and STEPS (default 20) set the untimed and timed steps of
# every run (the same for both sides). The row-sparse optimizer state is lazy:
# in the first steps over a 100k-row table most touched rows are new and get
# their state then, so WARMUP=40 times the steady state of a long run.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-5}
shift || true
MODELS=${*:-mf fm nfm din mmgcn}
HOST=${HOST:-target/release/host}
median() { sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
exs() { python3 -c 'import json,sys; print(json.loads(sys.stdin.read().strip().splitlines()[-1])["examples_per_second"])'; }
printf '| model | batch | ours (ex/s) | PyTorch dense | PyTorch sparse | ours / dense | ours / sparse |\n|---|---:|---:|---:|---:|---:|---:|\n'
for m in $MODELS; do
  b=4096; rows=100000; extra=()
  [ "$m" = din ] && b=256
  # MMGCN: 20k items with three 64-wide modalities (PyTorch's is dense only:
  # its whole-graph propagation gives every row a gradient)
  [ "$m" = mmgcn ] && { b=512; rows=20000; extra=(--modalities 64); }
  common=(--model "$m" --rows "$rows" --batch "$b" --steps "${STEPS:-20}" --warmup "${WARMUP:-3}" --json "${extra[@]}")
  : > /tmp/cmp_ours; : > /tmp/cmp_dense; : > /tmp/cmp_sparse
  for _ in $(seq "$RUNS"); do
    "$HOST" bench train "${common[@]}" 2>/dev/null | exs >> /tmp/cmp_ours
    python3 benches/reference/train_step.py "${common[@]}" | exs >> /tmp/cmp_dense
    python3 benches/reference/train_step.py "${common[@]}" --sparse | exs >> /tmp/cmp_sparse
  done
  echo "$m runs: ours $(tr '\n' ' ' < /tmp/cmp_ours); dense $(tr '\n' ' ' < /tmp/cmp_dense); sparse $(tr '\n' ' ' < /tmp/cmp_sparse)" >&2
  o=$(median < /tmp/cmp_ours); d=$(median < /tmp/cmp_dense); s=$(median < /tmp/cmp_sparse)
  awk -v m="$m" -v b="$b" -v o="$o" -v d="$d" -v s="$s" \
    'BEGIN {printf "| %s | %d | %.0f | %.0f | %.0f | %.2fx | %.2fx |\n", m, b, o, d, s, o/d, o/s}'
done
