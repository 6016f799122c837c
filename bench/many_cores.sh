#!/usr/bin/env bash
# minibatch and PyTorch on the first N cores of a many-core machine, for each N given
# (default 2 4 8 16): both pinned with taskset to the same cores, N threads each, `wide`, `deep`,
# `cnn` and `cnn-bn`, PyTorch's hand-sliced loop then `minibatch bench`'s fast path, paired in each round
# (bench/pytorch_bench.py). Needs PyTorch and target/release/minibatch; run from the project root.
#   bench/many_cores.sh 4 8 16
# Environment: ROUNDS (default 3), EPOCHS (3), CONFIGS (wide,deep,cnn,cnn-bn).
set -euo pipefail
cd "$(dirname "$0")/.."
counts=("$@")
[ ${#counts[@]} -gt 0 ] || counts=(2 4 8 16)
for n in "${counts[@]}"; do
  if ! [[ "$n" =~ ^[1-9][0-9]*$ ]]; then echo "many_cores.sh: core counts are whole numbers from 1, not '$n'" >&2; exit 2; fi
  if [ "$n" -gt "$(nproc)" ]; then echo "many_cores.sh: $n cores asked, $(nproc) here" >&2; exit 2; fi
done
if taskset -c 0 true 2>/dev/null; then pinned=yes; else pinned=no; echo "taskset does not work here: threads set, cores not pinned"; fi
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
for n in "${counts[@]}"; do
  echo "== $n cores"
  pin=()
  [ "$pinned" = yes ] && pin=(taskset -c "0-$((n - 1))")
  OMP_NUM_THREADS=$n MKL_NUM_THREADS=$n "${pin[@]}" python3 bench/pytorch_bench.py --configs "${CONFIGS:-wide,deep,cnn,cnn-bn}" \
    --paths fast --threads "$n" --sliced-only --rounds "${ROUNDS:-3}" --epochs "${EPOCHS:-3}"
done
