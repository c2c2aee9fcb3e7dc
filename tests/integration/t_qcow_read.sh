#!/bin/sh
# Images built by qemu-img/qemu-io read back through the library
# (`qcowtool cat`) byte-identical to `qemu-img convert -O raw`, and the
# library's extent map never calls non-zero bytes ZERO (`qcowtool verify`).
# Matrix: every cluster size 512 B..2 MiB x (compat 1.1 x refcount widths
# 1..64, compat 0.10), with data, zero clusters (write -z, write -z -u),
# discards, unaligned sizes; then preallocation modes, compression,
# lazy refcounts, extended L2, internal snapshots and backing chains.
set -eu
: "${QCS_BUILD:=$(cd "$(dirname "$0")/../.." && pwd)/build}"
QT="$QCS_BUILD/qcowtool"
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT INT TERM
fails=0
cases=0

fail() {
	echo "FAIL: $*"
	fails=$((fails + 1))
}

# check_read NAME IMG: cat vs convert, and verify (map against content)
check_read() {
	cases=$((cases + 1))
	if ! qemu-img convert -O raw "$2" "$T/ref.raw" 2>"$T/err"; then
		fail "$1: qemu-img convert: $(cat "$T/err")"
		return 0
	fi
	if ! "$QT" cat "$2" >"$T/out.raw" 2>"$T/err"; then
		fail "$1: qcowtool cat: $(cat "$T/err")"
		return 0
	fi
	if ! cmp "$T/ref.raw" "$T/out.raw" >"$T/cmp" 2>&1; then
		fail "$1: contents differ from qemu-img convert: $(head -c 300 "$T/cmp")"
		return 0
	fi
	if ! "$QT" verify "$2" "$T/ref.raw" 2>"$T/err"; then
		fail "$1: qcowtool verify: $(cat "$T/err")"
		return 0
	fi
	# precision: every byte qemu-img map calls zero, the library calls zero
	# too (holes and zero clusters must be visible to SEEK_HOLE/st_blocks)
	[ "${3:-}" = nomap ] && return 0
	qz=$(qemu-img map --output=json "$2" | awk '/"zero": true/ {
		sub(/.*"length": /, ""); sub(/,.*/, ""); n += $0 } END { printf "%d", n }')
	lz=$("$QT" map "$2" | awk '$3 == "zero" { n += $2 } END { printf "%d", n }')
	if [ "$lz" -lt "$qz" ]; then
		fail "$1: qemu-img map finds $qz zero bytes, qcowtool map only $lz"
	fi
}

# qio IMG CMD...: run qemu-io commands, fail loudly.  -t unsafe: qemu-io's
# flushes are skipped (the next process reads the page cache all the same);
# each fdatasync otherwise waits for every other script's dirty data.
qio() {
	img=$1
	shift
	if ! qemu-io -t unsafe -f qcow2 "$@" "$img" >"$T/qio" 2>&1 || grep -q -i 'error\|fail' "$T/qio"; then
		echo "qemu-io on $img failed: $(cat "$T/qio")" >&2
		exit 1
	fi
}

# standard content for cluster size C on an image of size S
fill() {
	img=$1 c=$2 s=$3
	qio "$img" -c "write -P 0xab 0 $((2 * c + 100))" \
		-c "write -P 0xcd $((3 * c - 7)) 300" \
		-c "write -P 0x5a $((4 * c)) $((2 * c))" \
		-c "write -z $c $c" \
		-c "write -z -u 0 $c" \
		-c "write -z $((2 * c + 50)) 100" \
		-c "discard $((5 * c)) $c" \
		-c "write -P 0x11 $((s - 1000)) 1000" \
		-c "write -z -u $((6 * c)) $c"
}

sizes="512 1024 2048 4096 8192 16384 32768 65536 131072 262144 524288 1048576 2097152"
for c in $sizes; do
	bits=9
	while [ $((1 << bits)) -lt "$c" ]; do bits=$((bits + 1)); done
	s=$((7 * c + 1536))
	for v in 1.1:1 1.1:2 1.1:4 1.1:8 1.1:16 1.1:32 1.1:64 0.10:16; do
		compat=${v%:*} rb=${v#*:}
		img="$T/c$c-$compat-$rb.qcow2"
		qemu-img create -q -f qcow2 -o "compat=$compat,cluster_size=$c,refcount_bits=$rb" "$img" "$s"
		fill "$img" "$c" "$s"
		# the map precision check (qemu-img map) once per cluster size and compat
		if [ "$rb" = 16 ]; then
			check_read "cluster $c compat $compat refcount_bits $rb" "$img"
		else
			check_read "cluster $c compat $compat refcount_bits $rb" "$img" nomap
		fi
		ver=3
		[ "$compat" = 0.10 ] && ver=2
		want="size $s|version $ver|cluster_bits $bits|refcount_bits $rb|"
		got=$("$QT" info "$img" | grep -E '^(size|version|cluster_bits|refcount_bits) ' | tr '\n' '|')
		[ "$got" = "$want" ] || fail "qcowtool info: '$got', want '$want'"
		rm -f "$img"
	done
done

# unaligned virtual sizes (qemu rounds up to 512)
for s in 1000001 65537 3000000 511; do
	img="$T/u$s.qcow2"
	qemu-img create -q -f qcow2 -o cluster_size=4096 "$img" "$s"
	qio "$img" -c "write -P 0x77 0 $(( (s + 511) / 512 * 512 ))"
	check_read "unaligned size $s" "$img"
done

# preallocation modes, v2 and v3
for p in metadata falloc full; do
	for compat in 1.1 0.10; do
		img="$T/p$p$compat.qcow2"
		qemu-img create -q -f qcow2 -o "preallocation=$p,compat=$compat,cluster_size=16384" "$img" 3M
		qio "$img" -c "write -P 0x42 100000 200000" -c "write -z 16384 32768" \
			-c "discard 1048576 65536"
		# metadata preallocation: qemu-img map also asks the host file for
		# holes (SEEK_HOLE) and calls never-written preallocated clusters zero;
		# the library maps from the qcow2 tables only, so no precision check
		# here (contents and ZERO extents are still checked)
		if [ $p = metadata ]; then
			check_read "preallocation=$p compat $compat" "$img" nomap
		else
			check_read "preallocation=$p compat $compat" "$img"
		fi
	done
done

# images qemu-img resized (L1 grown by qemu; shrunk with an oversized L1)
for c in 512 65536; do
	img="$T/rs$c.qcow2"
	qemu-img create -q -f qcow2 -o "cluster_size=$c" "$img" 1M
	qio "$img" -c "write -P 0x44 0 1M"
	qemu-img resize -q "$img" 64M
	qio "$img" -c "write -P 0x45 63M 1M"
	check_read "cluster $c grown by qemu-img resize" "$img"
	qemu-img resize -q --shrink "$img" 1536k
	check_read "cluster $c shrunk by qemu-img resize" "$img"
done

# lazy refcounts (clean), extended L2 (subclusters)
img="$T/lazy.qcow2"
qemu-img create -q -f qcow2 -o lazy_refcounts=on "$img" 4M
qio "$img" -c "write -P 1 0 300000" -c "write -z 65536 65536"
check_read "lazy refcounts" "$img"
img="$T/dirty.qcow2"
qemu-img create -q -f qcow2 -o lazy_refcounts=on,cluster_size=4096 "$img" 4M
qemu-io -f qcow2 -c 'write -P 0x61 0 1M' -c 'write -z 4096 8192' -c abort "$img" >/dev/null 2>&1 || true
check_read "dirty lazy-refcount image (qemu-io abort)" "$img"
for c in 16384 65536 2097152; do
	img="$T/ext$c.qcow2"
	qemu-img create -q -f qcow2 -o "extended_l2=on,cluster_size=$c" "$img" $((6 * c))
	sc=$((c / 32))
	qio "$img" -c "write -P 0x21 $sc $((3 * sc))" -c "write -P 0x22 $((c + 7 * sc)) $((40 * sc))" \
		-c "write -z $((c + 10 * sc)) $((2 * sc))" -c "write -z -u $((3 * c)) $c" \
		-c "write -P 0x23 $((4 * c + 100)) 1000" -c "discard $((4 * c)) $sc"
	check_read "extended_l2 cluster $c" "$img"
done

# compressed clusters (deflate and zstd), text data so it compresses
i=0
while [ $i -lt 3000 ]; do
	echo "line $i: the quick brown fox jumps over the lazy dog $((i * 7919 % 1000))"
	i=$((i + 1))
done >"$T/text"
src="$T/src.qcow2"
qemu-img create -q -f qcow2 "$src" 2M
qio "$src" -c "write -s $T/text 0 $(wc -c <"$T/text")" -c "write -s $T/text 1000000 100000"
for ct in zlib zstd; do
	for c in 512 4096 65536 2097152; do
		img="$T/z$ct$c.qcow2"
		qemu-img convert -c -O qcow2 -o "compression_type=$ct,cluster_size=$c" "$src" "$img"
		check_read "compressed $ct cluster $c" "$img"
		# rewrite part of a compressed cluster through qemu: mixed image
		qio "$img" -c "write -P 0x99 1000 3000"
		check_read "compressed $ct cluster $c, partly rewritten" "$img"
	done
done

# internal snapshot: active layer reads back; shared clusters
img="$T/snap.qcow2"
qemu-img create -q -f qcow2 -o cluster_size=4096 "$img" 1M
qio "$img" -c "write -P 0x31 0 200000"
qemu-img snapshot -c s1 "$img"
qio "$img" -c "write -P 0x32 4096 10000" -c "discard 100000 8192"
check_read "internal snapshot (active layer)" "$img"

# snapshot table as the last thing in the file (qemu does not pad the last entry)
img="$T/snapeof.qcow2"
qemu-img create -q -f qcow2 -o cluster_size=4096 "$img" 2M
qio "$img" -c "write -P 0x31 0 1M"
qemu-img snapshot -c s1 "$img"
check_read "internal snapshot, table at the end of the file" "$img"
qemu-img snapshot -c second-snapshot-with-a-longer-name "$img"
check_read "two internal snapshots" "$img"

# external data files (raw and not raw): guest data lives at guest offsets
for raw in on off; do
	img="$T/df$raw.qcow2"
	qemu-img create -q -f qcow2 -o "data_file=$T/df$raw.data,data_file_raw=$raw,cluster_size=65536" "$img" 4M
	qio "$img" -c "write -P 0x51 0 100k" -c "write -P 0x52 300k 5000" -c "write -z 200k 64k" \
		-c "discard 1M 64k"
	check_read "external data file (data_file_raw=$raw)" "$img"
done

# backing chains: qcow2 base and raw base
base="$T/base.qcow2"
qemu-img create -q -f qcow2 "$base" 2M
qio "$base" -c "write -P 0x41 0 2M"
img="$T/over.qcow2"
qemu-img create -q -f qcow2 -b "$base" -F qcow2 -o cluster_size=4096 "$img"
qio "$img" -c "write -P 0x42 10000 5000" -c "write -z 65536 65536" -c "discard 200000 100000"
check_read "overlay on a qcow2 base" "$img" nomap
qemu-img convert -O raw "$base" "$T/base.raw"
img="$T/overraw.qcow2"
qemu-img create -q -f qcow2 -b "$T/base.raw" -F raw "$img"
qio "$img" -c "write -P 0x43 70000 5000" -c "write -z -u 0 65536"
check_read "overlay on a raw base" "$img" nomap

# a three-level chain with different cluster sizes, a raw bottom
qemu-img create -q -f raw "$T/c0.raw" 3M
qemu-io -t unsafe -f raw -c "write -P 0x61 0 3M" "$T/c0.raw" >/dev/null
qemu-img create -q -f qcow2 -b "$T/c0.raw" -F raw -o cluster_size=512 "$T/c1.qcow2"
qio "$T/c1.qcow2" -c "write -P 0x62 1M 1M" -c "write -z 100k 50k"
qemu-img create -q -f qcow2 -b "$T/c1.qcow2" -F qcow2 -o cluster_size=2M "$T/c2.qcow2" 4M
qio "$T/c2.qcow2" -c "write -P 0x63 1536k 4096" -c "discard 2M 2M"
check_read "three-level chain (raw <- 512 B <- 2 MiB clusters, grown top)" "$T/c2.qcow2" nomap

echo "t_qcow_read: $cases images, $fails failed"
[ "$fails" -eq 0 ]
