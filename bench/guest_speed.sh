#!/usr/bin/env bash
# guest_speed.sh -- cost of imgcheck's guest phase vs a bare libguestfs appliance start.
#
# Issue 5 budget: the whole guest phase of `imgcheck check` may cost at most the appliance
# start + 5 s. This script times, on one guest image (default: the `debian-clean` fixture of
# fixtures/build_guests.py, built on first use), interleaved, RUNS times each:
#   bare      guestfish --ro --format=qcow2 -a IMAGE run          (appliance start, nothing else)
#   check     imgcheck check --output json IMAGE                   (format + guest checks)
#   no-guest  imgcheck check --no-guest --output json IMAGE        (format checks only)
# and prints medians, imgcheck's own guest.launch-seconds / guest.total-seconds, and the
# verdict: median(check) <= median(bare) + 5 s.
#
# The appliance is started with LIBGUESTFS_BACKEND=direct LIBGUESTFS_BACKEND_SETTINGS=force_tcg
# unless those are already set (KVM hangs after SeaBIOS on the CI machines).
#
# Usage
#   bench/guest_speed.sh [--runs N] [--image IMAGE] [--dir DIR]
#     --runs N      timed runs per command (default 3; env RUNS)
#     --image IMG   qcow2 guest image to use (default: DIR/debian-clean.qcow2, built if missing)
#     --dir DIR     where the fixture is built and logs go (default /var/tmp/imgcheck-guest-bench)
#   env IMGCHECK    imgcheck binary (default: <repo>/build/imgcheck)
#   Exit status: 0 within budget, 1 over budget or a command failed/crashed.
#   Requirements: guestfish (libguestfs 1.48), qemu-img, zstd, /usr/bin/python3.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(dirname "$here")

RUNS=${RUNS:-3}
DIR=${IMGCHECK_GUEST_BENCH_DIR:-/var/tmp/imgcheck-guest-bench}
IMGCHECK=${IMGCHECK:-$repo/build/imgcheck}
IMAGE=""
PY=/usr/bin/python3
BUDGET_EXTRA=5

die() { echo "guest_speed.sh: $*" >&2; exit 1; }
usage() { sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"; }

while [[ $# -gt 0 ]]; do
    case $1 in
        --runs) [[ $# -ge 2 ]] || die "--runs needs a value"; RUNS=$2; shift 2 ;;
        --runs=*) RUNS=${1#*=}; shift ;;
        --image) [[ $# -ge 2 ]] || die "--image needs a value"; IMAGE=$2; shift 2 ;;
        --image=*) IMAGE=${1#*=}; shift ;;
        --dir) [[ $# -ge 2 ]] || die "--dir needs a value"; DIR=$2; shift 2 ;;
        --dir=*) DIR=${1#*=}; shift ;;
        -h|--help) usage; exit 0 ;;
        *) die "unknown argument: $1 (see --help)" ;;
    esac
done
[[ $RUNS =~ ^[1-9][0-9]*$ ]] || die "--runs must be a positive integer, got '$RUNS'"
[[ -x $IMGCHECK ]] || die "imgcheck binary not found at '$IMGCHECK' (build it or set IMGCHECK=)"
command -v guestfish >/dev/null || die "guestfish not found (apt-get install -y libguestfs-tools)"
[[ -x $PY ]] || die "$PY not found"

export LIBGUESTFS_BACKEND=${LIBGUESTFS_BACKEND:-direct}
export LIBGUESTFS_BACKEND_SETTINGS=${LIBGUESTFS_BACKEND_SETTINGS:-force_tcg}

mkdir -p "$DIR"
DIR=$(cd "$DIR" && pwd)
LOG=$DIR/logs
mkdir -p "$LOG"
if [[ -z $IMAGE ]]; then
    IMAGE=$DIR/debian-clean.qcow2
    if [[ ! -f $IMAGE ]]; then
        echo "building the debian-clean fixture in $DIR ..." >&2
        "$PY" "$repo/fixtures/build_guests.py" "$DIR" --only debian-clean --no-verify >&2
    fi
fi
[[ -f $IMAGE ]] || die "image not found: $IMAGE"

RES=$LOG/guest_speed.tsv    # kind run wall_s rc
: > "$RES"
FAIL=0
now() { date +%s.%N; }

timed() {  # kind run cmd... -> appends to $RES
    local kind=$1 run=$2 t0 t1 rc=0
    shift 2
    t0=$(now)
    "$@" >"$LOG/$kind.$run.out" 2>"$LOG/$kind.$run.err" || rc=$?
    t1=$(now)
    printf '%s\t%s\t%s\t%s\n' "$kind" "$run" "$("$PY" -c "print(round($t1-$t0,3))")" "$rc" >> "$RES"
    printf '  %-9s run %d: %6.2f s rc=%d\n' "$kind" "$run" "$("$PY" -c "print($t1-$t0)")" "$rc" >&2
    if [[ $rc -ge 128 || ( $kind == bare && $rc != 0 ) ]]; then
        FAIL=1
        echo "guest_speed.sh: $kind exited $rc (see $LOG/$kind.$run.err)" >&2
    fi
}

echo "== warm-up (appliance cache)" >&2
guestfish --ro --format=qcow2 -a "$IMAGE" run >/dev/null 2>&1 || die "guestfish cannot start the appliance"
for ((r = 1; r <= RUNS; r++)); do
    timed bare "$r" guestfish --ro --format=qcow2 -a "$IMAGE" run
    timed check "$r" "$IMGCHECK" check --output json "$IMAGE"
    timed no-guest "$r" "$IMGCHECK" check --no-guest --output json "$IMAGE"
done

echo
echo "### imgcheck guest phase vs appliance start ($(date -u +%Y-%m-%d), $RUNS runs, medians)"
echo
echo "Host: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo) RAM," \
     "loadavg $(cut -d' ' -f1-3 /proc/loadavg); $(guestfish --version); backend $LIBGUESTFS_BACKEND," \
     "settings $LIBGUESTFS_BACKEND_SETTINGS"
echo "Image: $IMAGE ($(qemu-img info --output json "$IMAGE" | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["virtual-size"] >> 20)') MiB virtual)"
echo
set +e
BUDGET_EXTRA=$BUDGET_EXTRA LOGDIR=$LOG "$PY" - "$RES" <<'EOF'
import glob, json, os, statistics, sys
rows = [l.rstrip('\n').split('\t') for l in open(sys.argv[1])]
med = {}
for kind in ('bare', 'check', 'no-guest'):
    w = [float(r[2]) for r in rows if r[0] == kind]
    rc = sorted({r[3] for r in rows if r[0] == kind})
    med[kind] = statistics.median(w)
    print('| %-8s | %6.2f s | min %6.2f | max %6.2f | rc %s |' % (kind, med[kind], min(w), max(w), ','.join(rc)))
launch, total = [], []
for f in glob.glob(os.path.join(os.environ['LOGDIR'], 'check.*.out')):
    try:
        g = json.load(open(f)).get('guest') or {}
    except ValueError:
        continue
    if 'launch-seconds' in g:
        launch.append(float(g['launch-seconds']))
    if 'total-seconds' in g:
        total.append(float(g['total-seconds']))
if launch:
    print('\nimgcheck reports (median): guest.launch-seconds %.2f, guest.total-seconds %s'
          % (statistics.median(launch), '%.2f' % statistics.median(total) if total else 'n/a'))
extra = float(os.environ['BUDGET_EXTRA'])
budget = med['bare'] + extra
print('\nguest phase = check - no-guest = %.2f s; check %.2f s vs budget bare + %.0f s = %.2f s: %s'
      % (med['check'] - med['no-guest'], med['check'], extra, budget,
         'OK' if med['check'] <= budget else 'OVER BUDGET by %.2f s' % (med['check'] - budget)))
sys.exit(0 if med['check'] <= budget else 1)
EOF
verdict=$?
set -e
echo
echo "Commands: guestfish --ro --format=qcow2 -a IMAGE run; $IMGCHECK check [--no-guest] --output json IMAGE"
echo "Raw data: $RES"
[[ $FAIL == 0 && $verdict == 0 ]]
