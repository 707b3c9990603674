#!/usr/bin/env bash
# Seconds per training step of the paper-size models on one GPU, side by side:
#   1. bench_corr_overhead.py: baseline vs corr for NequIP (Table A5), Allegro (Table A6) and GemNet-T
#      (Table A7, 4 blocks), each as config/paper.yaml trains it, corr as its `corr` method (1024 sampled
#      edges per structure, fixed coefficient 0.1 so that the penalty is on in every step);
#   2. bench_stabilisers.py: baseline vs SAM (the schema's default radius), ZBL prior and the body-term
#      decomposition for NequIP and Allegro at the same sizes.
# Both time interleaved blocks of steps (ABBA / rotating order, warm-up first, CUDA synchronised at
# each block's ends) on the same pre-collated batches of 4 rattled 96-atom monoclinic HfO2 cells
# (synthetic labels; no LAMMPS). Each part runs under its own time limit; rows are written as soon as
# a model is done, so a part cut short keeps what it measured.
#
# Writes to OUTDIR (default: $OUT, else results/paper/benchmarks):
#   gpu_paper_size.csv          one row per model and mode: s_per_step (median over rounds), ratio to
#                               the baseline (median over rounds of the per-round ratio), ...
#   gpu_paper_size.log          everything the benchmarks printed
#   gpu_paper_size_summary.txt  the table: model, mode, ms/step, ratio, overhead in %
#
# Usage (from anywhere; PYTHON defaults to python):
#   benchmarks/gpu_paper_size.sh [OUTDIR]            # CUDA, about 5 minutes on one H200
#   benchmarks/gpu_paper_size.sh --smoke [OUTDIR]    # CPU, one step per block: checks that it runs
# --smoke uses the embedded size (SMOKE_SIZE=paper for the paper's models: on two CPU cores one of
# their training steps on one 96-atom frame takes 0.5-2 minutes).
set -uo pipefail

SMOKE=0
if [[ "${1:-}" == "--smoke" ]]; then SMOKE=1; shift; fi
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(dirname "$HERE")"
OUTDIR="${1:-${OUT:-$REPO/results/paper/benchmarks}}"
mkdir -p "$OUTDIR"
OUTDIR="$(cd "$OUTDIR" && pwd)"
PY="${PYTHON:-python}"
export PYTHONPATH="$REPO/src${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1
CSV="$OUTDIR/gpu_paper_size.csv"
LOG="$OUTDIR/gpu_paper_size.log"
SUMMARY="$OUTDIR/gpu_paper_size_summary.txt"
rm -f "$CSV" "$LOG" "$SUMMARY"

if [[ $SMOKE == 1 ]]; then
  DEVICE=cpu
  SIZE="${SMOKE_SIZE:-embedded}"
  CORR_ARGS=(--smoke --family all)
  STAB_ARGS=(--smoke --family both)
  LIMIT_CORR=900
  LIMIT_STAB=900
else
  DEVICE=cuda
  SIZE=paper
  # time limits per part (s), model building and imports included; about 5 minutes in all
  CORR_ARGS=(--family all --threads 4 --batch-size 4 --steps 10 --repeats 8 --warmup 5)
  STAB_ARGS=(--family both --threads 4 --batch-size 4 --steps 8 --repeats 6 --warmup 3
             --modes baseline sam zbl decomposed)
  LIMIT_CORR=170
  LIMIT_STAB=110
fi

cd "$REPO" || exit 1
{
  echo "gpu_paper_size.sh $(date -u +%Y-%m-%dT%H:%M:%SZ), device $DEVICE, size $SIZE, smoke $SMOKE"
  command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
  "$PY" -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.is_available() and torch.cuda.get_device_name())"
} 2>&1 | tee -a "$LOG"

status=0
run_part() {  # run_part LIMIT_S SCRIPT ARGS...: one benchmark under a time limit, output to the log
  local limit=$1; shift
  local t0=$SECONDS
  echo "=== $* (limit ${limit} s)" | tee -a "$LOG"
  timeout --kill-after=5 "$limit" "$PY" "$@" 2>&1 | grep --line-buffered -v '^USDT:' | tee -a "$LOG"
  local rc=${PIPESTATUS[0]}
  echo "=== exit $rc after $((SECONDS - t0)) s" | tee -a "$LOG"
  [[ $rc == 0 ]] || status=$rc
}

run_part "$LIMIT_CORR" benchmarks/bench_corr_overhead.py --device "$DEVICE" --size "$SIZE" --csv "$CSV" "${CORR_ARGS[@]}"
run_part "$LIMIT_STAB" benchmarks/bench_stabilisers.py --device "$DEVICE" --size "$SIZE" --csv "$CSV" "${STAB_ARGS[@]}"

"$PY" - "$CSV" "$SUMMARY" <<'EOF' 2>&1 | tee -a "$LOG"
import csv, sys
from pathlib import Path

src, dst = Path(sys.argv[1]), Path(sys.argv[2])
rows = list(csv.DictReader(src.open())) if src.exists() else []
lines = [f"{'benchmark':14s} {'family':8s} {'size':6s} {'L':>2s} {'device':6s} {'edges':>6s} {'mode':13s} "
         f"{'ms/step':>9s} {'ratio':>7s} {'overhead':>9s} {'95% CI of ratio':>16s} {'fastest':>8s} {'prof. share':>11s}"]
for r in rows:
    ratio = float(r["ratio"])
    ci = f"{float(r['ratio_lo95']):.3f}-{float(r['ratio_hi95']):.3f}" if r["ratio_lo95"] else ""
    fastest = f"{float(r['ratio_fastest']):.3f}" if r["ratio_fastest"] else ""
    share = f"{100 * float(r['profiler_share']):.1f} %" if r["profiler_share"] else ""
    lines.append(f"{r['benchmark']:14s} {r['family']:8s} {r['size']:6s} {r['layers']:>2s} {r['device']:6s} "
                 f"{r['edges']:>6s} {r['mode']:13s} {1e3 * float(r['s_per_step']):9.2f} {ratio:7.3f} "
                 f"{100 * (ratio - 1):+8.1f}% {ci:>16s} {fastest:>8s} {share:>11s}")
lines.append("ratio: median over rounds of the per-round mode/baseline ratio of block times; overhead = ratio - 1;"
             " fastest: ratio of the fastest blocks; prof. share: the correlation loss's share of the step's"
             " self-CPU (host) time from torch.profiler.")
dst.write_text("\n".join(lines) + "\n")
print("\n".join(lines))
EOF
echo "wrote $CSV, $SUMMARY, $LOG" | tee -a "$LOG"
exit $status
