#!/bin/sh
# Several processes under the shim on one image, under load: WRITERS writer
# processes on disjoint ranges (each round opens, writes its 4 MiB range,
# sometimes fsyncs, closes; the shim makes them take turns) while READERS
# reader processes keep opening the image and checking that every byte they
# read is one some round wrote there.  Afterwards qemu-img check exits 0 and
# the image equals the expected contents (qemu-img compare).  Once on a
# qemu-made image (64 KiB clusters), once on a shim-made one (truncate -s).
#   multiproc.sh [WRITERS [READERS [ROUNDS]]]   (default 4 3 6)
set -eu
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
: "${QCS_BUILD:=$ROOT/build}"
MP="$QCS_BUILD/stress/multiproc" SHIM="$QCS_BUILD/libqcowshim.so"
W=${1:-4} R=${2:-3} ROUNDS=${3:-6}
T=$(mktemp -d "${TMPDIR:-/tmp}/qcs-multiproc.XXXXXX")
trap 'rm -rf "$T"' EXIT INT TERM
# A writer waits its turn (for the exclusive byte) up to QCOWSHIM_WAIT_MS,
# 10 s by default; on a loaded machine W writers can queue longer than that,
# and an EBUSY then would say nothing about the shim.  The test's question is
# whether they take turns correctly, so they may wait up to 10 minutes.
QCOWSHIM_WAIT_MS=${QCOWSHIM_WAIT_MS:-600000}
export QCOWSHIM_WAIT_MS
fails=0
size=$(((W + 1) * 4))M
"$MP" expect "$T/expect.raw" "$W" "$ROUNDS"
for origin in qemu shim; do
	rm -f "$T/img.qcow2" "$T/stop"
	if [ $origin = qemu ]; then
		qemu-img create -q -f qcow2 "$T/img.qcow2" "$size"
	else
		LD_PRELOAD="$SHIM" truncate -s "$size" "$T/img.qcow2"
	fi
	rpids=""
	for i in $(seq 1 "$R"); do
		LD_PRELOAD="$SHIM" "$MP" reader "$T/img.qcow2" "$W" "$ROUNDS" "$T/stop" >"$T/r$i.out" 2>&1 &
		rpids="$rpids $!"
	done
	wpids=""
	for i in $(seq 0 $((W - 1))); do
		LD_PRELOAD="$SHIM" "$MP" writer "$T/img.qcow2" "$i" "$ROUNDS" 2>"$T/w$i.err" &
		wpids="$wpids $!"
	done
	i=0
	for p in $wpids; do
		wait "$p" || { echo "FAIL ($origin-made): writer $i: $(cat "$T/w$i.err")"; fails=$((fails + 1)); }
		i=$((i + 1))
	done
	touch "$T/stop"
	i=1
	for p in $rpids; do
		wait "$p" || { echo "FAIL ($origin-made): reader $i: $(cat "$T/r$i.out")"; fails=$((fails + 1)); }
		i=$((i + 1))
	done
	verified=$(cat "$T"/r*.out | awk '/blocks verified/ { n += $3 } END { print n + 0 }')
	rc=0
	qemu-img check -q "$T/img.qcow2" || rc=$?
	[ $rc -eq 0 ] || { echo "FAIL ($origin-made): qemu-img check exit $rc"; fails=$((fails + 1)); }
	qemu-img compare -q -f qcow2 -F raw "$T/img.qcow2" "$T/expect.raw" ||
		{ echo "FAIL ($origin-made): contents differ from what the writers wrote"; fails=$((fails + 1)); }
	echo "multiproc.sh ($origin-made): $W writers x $ROUNDS rounds x 4 MiB, $R readers verified $verified 64 KiB blocks while they ran"
done
[ "$fails" -eq 0 ]
