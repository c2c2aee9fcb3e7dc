#!/bin/bash
# make bench - issue 5's performance cases, run pairwise on this machine.
#
# Every case runs the shim and its reference (a raw file on the same filesystem, or
# qemu's own tool doing the same work) alternately, BENCH_REPS times, and the table
# shows medians, their ratio, the spread ((max-min)/median of each side) and the target.
# Not part of `make test`: timings never go into tests.  Exit status 0 even when a
# target is missed (the table says MISS); 1 only if the harness itself failed.
#
# Environment (defaults = the issue's sizes):
#   BENCH_SIZE=4G         sequential read/write size; random I/O file size
#   BENCH_REPS=5          repetitions per case
#   BENCH_MKFS_REPS=3*REPS repetitions of the mkfs cases (tens of ms each: noisier)
#   BENCH_RIO_OPS=200000  4 KiB operations per random-I/O run
#   BENCH_MKFS_SIZE=16G   mkfs.ext4 / mkfs.xfs disk size
#   BENCH_TREE_SIZE=1G    the tree mkfs.ext4 -d copies in (case mkfsd)
#   BENCH_SMALL_OPS=1000000  small reads on a non-image file
#   BENCH_RSS_SIZE=4T     virtual size for the peak-RSS case; BENCH_RSS_OPS=50000
#                         (each 4 KiB write allocates a 64 KiB cluster: 3 GiB of image)
#   BENCH_PIB_SIZE=1P     virtual size of the scale case (64 KiB clusters)
#   BENCH_COMP_SIZE=1G    compressed image of the overwrite case (case comp);
#                         BENCH_COMP_OPS=20000 4 KiB writes per run;
#                         BENCH_COMP512_SIZE=256M the same with 512 B clusters
#   BENCH_PROCS=300       /bin/true runs per loop (case procs); BENCH_OPENS=2000 opens
#   BENCH_BUILD_FILES=50  files the build script copies in, one mcopy each (case build)
#   BENCH_FUSE_SIZE=16G   disk of the qemu-storage-daemon FUSE rows (case fuse; 1 GiB
#                         written and read there is BENCH_SIZE)
#   BENCH_TIMEOUT=900     seconds before one command is killed (counted as MISS)
#   BENCH_CASES="seqread seqwrite randread randwrite comp mkfs mkfsd small rss pib
#                procs build open fuse"  (subset)
#   BENCH_DIR=$TMPDIR     where the scratch directory goes (same filesystem for all)
#   BENCH_NICE=0          nice level for every timed command (e.g. 19 on a shared box)
#   BENCH_KEEP=1          keep the scratch directory
set -u
cd "$(dirname "$0")/../.." || exit 1
ROOT=$PWD B=$ROOT/build
SHIM=$B/libqcowshim.so BIO=$B/bench/benchio

SIZE=${BENCH_SIZE:-4G}
REPS=${BENCH_REPS:-5}
MKFS_REPS=${BENCH_MKFS_REPS:-$((REPS * 3))}
RIO_OPS=${BENCH_RIO_OPS:-200000}
MKFS_SIZE=${BENCH_MKFS_SIZE:-16G}
TREE_SIZE=${BENCH_TREE_SIZE:-1G}
SMALL_OPS=${BENCH_SMALL_OPS:-1000000}
RSS_SIZE=${BENCH_RSS_SIZE:-4T}
RSS_OPS=${BENCH_RSS_OPS:-50000}
PIB_SIZE=${BENCH_PIB_SIZE:-1P}
TIMEOUT=${BENCH_TIMEOUT:-900}
COMP_SIZE=${BENCH_COMP_SIZE:-1G}
COMP_OPS=${BENCH_COMP_OPS:-20000}
COMP512_SIZE=${BENCH_COMP512_SIZE:-256M}
PROCS=${BENCH_PROCS:-300}
OPENS=${BENCH_OPENS:-2000}
BUILD_FILES=${BENCH_BUILD_FILES:-50}
FUSE_SIZE=${BENCH_FUSE_SIZE:-16G}
CASES=" ${BENCH_CASES:-seqread seqwrite randread randwrite comp mkfs mkfsd small rss pib procs build open fuse} "
NICE=${BENCH_NICE:-0}

for f in "$SHIM" "$BIO"; do [ -x "$f" ] || [ -f "$f" ] || { echo "bench: $f missing (make all)" >&2; exit 1; }; done
for t in qemu-img dd mkfs.ext4 mkfs.xfs sgdisk; do
	command -v "$t" >/dev/null || { echo "bench: $t missing (make deps)" >&2; exit 1; }
done
HAVE_FIO=0; command -v fio >/dev/null && command -v qemu-nbd >/dev/null && HAVE_FIO=1
TIMEBIN=/usr/bin/time; [ -x $TIMEBIN ] || TIMEBIN=

W=$(mktemp -d "${BENCH_DIR:-${TMPDIR:-/tmp}}/qcowshim-bench.XXXXXX") || exit 1
NBD_PID= QSD_PID= QSD_MNT=
cleanup() {
	[ -n "$NBD_PID" ] && kill "$NBD_PID" 2>/dev/null && wait "$NBD_PID" 2>/dev/null
	[ -n "$QSD_PID" ] && qsd_stop 2>/dev/null
	[ "${BENCH_KEEP:-0}" = 1 ] && echo "bench: kept $W" >&2 && return
	rm -rf "$W"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
LOG=$W/log
: >"$LOG"
ROWS=()

has() { case "$CASES" in *" $1 "*) return 0 ;; esac; return 1; }
note() { echo "bench: $*" >&2; }
bytes() { numfmt --from=iec "$1"; }
mib() { awk -v b="$1" 'BEGIN { printf "%.1f MiB", b / 1048576 }'; }

# run CMD...: nice'd, with a timeout, output to the log; fails loudly in the log.
run() {
	echo "+ $*" >>"$LOG"
	timeout "$TIMEOUT" nice -n "$NICE" "$@" >>"$LOG" 2>&1
}
# shim CMD...: the same under the preloaded shim; raw CMD...: the same through env
# without it, so that both sides of a timed row pay the same exec of env (about 1 ms,
# 5% of a mkfs.xfs).
shim() { run env LD_PRELOAD="$SHIM" "$@"; }
raw() { run env "$@"; }
# runo/shimo CMD...: the same, stdout kept (for the drivers' one-line results).
runo() { echo "+ $*" >>"$LOG"; timeout "$TIMEOUT" nice -n "$NICE" "$@" 2>>"$LOG"; }
shimo() { runo env LD_PRELOAD="$SHIM" "$@"; }

# elapsed CMD...: wall seconds of CMD, or "x" when it failed or timed out.  A sync
# first, untimed: the dirty pages of the run before (the other side's, often) would
# otherwise be written back during this one.
elapsed() {
	local t0 t1
	sync
	t0=$(date +%s.%N)
	if "$@"; then t1=$(date +%s.%N); awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.4f", b - a }'
	else echo x; note "failed: $* (see log)"; tail -n 3 "$LOG" >&2; fi
}
# pair: one repetition of a raw-vs-shim row: t_raw and t_shim (defined by the row)
# each run once, appending to r and s; which goes first alternates with $i, since
# the second run of a pair can pay for the first's page cache (mkfs.ext4 -d of 1 GiB:
# 1.6 s first, up to 2.7 s second, whichever side it is).
pair() {
	if [ $((i % 2)) = 1 ]; then r+=("$(t_raw)"); s+=("$(t_shim)")
	else s+=("$(t_shim)"); r+=("$(t_raw)"); fi
}
# pair_in SHIMS REFS: the same into the arrays named.
pair_in() {
	local -n ps=$1 pr=$2
	if [ $((i % 2)) = 1 ]; then pr+=("$(t_raw)"); ps+=("$(t_shim)")
	else ps+=("$(t_shim)"); pr+=("$(t_raw)"); fi
}
# iops CMD...: the iops= field a benchio run prints, or x.
iops() {
	local out
	out=$("$@" 2>>"$LOG" | tee -a "$LOG" | sed -n 's/.*iops=\([0-9.]*\).*/\1/p')
	[ -n "$out" ] && echo "$out" || { echo x; note "failed: $*"; }
}
# secs CMD...: the secs= field (the driver's own timed loop), or x.
secs() {
	local out
	out=$("$@" 2>>"$LOG" | tee -a "$LOG" | sed -n 's/.*secs=\([0-9.]*\).*/\1/p')
	[ -n "$out" ] && echo "$out" || { echo x; note "failed: $*"; }
}
# fio_iops RW FIO-ARGS...: IOPS from fio's terse output (field 8 read, 49 write).
fio_iops() {
	local rw=$1 field=8 out; shift
	[ "$rw" = randwrite ] && field=49
	out=$("$@" --rw="$rw" --bs=4k --number_ios="$RIO_OPS" --size="$SIZE" --norandommap \
		--randrepeat=1 --randseed=42 --output-format=terse 2>>"$LOG" | tail -n 1 | cut -d';' -f"$field")
	echo "+ fio $rw: $out" >>"$LOG"
	[ -n "$out" ] && [ "$out" != 0 ] && echo "$out" || { echo x; note "fio failed: $*"; }
}

# median/spread of a list of numbers ("x" = failed run: the whole list fails).
# "median spread" of a list of numbers; "x" (a failed run) fails the whole list.
stats() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '/x/ { bad = 1 } { v[NR] = $1 } END {
	if (bad || NR == 0) { print "x -"; exit } n = NR
	m = (n % 2) ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
	printf "%s %s\n", m, (m == 0) ? "-" : sprintf("%.0f%%", 100 * (v[n] - v[1]) / m) }'; }
median() { stats | cut -d' ' -f1; }
spread() { stats | cut -d' ' -f2; }

# row CASE SHIM-VALUES REF-VALUES UNIT TARGET: TARGET is "<=1.05", ">=0.9", "<1", ">1".
# The ratio is median(shim)/median(ref): for times smaller is better, for IOPS larger.
row() {
	local name=$1 a=$2 b=$3 unit=$4 target=$5 ma mb ratio res
	ma=$(echo "$a" | median) mb=$(echo "$b" | median)
	if [ "$ma" = x ] || [ "$mb" = x ]; then ratio=- res=FAIL
	elif [ "$target" = - ]; then ratio=$(awk -v a="$ma" -v b="$mb" 'BEGIN { printf "%.3f", a / b }') res=info
	else
		ratio=$(awk -v a="$ma" -v b="$mb" 'BEGIN { printf "%.3f", a / b }')
		res=$(awk -v r="$ratio" -v t="$target" 'BEGIN {
			op = t; sub(/[0-9.]+$/, "", op); v = substr(t, length(op) + 1) + 0
			ok = (op == "<=") ? r <= v : (op == ">=") ? r >= v : (op == "<") ? r < v : r > v
			print ok ? "PASS" : "MISS" }')
	fi
	ROWS+=("$name|$(fmt "$ma" "$unit")|$(fmt "$mb" "$unit")|$ratio|$target|$res|$(echo "$a" | spread)/$(echo "$b" | spread)")
	note "$name: shim $ma ref $mb ratio $ratio ($target) $res"
}
fmt() { [ "$1" = x ] && { echo failed; return; }
	case $2 in s) printf "%.3f s" "$1" ;; iops) printf "%.0f IOPS" "$1" ;; MiB) printf "%.1f MiB" "$1" ;; *) echo "$1 $2" ;; esac; }
# limit CASE VALUE UNIT LIMIT: an absolute target (value < or <= limit).
limit() {
	local name=$1 v=$2 unit=$3 op=$4 lim=$5 res ratio
	if [ "$v" = x ]; then res=FAIL ratio=-
	else
		ratio=$(awk -v a="$v" -v b="$lim" 'BEGIN { printf "%.3f", a / b }')
		res=$(awk -v r="$ratio" -v op="$op" 'BEGIN { print ((op == "<") ? r < 1 : r <= 1) ? "PASS" : "MISS" }')
	fi
	ROWS+=("$name|$(fmt "$v" "$unit")|limit $(fmt "$lim" "$unit")|$ratio|$op$(fmt "$lim" "$unit")|$res|-")
	note "$name: $v $unit (limit $op $lim) $res"
}

drop_file() { rm -f "$@"; }
warm() { cat "$@" >/dev/null; }
evict() { # drop files from the page cache (dirty pages written first)
	local f
	for f in "$@"; do
		dd of="$f" oflag=nocache conv=notrunc,fdatasync count=0 status=none
		dd if="$f" iflag=nocache count=0 status=none
	done
}
nbd_start() { # nbd_start IMAGE: qemu-nbd on a unix socket, rootless, writeback cache
	rm -f "$W/nbd.sock"
	qemu-nbd -t -f qcow2 --cache=writeback --aio=threads -k "$W/nbd.sock" "$1" >>"$LOG" 2>&1 &
	NBD_PID=$!
	local i; for i in $(seq 100); do [ -S "$W/nbd.sock" ] && return 0; sleep 0.05; done
	note "qemu-nbd did not start"; return 1
}
nbd_stop() { [ -n "$NBD_PID" ] && kill "$NBD_PID" 2>/dev/null; wait "$NBD_PID" 2>/dev/null; NBD_PID=; }
FIO_NBD() { fio --name=nbd --ioengine=nbd --uri="nbd+unix:///?socket=$W/nbd.sock" "$@"; }
FIO_PSYNC() { fio --name=psync --ioengine=psync "$@"; }

note "scratch $W ($(df -T "$W" | awk 'NR == 2 { print $2 }')), size $SIZE, $REPS repetitions"

# Source data: pseudo-random, no all-zero 4 KiB block, so zero detection cannot help.
SRC=$W/src.raw IMG=$W/alloc.qcow2
if has seqread || has seqwrite || has randread || has small; then
	run "$BIO" fill "$SRC" "$SIZE" 7 || { note "cannot write $SRC"; exit 1; }
fi
if has seqread || has randread; then
	run qemu-img convert -f raw -O qcow2 "$SRC" "$IMG" || { note "qemu-img convert failed"; exit 1; }
fi

# ---- sequential read, 1 MiB blocks, page cache warm ----------------------------------
if has seqread; then
	s=() r=() d=() c=() q=()
	warm "$SRC" "$IMG"
	for i in $(seq "$REPS"); do
		t_raw() { elapsed raw dd if="$SRC" of=/dev/null bs=1M; }
		t_shim() { elapsed shim dd if="$IMG" of=/dev/null bs=1M; }
		pair
	done
	row "seq read 1M warm, dd to /dev/null (vs raw file)" "${s[*]}" "${r[*]}" s "<=1.05"
	# qemu-img cannot write to /dev/null: both sides write a raw file on the same fs.
	for i in $(seq "$REPS"); do
		drop_file "$W/o1.raw" "$W/o2.raw" "$W/o3.raw"
		d+=("$(elapsed shim dd if="$IMG" of="$W/o1.raw" bs=1M)")
		q+=("$(elapsed run qemu-img dd -f qcow2 -O raw bs=1M if="$IMG" of="$W/o2.raw")")
		c+=("$(elapsed run qemu-img convert -f qcow2 -O raw "$IMG" "$W/o3.raw")")
	done
	drop_file "$W/o1.raw" "$W/o2.raw" "$W/o3.raw"
	row "seq read to raw file (vs qemu-img dd)" "${d[*]}" "${q[*]}" s "<1"
	row "seq read to raw file (vs qemu-img convert -O raw)" "${d[*]}" "${c[*]}" s "<1"
fi

# ---- sequential allocating write, 1 MiB blocks, without and then with fsync -----------
qconv_sync() { run qemu-img convert -f raw -O qcow2 "$1" "$2" && run sync "$2"; }
if has seqwrite; then
	# No fsync by the program: a raw file leaves the data to the page cache, and so
	# may the shim (its close orders, it does not flush); qemu-img convert's output
	# cache is unsafe by default.  Each side writes a new file.
	s=() r=() q=()
	warm "$SRC"
	for i in $(seq "$REPS"); do
		drop_file "$W/w.raw" "$W/w.qcow2" "$W/wq.qcow2"
		run qemu-img create -q -f qcow2 "$W/w.qcow2" "$SIZE"
		t_raw() { elapsed raw dd if="$SRC" of="$W/w.raw" bs=1M; }
		t_shim() { elapsed shim dd if="$SRC" of="$W/w.qcow2" bs=1M conv=notrunc; }
		pair
		q+=("$(elapsed run qemu-img convert -f raw -O qcow2 "$SRC" "$W/wq.qcow2")")
	done
	run qemu-img check -q "$W/w.qcow2" || note "seq write: qemu-img check reports problems!"
	run qemu-img compare -q "$SRC" "$W/w.qcow2" || note "seq write: image differs from source!"
	drop_file "$W/w.raw" "$W/w.qcow2" "$W/wq.qcow2"
	row "seq write 1M, no fsync (vs raw file)" "${s[*]}" "${r[*]}" s "<=1.05"
	row "seq write 1M, no fsync (vs qemu-img convert -O qcow2)" "${s[*]}" "${q[*]}" s "<1"
	s=() r=() q=()
	for i in $(seq "$REPS"); do
		drop_file "$W/w.raw" "$W/w.qcow2" "$W/wq.qcow2"
		t_raw() { elapsed raw dd if="$SRC" of="$W/w.raw" bs=1M conv=fsync; }
		t_shim() { elapsed shim dd if="$SRC" of="$W/w.qcow2" bs=1M conv=fsync; }
		pair
		q+=("$(elapsed qconv_sync "$SRC" "$W/wq.qcow2")")
	done
	run qemu-img compare -q "$SRC" "$W/w.qcow2" || note "seq write: image differs from source!"
	drop_file "$W/w.raw" "$W/w.qcow2" "$W/wq.qcow2"
	row "seq write 1M fresh image + fsync (vs raw file)" "${s[*]}" "${r[*]}" s "<=1.05"
	row "seq write (vs qemu-img convert -O qcow2 + sync)" "${s[*]}" "${q[*]}" s "<1"
fi

# ---- 4 KiB random reads, allocated image, cached ---------------------------------------
if has randread; then
	s=() r=() fs=() fn=()
	warm "$SRC" "$IMG"
	for i in $(seq "$REPS"); do
		r+=("$(iops runo "$BIO" randread "$SRC" "$RIO_OPS" $((42 + i)))")
		s+=("$(iops shimo "$BIO" randread "$IMG" "$RIO_OPS" $((42 + i)))")
	done
	row "rand read 4K cached as written, benchio (vs raw file)" "${s[*]}" "${r[*]}" iops ">=0.9"
	# The same with both files' page cache built the same way.  As written,
	# the raw file sits in the page cache as the large folios of benchio's
	# 1 MiB-aligned writes, the image as qemu-img's writes at 64 KiB-aligned
	# cluster offsets: smaller folios, whose lookup (filemap_get_read_batch,
	# xas_load) perf shows at 4x the raw file's on every 4 KiB read, a cost
	# of where the bytes lie in the host file, not of the translation.
	# Dropped from the cache (fdatasync + POSIX_FADV_DONTNEED through dd's
	# nocache flags, no root needed) and read back by one sequential cat,
	# both are laid out by readahead alike.
	s=() r=()
	evict "$SRC" "$IMG"
	warm "$SRC" "$IMG"
	for i in $(seq "$REPS"); do
		r+=("$(iops runo "$BIO" randread "$SRC" "$RIO_OPS" $((42 + i)))")
		s+=("$(iops shimo "$BIO" randread "$IMG" "$RIO_OPS" $((42 + i)))")
	done
	row "rand read 4K cached, both read in by readahead, benchio (vs raw file)" "${s[*]}" "${r[*]}" iops ">=0.95"
	if [ $HAVE_FIO = 1 ]; then
		for i in $(seq "$REPS"); do
			fs+=("$(fio_iops randread env LD_PRELOAD="$SHIM" nice -n "$NICE" fio --name=psync --ioengine=psync --filename="$IMG")")
			nbd_start "$IMG" && fn+=("$(fio_iops randread nice -n "$NICE" fio --name=nbd --ioengine=nbd --uri="nbd+unix:///?socket=$W/nbd.sock")") || fn+=(x)
			nbd_stop
		done
		row "rand read 4K, fio psync (vs fio nbd + qemu-nbd -k)" "${fs[*]}" "${fn[*]}" iops ">1"
	else
		ROWS+=("rand read 4K (vs qemu-nbd)|-|-|-|>1|SKIP (no fio)|-")
	fi
fi

# ---- 4 KiB random writes into a sparse image --------------------------------------------
if has randwrite; then
	# First both sides end durable (one fsync, timed), then neither does: the shim's
	# close only orders its metadata (the refcounts of what it allocated were made
	# durable ahead, see alloc.c), a raw file's close does nothing.
	for mode in randwritesync randwrite; do
		s=() r=()
		for i in $(seq "$REPS"); do
			drop_file "$W/rw.raw" "$W/rw.qcow2"
			truncate -s "$SIZE" "$W/rw.raw"; qemu-img create -q -f qcow2 "$W/rw.qcow2" "$SIZE"
			r+=("$(iops runo "$BIO" $mode "$W/rw.raw" "$RIO_OPS" $((42 + i)))")
			s+=("$(iops shimo "$BIO" $mode "$W/rw.qcow2" "$RIO_OPS" $((42 + i)))")
		done
		run qemu-img compare -q "$W/rw.raw" "$W/rw.qcow2" || note "rand write: image differs from raw twin!"
		if [ $mode = randwritesync ]; then
			row "rand write 4K sparse + fsync, benchio (vs raw file + fsync)" "${s[*]}" "${r[*]}" iops ">=0.95"
		else
			row "rand write 4K sparse, no fsync, benchio (vs raw file)" "${s[*]}" "${r[*]}" iops ">=0.8"
		fi
	done
	fs=() fn=()
	if [ $HAVE_FIO = 1 ]; then
		for i in $(seq "$REPS"); do
			drop_file "$W/rw.qcow2" "$W/rn.qcow2"
			qemu-img create -q -f qcow2 "$W/rw.qcow2" "$SIZE"; qemu-img create -q -f qcow2 "$W/rn.qcow2" "$SIZE"
			fs+=("$(fio_iops randwrite env LD_PRELOAD="$SHIM" nice -n "$NICE" fio --name=psync --ioengine=psync --filename="$W/rw.qcow2")")
			nbd_start "$W/rn.qcow2" && fn+=("$(fio_iops randwrite nice -n "$NICE" fio --name=nbd --ioengine=nbd --uri="nbd+unix:///?socket=$W/nbd.sock")") || fn+=(x)
			nbd_stop
		done
		row "rand write 4K sparse, fio psync (vs fio nbd + qemu-nbd -k)" "${fs[*]}" "${fn[*]}" iops ">1"
	else
		ROWS+=("rand write 4K (vs qemu-nbd)|-|-|-|>1|SKIP (no fio)|-")
	fi
	drop_file "$W/rw.raw" "$W/rw.qcow2" "$W/rn.qcow2"
fi

# ---- 4 KiB random writes over compressed data -------------------------------------------
# Every write into a compressed cluster copies it out (inflate, write a whole new
# cluster) and releases the old one; the first release of a handle also reads every
# L2 table once (release.c, check_plain).  Each side gets its own copy of the same
# compressed image: the reference is qemu doing the same work (fio through qemu-nbd),
# the raw file shows what the format costs.  Then the one-time L2 scan at its largest
# (512 B clusters: the L2 tables are 1/64 of the data): one process writing one block.
if has comp; then
	CSRC=$W/srcc.raw
	run "$BIO" fillc "$CSRC" "$COMP_SIZE" 9 || { note "cannot write $CSRC"; exit 1; }
	run qemu-img convert -c -f raw -O qcow2 "$CSRC" "$W/cz.qcow2" || { note "qemu-img convert -c failed"; exit 1; }
	note "comp: $COMP_SIZE compressed to $(mib "$(stat -c %s "$W/cz.qcow2")")"
	s=() r=() fs=() fn=()
	for i in $(seq "$REPS"); do
		drop_file "$W/c1.raw" "$W/c1.qcow2"
		cp "$CSRC" "$W/c1.raw"; cp "$W/cz.qcow2" "$W/c1.qcow2"
		r+=("$(iops runo "$BIO" randwrite "$W/c1.raw" "$COMP_OPS" $((42 + i)))")
		s+=("$(iops shimo "$BIO" randwrite "$W/c1.qcow2" "$COMP_OPS" $((42 + i)))")
	done
	run qemu-img check -q "$W/c1.qcow2" || note "comp: qemu-img check reports problems!"
	run qemu-img compare -q "$W/c1.raw" "$W/c1.qcow2" || note "comp: image differs from raw twin!"
	row "rand write 4K over compressed $COMP_SIZE, benchio (vs raw file)" "${s[*]}" "${r[*]}" iops -
	if [ $HAVE_FIO = 1 ]; then
		for i in $(seq "$REPS"); do
			drop_file "$W/c1.qcow2" "$W/c2.qcow2"
			cp "$W/cz.qcow2" "$W/c1.qcow2"; cp "$W/cz.qcow2" "$W/c2.qcow2"
			fs+=("$(RIO_OPS=$COMP_OPS SIZE=$COMP_SIZE fio_iops randwrite env LD_PRELOAD="$SHIM" nice -n "$NICE" fio --name=psync --ioengine=psync --filename="$W/c1.qcow2")")
			nbd_start "$W/c2.qcow2" && fn+=("$(RIO_OPS=$COMP_OPS SIZE=$COMP_SIZE fio_iops randwrite nice -n "$NICE" fio --name=nbd --ioengine=nbd --uri="nbd+unix:///?socket=$W/nbd.sock")") || fn+=(x)
			nbd_stop
		done
		run qemu-img check -q "$W/c1.qcow2" || note "comp: qemu-img check reports problems!"
		row "rand write 4K over compressed $COMP_SIZE, fio psync (vs fio nbd + qemu-nbd -k)" "${fs[*]}" "${fn[*]}" iops ">1"
	else
		ROWS+=("rand write 4K over compressed (vs qemu-nbd)|-|-|-|>1|SKIP (no fio)|-")
	fi
	# The scan at its largest: one 4 KiB write, whole process, on a compressed image,
	# against qemu-io doing the same and against the shim on an uncompressed twin
	# (no copy-out, no scan).  qemu-img convert -c takes minutes per GiB at 512 B.
	run "$BIO" fillc "$CSRC" "$COMP512_SIZE" 9 &&
	run qemu-img convert -c -f raw -O qcow2 -o cluster_size=512 "$CSRC" "$W/c512.qcow2" &&
	run qemu-img convert -f raw -O qcow2 -o cluster_size=512 "$CSRC" "$W/u512.qcow2" ||
		{ note "qemu-img convert (512 B clusters) failed"; exit 1; }
	s=() q=() u=()
	for i in $(seq "$MKFS_REPS"); do
		drop_file "$W/c1.qcow2" "$W/c2.qcow2" "$W/u1.qcow2"
		cp "$W/c512.qcow2" "$W/c1.qcow2"; cp "$W/c512.qcow2" "$W/c2.qcow2"; cp "$W/u512.qcow2" "$W/u1.qcow2"
		s+=("$(elapsed shim "$BIO" randwrite "$W/c1.qcow2" 1 $((42 + i)))")
		q+=("$(elapsed run qemu-io -f qcow2 -c "write -P 7 $(( (i * 7919) % 1000 * 4096 )) 4k" "$W/c2.qcow2")")
		u+=("$(elapsed shim "$BIO" randwrite "$W/u1.qcow2" 1 $((42 + i)))")
	done
	# Both got the same write over the same contents.
	run qemu-img check -q "$W/c1.qcow2" || note "comp: qemu-img check reports problems!"
	run qemu-img check -q "$W/u1.qcow2" || note "comp: qemu-img check reports problems!"
	run qemu-img compare -q "$W/c1.qcow2" "$W/u1.qcow2" || note "comp: compressed and uncompressed twins differ!"
	row "first 4K write over compressed $COMP512_SIZE, 512 B clusters, whole process (vs qemu-io)" "${s[*]}" "${q[*]}" s -
	row "first 4K write, 512 B clusters, compressed $COMP512_SIZE (vs uncompressed twin)" "${s[*]}" "${u[*]}" s -
	drop_file "$CSRC" "$W/cz.qcow2" "$W/c512.qcow2" "$W/u512.qcow2" "$W/c1.raw" "$W/c1.qcow2" "$W/c2.qcow2" "$W/u1.qcow2"
fi

# ---- mkfs on a MKFS_SIZE disk: time vs raw, image size vs qemu-img convert -O qcow2 ----
if has mkfs; then
	for fs in ext4 xfs; do
		s=() r=()
		case $fs in ext4) opt="-q -F" ;; xfs) opt="-q -f" ;; esac
		for i in $(seq "$MKFS_REPS"); do
			drop_file "$W/m.raw" "$W/m.qcow2"
			truncate -s "$MKFS_SIZE" "$W/m.raw"; qemu-img create -q -f qcow2 "$W/m.qcow2" "$MKFS_SIZE"
			# shellcheck disable=SC2086
			t_raw() { elapsed raw mkfs.$fs $opt "$W/m.raw"; }
			# shellcheck disable=SC2086
			t_shim() { elapsed shim mkfs.$fs $opt "$W/m.qcow2"; }
			pair
		done
		row "mkfs.$fs $MKFS_SIZE (vs raw file)" "${s[*]}" "${r[*]}" s "<=1.1"
		drop_file "$W/mc.qcow2"
		run qemu-img convert -f raw -O qcow2 "$W/m.raw" "$W/mc.qcow2"
		a=$(stat -c %s "$W/m.qcow2") b=$(stat -c %s "$W/mc.qcow2")
		row "mkfs.$fs image size (vs qemu-img convert -O qcow2 of raw)" "$(awk -v v="$a" 'BEGIN{print v/1048576}')" \
			"$(awk -v v="$b" 'BEGIN{print v/1048576}')" MiB "<=1.05"
		drop_file "$W/m.raw" "$W/m.qcow2" "$W/mc.qcow2"
	done
fi

# ---- mkfs.ext4 -d: a TREE_SIZE tree of files copied in by mke2fs ---------------------
if has mkfsd; then
	T=$W/tree
	mkdir -p "$T"
	k=0 left=$(bytes "$TREE_SIZE")
	while [ "$left" -gt 0 ]; do # files of 1..32 MiB, pseudo-random contents
		n=$(( (k % 32 + 1) << 20 )); [ "$n" -gt "$left" ] && n=$left
		run "$BIO" fill "$T/f$k" "$n" "$k" || { note "cannot fill $T"; break; }
		left=$((left - n)) k=$((k + 1))
	done
	s=() r=()
	for i in $(seq "$REPS"); do
		drop_file "$W/m.raw" "$W/m.qcow2"
		truncate -s "$MKFS_SIZE" "$W/m.raw"; qemu-img create -q -f qcow2 "$W/m.qcow2" "$MKFS_SIZE"
		warm "$T"/*
		t_raw() { elapsed raw mkfs.ext4 -q -F -d "$T" "$W/m.raw"; }
		t_shim() { elapsed shim mkfs.ext4 -q -F -d "$T" "$W/m.qcow2"; }
		pair
	done
	run qemu-img check -q "$W/m.qcow2" || note "mkfs -d: qemu-img check reports problems!"
	run qemu-img compare -q -f raw -F qcow2 "$W/m.raw" "$W/m.qcow2" || note "mkfs -d: image differs from the raw twin (timestamps, uuid: expected)"
	row "mkfs.ext4 -d, $TREE_SIZE tree, $MKFS_SIZE (vs raw file)" "${s[*]}" "${r[*]}" s "<=1.05"
	drop_file "$W/m.raw" "$W/m.qcow2"
	rm -rf "$T"
fi

# ---- 1M small reads on a non-image file, with and without the shim -------------------
if has small; then
	s=() r=()
	[ -f "$SRC" ] || run "$BIO" fill "$SRC" 64M 7
	warm "$SRC"
	for i in $(seq $((REPS * 2))); do
		r+=("$(secs runo "$BIO" smallread "$SRC" "$SMALL_OPS")")
		s+=("$(secs shimo "$BIO" smallread "$SRC" "$SMALL_OPS")")
	done
	row "$SMALL_OPS small preads, non-image file (preloaded vs not)" "${s[*]}" "${r[*]}" s "<=1.01"
fi

# ---- peak extra RSS during random I/O over a RSS_SIZE virtual image -------------------
peak_kib() { # peak_kib OUTFILE CMD...: max RSS in KiB of CMD (GNU time, else x)
	local o=$1; shift
	if [ -n "$TIMEBIN" ]; then run "$TIMEBIN" -f %M -o "$o" "$@" && tail -n 1 "$o" || echo x
	else run "$@" >/dev/null; echo x; fi
}
if has rss; then
	drop_file "$W/big.raw" "$W/big.qcow2"
	truncate -s "$RSS_SIZE" "$W/big.raw" && qemu-img create -q -f qcow2 "$W/big.qcow2" "$RSS_SIZE"
	rw=$(peak_kib "$W/t1" "$BIO" randwrite "$W/big.raw" "$RSS_OPS" 5)
	rr=$(peak_kib "$W/t2" "$BIO" randread "$W/big.raw" "$RSS_OPS" 5)
	sw=$(peak_kib "$W/t3" env LD_PRELOAD="$SHIM" "$BIO" randwrite "$W/big.qcow2" "$RSS_OPS" 5)
	sr=$(peak_kib "$W/t4" env LD_PRELOAD="$SHIM" "$BIO" randread "$W/big.qcow2" "$RSS_OPS" 5)
	extra=x
	case "$rw$rr$sw$sr" in *x*) ;; *)
		extra=$(awk -v a="$sw" -v b="$sr" -v c="$rw" -v d="$rr" 'BEGIN {
			s = a > b ? a : b; r = c > d ? c : d; printf "%.1f", (s - r) / 1024 }') ;; esac
	note "rss: raw write/read $rw/$rr KiB, shim write/read $sw/$sr KiB, image $(stat -c %s "$W/big.qcow2") B"
	limit "peak extra RSS, $RSS_OPS rand 4K writes+reads on $RSS_SIZE image" "$extra" MiB "<=" 16
	drop_file "$W/big.raw" "$W/big.qcow2"
fi

# ---- scale: PIB_SIZE image, 64 KiB clusters: sgdisk, then mkfs.xfs on the whole disk ---
if has pib; then
	P=$W/pib.qcow2
	drop_file "$P"
	qemu-img create -q -f qcow2 -o cluster_size=65536 "$P" "$PIB_SIZE"
	t0=$(date +%s.%N)
	m1=$(peak_kib "$W/t5" env LD_PRELOAD="$SHIM" sgdisk -o -n 1:0:0 -t 1:8300 "$P")
	m2=$(peak_kib "$W/t6" env LD_PRELOAD="$SHIM" mkfs.xfs -q -f "$P")
	t1=$(date +%s.%N)
	tt=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')
	case "$m1$m2" in *x*) tt=x m=x ;; *) m=$(awk -v a="$m1" -v b="$m2" 'BEGIN { printf "%.1f", (a > b ? a : b) / 1024 }') ;; esac
	sz=$(awk -v v="$(stat -c %s "$P")" 'BEGIN { printf "%.1f", v / 1048576 }')
	run qemu-img check -q "$P" || note "pib: qemu-img check reports problems"
	limit "$PIB_SIZE image: sgdisk + mkfs.xfs, total time" "$tt" s "<" 60
	limit "$PIB_SIZE image: image file size" "$sz" MiB "<" 256
	limit "$PIB_SIZE image: peak RSS (max of both tools)" "$m" MiB "<" 64
	drop_file "$P"
fi

# wcpu CMD...: "WALL CPU" of CMD (benchio cpu: CPU = user + system of CMD and all its
# children), or "x x".
wcpu() {
	local out
	sync
	out=$(timeout "$TIMEOUT" nice -n "$NICE" "$BIO" cpu "$@" 2>>"$LOG" | tail -n 1)
	case $out in wall=*) echo "$out" | sed 's/wall=\([0-9.]*\) cpu=\([0-9.]*\)/\1 \2/' ;;
	*) echo "x x"; note "failed: $*" ;; esac
}
# wcpu_pair: one repetition of a row measured by wcpu: t_raw/t_shim print "WALL CPU";
# appends to r/s (wall) and rc/sc (CPU), the order alternating as in pair.
wcpu_pair() {
	local a b
	if [ $((i % 2)) = 1 ]; then a=$(t_raw); b=$(t_shim); else b=$(t_shim); a=$(t_raw); fi
	r+=("${a% *}") rc+=("${a#* }") s+=("${b% *}") sc+=("${b#* }")
}

# ---- processes that never touch an image: a shell running /bin/true PROCS times ---------
# Both sides start through env; the shim side has LD_PRELOAD set for the shell and so
# for every /bin/true (the wrapped-build-script case).  Then the system calls the shim
# adds per process, by strace -c over the same loop, less those the loader spends on
# any preloaded library (the same loop preloading an empty one).
if has procs; then
	s=() r=() sc=() rc=()
	loop="for i in \$(seq $PROCS); do /bin/true; done"
	for i in $(seq $((REPS * 2))); do
		t_raw() { wcpu env sh -c "$loop"; }
		t_shim() { wcpu env LD_PRELOAD="$SHIM" sh -c "$loop"; }
		wcpu_pair
	done
	row "$PROCS x /bin/true from sh, wall (preloaded vs not)" "${s[*]}" "${r[*]}" s "<=1.05"
	row "$PROCS x /bin/true from sh, CPU (preloaded vs not)" "${sc[*]}" "${rc[*]}" s "<=1.05"
	# One process at the finest grain (benchio spawns: vfork+exec, the two sides
	# alternating run by run), the shim and, for scale, an empty preloaded library.
	spawn_cpu() { # spawn_cpu LIB: "RAW LIB" mean CPU us per /bin/true
		runo "$BIO" spawns $((PROCS * 5)) "$1" /bin/true |
			sed -n 's/.*raw_cpu_us=\([0-9.]*\) lib_cpu_us=\([0-9.]*\).*/\1 \2/p'
	}
	a=$(spawn_cpu "$SHIM")
	[ -n "$a" ] && row "one /bin/true, CPU, vfork+exec by benchio (preloaded vs not)" "${a#* }" "${a% *}" us -
	if command -v cc >/dev/null && printf 'int qcowshim_bench_empty;\n' >"$W/empty.c" &&
		cc -shared -fPIC -o "$W/libempty.so" "$W/empty.c" && a=$(spawn_cpu "$W/libempty.so") && [ -n "$a" ]; then
		row "one /bin/true, CPU, an empty preloaded library (vs none)" "${a#* }" "${a% *}" us -
	fi
	if command -v strace >/dev/null; then
		# calls [PRELOAD]: "LOADER OTHER" system calls of the whole loop (strace -f -c):
		# LOADER counts the kinds ld.so uses to map a library (openat read newfstatat
		# mmap mprotect close munmap), OTHER the rest.
		calls() {
			strace -f -c -o "$W/sc" env ${1:+LD_PRELOAD=$1} sh -c "$loop" >>"$LOG" 2>&1
			awk '$1 ~ /^[0-9.]+$/ && NF >= 5 { n = ($NF == "total") ? 0 : $4
				if ($NF ~ /^(openat|read|newfstatat|mmap|mprotect|close|munmap)$/) l += n; else o += n }
				END { print l + 0, o + 0 }' "$W/sc"
		}
		c0=$(calls) c2=$(calls "$SHIM")
		note "procs: loop system calls (loader kinds, others): raw $c0, shim $c2"
		load=$(echo "$c0 $c2" | awk -v n="$PROCS" '{ printf "%.2f", ($3 - $1) / n }')
		per=$(echo "$c0 $c2" | awk -v n="$PROCS" '{ printf "%.2f", ($4 - $2) / n }')
		note "procs: per process, $load more of the loader's kinds (mapping the library), $per others"
		limit "system calls per process beyond loading the library (strace -c)" "$per" calls "<=" 3
	else
		ROWS+=("system calls per process (strace -c)|-|-|-|<=3|SKIP (no strace)|-")
	fi
fi

# ---- issue 25's image-building script: new 1 GiB disk, sfdisk, mkfs.vfat/ext4 by offset,
# BUILD_FILES files copied in by one mcopy each; the whole script under the shim -----------
if has build; then
	if command -v sfdisk >/dev/null && command -v mkfs.vfat >/dev/null && command -v mcopy >/dev/null; then
		F=$W/files
		mkdir -p "$F"
		for k in $(seq "$BUILD_FILES"); do run "$BIO" fill "$F/f$k" $((4096 * (k % 16 + 1))) "$k"; done
		touch -d @1700000000 "$F"/*
		s=() r=() sc=() rc=()
		for i in $(seq $((REPS * 2))); do
			drop_file "$W/b.raw" "$W/b.qcow2"
			t_raw() { wcpu env sh "$ROOT/tests/bench/build-image.sh" "$W/b.raw" "$F"; }
			t_shim() { wcpu env LD_PRELOAD="$SHIM" sh "$ROOT/tests/bench/build-image.sh" "$W/b.qcow2" "$F"; }
			wcpu_pair
		done
		run qemu-img check -q "$W/b.qcow2" || note "build: qemu-img check reports problems!"
		run qemu-img compare -q -f raw -F qcow2 "$W/b.raw" "$W/b.qcow2" || note "build: image differs from the raw twin!"
		row "build script: 1G disk, sfdisk, mkfs.vfat+ext4, $BUILD_FILES mcopy, wall (vs raw file)" "${s[*]}" "${r[*]}" s "<=1.1"
		row "build script, CPU (vs raw file)" "${sc[*]}" "${rc[*]}" s "<=1.2"
		drop_file "$W/b.raw" "$W/b.qcow2"
		rm -rf "$F"
	else
		ROWS+=("build script|-|-|-|<=1.1|SKIP (no sfdisk, mkfs.vfat or mcopy)|-")
	fi
fi

# ---- one image open (open, a 512 B pread, close) against the same on a raw file ----------
if has open; then
	[ -f "$W/o.qcow2" ] || { run qemu-img create -q -f qcow2 "$W/o.qcow2" 1G &&
		run env LD_PRELOAD="$SHIM" dd if=/dev/urandom of="$W/o.qcow2" bs=64k count=16 conv=notrunc status=none &&
		run qemu-img convert -f qcow2 -O raw "$W/o.qcow2" "$W/o.raw"; }
	s=() r=()
	for i in $(seq $((REPS * 2))); do
		r+=("$(secs runo "$BIO" opens "$W/o.raw" "$OPENS")")
		s+=("$(secs shimo "$BIO" opens "$W/o.qcow2" "$OPENS")")
	done
	ms=$(echo "${s[*]}" | median) mr=$(echo "${r[*]}" | median)
	d=x; [ "$ms" != x ] && [ "$mr" != x ] && d=$(awk -v a="$ms" -v b="$mr" -v n="$OPENS" 'BEGIN { printf "%.1f", (a - b) * 1e6 / n }')
	note "open: $(awk -v a="$ms" -v n="$OPENS" 'BEGIN { printf "%.1f", a * 1e6 / n }') us per image open, $(awk -v a="$mr" -v n="$OPENS" 'BEGIN { printf "%.1f", a * 1e6 / n }') us raw"
	limit "one image open+pread+close, us above a raw file (benchio opens)" "$d" us "<=" 10
	drop_file "$W/o.qcow2" "$W/o.raw"
fi

# ---- the rootless qemu route: qemu-storage-daemon's FUSE export of the image, start and
# stop included, against the shim doing the same on the image itself ---------------------
qsd_start() { # qsd_start IMAGE MOUNTPOINT: export IMAGE writable on MOUNTPOINT (a file)
	: >"$2"
	qemu-storage-daemon --blockdev driver=file,node-name=file,filename="$1" \
		--blockdev driver=qcow2,node-name=fmt,file=file \
		--export type=fuse,id=exp0,node-name=fmt,mountpoint="$2",writable=on \
		--pidfile "$W/qsd.pid" --daemonize >>"$LOG" 2>&1 || return 1
	QSD_PID=$(cat "$W/qsd.pid") QSD_MNT=$2
}
qsd_stop() { # the daemon unmounts at SIGTERM; a mount it left is removed here
	local k
	kill "$QSD_PID" 2>/dev/null
	for k in $(seq 600); do kill -0 "$QSD_PID" 2>/dev/null || break; sleep 0.05; done
	grep -q " $QSD_MNT fuse" /proc/self/mounts && fusermount3 -u "$QSD_MNT" >>"$LOG" 2>&1
	QSD_PID=; rm -f "$QSD_MNT" "$W/qsd.pid"
}
fuse_mkfs() { # IMAGE MNT: create, export, mkfs.ext4 the export, stop
	run qemu-img create -q -f qcow2 "$1" "$FUSE_SIZE" && qsd_start "$1" "$2" &&
		run mkfs.ext4 -q -F "$2" && qsd_stop
}
fuse_write() { qsd_start "$1" "$2" && run dd if="$SRC" of="$2" bs=1M conv=notrunc && qsd_stop; }
fuse_read() { qsd_start "$1" "$2" && run dd if="$2" of=/dev/null bs=1M && qsd_stop; }
if has fuse; then
	if ! command -v qemu-storage-daemon >/dev/null || ! command -v fusermount3 >/dev/null || [ ! -c /dev/fuse ]; then
		ROWS+=("qemu-storage-daemon FUSE rows|-|-|-|<1|SKIP (no qemu-storage-daemon, fusermount3 or /dev/fuse)|-")
	else
		[ -f "$SRC" ] || run "$BIO" fill "$SRC" "$SIZE" 7
		warm "$SRC"
		s=() r=() s2=() r2=() s3=() r3=()
		for i in $(seq "$REPS"); do
			drop_file "$W/fs.qcow2" "$W/ff.qcow2"
			t_shim() { elapsed shim sh -c "truncate -s $FUSE_SIZE '$W/fs.qcow2' && mkfs.ext4 -q -F '$W/fs.qcow2'"; }
			t_raw() { elapsed fuse_mkfs "$W/ff.qcow2" "$W/fmnt"; }
			pair
			run qemu-img check -q "$W/fs.qcow2" && run qemu-img check -q "$W/ff.qcow2" || note "fuse: qemu-img check reports problems!"
			drop_file "$W/fs.qcow2" "$W/ff.qcow2"
			run qemu-img create -q -f qcow2 "$W/fs.qcow2" "$SIZE"; run qemu-img create -q -f qcow2 "$W/ff.qcow2" "$SIZE"
			t_shim() { elapsed shim dd if="$SRC" of="$W/fs.qcow2" bs=1M conv=notrunc; }
			t_raw() { elapsed fuse_write "$W/ff.qcow2" "$W/fmnt"; }
			pair_in s2 r2
			run qemu-img compare -q "$W/fs.qcow2" "$W/ff.qcow2" || note "fuse: the two images differ!"
			run qemu-img check -q "$W/fs.qcow2" || note "fuse: qemu-img check reports problems!"
			t_shim() { elapsed shim dd if="$W/fs.qcow2" of=/dev/null bs=1M; }
			t_raw() { elapsed fuse_read "$W/ff.qcow2" "$W/fmnt"; }
			pair_in s3 r3
		done
		drop_file "$W/fs.qcow2" "$W/ff.qcow2"
		row "create + mkfs.ext4 $FUSE_SIZE (vs qemu-storage-daemon FUSE export)" "${s[*]}" "${r[*]}" s "<1"
		row "write $SIZE, dd 1M (vs qemu-storage-daemon FUSE export)" "${s2[*]}" "${r2[*]}" s "<1"
		row "read $SIZE, dd 1M (vs qemu-storage-daemon FUSE export)" "${s3[*]}" "${r3[*]}" s "<1"
	fi
fi

# ---- the table ----------------------------------------------------------------------
echo
echo "qcowshim bench: $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs, $(free -g | awk '/^Mem:/ { print $2 }') GiB RAM," \
	"kernel $(uname -r), $(df -T "$W" | awk 'NR == 2 { print $2 }') scratch; size $SIZE, mkfs $MKFS_SIZE," \
	"$RIO_OPS rand ops, $REPS reps, nice $NICE"
echo
echo "| case | shim | reference | ratio | target | result | spread shim/ref |"
echo "|---|---|---|---|---|---|---|"
for r in "${ROWS[@]}"; do echo "| ${r//|/ | } |"; done
echo
echo "ratio = shim/reference of medians (times: lower is better; IOPS: higher is better);"
echo "spread = (max-min)/median over the repetitions (shim/reference)"
exit 0
