#!/usr/bin/env bash
# check_speed.sh -- wall time and peak RSS of `imgcheck check` vs `qemu-img check`
#
# What it measures
#   For each benchmark image, runs
#       imgcheck check --no-guest --output json IMAGE
#       qemu-img check -f qcow2 --output=json IMAGE
#   alternately (imgcheck, qemu-img, imgcheck, ...), N timed runs each, with a
#   warm page cache (one untimed read of the image's data extents plus one
#   untimed run of each tool first). Wall time (s) and peak RSS are taken from
#   `/usr/bin/time -f '%e %M'`. Both tools must exit 0 (clean image); any other
#   exit code is reported with a loud warning and flagged in the table.
#   Prints a Markdown table with medians and qemu-img/imgcheck ratios
#   (ratio > 1 means imgcheck is faster / smaller), plus the exact commands.
#
# Images (sparse; built once in the work dir and reused if present)
#   4k-128G      qemu-img create -f qcow2 -o cluster_size=4k,preallocation=metadata 128G   (~85 s to build)
#   64k-1T       qemu-img create -f qcow2 -o cluster_size=64k,preallocation=metadata 1T    (~3 s)
#   4k-64M-7T    64 MiB image, 4k clusters, 40 MiB written with qemu-io, then the host
#                file is extended with `truncate -s 7T`: tiny metadata, huge file length.
#                Shows whether memory scales with metadata or with file length
#                (qemu-img check needs ~3.6 GB RSS here: refcount array sized by file length).
#   Total disk use is ~0.5 GB; ~4 GB free RAM is needed for the qemu-img 7T run.
#
# Requirements (not installed by this script)
#   /usr/bin/time (Debian package `time`), qemu-img and qemu-io (qemu-utils),
#   /usr/bin/python3 (stdlib only), coreutils truncate.
#
# Usage
#   bench/check_speed.sh [--runs N] [--quick] [--dir DIR] [--keep|--clean] [--qemu-only]
#     --runs N     timed runs per tool per image (default 3; env RUNS)
#     --quick      only 64k-1T and 4k-64M-7T, runs=3 (fast look)
#     --dir DIR    work dir for images and logs (default /var/tmp/imgcheck-bench;
#                  env IMGCHECK_BENCH_DIR)
#     --keep       keep the images after the run so later runs reuse them (default)
#     --clean      delete the images at the end
#     --qemu-only  measure qemu-img only (e.g. before imgcheck is built)
#   env IMGCHECK   imgcheck binary (default: <repo>/build/imgcheck)
#   Exit status: 0 if every check exited 0, 1 otherwise. Raw per-run data and
#   tool output go to DIR/logs/ (results.tsv: image tool run wall_s rss_KiB rc).
#
#   e.g.  bench/check_speed.sh                 # full: 3 images x 3 runs x 2 tools
#         bench/check_speed.sh --quick
#         IMGCHECK=/path/to/imgcheck bench/check_speed.sh --runs 5
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(dirname "$here")

RUNS=${RUNS:-3}
DIR=${IMGCHECK_BENCH_DIR:-/var/tmp/imgcheck-bench}
IMGCHECK=${IMGCHECK:-$repo/build/imgcheck}
QEMU_IMG=${QEMU_IMG:-qemu-img}
QEMU_IO=${QEMU_IO:-qemu-io}
TIME=/usr/bin/time
PY=/usr/bin/python3
QUICK=0
KEEP=1
QEMU_ONLY=0
runs_set=0

die() { echo "check_speed.sh: $*" >&2; exit 1; }
usage() { sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"; }

while [[ $# -gt 0 ]]; do
    case $1 in
        --runs) [[ $# -ge 2 ]] || die "--runs needs a value"; RUNS=$2; runs_set=1; shift 2 ;;
        --runs=*) RUNS=${1#*=}; runs_set=1; shift ;;
        --quick) QUICK=1; shift ;;
        --dir) [[ $# -ge 2 ]] || die "--dir needs a value"; DIR=$2; shift 2 ;;
        --dir=*) DIR=${1#*=}; shift ;;
        --keep) KEEP=1; shift ;;
        --clean) KEEP=0; shift ;;
        --qemu-only) QEMU_ONLY=1; shift ;;
        -h|--help) usage; exit 0 ;;
        *) die "unknown argument: $1 (see --help)" ;;
    esac
done
if [[ $QUICK == 1 && $runs_set == 0 ]]; then RUNS=3; fi
[[ $RUNS =~ ^[1-9][0-9]*$ ]] || die "--runs must be a positive integer, got '$RUNS'"

[[ -x $TIME ]] || die "$TIME not found (apt-get install -y time)"
[[ -x $PY ]] || die "$PY not found"
command -v "$QEMU_IMG" >/dev/null || die "qemu-img not found (apt-get install -y qemu-utils)"
command -v "$QEMU_IO" >/dev/null || die "qemu-io not found (apt-get install -y qemu-utils)"
if [[ $QEMU_ONLY == 0 ]]; then
    [[ -x $IMGCHECK ]] || die "imgcheck binary not found at '$IMGCHECK' (build it, set IMGCHECK=, or use --qemu-only)"
fi

mkdir -p "$DIR"
DIR=$(cd "$DIR" && pwd)
LOG=$DIR/logs
mkdir -p "$LOG"

# ---------------------------------------------------------------- images
# name|description|creation command (for the report)
declare -A DESC CREATE
DESC[4k-128G]="128 GiB virtual, 4k clusters, preallocation=metadata"
CREATE[4k-128G]="qemu-img create -f qcow2 -o cluster_size=4k,preallocation=metadata 4k-128G.qcow2 128G"
DESC[64k-1T]="1 TiB virtual, 64k clusters, preallocation=metadata"
CREATE[64k-1T]="qemu-img create -f qcow2 -o cluster_size=64k,preallocation=metadata 64k-1T.qcow2 1T"
DESC[4k-64M-7T]="64 MiB virtual, 4k clusters, 40 MiB written, file truncated to 7 TiB"
CREATE[4k-64M-7T]="qemu-img create -f qcow2 -o cluster_size=4k 4k-64M-7T.qcow2 64M && qemu-io -f qcow2 -c 'write -P 0x5a 0 32M' -c 'write -P 0xa5 48M 8M' 4k-64M-7T.qcow2 && truncate -s 7T 4k-64M-7T.qcow2"

if [[ $QUICK == 1 ]]; then
    IMAGES=(64k-1T 4k-64M-7T)
else
    IMAGES=(4k-128G 64k-1T 4k-64M-7T)
fi

build_image() {  # name -> builds $DIR/name.qcow2 atomically (via .part + mv)
    local name=$1 img=$DIR/$1.qcow2 part=$DIR/$1.qcow2.part t0
    if [[ -f $img ]]; then
        echo "reusing $img" >&2
        return
    fi
    rm -f "$part"
    t0=$(date +%s)
    echo "building $img ..." >&2
    case $name in
        4k-128G)
            "$QEMU_IMG" create -q -f qcow2 -o cluster_size=4k,preallocation=metadata "$part" 128G ;;
        64k-1T)
            "$QEMU_IMG" create -q -f qcow2 -o cluster_size=64k,preallocation=metadata "$part" 1T ;;
        4k-64M-7T)
            "$QEMU_IMG" create -q -f qcow2 -o cluster_size=4k "$part" 64M
            "$QEMU_IO" -f qcow2 -c 'write -P 0x5a 0 32M' -c 'write -P 0xa5 48M 8M' "$part" >/dev/null
            truncate -s 7T "$part" ;;
        *) die "unknown image $name" ;;
    esac
    mv "$part" "$img"
    echo "  built in $(( $(date +%s) - t0 )) s" >&2
}

warm_read() {  # read only the data extents of a (sparse) file into page cache
    "$PY" - "$1" <<'EOF'
import os, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
end = os.fstat(fd).st_size
off = 0
while off < end:
    try:
        d = os.lseek(fd, off, os.SEEK_DATA)
    except OSError:
        break
    h = os.lseek(fd, d, os.SEEK_HOLE)
    p = d
    while p < h:
        n = len(os.pread(fd, min(8 << 20, h - p), p))
        if n == 0:
            break
        p += n
    off = h
os.close(fd)
EOF
}

# ---------------------------------------------------------------- runs
RES=$LOG/results.tsv   # raw per-run data: image tool run wall_s rss_kib rc
: > "$RES"
WARN=0

tool_cmd() {  # tool img -> fills array CMD
    case $1 in
        imgcheck) CMD=("$IMGCHECK" check --no-guest --output json "$2") ;;
        qemu-img) CMD=("$QEMU_IMG" check -f qcow2 --output=json "$2") ;;
    esac
}

loud() {
    {
        echo "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!"
        echo "!!! WARNING: $*"
        echo "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!"
    } >&2
}

timed_run() {  # name tool run -> appends a line to $RES
    local name=$1 tool=$2 run=$3 img=$DIR/$1.qcow2 out tf rc wall rss
    tool_cmd "$tool" "$img"
    out=$LOG/$name.$tool.$run.out
    tf=$LOG/$name.$tool.$run.time
    rc=0
    "$TIME" -o "$tf" -f '%e %M' "${CMD[@]}" >"$out" 2>&1 || rc=$?
    read -r wall rss < <(tail -n 1 "$tf")
    printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$tool" "$run" "$wall" "$rss" "$rc" >> "$RES"
    printf '  %-10s %-9s run %d: %6.2f s %7d MiB rc=%d\n' "$name" "$tool" "$run" "$wall" "$(( rss / 1024 ))" "$rc" >&2
    if [[ $rc != 0 ]]; then
        WARN=1
        loud "$tool exited $rc on $name (run $run) -- expected 0. Output: $out"
        sed -n '1,15p' "$out" >&2
    fi
}

TOOLS=(imgcheck qemu-img)
[[ $QEMU_ONLY == 1 ]] && TOOLS=(qemu-img)

for name in "${IMAGES[@]}"; do build_image "$name"; done
ic_stamp=""
[[ $QEMU_ONLY == 0 ]] && ic_stamp=$(stat -L -c '%s bytes, modified %y' "$IMGCHECK")

for name in "${IMAGES[@]}"; do
    img=$DIR/$name.qcow2
    echo "== $name: warm-up" >&2
    warm_read "$img"
    for tool in "${TOOLS[@]}"; do
        tool_cmd "$tool" "$img"
        "${CMD[@]}" >"$LOG/$name.$tool.warmup.out" 2>&1 || true
    done
    for ((r = 1; r <= RUNS; r++)); do
        for tool in "${TOOLS[@]}"; do
            timed_run "$name" "$tool" "$r"
        done
    done
done

# ---------------------------------------------------------------- report
img_rows=$(
    for name in "${IMAGES[@]}"; do
        img=$DIR/$name.qcow2
        printf '%s\t%s\t%s\t%s\n' "$name" "${DESC[$name]}" "$(stat -c %s "$img")" "$(( $(stat -c %b "$img") * $(stat -c %B "$img") ))"
    done
)

tool_cmd imgcheck IMAGE; ic_cmd="imgcheck ${CMD[*]:1}"
tool_cmd qemu-img IMAGE; qi_cmd="${CMD[*]}"
cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//') || cpu=unknown
mem=$(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo)

echo
echo "### imgcheck vs qemu-img check ($(date -u +%Y-%m-%d), $RUNS runs each, warm cache, medians)"
echo
echo "Host: $(nproc) cores, $mem RAM, ${cpu}, loadavg $(cut -d' ' -f1-3 /proc/loadavg); $(. /etc/os-release && echo "$PRETTY_NAME"); $("$QEMU_IMG" --version | head -n1)"
[[ $QEMU_ONLY == 0 ]] && echo "imgcheck: $IMGCHECK ($ic_stamp)"
echo
IMG_ROWS=$img_rows "$PY" - "$RES" <<'EOF'
import os, sys, statistics
res = sys.argv[1]
imgs = [l.split("\t") for l in os.environ["IMG_ROWS"].splitlines() if l.strip()]

def human(n):
    n = float(n)
    for u in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or u == "TiB":
            return f"{n:.0f} {u}" if u == "B" else f"{n:.1f} {u}"
        n /= 1024

print("| image | description | file length | on disk |")
print("|---|---|---:|---:|")
for name, desc, size, alloc in imgs:
    print(f"| {name} | {desc} | {human(size)} | {human(alloc)} |")
print()

data = {}
for line in open(res):
    name, tool, run, wall, rss, rc = line.rstrip("\n").split("\t")
    d = data.setdefault((name, tool), {"wall": [], "rss": [], "rc": set()})
    d["wall"].append(float(wall)); d["rss"].append(int(rss) / 1024.0); d["rc"].add(int(rc))

print("| image | tool | wall s | peak RSS MiB | qemu/imgcheck time | qemu/imgcheck RSS |")
print("|---|---|---:|---:|---:|---:|")
bad = False
for name, *_ in imgs:
    med = {}
    for tool in ("imgcheck", "qemu-img"):
        d = data.get((name, tool))
        if not d:
            continue
        w, r = statistics.median(d["wall"]), statistics.median(d["rss"])
        med[tool] = (w, r)
        flag = ""
        if d["rc"] != {0}:
            flag = " (exit " + ",".join(str(c) for c in sorted(d["rc"])) + "!)"
            bad = True
        tr = rr = ""
        if tool == "qemu-img" and "imgcheck" in med:
            iw, ir = med["imgcheck"]
            tr = f"{w / iw:.1f}x" if iw > 0 else f">{w / 0.01:.0f}x"
            rr = f"{r / ir:.1f}x" if ir > 0 else "n/a"
        ws = f"{w:.2f}" if w > 0 else "<0.01"
        print(f"| {name} | {tool}{flag} | {ws} | {r:.1f} | {tr} | {rr} |")
if bad:
    print("\n**WARNING: a tool exited non-zero on at least one run; see flagged rows.**")
EOF
echo
echo "Commands (in the image dir; IMAGE = each image; timed with \`/usr/bin/time -f '%e %M'\`):"
echo
echo '```'
for name in "${IMAGES[@]}"; do echo "${CREATE[$name]}"; done
[[ $QEMU_ONLY == 0 ]] && echo "$ic_cmd"
echo "$qi_cmd"
echo '```'

if [[ $QEMU_ONLY == 0 && $(stat -L -c '%s bytes, modified %y' "$IMGCHECK") != "$ic_stamp" ]]; then
    WARN=1
    loud "$IMGCHECK changed during the benchmark (rebuilt?); rerun for consistent figures"
fi
if [[ $WARN == 1 ]]; then
    loud "at least one check exited non-zero; figures for those rows are suspect (logs in $LOG)"
fi

if [[ $KEEP == 0 ]]; then
    for name in "${IMAGES[@]}"; do rm -f "$DIR/$name.qcow2"; done
fi
[[ $WARN == 0 ]]
