#!/bin/sh
# kill -9 at random moments while a program writes through the shim.
#
# Each trial prepares a starting image (fresh from the library, the shim or
# qemu-img, every cluster size 512 B..2 MiB, v2/v3, refcount widths,
# extended L2, or a qemu-made image with an internal snapshot, a backing
# file or compressed clusters), runs `stresskill write` under
# LD_PRELOAD=libqcowshim.so (random pwrite / punch-hole discard / fsync /
# fdatasync / sync_file_range+fsync / sync_file_range / close+reopen, each op
# logged), kills
# it with SIGKILL after a random delay, and then requires, without the shim:
#   - qemu-img check exits 0 or 3 (leaked clusters allowed, never corruption)
#   - every byte last written or discarded by an op that a returned sync point
#     covers reads back (qemu-img convert -O raw, compared by stresskill check).
# In every third trial another process keeps reading the image through the
# shim meanwhile, so the writer publishes its metadata after every write.
# STRESS_TRIALS (default 400, ~10 min on 2 shared cores), STRESS_SEED,
# STRESS_MAX_MS (longest delay before the kill, default 1200).
set -eu
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
: "${QCS_BUILD:=$ROOT/build}"
SK="$QCS_BUILD/stress/stresskill"
QT="$QCS_BUILD/qcowtool"
SHIM="$QCS_BUILD/libqcowshim.so"
TRIALS=${STRESS_TRIALS:-400}
SEED=${STRESS_SEED:-$(date +%s)}
MAXMS=${STRESS_MAX_MS:-1200}
for f in "$SK" "$QT" "$SHIM"; do
	[ -x "$f" ] || [ -f "$f" ] || { echo "kill.sh: $f missing (make stress builds it)"; exit 1; }
done
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT INT TERM
fails=0 leaks=0 committed=0 checked=0 uncommitted=0
kinds=""

fail() {
	echo "FAIL trial $i ($desc, seed $s, kill after ${ms}ms): $*"
	fails=$((fails + 1))
	mkdir -p "$QCS_BUILD/stress/failed"
	cp "$T/img.qcow2" "$QCS_BUILD/stress/failed/trial-$i.qcow2" 2>/dev/null || true
	cp "$T/log" "$QCS_BUILD/stress/failed/trial-$i.log" 2>/dev/null || true
	cp "$T/base.raw" "$QCS_BUILD/stress/failed/trial-$i.base.raw" 2>/dev/null || true
}

rnd() { # rnd N: a number in [0, N) from the trial's seed and a counter
	_rc=$((_rc + 1))
	awk -v s="$s" -v c="$_rc" -v n="$1" 'BEGIN { srand(s * 7919 + c); print int(rand() * n) }'
}

qio() { qemu-io -f qcow2 -c "$1" "$2" >/dev/null; }

# prepare: $T/img.qcow2 and $T/base.raw (its contents); sets desc
prepare() {
	rm -f "$T"/*.qcow2 "$T"/*.raw
	size=16M
	k=$((i % 8))
	case $k in
	0 | 1) # the library, any geometry
		cb=$(set -- 9 12 16 21; shift "$(rnd 4)"; echo "$1")
		ver=$((2 + $(rnd 2)))
		rb=16
		[ "$ver" = 3 ] && rb=$(set -- 1 2 4 8 16 32 64; shift "$(rnd 7)"; echo "$1")
		ext=""
		[ "$ver" = 3 ] && [ "$cb" -ge 14 ] && [ "$(rnd 2)" = 1 ] && ext=--extended-l2
		[ "$cb" = 21 ] && size=32M
		"$QT" create "$T/img.qcow2" $size --cluster-bits "$cb" --version "$ver" --refcount-bits "$rb" $ext
		desc="library-made cb $cb v$ver rb $rb${ext:+ extended-l2}"
		;;
	2 | 3) # qemu-img, any geometry, some data already there
		cs=$(set -- 512 4096 65536 2097152; shift "$(rnd 4)"; echo "$1")
		compat=$(set -- 0.10 1.1; shift "$(rnd 2)"; echo "$1")
		opts="compat=$compat,cluster_size=$cs"
		if [ "$compat" = 1.1 ]; then
			opts="$opts,refcount_bits=$(set -- 1 4 16 64; shift "$(rnd 4)"; echo "$1")"
			[ "$cs" -ge 16384 ] && [ "$(rnd 2)" = 1 ] && opts="$opts,extended_l2=on"
		fi
		[ "$cs" = 2097152 ] && size=32M
		qemu-img create -q -f qcow2 -o "$opts" "$T/img.qcow2" $size
		qio "write -P 0x5a 1M 3M" "$T/img.qcow2"
		desc="qemu-made $opts"
		;;
	4) # internal snapshot: shared clusters are copied on write
		qemu-img create -q -f qcow2 -o cluster_size=$((4096 << $(rnd 5))) "$T/img.qcow2" $size
		qio "write -P 0x11 0 6M" "$T/img.qcow2"
		qemu-img snapshot -c snap1 "$T/img.qcow2"
		qio "write -P 0x22 4M 4M" "$T/img.qcow2"
		desc="qemu-made with an internal snapshot"
		;;
	5) # backing file: the overlay gets copy-on-write from it
		qemu-img create -q -f qcow2 -o cluster_size=65536 "$T/base.qcow2" $size
		qio "write -P 0x33 0 12M" "$T/base.qcow2"
		qemu-img create -q -f qcow2 -b base.qcow2 -F qcow2 "$T/img.qcow2"
		qio "write -P 0x44 2M 1M" "$T/img.qcow2"
		desc="qemu-made overlay on a qcow2 backing file"
		;;
	6) # compressed clusters
		seq 1 900000 >"$T/src.raw"
		truncate -s $size "$T/src.raw"
		qemu-img convert -q -c -f raw -O qcow2 -o cluster_size=$((4096 << $(rnd 5))) "$T/src.raw" "$T/img.qcow2"
		desc="qemu-made with compressed clusters"
		;;
	7) # created by the shim itself (truncate -s on a new path)
		LD_PRELOAD="$SHIM" truncate -s $size "$T/img.qcow2"
		desc="shim-made"
		;;
	esac
	qemu-img convert -q -O raw "$T/img.qcow2" "$T/base.raw"
}

echo "kill.sh: $TRIALS trials, seed $SEED"
start=$(date +%s)
i=0
while [ "$i" -lt "$TRIALS" ]; do
	i=$((i + 1))
	s=$((SEED + i)) _rc=0
	prepare
	ms=$((20 + $(rnd "$MAXMS")))
	rpid=""
	if [ $((i % 3)) = 0 ]; then
		# Its own process group (setsid execs in place: a background job is
		# no group leader), so one kill ends the loop and the cat it runs.
		LD_PRELOAD="$SHIM" setsid sh -c 'while :; do cat "$1" >/dev/null 2>&1; done' reader "$T/img.qcow2" &
		rpid=$!
		desc="$desc, with a reader process"
	fi
	LD_PRELOAD="$SHIM" "$SK" write "$T/img.qcow2" "$T/log" "$s" 2>"$T/err" &
	pid=$!
	sleep "$(awk -v d="$ms" 'BEGIN{printf "%.3f", d/1000}')"
	if [ -n "$rpid" ]; then
		kill -9 "-$rpid" 2>/dev/null || true # dash: no "--"
		wait "$rpid" 2>/dev/null || true
	fi
	if ! kill -9 "$pid" 2>/dev/null; then
		wait "$pid" 2>/dev/null || true
		fail "the writer ended before the kill: $(tail -n 2 "$T/err")"
		continue
	fi
	wait "$pid" 2>/dev/null || true
	rc=0
	qemu-img check "$T/img.qcow2" >"$T/check" 2>&1 || rc=$?
	if [ "$rc" = 3 ]; then
		leaks=$((leaks + 1))
	elif [ "$rc" != 0 ]; then
		fail "qemu-img check exit $rc: $(grep -v '^$' "$T/check" | head -n 6 | tr '\n' '|')"
		continue
	fi
	if ! qemu-img convert -q -O raw "$T/img.qcow2" "$T/after.raw" 2>"$T/err"; then
		fail "qemu-img convert: $(tail -n 2 "$T/err")"
		continue
	fi
	if ! "$SK" check "$T/after.raw" "$T/base.raw" "$T/log" >"$T/res" 2>"$T/err"; then
		fail "$(cat "$T/err")"
		continue
	fi
	# ops N committed N uncommitted N bytes-checked N
	set -- $(cat "$T/res")
	committed=$((committed + $4)) uncommitted=$((uncommitted + $6)) checked=$((checked + $8 / 1048576))
done
echo "kill.sh: $TRIALS trials (seed $SEED) in $(($(date +%s) - start))s: $fails failed;" \
	"$leaks left leaked clusters (check exit 3); $committed committed ops verified," \
	"$uncommitted uncommitted ops at the kills; ${checked} MiB compared"
[ "$fails" -eq 0 ]
