#!/bin/sh
# Threads under ThreadSanitizer (halt_on_error=1): tests/stress/threads_tsan.c
# against a TSan build of the shim (build/tsan/libqcowshim.so) and of the
# library alone; the images must then pass qemu-img check (exit 0) and
# qemu-img compare with their raw twins.
#   threads.sh [THREADS [OPS]]   (default 8 threads x 400 ops)
set -eu
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
: "${QCS_BUILD:=$ROOT/build}"
TB="$QCS_BUILD/tsan"
N=${1:-8} OPS=${2:-400}
for f in "$TB/threads_tsan" "$TB/libqcowshim.so"; do
	[ -f "$f" ] || { echo "threads.sh: $f missing (make stress builds it)"; exit 1; }
done
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT INT TERM
export TSAN_OPTIONS="halt_on_error=1 exitcode=66 second_deadlock_stack=1"
size=$(((N + 1) * 2))M
# a: qemu-made v3 64 KiB clusters; b: qemu-made v2 4 KiB clusters.  The range
# after the threads' ranges holds 0x5c (read by the open/close thread).
qemu-img create -q -f qcow2 "$T/a.qcow2" "$size"
qemu-img create -q -f qcow2 -o compat=0.10,cluster_size=4096 "$T/b.qcow2" "$size"
for i in a b; do
	qemu-io -f qcow2 -c "write -P 0x5c $((N * 2))M 2M" "$T/$i.qcow2" >/dev/null
	qemu-img convert -O raw "$T/$i.qcow2" "$T/$i.raw"
done
# The TSan runtime must come first: its interceptors then call the shim's.
TSANLIB=$(ldd "$TB/threads_tsan" | awk '/libtsan/ { print $3 }')
[ -f "$TSANLIB" ] || { echo "threads.sh: no libtsan found for $TB/threads_tsan"; exit 1; }
# Kernels with many mmap randomization bits break the TSan runtime's memory
# layout ("unexpected memory mapping"): then run without address randomization.
NORAND=""
"$TB/threads_tsan" >/dev/null 2>"$T/probe" || true
if grep -q 'unexpected memory mapping' "$T/probe"; then
	NORAND="setarch $(uname -m) -R"
	echo "threads.sh: the TSan runtime needs address randomization off here: using $NORAND"
fi
fails=0
rc=0
LD_PRELOAD="$TSANLIB $TB/libqcowshim.so" $NORAND "$TB/threads_tsan" shim "$T" "$N" "$OPS" || rc=$?
[ $rc -eq 0 ] || { echo "FAIL: threads through the TSan shim (exit $rc; 66 = a TSan report)"; fails=$((fails + 1)); }
rc=0
$NORAND "$TB/threads_tsan" lib "$T" "$N" "$OPS" || rc=$?
[ $rc -eq 0 ] || { echo "FAIL: threads on the TSan library (exit $rc; 66 = a TSan report)"; fails=$((fails + 1)); }
for i in a b l; do
	qemu-img check -q "$T/$i.qcow2" || { echo "FAIL: qemu-img check $i.qcow2 (exit $?)"; fails=$((fails + 1)); }
	qemu-img compare -q -f qcow2 -F raw "$T/$i.qcow2" "$T/$i.raw" ||
		{ echo "FAIL: $i.qcow2 differs from its raw twin"; fails=$((fails + 1)); }
done
echo "threads.sh: $N threads x $OPS ops on 2 images through the shim + 1 open/close thread, and on the library; $fails failures"
[ "$fails" -eq 0 ]
