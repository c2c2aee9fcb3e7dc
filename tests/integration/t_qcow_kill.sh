#!/bin/sh
# A process killed at any instant (SIGKILL in the middle of `qcowtool
# mirror`) leaves an image with at most leaked clusters: `qemu-img check`
# exits 0 or 3, never 2, and the image still opens and reads through the
# library and qemu-img.  Default and minimal caches, v2 and v3, several
# cluster sizes, images made by qemu-img and by the library.
set -eu
: "${QCS_BUILD:=$(cd "$(dirname "$0")/../.." && pwd)/build}"
QT="$QCS_BUILD/qcowtool"
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT INT TERM
fails=0
runs=0

fail() {
	echo "FAIL: $*"
	fails=$((fails + 1))
}

one() { # one NAME DELAY_MS TINY: img.qcow2 and twin.raw prepared
	name=$1 delay=$2 tiny=$3
	runs=$((runs + 1))
	if [ "$tiny" = 1 ]; then
		QCOWTOOL_TINY_CACHE=1 "$QT" mirror "$T/img.qcow2" "$T/twin.raw" --seed "$runs" --ops 100000000 \
			--max-size 8M 2>"$T/err" &
	else
		"$QT" mirror "$T/img.qcow2" "$T/twin.raw" --seed "$runs" --ops 100000000 --max-size 8M 2>"$T/err" &
	fi
	pid=$!
	sleep "$(awk -v d="$delay" 'BEGIN{printf "%.3f", d/1000}')"
	if ! kill -9 "$pid" 2>/dev/null; then
		fail "$name: mirror ended before the kill: $(tail -2 "$T/err")"
	fi
	wait "$pid" 2>/dev/null || true
	rc=0
	qemu-img check "$T/img.qcow2" >"$T/check" 2>&1 || rc=$?
	if [ "$rc" -ne 0 ] && [ "$rc" -ne 3 ]; then
		fail "$name (killed after ${delay}ms): qemu-img check exit $rc: $(grep -v '^$' "$T/check" | head -6 | tr '\n' '|')"
		cp "$T/img.qcow2" "$QCS_BUILD/integration/killed-$runs.qcow2" 2>/dev/null || true
		return 0
	fi
	"$QT" cat "$T/img.qcow2" >/dev/null 2>"$T/err" ||
		fail "$name (killed after ${delay}ms): unreadable through the library: $(tail -2 "$T/err")"
	qemu-img convert -O raw "$T/img.qcow2" "$T/out.raw" 2>"$T/err" ||
		fail "$name (killed after ${delay}ms): qemu-img convert: $(tail -2 "$T/err")"
}

i=0
for c in 512 4096 65536; do
	for tiny in 0 1; do
		for origin in qemu lib; do
			for compat in 1.1 0.10; do
				i=$((i + 1))
				if [ $origin = qemu ]; then
					qemu-img create -q -f qcow2 -o "compat=$compat,cluster_size=$c" "$T/img.qcow2" 4M
				else
					ver=3
					[ $compat = 0.10 ] && ver=2
					bits=$(awk -v c="$c" 'BEGIN{print int(log(c)/log(2)+0.5)}')
					"$QT" create "$T/img.qcow2" 4M --cluster-bits "$bits" --version $ver
				fi
				qemu-img create -q -f raw "$T/twin.raw" 4M
				one "cluster $c, $origin-made, compat $compat, tiny cache $tiny" $((150 + i * 37 % 400)) $tiny
			done
		done
	done
done

echo "t_qcow_kill: $runs kills, $fails failed"
[ "$fails" -eq 0 ]
