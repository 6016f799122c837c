#!/usr/bin/env bash
# Data-parallel throughput of `deep` (784-512x3-10, batches of 128 per process, one kernel thread
# and no loader worker each): one process, then each count of processes given (default 2), the
# second epoch of a two-epoch run; images per second and the speed-up over one process.
# Needs a build with `--features minibatch-cli/mpi`; run from the project root.
#   bench/mpi_scaling.sh 2 4 8          MINIBATCH=path/to/minibatch, MPIRUN_ARGS="--oversubscribe",
#                                       ALL_REDUCE=mpi (sum through MPI_Allreduce, not shared memory)
set -euo pipefail
cd "$(dirname "$0")/.."
exe=${MINIBATCH:-target/release/minibatch}
counts=("$@")
[ ${#counts[@]} -gt 0 ] || counts=(2)
for n in "${counts[@]}"; do
  if ! [[ "$n" =~ ^[1-9][0-9]*$ ]]; then echo "mpi_scaling.sh: process counts are whole numbers from 1, not '$n'" >&2; exit 2; fi
done
args=(train --layers 512,512,512 --bs 128 --lr 0.1 --epochs 2 --threads 1 --workers 0 --json)
second_epoch() { grep '"epoch":2' | sed 's/.*"seconds":\([0-9.]*\).*/\1/'; }
one=$("$exe" "${args[@]}" | second_epoch)
echo "1 process: $one s an epoch, $(python3 -c "print(round(50000 / $one))") images/s"
for n in "${counts[@]}"; do
  # shellcheck disable=SC2086
  t=$(mpirun -n "$n" ${MPIRUN_ARGS:-} "$exe" "${args[@]}" --distributed --all-reduce "${ALL_REDUCE:-shared}" | second_epoch)
  echo "$n processes: $t s an epoch, $(python3 -c "print(round(50000 / $t), 'images/s,', round($one / $t, 2), 'x one')")"
done
