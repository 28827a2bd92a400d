#!/usr/bin/env bash
# batch_speed.sh -- wall time of one `imgcheck check` over 50 images, -j 1 vs -j 2
#
# What it measures
#   imgcheck check --no-guest --output json -j J IMAGE x 50      (J = 1, then 2)
#   run alternately (-j 1, -j 2, -j 1, ...), N timed runs each after one untimed warm-up
#   run of each (warm page cache). Wall time from /usr/bin/time -f %e. Prints a Markdown
#   table with the medians and the speed-up (-j 1 median / -j 2 median), and exits 1 when
#   -j 2 is not clearly faster (speed-up below 1.3) or a run's exit code is not the expected 3
#   (the batch holds leaky images, so the worst exit code is 3).
#
# Images (built once in the work dir, reused if present)
#   12 x prealloc-16G  qemu-img create -f qcow2 -o cluster_size=4k,preallocation=metadata 16G
#                      (4 Mi L2 entries, 41 MB of metadata each: the work that is not
#                      trivial; built once in ~25 s)
#   26 x clean-64M     64 MiB, 64 KiB clusters, 8 MiB written with qemu-io
#   12 x leak-64M      the same plus one leaked cluster (an extra refcount of 1, as in the
#                      leak-one fixture): exit 3
#   Copies are sparse (cp --sparse=always); total disk use ~0.6 GB.
#
# Requirements: qemu-img, qemu-io (qemu-utils), /usr/bin/time (package `time`), python3.
#
# Usage
#   bench/batch_speed.sh [--runs N] [--dir DIR] [--clean]
#     --runs N   timed runs per -j value (default 3; env RUNS)
#     --dir DIR  work dir (default /var/tmp/imgcheck-batch-bench; env IMGCHECK_BENCH_DIR)
#     --clean    delete the images at the end (default: keep them for the next run)
#   env IMGCHECK   imgcheck binary (default: <repo>/build/imgcheck)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(dirname "$here")
RUNS=${RUNS:-3}
DIR=${IMGCHECK_BENCH_DIR:-/var/tmp/imgcheck-batch-bench}
IMGCHECK=${IMGCHECK:-$repo/build/imgcheck}
CLEAN=0

die() { echo "batch_speed.sh: $*" >&2; exit 1; }
usage() { sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"; }

while [[ $# -gt 0 ]]; do
    case $1 in
        --runs) [[ $# -ge 2 ]] || die "--runs needs a value"; RUNS=$2; shift 2 ;;
        --dir) [[ $# -ge 2 ]] || die "--dir needs a value"; DIR=$2; shift 2 ;;
        --clean) CLEAN=1; shift ;;
        -h|--help) usage; exit 0 ;;
        *) die "unknown argument: $1 (see --help)" ;;
    esac
done
[[ $RUNS =~ ^[1-9][0-9]*$ ]] || die "--runs must be a positive integer, got '$RUNS'"
[[ -x $IMGCHECK ]] || die "imgcheck not found at $IMGCHECK (set IMGCHECK)"
IMGCHECK=$(realpath "$IMGCHECK")  # the runs happen in the image directory
for t in qemu-img qemu-io python3; do command -v $t >/dev/null || die "$t is not installed"; done
[[ -x /usr/bin/time ]] || die "/usr/bin/time is not installed (package time)"

mkdir -p "$DIR/img"
cd "$DIR/img"

# Builds NAME once from a recipe, then COUNT sparse copies NAME-01 ... NAME-COUNT.
replicate() {
    local name=$1 count=$2 i
    for ((i = 1; i <= count; i++)); do
        local copy
        copy=$(printf '%s-%02d.qcow2' "$name" "$i")
        [[ -f $copy ]] || cp --sparse=always "$name.qcow2" "$copy"
    done
}

if [[ ! -f prealloc-16G.qcow2 ]]; then
    echo "building prealloc-16G (4 KiB clusters, preallocation=metadata) ..." >&2
    qemu-img create -q -f qcow2 -o cluster_size=4k,preallocation=metadata prealloc-16G.qcow2 16G
fi
if [[ ! -f clean-64M.qcow2 ]]; then
    qemu-img create -q -f qcow2 clean-64M.qcow2 64M
    qemu-io -c 'write -P 0x5a 0 8M' clean-64M.qcow2 >/dev/null
fi
if [[ ! -f leak-64M.qcow2 ]]; then
    # One leaked cluster: append a cluster to the file and give it refcount 1 in the
    # refcount block (16-bit entries), which nothing references.
    cp clean-64M.qcow2 leak-64M.tmp
    python3 - leak-64M.tmp <<'EOF'
import struct, sys
path = sys.argv[1]
with open(path, 'r+b') as f:
    hdr = f.read(104)
    cluster_bits = struct.unpack('>I', hdr[20:24])[0]
    reftable = struct.unpack('>Q', hdr[48:56])[0]
    cs = 1 << cluster_bits
    f.seek(0, 2)
    end = (f.tell() + cs - 1) // cs * cs
    f.truncate(end + cs)
    f.seek(reftable)
    block = struct.unpack('>Q', f.read(8))[0]
    f.seek(block + 2 * (end // cs))
    f.write(struct.pack('>H', 1))
EOF
    mv leak-64M.tmp leak-64M.qcow2
fi
replicate prealloc-16G 12
replicate clean-64M 26
replicate leak-64M 12
mapfile -t images < <(ls prealloc-16G-*.qcow2 clean-64M-*.qcow2 leak-64M-*.qcow2 | sort -t- -k3)
[[ ${#images[@]} == 50 ]] || die "expected 50 images, found ${#images[@]}"

# One run: prints "wall_seconds exit_code".
run() {
    local j=$1 out rc=0
    out=$({ /usr/bin/time -f '%e' "$IMGCHECK" check --no-guest --output json -j "$j" \
              "${images[@]}" >/dev/null; } 2>&1) || rc=$?
    echo "${out##*$'\n'} ${rc}"
}

echo "warm-up ..." >&2
run 1 >/dev/null
run 2 >/dev/null
declare -a t1 t2
bad=0
for ((r = 1; r <= RUNS; r++)); do
    for j in 1 2; do
        read -r secs rc < <(run $j)
        echo "run $r -j $j: ${secs}s, exit $rc" >&2
        [[ $rc == 3 ]] || { echo "batch_speed.sh: exit $rc, expected 3 (leaks)" >&2; bad=1; }
        if [[ $j == 1 ]]; then t1+=("$secs"); else t2+=("$secs"); fi
    done
done
status=0
python3 - "$RUNS" "$(nproc)" "${t1[*]}" "${t2[*]}" <<'EOF' || status=$?
import statistics, sys
runs, cores, t1, t2 = sys.argv[1], sys.argv[2], sys.argv[3].split(), sys.argv[4].split()
m1, m2 = statistics.median(map(float, t1)), statistics.median(map(float, t2))
print('| 50 images (12 x 16 GiB 4k-cluster preallocated, 26 clean, 12 leaky) | wall time, median of %s |' % runs)
print('|---|---|')
print('| `-j 1` | %.2f s (runs: %s) |' % (m1, ', '.join(t1)))
print('| `-j 2` | %.2f s (runs: %s) |' % (m2, ', '.join(t2)))
print('| speed-up | %.2fx on %s cores |' % (m1 / m2 if m2 else 0, cores))
sys.exit(0 if m2 > 0 and m1 / m2 >= 1.3 else 1)
EOF
if [[ $status != 0 ]]; then echo "batch_speed.sh: -j 2 is not clearly faster" >&2; fi
if [[ $bad != 0 ]]; then status=1; fi
if [[ $CLEAN == 1 ]]; then rm -rf "$DIR/img"; fi
exit $status
