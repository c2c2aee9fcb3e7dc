#!/bin/sh
# Every image kind of issue 4, through the shim.  Each kind is made at test
# time by qemu-img/qemu-io: compressed (deflate, zstd; compressed clusters
# sharing host clusters; under a snapshot), backing chains of depth 1..3 on
# qcow2 and raw bases, v2 and v3 overlays, bases shorter and longer than the
# overlay, with and without the backing format extension, relative backing
# names resolved against the overlay's directory from another cwd, several
# internal snapshots, extended L2 for every cluster size 16 KiB..2 MiB,
# external data files (plain and raw), lazy refcounts left dirty by a killed
# qemu-io, persistent bitmaps, preallocation metadata/falloc/full, a host
# file longer than its metadata; encrypted images (LUKS, AES) are refused.
# For each: (a) `cmp` through the shim equals `qemu-img convert -O raw`;
# (b) kindsrw (tests/shim/progs/kindsrw.c) runs a random write / punch /
# zero-range / BLKDISCARD / BLKZEROOUT / read workload through the shim
# mirrored on a raw twin; then qemu-img check exits 0, qemu-img compare says
# identical, backing files are byte-identical to before and every snapshot
# reads as before (qemu-img convert -l snapshot.name=...).
. "$(dirname "$0")/lib_tools.sh"
require_shim
require cc sha256sum od gzip
cc -std=gnu11 -O1 -Wall -Wextra -Werror -o "$T/kindsrw" "$QCS_ROOT/tests/shim/progs/kindsrw.c" ||
	{ fail "compile kindsrw"; finish; }
M=1048576
SEED=1

# content.raw: 8 MiB of text (compresses well), incompressible (gzip) bytes and
# holes; deterministic, like the seeded workload, so a failure reproduces.
truncate -s 8M content.raw
seq 1 300000 | dd of=content.raw conv=notrunc status=none
seq 1 900000 | gzip -1 -n | head -c 700000 | dd of=content.raw bs=1M seek=5 conv=notrunc status=none
seq 1 50000 | dd of=content.raw bs=1M seek=7 conv=notrunc status=none

qio() { # IMG CMD...: qemu-io writes into a fresh image
	_i=$1; shift
	for _c in "$@"; do set -- "$@" -c "$_c"; shift; done
	qemu-io -t unsafe -f qcow2 "$@" "$_i" >>"$T/mk.log" 2>&1
}

# hdr_u32 FILE OFF / hdr_u64 FILE OFF: big-endian header fields.
hdr_u32() { od -An -tu1 -j "$2" -N 4 "$1" | awk '{printf "%.0f\n", ($1*16777216)+($2*65536)+($3*256)+$4}'; }
hdr_u64() { echo $(( $(hdr_u32 "$1" "$2") * 4294967296 + $(hdr_u32 "$1" $(($2 + 4))) )); }

# strip_fmt IMG: remove the backing format extension (qemu-img always
# writes one); the following extensions move up, the backing name (whose
# offset the header gives) stays where it is.
strip_fmt() {
	_v=$(hdr_u32 "$1" 4) _hl=72
	[ "$_v" = 3 ] && _hl=$(hdr_u32 "$1" 100)
	_bo=$(hdr_u64 "$1" 8)
	[ "$(hdr_u32 "$1" "$_hl")" = $((0xe2792aca)) ] || return 1
	_el=$(( ($(hdr_u32 "$1" $((_hl + 4))) + 7) / 8 * 8 + 8 ))
	dd if="$1" of="$T/ext.tmp" bs=1 skip=$((_hl + _el)) count=$((_bo - _hl - _el)) status=none &&
		dd if="$T/ext.tmp" of="$1" bs=1 seek="$_hl" conv=notrunc status=none &&
		dd if=/dev/zero of="$1" bs=1 seek=$((_bo - _el)) count="$_el" conv=notrunc status=none
}

# kind NAME IMG CLUSTER OPS [BASES] [SNAPSHOTS]: the shim reads IMG as qemu
# does, then the mirrored workload, then the judgement.  BASES: backing
# files that must stay byte-identical; SNAPSHOTS: names that must read as
# before.  Paths are relative to the current directory.
kind() {
	_n=$1 IMG=$2 _cs=$3 _ops=$4 _bases=${5:-} _snaps=${6:-}
	TWIN=$T/$_n.twin
	flatten "$IMG" "$TWIN" || return 1
	run "$_n: cmp through the shim = qemu-img convert -O raw" S cmp "$IMG" "$TWIN"
	for _b in $_bases; do sha256sum <"$_b" >"$T/$_n.$(basename "$_b").sum"; done
	for _s in $_snaps; do
		qemu-img convert -U -f qcow2 -l "snapshot.name=$_s" -O raw "$IMG" "$T/$_n.snap.$_s" ||
			fail "$_n: qemu-img convert -l snapshot.name=$_s (before)"
	done
	SEED=$((SEED + 1))
	run "$_n: random write/punch/zero/discard/read workload mirrored on a raw twin" \
		S "$T/kindsrw" "$IMG" "$TWIN" "$SEED" "$_ops" "$_cs"
	qcheck "$IMG"
	qcompare "$IMG" "$TWIN"
	for _b in $_bases; do
		same "$_n: backing file $(basename "$_b") unchanged" "$(cat "$T/$_n.$(basename "$_b").sum")" \
			"$(sha256sum <"$_b")"
	done
	for _s in $_snaps; do
		rm -f "$T/snap.after"
		qemu-img convert -U -f qcow2 -l "snapshot.name=$_s" -O raw "$IMG" "$T/snap.after" &&
			same_file "$_n: snapshot $_s unchanged" "$T/$_n.snap.$_s" "$T/snap.after"
	done
}

mkimg() { # DESC CMD...: an image-making step; a failure is reported once
	_d=$1; shift
	"$@" >>"$T/mk.log" 2>&1 && return 0
	fail "make $_d: $*"; show_log "$T/mk.log" 4; return 1
}

section "compressed clusters"
for ct in zlib zstd; do
	mkimg "$ct" qemu-img convert -q -c -f raw -O qcow2 -o compression_type=$ct content.raw c-$ct.qcow2 || continue
	n=$(qemu-img check c-$ct.qcow2 2>/dev/null | sed -n 's|^\([0-9]*\)/.*compressed clusters$|\1|p')
	hs=$(stat -c %s c-$ct.qcow2)
	[ -n "$n" ] && [ $((hs / 65536)) -lt "$n" ] &&
		pass "$ct: $n compressed clusters in $((hs / 65536)) host clusters (they share host clusters)" ||
		fail "$ct: compressed clusters do not share host clusters ($n clusters, host $hs bytes)"
	kind "$ct" c-$ct.qcow2 65536 300
done
mkimg "small zstd" qemu-img convert -q -c -f raw -O qcow2 -o compression_type=zstd,cluster_size=4096 content.raw c-4k.qcow2 &&
	kind zstd-4k c-4k.qcow2 4096 300
if mkimg "compressed + snapshot" qemu-img convert -q -c -f raw -O qcow2 content.raw c-snap.qcow2 &&
	mkimg "snapshot" qemu-img snapshot -c s1 c-snap.qcow2; then
	kind compressed-under-snapshot c-snap.qcow2 65536 300 "" s1
fi

section "backing chains"
mkbase() { # NAME BYTES: a qcow2 base with content
	qemu-img create -q -f qcow2 "$1" "$2" >>"$T/mk.log" 2>&1 &&
		qio "$1" "write -P 0x11 0 1M" "write -P 0x12 1500k 700k" "write -P 0x13 $(($2 - 70000)) 70000"
}
ov() { # OVERLAY BASE FMT [-o opts,size=S]
	_o=$1 _b=$2 _f=$3; shift 3
	qemu-img create -q -f qcow2 -b "$_b" -F "$_f" "$@" "$_o" >>"$T/mk.log" 2>&1
}
if mkimg base mkbase base.qcow2 $((8 * M)) && mkimg chain1 ov ov1.qcow2 base.qcow2 qcow2 &&
	mkimg chain1 qio ov1.qcow2 "write -P 0x21 64k 100k" "write -z 1M 64k" "discard 1600k 64k"; then
	kind chain1 ov1.qcow2 65536 300 base.qcow2
	if mkimg chain2 ov ov2.qcow2 ov1.qcow2 qcow2 -o cluster_size=4096 &&
		mkimg chain2 qio ov2.qcow2 "write -P 0x22 3000 9000"; then
		kind chain2 ov2.qcow2 4096 300 "base.qcow2 ov1.qcow2"
		mkimg chain3 ov ov3.qcow2 ov2.qcow2 qcow2 -o compat=0.10 &&
			kind chain3-v2-top ov3.qcow2 65536 300 "base.qcow2 ov1.qcow2 ov2.qcow2"
	fi
fi
# raw bases: aligned, unaligned and shorter, under a qcow2 middle layer
cp content.raw rbase.raw
mkimg raw-base ov rov.qcow2 rbase.raw raw && kind raw-base rov.qcow2 65536 300 rbase.raw
head -c $((3 * M + 777)) content.raw >rshort.raw
mkimg raw-short ov rshort.qcow2 rshort.raw raw -o cluster_size=16384,size=8M &&
	kind raw-base-shorter-unaligned rshort.qcow2 16384 300 rshort.raw
if mkimg raw-mid ov rmid.qcow2 rbase.raw raw && mkimg raw-mid qio rmid.qcow2 "write -P 0x31 2M 100k" &&
	mkimg raw-top ov rtop.qcow2 rmid.qcow2 qcow2; then
	kind raw-chain2 rtop.qcow2 65536 300 "rbase.raw rmid.qcow2"
fi
# v2 overlay on a v3 base, v3 overlay on a v2 base
mkimg v2-overlay ov v2ov.qcow2 base.qcow2 qcow2 -o compat=0.10,cluster_size=4096 &&
	kind v2-overlay v2ov.qcow2 4096 300 base.qcow2
if mkimg v2-base qemu-img create -q -f qcow2 -o compat=0.10 v2base.qcow2 8M &&
	mkimg v2-base qio v2base.qcow2 "write -P 0x41 100k 2M" && mkimg v3-on-v2 ov v3ov.qcow2 v2base.qcow2 qcow2; then
	kind v3-overlay-on-v2-base v3ov.qcow2 65536 300 v2base.qcow2
fi
# shorter and longer bases
if mkimg short-base mkbase bshort.qcow2 $((3 * M)) && mkimg short ov oshort.qcow2 bshort.qcow2 qcow2 -o size=8M; then
	kind base-shorter oshort.qcow2 65536 300 bshort.qcow2
fi
if mkimg long-base mkbase blong.qcow2 $((12 * M)) && mkimg long ov olong.qcow2 blong.qcow2 qcow2 -o size=5M; then
	kind base-longer olong.qcow2 65536 300 blong.qcow2
fi
# no backing format extension: the format is probed (qcow2 and raw bases)
for f in qcow2 raw; do
	b=base.qcow2
	[ $f = raw ] && b=rbase.raw
	mkimg "no-fmt-$f" ov nofmt-$f.qcow2 $b $f || continue
	if strip_fmt nofmt-$f.qcow2 && ! qemu-img info -U nofmt-$f.qcow2 2>/dev/null | grep -q 'backing file format'; then
		pass "no-fmt-$f: the overlay has no backing format extension"
		kind no-fmt-$f nofmt-$f.qcow2 65536 300 $b
	else
		fail "no-fmt-$f: could not strip the backing format extension"
	fi
done
# relative names: resolved against the overlay's directory, not the cwd
mkdir -p rel/a rel/b elsewhere
if mkimg rel-base mkbase rel/b/base.qcow2 $((8 * M)) &&
	(cd rel/a && mkimg rel-overlay ov ov.qcow2 ../b/base.qcow2 qcow2) &&
	mkimg rel-top qemu-img create -q -f qcow2 -b a/ov.qcow2 -F qcow2 rel/top.qcow2; then
	same "relative names stored as given" "a/ov.qcow2 ../b/base.qcow2" \
		"$(qemu-img info -U rel/top.qcow2 | sed -n 's/^backing file: \([^ ]*\).*/\1/p') $(qemu-img info -U rel/a/ov.qcow2 | sed -n 's/^backing file: \([^ ]*\).*/\1/p')"
	cd elsewhere && kind relative-names ../rel/top.qcow2 65536 300 "../rel/b/base.qcow2 ../rel/a/ov.qcow2"
	cd "$T" || exit 1
fi

section "internal snapshots"
if mkimg snaps qemu-img create -q -f qcow2 snaps.qcow2 8M && mkimg snaps qio snaps.qcow2 "write -P 0x51 0 3M" &&
	mkimg snaps qemu-img snapshot -c one snaps.qcow2 && mkimg snaps qio snaps.qcow2 "write -P 0x52 1M 2M" "write -z 2500k 100k" &&
	mkimg snaps qemu-img snapshot -c two snaps.qcow2 && mkimg snaps qemu-img resize -q snaps.qcow2 12M &&
	mkimg snaps qio snaps.qcow2 "discard 0 1M" "write -P 0x53 6M 1M" "write -P 0x55 10M 1M" &&
	mkimg snaps qemu-img snapshot -c three snaps.qcow2; then
	kind snapshots snaps.qcow2 65536 300 "" "one two three"
	same "snapshots: all three still listed" 3 "$(qemu-img snapshot -l snaps.qcow2 | grep -c -w 'one\|two\|three')"
fi
if mkimg snap-ov ov snapov.qcow2 base.qcow2 qcow2 && mkimg snap-ov qio snapov.qcow2 "write -P 0x54 1M 1M" &&
	mkimg snap-ov qemu-img snapshot -c s snapov.qcow2; then
	kind snapshot-on-overlay snapov.qcow2 65536 300 base.qcow2 s
fi

# QCOWSHIM_SNAPSHOT=NAME: the image read-only as that snapshot, exactly as
# qemu-img convert -l shows it (qemu keeps the current virtual size).
snap_open() { # IMG SELECTOR=VALUE...
	_i=$1; shift
	for _sel in "$@"; do
		rm -f "$T/snap.q"
		qemu-img convert -U -f qcow2 -l "snapshot.$_sel" -O raw "$_i" "$T/snap.q" >"$T/s.log" 2>&1 ||
			{ fail "qemu-img convert -l snapshot.$_sel $_i"; show_log "$T/s.log" 3; continue; }
		QCOWSHIM_SNAPSHOT=${_sel#*=} S cmp "$_i" "$T/snap.q" >"$T/s.log" 2>&1 &&
			pass "QCOWSHIM_SNAPSHOT=${_sel#*=} $_i reads as qemu-img convert -l snapshot.$_sel" ||
			{ fail "QCOWSHIM_SNAPSHOT=${_sel#*=} $_i"; show_log "$T/s.log" 3; }
	done
}
if [ -f snaps.qcow2 ]; then
	snap_open snaps.qcow2 name=one name=two name=three id=2
	snap_open snapov.qcow2 name=s
	sum=$(sha256sum <snaps.qcow2)
	out=$(QCOWSHIM_SNAPSHOT=one S dd if=/dev/zero of=snaps.qcow2 bs=512 count=1 conv=notrunc status=none 2>&1); rc=$?
	same "QCOWSHIM_SNAPSHOT: a write is refused with one line" "1 1" \
		"$([ $rc -ne 0 ] && echo 1) $(printf '%s\n' "$out" | grep -c "^qcowshim: snaps.qcow2: internal snapshot 'one' opens read-only$")"
	out=$(QCOWSHIM_SNAPSHOT=nope S cat snaps.qcow2 2>&1 >/dev/null); rc=$?
	same "QCOWSHIM_SNAPSHOT: an unknown name is refused with one line" "1 1" \
		"$([ $rc -ne 0 ] && echo 1) $(printf '%s\n' "$out" | grep -c "^qcowshim: snaps.qcow2: no internal snapshot named 'nope'$")"
	same "QCOWSHIM_SNAPSHOT: the image is untouched" "$sum" "$(sha256sum <snaps.qcow2)"
fi

section "extended L2 entries (subclusters), every cluster size"
for cs in 16384 32768 65536 131072 262144 524288 1048576 2097152; do
	sc=$((cs / 32)) sz=8M ops=300
	[ $cs -ge 1048576 ] && sz=$((8 * cs)) ops=120
	mkimg "extl2-$cs" qemu-img create -q -f qcow2 -o extended_l2=on,cluster_size=$cs x$cs.qcow2 $sz &&
		mkimg "extl2-$cs" qio x$cs.qcow2 "write -P 0x61 $((3 * sc + 100)) $((5 * sc))" "write -z $((cs + sc)) $((2 * sc))" \
			"write -P 0x62 $((2 * cs - 2 * sc)) $((4 * sc))" "discard $((2 * cs)) $sc" &&
		kind "extl2-$cs" x$cs.qcow2 $cs $ops
done
if mkimg extl2-ov ov xov.qcow2 base.qcow2 qcow2 -o extended_l2=on,cluster_size=32768 &&
	mkimg extl2-ov qio xov.qcow2 "write -P 0x63 5000 3000" "write -z 40000 2048"; then
	kind extl2-overlay xov.qcow2 32768 300 base.qcow2
fi

section "external data files"
for raw in off on; do
	if mkimg "data-file-$raw" qemu-img create -q -f qcow2 -o data_file=df-$raw.data,data_file_raw=$raw df-$raw.qcow2 8M &&
		mkimg "data-file-$raw" qio df-$raw.qcow2 "write -P 0x71 10k 1M" "write -z 2M 64k"; then
		kind data-file-raw-$raw df-$raw.qcow2 65536 300
		same "data-file-raw-$raw: still names its data file" df-$raw.data \
			"$(qemu-img info -U df-$raw.qcow2 | sed -n 's/^ *data file: //p')"
	fi
done

section "dirty image (lazy refcounts, qemu-io killed)"
if mkimg lazy qemu-img create -q -f qcow2 -o lazy_refcounts=on lazy.qcow2 8M; then
	qemu-io -f qcow2 -c 'write -P 0x81 0 2M' -c 'write -P 0x82 5M 1M' -c abort lazy.qcow2 >/dev/null 2>&1
	same "lazy: the dirty bit is set before the shim opens it" 1 $(( $(hdr_u64 lazy.qcow2 72) & 1 ))
	kind lazy-dirty lazy.qcow2 65536 300
	same "lazy: the dirty bit is clear afterwards" 0 $(( $(hdr_u64 lazy.qcow2 72) & 1 ))
fi

section "persistent dirty bitmaps"
if mkimg bitmaps qemu-img create -q -f qcow2 bm.qcow2 8M && mkimg bitmaps qio bm.qcow2 "write -P 0x91 0 1M" &&
	mkimg bitmaps qemu-img bitmap --add bm.qcow2 b0 && mkimg bitmaps qemu-img bitmap --add -g 131072 bm.qcow2 b1 &&
	mkimg bitmaps qio bm.qcow2 "write -P 0x92 3M 1M"; then
	kind bitmaps bm.qcow2 65536 300
	info=$(qemu-img info -U --output=json bm.qcow2)
	same "bitmaps: both bitmaps kept, both flagged in-use" 2 "$(printf '%s\n' "$info" | grep -c '"in-use"')"
	same "bitmaps: the autoclear bit stays set (the directory is still valid)" 1 $(( $(hdr_u64 bm.qcow2 88) & 1 ))
	qemu-img bitmap --enable bm.qcow2 b0 >"$T/bm.log" 2>&1 && fail "bitmaps: qemu still trusts a stale bitmap" ||
		{ grep -q inconsistent "$T/bm.log" && pass "bitmaps: qemu refuses the stale bitmap as inconsistent" ||
			{ fail "bitmaps: unexpected qemu-img bitmap message"; show_log "$T/bm.log" 3; }; }
fi

# dirty with a stored bitmap: the refcount rebuild must count its clusters
if mkimg lazy-bitmap qemu-img create -q -f qcow2 -o lazy_refcounts=on,cluster_size=4096 lbm.qcow2 8M &&
	mkimg lazy-bitmap qemu-img bitmap --add -g 512 lbm.qcow2 b0 &&
	mkimg lazy-bitmap qio lbm.qcow2 "write -P 0x93 1M 1M" "write -P 0x94 5M 64k"; then
	qemu-io -f qcow2 -c 'write -P 0x95 3M 64k' -c abort lbm.qcow2 >/dev/null 2>&1
	same "lazy-bitmap: the dirty bit is set before the shim opens it" 1 $(( $(hdr_u64 lbm.qcow2 72) & 1 ))
	kind lazy-dirty-bitmap lbm.qcow2 4096 300
	same "lazy-bitmap: the bitmap is kept, flagged in-use" 1 \
		"$(qemu-img info -U --output=json lbm.qcow2 | grep -c '"in-use"')"
fi

section "preallocation, host file longer than the metadata"
for p in metadata falloc full; do
	mkimg "prealloc-$p" qemu-img create -q -f qcow2 -o preallocation=$p pre-$p.qcow2 8M &&
		kind prealloc-$p pre-$p.qcow2 65536 300
done
if mkimg hostlong qemu-img create -q -f qcow2 long.qcow2 8M && mkimg hostlong qio long.qcow2 "write -P 0xa1 0 1M"; then
	seq 1 1500000 | gzip -1 -n | head -c 3000000 >>long.qcow2
	kind host-file-longer long.qcow2 65536 300
fi

section "encrypted images are refused, the file untouched"
for f in luks aes; do
	mkimg "encrypted $f" sh "$QCS_ROOT/tests/tools/peer_retry.sh" \
		qemu-img create -q -f qcow2 --object secret,id=s0,data=pw \
		-o encrypt.format=$f,encrypt.key-secret=s0 enc-$f.qcow2 4M || continue
	sum=$(sha256sum <enc-$f.qcow2)
	out=$(S cat enc-$f.qcow2 2>&1 >/dev/null); rc=$?
	same "$f: read refused with one line" "1 qcowshim: enc-$f.qcow2: encrypted images are not supported" \
		"$([ $rc -ne 0 ] && echo 1) $(printf '%s\n' "$out" | grep '^qcowshim:')"
	out=$(S dd if=/dev/zero of=enc-$f.qcow2 bs=512 count=1 conv=notrunc status=none 2>&1); rc=$?
	same "$f: write refused with one line" "1 1" \
		"$([ $rc -ne 0 ] && echo 1) $(printf '%s\n' "$out" | grep -c '^qcowshim: enc-'$f'.qcow2: encrypted images are not supported$')"
	same "$f: the image is untouched" "$sum" "$(sha256sum <enc-$f.qcow2)"
done

finish
