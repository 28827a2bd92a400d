#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (ASan + UBSan) and runs each for SECONDS (default 60),
# starting from seeds made from small real images. Any crash, leak, timeout or out-of-memory
# fails the run. Usage: tests/fuzz/run_fuzzers.sh [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/../.."
seconds=${1:-60}
build=build-fuzz
CC=clang CXX=clang++ cmake -S . -B $build -G Ninja -DIMGCHECK_FUZZ=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build $build

seeds=$build/seeds
rm -rf "$seeds" && mkdir -p "$seeds"/{check,header,snapshot,bitmap,domain,nvram}
python3 fixtures/build_fixtures.py "$seeds/img" --only clean-c512 clean-c4k clean-snapshot \
  clean-bitmap clean-zstd clean-extl2-64k leak-one corrupt-l2-dup >/dev/null
for f in "$seeds"/img/*.qcow2; do
  n=$(basename "$f" .qcow2)
  # Whole small images (their sparse tails cut) for the checker; cluster 0 for the header.
  head -c 1048576 "$f" > "$seeds/check/$n"
  head -c 65536 "$f" > "$seeds/header/$n"
done
printf '\x00\x01' > "$seeds/snapshot/one"; printf '\x00\x01' > "$seeds/bitmap/one"
# Domain XML seeds: the ones the tests write (tests/fuzz/seeds/domain), and OVMF's empty
# variable store for the NVRAM parser when Debian's ovmf is installed.
cp tests/fuzz/seeds/domain/* "$seeds/domain/"
for f in /usr/share/OVMF/OVMF_VARS_4M.fd /usr/share/OVMF/OVMF_VARS.fd; do
  [ -f "$f" ] && cp "$f" "$seeds/nvram/" && break
done
printf '\x02\x00\x00\x00\x01\x00\x07\x00\x00\x00\x00\x00' > "$seeds/nvram/acl"

run() {
  local target=$1 corpus=$2
  echo "== $target for ${seconds}s"
  mkdir -p "$build/corpus/$target"
  local log=$build/$target.log rc=0
  "$build/tests/fuzz/$target" "$build/corpus/$target" "$corpus" -max_total_time="$seconds" \
    -timeout=20 -rss_limit_mb=3072 -max_len=1200000 -print_final_stats=1 \
    -artifact_prefix="$build/$target-" >"$log" 2>&1 || rc=$?
  if [ "$rc" -ne 0 ]; then
    # The sanitizer's report and the saved input (crash-*, leak-*, timeout-*, oom-*).
    grep -v '^#[0-9]' "$log" | tail -n 60
    echo "$target failed (exit $rc); reproduce: $build/tests/fuzz/$target INPUT"
    return "$rc"
  fi
  tail -n 4 "$log"
}
run fuzz_header "$seeds/header"
run fuzz_snapshot_table "$seeds/snapshot"
run fuzz_bitmap_directory "$seeds/bitmap"
run fuzz_check "$seeds/check"
run fuzz_repair_plan "$seeds/check"
run fuzz_domain "$seeds/domain"
run fuzz_nvram "$seeds/nvram"
echo "fuzzing: no crash, leak, timeout or OOM"
