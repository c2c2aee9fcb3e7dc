#!/bin/sh
# `qcowtool mirror`: random reads, writes, zero-writes, discards, resizes
# and flushes through the library, mirrored onto a raw twin, over images
# made by qemu-img (with content from qemu-io) and by the library, for every
# cluster size 512 B..2 MiB x (compat 1.1 x refcount widths 1..64,
# compat 0.10).  Afterwards `qemu-img check` must exit 0 (no leaks, no
# corruption) and `qemu-img compare -f qcow2 -F raw img twin` must say
# identical.  Library-created images must be accepted by qemu-img info,
# check and qemu-io.  Also: images with an internal snapshot (the snapshot
# must stay intact), preallocated and compressed images, overlays.
# make test runs a third of the operations of make stress (QCS_LONG=1).
set -eu
: "${QCS_BUILD:=$(cd "$(dirname "$0")/../.." && pwd)/build}"
. "$(dirname "$0")/lib_reps.sh"
QT="$QCS_BUILD/qcowtool"
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT INT TERM
W=$T # per-job scratch directory
: >"$T/fails"
: >"$T/cases"

fail() {
	echo "FAIL: $*" | tee -a "$T/fails"
}
case_() { echo . >>"$T/cases"; }

# judge NAME IMG TWIN: qemu-img check exit 0 and compare identical
judge() {
	if ! qemu-img check "$2" >"$W/check" 2>&1; then
		fail "$1: qemu-img check exit $?: $(grep -v '^$' "$W/check" | head -8 | tr '\n' '|')"
		return 1
	fi
	if ! qemu-img compare -f qcow2 -F raw "$2" "$3" >"$W/cmp" 2>&1; then
		fail "$1: qemu-img compare: $(head -3 "$W/cmp" | tr '\n' '|')"
		return 1
	fi
}

# mirror NAME IMG SEED OPS [mirror options]: twin from qemu-img convert;
# OPS is make stress's count, make test runs a third of it
mirror() {
	name=$1 img=$2 seed=$3 n=$(reps $(($4 / 3)) "$4") # not ops: matrix's
	shift 4
	case_
	qemu-img convert -O raw "$img" "$W/twin.raw"
	if ! "$QT" mirror "$img" "$W/twin.raw" --seed "$seed" --ops "$n" "$@" 2>"$W/err"; then
		fail "$name: qcowtool mirror --seed $seed --ops $n $*: $(tail -3 "$W/err" | tr '\n' '|')"
		return 1
	fi
	judge "$name (seed $seed)" "$img" "$W/twin.raw"
}

# qio IMG CMD...: qemu-io writes, fail loudly.  -t unsafe: qemu-io's flushes
# are skipped (later processes read the page cache all the same); each
# fdatasync otherwise waits for every other script's dirty data.
qio() {
	img=$1
	shift
	if ! qemu-io -t unsafe -f qcow2 "$@" "$img" >"$W/qio" 2>&1 || grep -q -i 'error\|fail' "$W/qio"; then
		echo "qemu-io on $img failed: $(cat "$W/qio")" >&2
		exit 1
	fi
}

ops_for() { # fewer ops for huge clusters (each op may rewrite 2 MiB)
	if [ "$1" -le 65536 ]; then echo 300; elif [ "$1" -le 524288 ]; then echo 120; else echo 60; fi
}

matrix() { # matrix JOB SIZES...: runs in its own scratch directory
W="$T/job$1"
mkdir -p "$W"
shift
seed=$1
for c in "$@"; do
	bits=9
	while [ $((1 << bits)) -lt "$c" ]; do bits=$((bits + 1)); done
	s=$((12 * c + 1536))
	[ $s -lt 262144 ] && s=$((262144 + 1536))
	ops=$(ops_for "$c")
	for v in 1.1:1 1.1:2 1.1:4 1.1:8 1.1:16 1.1:32 1.1:64 0.10:16; do
		compat=${v%:*} rb=${v#*:}
		ver=3
		[ "$compat" = 0.10 ] && ver=2
		seed=$((seed + 1))
		# made by qemu-img, with content from qemu-io
		img="$W/q.qcow2"
		qemu-img create -q -f qcow2 -o "compat=$compat,cluster_size=$c,refcount_bits=$rb" "$img" "$s"
		qio "$img" -c "write -P 0xab 0 $((3 * c + 100))" -c "write -z $c $c" \
			-c "write -z -u $((2 * c)) $c" -c "discard $((5 * c)) $((2 * c))" \
			-c "write -P 0xcd $((s - 3000)) 3000"
		mirror "qemu-made cluster $c compat $compat refcount_bits $rb" "$img" "$seed" "$ops" || true
		# made by the library
		img="$W/l.qcow2"
		if ! "$QT" create "$img" "$s" --cluster-bits "$bits" \
			--version "$ver" --refcount-bits "$rb" 2>"$W/err"; then
			fail "qcowtool create cluster $c v$ver refcount_bits $rb: $(cat "$W/err")"
			continue
		fi
		case_
		if ! qemu-img check "$img" >"$W/check" 2>&1; then
			fail "library-made cluster $c v$ver rb $rb: fresh image fails qemu-img check: $(head -5 "$W/check" | tr '\n' '|')"
		fi
		info=$(qemu-img info --output=json "$img")
		case $info in *"\"cluster-size\": $c,"*) ;; *)
			fail "library-made cluster $c: qemu-img info says: $(echo "$info" | tr -d '\n' | head -c 300)" ;; esac
		case $info in *"\"refcount-bits\": $rb"[!0-9]*) ;; *)
			fail "library-made refcount_bits $rb: qemu-img info says: $(echo "$info" | tr -d '\n' | head -c 300)" ;; esac
		case $info in *"\"compat\": \"$compat\""*) ;; *)
			fail "library-made compat $compat: qemu-img info says: $(echo "$info" | tr -d '\n' | head -c 300)" ;; esac
		if ! qemu-io -t unsafe -f qcow2 -c 'read -P 0 0 256k' -c 'write -P 0x66 1000 5000' "$img" >"$W/qio" 2>&1 ||
			grep -q -i 'error\|fail\|mismatch' "$W/qio"; then
			fail "library-made cluster $c v$ver rb $rb: qemu-io: $(head -3 "$W/qio" | tr '\n' '|')"
		fi
		mirror "library-made cluster $c v$ver refcount_bits $rb" "$img" "$seed" "$ops" || true
	done
done
}

# two jobs (2 cores), balanced by cost
matrix 1 512 2048 8192 32768 131072 524288 2097152 &
job1=$!
matrix 2 1024 4096 16384 65536 262144 1048576
wait $job1 || true
W=$T

# qemu-io reads 1M of a fresh library image; qemu-img info accepts it
img="$T/one.qcow2"
"$QT" create "$img" 64M
qemu-io -f qcow2 -c 'read 0 1M' "$img" >"$W/qio" 2>&1 || fail "qemu-io read 0 1M: $(cat "$W/qio")"
grep -q 'read 1048576/1048576 bytes' "$W/qio" || fail "qemu-io read 0 1M: $(cat "$W/qio")"
qemu-img info "$img" >/dev/null 2>&1 || fail "qemu-img info on a library image"
"$QT" create "$T/lazy.qcow2" 8M --lazy-refcounts && mirror "library-made lazy refcounts" "$T/lazy.qcow2" 7 300 || true
"$QT" create "$T/ext.qcow2" 8M --extended-l2 --cluster-bits 16 &&
	mirror "library-made extended L2" "$T/ext.qcow2" 8 300 || true

# longer runs on the default geometry, several seeds, both origins
for seed in 101 102; do
	img="$T/d.qcow2"
	qemu-img create -q -f qcow2 "$img" 16M
	mirror "qemu-made default, long" "$img" "$seed" 1500 --max-size 32M || true
	"$QT" create "$img" 16M
	mirror "library-made default, long" "$img" "$seed" 1500 --max-size 32M || true
done

# dirty lazy-refcount images left by a crashed qemu (qemu-io abort): the
# library repairs (or refuses) before writing; afterwards qemu-img check is clean
for c in 4096 65536; do
	img="$T/dirty.qcow2"
	qemu-img create -q -f qcow2 -o "lazy_refcounts=on,cluster_size=$c" "$img" 4M
	qemu-io -f qcow2 -c 'write -P 0x61 0 1M' -c 'write -P 0x62 2M 100k' -c abort "$img" >/dev/null 2>&1 || true
	od -An -tx1 -j 79 -N 1 "$img" | grep -q 01 || fail "qemu-io abort did not leave the image dirty"
	mirror "dirty lazy-refcount image, cluster $c" "$img" 61 400 || true
done

# external data files: with data_file_raw=on the data file itself must
# equal the guest contents afterwards
for raw in on off; do
	img="$T/df.qcow2"
	rm -f "$T/df.data"
	qemu-img create -q -f qcow2 -o "data_file=$T/df.data,data_file_raw=$raw" "$img" 4M
	qio "$img" -c "write -P 0x51 0 100k" -c "write -z 200k 64k"
	if mirror "external data file (data_file_raw=$raw)" "$img" 71 500 --no-resize && [ $raw = on ]; then
		cmp -s "$T/df.data" "$W/twin.raw" || fail "data_file_raw=on: the data file differs from the guest contents"
	fi
done

# persistent dirty bitmaps: before its first write the library flags every
# bitmap IN_USE and keeps the autoclear bit (qemu's own marking while it has
# the image open), so qemu treats them as inconsistent and never uses them,
# and the image stays check-clean (the clusters are still referenced); the
# mirror resizes too, which qemu accepts for in-use bitmaps
img="$T/bm.qcow2"
qemu-img create -q -f qcow2 "$img" 4M
qio "$img" -c "write -P 0x31 0 1M"
qemu-img bitmap --add "$img" b0
qemu-img convert -O raw "$img" "$W/twin.raw"
case_
if "$QT" mirror "$img" "$W/twin.raw" --seed 81 --ops "$(reps 100 300)" 2>"$W/err"; then
	judge "bitmaps image" "$img" "$W/twin.raw"
	[ "$(od -An -tu1 -j 95 -N 1 "$img" | tr -d ' ')" = 1 ] || fail "bitmaps image: autoclear bit 0 not kept"
	qemu-img info "$img" | grep -q 'in-use' || fail "bitmaps image: bitmap b0 not flagged in-use"
	qemu-img bitmap --enable "$img" b0 >"$W/bm" 2>&1 && fail "bitmaps image: qemu uses a stale bitmap"
else
	fail "bitmaps image: mirror: $(tail -2 "$W/err" | tr '\n' '|')"
fi

# images grown and shrunk by qemu-img resize (oversized L1)
img="$T/rs.qcow2"
qemu-img create -q -f qcow2 -o cluster_size=512 "$img" 1M
qio "$img" -c "write -P 0x44 0 1M"
qemu-img resize -q "$img" 64M
qemu-img resize -q --shrink "$img" 3M
mirror "512 B clusters after qemu-img resize 64M, --shrink 3M" "$img" 91 500 || true

# preallocated images
for p in metadata falloc full; do
	img="$T/p.qcow2"
	qemu-img create -q -f qcow2 -o "preallocation=$p,cluster_size=16384" "$img" 4M
	mirror "preallocation=$p" "$img" 11 400 || true
done

# compressed images: writes over compressed clusters
i=0
while [ $i -lt 2000 ]; do
	echo "line $i: the quick brown fox jumps over the lazy dog"
	i=$((i + 1))
done >"$T/text"
qemu-img create -q -f qcow2 "$T/src.qcow2" 4M
qio "$T/src.qcow2" -c "write -s $T/text 0 $(wc -c <"$T/text")" -c "write -s $T/text 2000000 50000"
for ct in zlib zstd; do
	for c in 512 4096 65536 2097152; do
		img="$T/z.qcow2"
		qemu-img convert -c -O qcow2 -o "compression_type=$ct,cluster_size=$c" "$T/src.qcow2" "$img"
		mirror "compressed $ct cluster $c" "$img" 21 400 || true
	done
done

# internal snapshot: shared clusters must be copied on write, the snapshot intact
img="$T/s.qcow2"
qemu-img create -q -f qcow2 -o cluster_size=4096 "$img" 2M
qio "$img" -c "write -P 0x31 0 1M" -c "write -z 1M 64k"
qemu-img snapshot -c s1 "$img"
qemu-img convert -O raw -l snapshot.name=s1 "$img" "$T/snap-before.raw"
mirror "internal snapshot" "$img" 31 600 --no-resize || true
qemu-img convert -O raw -l snapshot.name=s1 "$img" "$T/snap-after.raw"
cmp -s "$T/snap-before.raw" "$T/snap-after.raw" || fail "internal snapshot s1 changed by writes to the active layer"

# the same with the snapshot table followed by other clusters
img="$T/s2.qcow2"
qemu-img create -q -f qcow2 -o cluster_size=4096 "$img" 2M
qio "$img" -c "write -P 0x31 0 1M"
qemu-img snapshot -c s1 "$img"
qio "$img" -c "write -P 0x33 1536k 8k"
qemu-img convert -O raw -l snapshot.name=s1 "$img" "$T/snap-before.raw"
mirror "internal snapshot (table not at EOF)" "$img" 32 600 --no-resize || true
qemu-img convert -O raw -l snapshot.name=s1 "$img" "$T/snap-after.raw"
cmp -s "$T/snap-before.raw" "$T/snap-after.raw" ||
	fail "internal snapshot s1 (table not at EOF) changed by writes to the active layer"

# a library-made image, snapshotted by qemu-img, written by the library
img="$T/ls.qcow2"
"$QT" create "$img" 2M --cluster-bits 12
"$QT" write "$img" 0 1M 0x35
qemu-img snapshot -c s1 "$img"
qemu-img convert -O raw -l snapshot.name=s1 "$img" "$T/snap-before.raw"
mirror "library-made image with a qemu snapshot" "$img" 33 600 --no-resize || true
qemu-img convert -O raw -l snapshot.name=s1 "$img" "$T/snap-after.raw"
cmp -s "$T/snap-before.raw" "$T/snap-after.raw" ||
	fail "snapshot of a library-made image changed by library writes"

# overlay on a qcow2 base: copy-on-write from the backing file, base untouched
base="$T/base.qcow2"
qemu-img create -q -f qcow2 "$base" 4M
qio "$base" -c "write -P 0x41 0 4M"
cp "$base" "$T/base.orig"
img="$T/o.qcow2"
qemu-img create -q -f qcow2 -b "$base" -F qcow2 -o cluster_size=4096 "$img"
mirror "overlay on a qcow2 base" "$img" 41 600 --no-resize || true
cmp -s "$base" "$T/base.orig" || fail "backing file modified through the overlay"

# overlays with resizes (a regrown area must read zeros, never backing data), v2 and v3
for v in 1.1:512 0.10:512 1.1:4096 0.10:65536; do
	compat=${v%:*} c=${v#*:}
	img="$T/or.qcow2"
	qemu-img create -q -f qcow2 -b "$base" -F qcow2 -o "compat=$compat,cluster_size=$c" "$img"
	mirror "overlay compat $compat cluster $c with resizes" "$img" 43 600 --max-size 6M || true
done
cmp -s "$base" "$T/base.orig" || fail "backing file modified through an overlay"

# deterministic: shrink an overlay, grow it back: zeros, as qemu-img resize gives
for c in 4096 65536; do
	img="$T/rg.qcow2"
	qemu-img create -q -f qcow2 -b "$base" -F qcow2 -o "cluster_size=$c" "$img"
	case_
	if "$QT" resize "$img" 1M 2>"$W/err" && "$QT" resize "$img" 4M 2>>"$W/err"; then
		qemu-img create -q -f raw "$W/twin.raw" 4M
		qemu-io -t unsafe -f raw -c 'write -P 0x41 0 1M' "$W/twin.raw" >/dev/null
		judge "overlay cluster $c shrunk to 1M and grown to 4M" "$img" "$W/twin.raw" || true
	else
		fail "overlay resize: $(cat "$W/err")"
	fi
done

# extended L2 images made by qemu (subcluster allocation)
for c in 16384 65536 2097152; do
	img="$T/x.qcow2"
	qemu-img create -q -f qcow2 -o "extended_l2=on,cluster_size=$c" "$img" $((8 * c))
	sc=$((c / 32))
	qio "$img" -c "write -P 0x21 $sc $((3 * sc))" -c "write -z $((c + 10 * sc)) $((2 * sc))" \
		-c "write -z -u $((3 * c)) $c"
	mirror "qemu-made extended L2 cluster $c" "$img" 51 300 || true
	qemu-img create -q -f qcow2 -b "$base" -F qcow2 -o "extended_l2=on,cluster_size=$c" "$img" 4M
	mirror "extended L2 overlay cluster $c" "$img" 52 300 --no-resize || true
done

fails=$(wc -l <"$T/fails")
echo "t_qcow_mirror: $(wc -l <"$T/cases") cases, $fails failed"
[ "$fails" -eq 0 ]
