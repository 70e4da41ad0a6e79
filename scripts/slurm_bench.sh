#!/usr/bin/env bash
# A 100-step no-op DAG (10 chains of 10 steps, -j 10) run with the local executor and on the
# single-node Slurm (scripts/slurm-up.sh) in the same session: wall time, overhead per step, and
# the squeue calls the Slurm runner made (counted by a wrapper on PATH that logs each call and
# execs the real squeue). Slurm's own floor beside it: 10 trivial jobs one after another with
# `sbatch --wait` (submit, schedule, launch, end, noticed by sbatch).
#
#   scripts/slurm_bench.sh [EREBOR_BINARY]     (default: target/debug/erebor)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
erebor=${1:-$root/target/debug/erebor}
"$root/scripts/slurm-up.sh" >/dev/null
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

{
    echo "name: noop-100"
    echo "steps:"
    for i in $(seq 0 99); do
        printf '  - id: s%03d\n    uses: noop\n' "$i"
        if [ "$i" -ge 10 ]; then printf '    needs: [s%03d]\n' $((i - 10)); fi
    done
} >"$work/noop-100.yaml"

mkdir -p "$work/bin"
real_squeue=$(command -v squeue)
cat >"$work/bin/squeue" <<EOF
#!/bin/sh
echo "\$(date +%s.%N)" >> "$work/squeue.log"
exec "$real_squeue" "\$@"
EOF
chmod +x "$work/bin/squeue"

run() {
    local executor=$1
    local start end
    start=$(date +%s.%N)
    PATH="$work/bin:$PATH" "$erebor" --home "$work/home-$executor" -q run "$work/noop-100.yaml" \
        --executor "$executor" -j 10 --no-cache >/dev/null
    end=$(date +%s.%N)
    echo "$start $end"
}

for executor in local slurm; do
    : >"$work/squeue.log"
    read -r start end < <(run "$executor")
    calls=$(wc -l <"$work/squeue.log")
    awk -v e="$executor" -v s="$start" -v t="$end" -v c="$calls" 'BEGIN {
        wall = t - s
        printf "%-6s wall %6.1f s  per step %5.3f s  squeue calls %4d  (%.1f per minute)\n",
            e, wall, wall / 100, c, c / (wall / 60)
    }'
done

printf '#!/bin/sh\ntrue\n' >"$work/true.sh"
start=$(date +%s.%N)
for _ in $(seq 10); do sbatch --wait --quiet --export=NONE -o /dev/null "$work/true.sh"; done
end=$(date +%s.%N)
awk -v s="$start" -v t="$end" 'BEGIN { printf "sbatch --wait of a trivial job: %.2f s each (10 in a row)\n", (t - s) / 10 }'
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
