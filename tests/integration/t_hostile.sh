#!/bin/sh
# t_hostile.sh - malformed and hostile images (issue 6).
#
# Valid images are made with qemu-img/qemu-io, tests/hostile/mkhostile
# derives ~100 malformed ones from them, and each is opened read-only and
# read-write, read and written, through the shim (LD_PRELOAD, a plain POSIX
# program) and through the library directly (build/hostile/hostile_io).
# For every case and every way in:
#   - no signal, no hang (timeout), no allocation beyond 1 GiB (ulimit -v);
#   - either an error at open, with exactly one "qcowshim:" stderr line
#     naming the image (shim), or reads equal to what qemu-img convert
#     gives when qemu accepts the image (qemu refusing while we accept is
#     reported, and the bytes we read are then only required to be stable);
#   - a write that succeeded reads back, and changed nothing else in the
#     first 4 MiB of the disk, also after a later write allocated a new
#     cluster (one wrongly released would be handed out again);
#   - never worse: no cluster has more references beyond its refcount
#     (qemu-img check's "ERROR cluster N refcount=R reference=F") than
#     it had in the image given;
#   - the host file is byte-identical afterwards, unless a write succeeded
#     (the image was accepted) or the corrupt bit was deliberately set;
#     those are reported per case.
# The table "case | how | outcome" is in the log.  Also replays the fuzzer's
# regression inputs (tests/fuzz/regress) under ASan+UBSan.
set -u
: "${QCS_ROOT:=$(cd "$(dirname "$0")/../.." && pwd)}"
: "${QCS_BUILD:=$QCS_ROOT/build}"
B=$QCS_BUILD
LIB=$B/libqcowshim.so
IO=$B/hostile/hostile_io
MK=$B/hostile/mkhostile
for f in "$LIB" "$IO" "$MK" "$B/hostile/fuzz_replay"; do
	[ -x "$f" ] || [ -f "$f" ] || { echo "t_hostile: $f missing (make all $HOSTILE_BIN)"; exit 1; }
done
command -v qemu-img >/dev/null || { echo "t_hostile: SKIP LOUDLY: qemu-img missing (make deps)"; exit 1; }
unset QCOWSHIM_MATCH QCOWSHIM_DISABLE QCOWSHIM_DEBUG QCOWSHIM_NO_BACKING
export LC_ALL=C
T=$(mktemp -d "${TMPDIR:-/tmp}/qcs-hostile.XXXXXX") || exit 1
trap 'cd /; rm -rf "$T"' EXIT
cd "$T" || exit 1
nfail=0
fail() { nfail=$((nfail + 1)); echo "FAIL - $*"; }

# ---- the fuzzer's regression inputs -----------------------------------------
for f in "$QCS_ROOT"/tests/fuzz/regress/*.bin; do
	[ -e "$f" ] || continue
	if ASAN_OPTIONS=detect_leaks=1 timeout 60 "$B/hostile/fuzz_replay" "$f" >replay.out 2>&1; then
		echo "ok   - fuzz regression $(basename "$f")"
	else
		fail "fuzz regression $(basename "$f")"; tail -n 20 replay.out
	fi
done

# ---- valid bases, made by qemu ---------------------------------------------
mkdir src out
qi() { qemu-io -t unsafe -f qcow2 "$@" >/dev/null || echo "t_hostile: qemu-io $* failed"; }
fill() { # data at 0 and 20k, zeros at 8k, a compressed cluster at 64k
	qi -c 'write -P 0x11 0 1k' -c 'write -z 8k 4k' -c 'write -P 0x22 20k 3k' \
		-c 'write -c -P 0x33 64k 64k' -c 'write -P 0x44 200k 4k' "$1"
}
mk() { qemu-img create -q -f qcow2 -o "$2" "src/$1.qcow2" "${3:-1M}" && fill "src/$1.qcow2"; }
mk v3 compat=1.1,cluster_size=4096
mk v2 compat=0.10,cluster_size=4096
mk wide compat=1.1,cluster_size=4096 6M
qi -c 'write -P 0x77 5M 4k' src/wide.qcow2
mk snap compat=1.1,cluster_size=4096
qemu-img snapshot -c s1 src/snap.qcow2
qi -c 'write -P 0x55 0 2k' src/snap.qcow2
mk extl2 compat=1.1,cluster_size=16384,extended_l2=on
mk bitmap compat=1.1,cluster_size=4096
qemu-img bitmap --add src/bitmap.qcow2 b0 2>/dev/null || echo "t_hostile: no bitmap support in qemu-img"
qemu-img create -q -f qcow2 -o compat=1.1,cluster_size=4096 src/back.qcow2 1M
qi -c 'write -P 0x66 0 1M' src/back.qcow2
qemu-img create -q -f qcow2 -o compat=1.1,cluster_size=4096 -b back.qcow2 -F qcow2 src/overlay.qcow2 1M
fill src/overlay.qcow2
"$MK" src out >cases.txt || fail "mkhostile could not make every case"
cp src/back.qcow2 out/
cp src/back.qcow2 out/backing_loop_b.qcow2 . # never written: opened read-only
ncases=$(wc -l <cases.txt)
echo "# $ncases malformed images"

# ---- drive each one ----------------------------------------------------------
# run_io HOW MODE IMG RAW: hostile_io under the limits; sets res to its
# words, or SIGNAL/HANG.  The shim's stderr lines go to io.err.
run_io() {
	if [ "$1" = shim ]; then pre="env LD_PRELOAD=$LIB"; else pre=""; fi
	( ulimit -v 1048576; exec timeout 20 $pre "$IO" "$1" "$2" "$3" "$4" ) >io.out 2>io.err
	rc=$?
	if [ $rc = 124 ]; then res="HANG"
	elif [ $rc -ge 128 ]; then res="SIGNAL$((rc - 128))"
	elif [ $rc != 0 ]; then res="EXIT$rc $(head -c 200 io.err)"
	else res=; IFS= read -r res <io.out; fi # one line (the shell's read, no cat)
}

# "CLUSTER DEFICIT" for every cluster qemu-img check finds referenced more
# often than its refcount says, sorted.  The backing file is not opened
# ("backing": null): references and refcounts are the image's own, and a
# broken or looping chain (qemu opens a loop until the timeout) would
# otherwise leave nothing to compare.
deficits() {
	timeout 20 qemu-img check "json:{\"driver\": \"qcow2\", \"backing\": null,
		\"file\": {\"driver\": \"file\", \"filename\": \"$1\"}}" 2>&1 |
		awk '/^ERROR cluster [0-9]* refcount=[0-9]* reference=[0-9]*/ {
			r = $4; sub(/^refcount=/, "", r); f = $5; sub(/^reference=/, "", f)
			print $3, f - r }' | sort
}
# worse BEFORE AFTER: the clusters whose deficit grew, "N:OLD->NEW" each
worse() {
	awk 'NR == FNR { d[$1] = $2; next } $2 > d[$1] + 0 { printf "%s:%d->%d ", $1, d[$1], $2 }' "$1" "$2"
}

# the low byte of the incompatible features (bit 1: corrupt), as a number
incompat_lo() { echo $(( 0x$(od -An -tx1 -j79 -N1 "$1" | tr -d ' ') )); }

printf '%-34s %-7s %-34s %s\n' "case" "how" "qemu" "outcome" >table.txt
while read -r name base; do
	img=out/$name.qcow2
	# what qemu makes of it (small disks only: never convert 2^63 bytes)
	qraw=- vs= setbit=
	info=$(timeout 20 qemu-img info --output=json "$img" 2>/dev/null)
	case $info in *'"virtual-size": '[0-9]*) vs=${info#*\"virtual-size\": } vs=${vs%%[!0-9]*} ;; esac
	if [ -z "$vs" ]; then qemu=refuses
	elif [ "$vs" -gt 67108864 ]; then qemu="opens(size=$vs)"
	# a backing loop: qemu-img info --backing-chain says so at once, where
	# qemu-img convert would open the chain over and over until the timeout
	elif case $info in *'"backing-filename"'*) ;; *) false ;; esac &&
		timeout 20 qemu-img info --backing-chain "$img" 2>&1 | grep -q 'creates an infinite loop'; then
		qemu=refuses-loop
	elif timeout 20 qemu-img convert -f qcow2 -O raw "$img" q.raw 2>/dev/null; then
		qemu=reads; qraw=q.raw
	else qemu=read-fails; fi
	deficits "$img" >def.before
	for how in shim lib; do
		for mode in ro rw; do
			# backing names resolve against the image's directory ($T)
			case $name in backing_self|backing_loop_ab) w=$name.qcow2 ;; *) w=w.qcow2 ;; esac
			cp "$img" "$w"
			run_io "$how" "$mode" "$w" "$qraw"
			what="$res"
			case "$res" in
			HANG*|SIGNAL*|EXIT*) fail "$name $how $mode: $res"; cat io.err | head -n 5 ;;
			esac
			# reads: equal to qemu's when both read
			case "$res" in *cmp=diff*|*after=diff*|*cmp=short*|*after=short*)
				if [ "$qraw" != - ]; then fail "$name $how $mode: data differs from qemu's ($res)"; fi ;;
			esac
			# an open error: one clear line from the shim naming the image
			case "$res" in open=*) case "$res" in open=OK*) ;; *)
				if [ "$how" = shim ]; then
					n=$(grep -c '^qcowshim: ' io.err)
					if [ "$n" != 1 ] || ! grep -q "^qcowshim: .*$w" io.err; then
						fail "$name $how $mode: want one qcowshim line naming the image, got $n"
						head -n 5 io.err
					else
						what="$what | $(grep '^qcowshim: ' io.err | sed "s|^qcowshim: .*$w: ||")"
					fi
				else
					what="$what | $(grep '^hostile_io: ' io.err | head -n 1 | sed "s|^hostile_io: .*$w: ||")"
				fi ;;
			esac ;; esac
			# an error after a successful open: the shim names the image and the reason
			case "$res" in open=OK*=E*)
				if [ "$how" = shim ]; then
					if ! grep -q "^qcowshim: .*$w: " io.err; then
						fail "$name $how $mode: I/O error without a qcowshim line naming the image"
					else
						what="$what | $(grep '^qcowshim: ' io.err | head -n 1 | sed "s|^qcowshim: .*$w: ||")"
					fi
				fi ;;
			esac
			# the host file: unchanged unless a write went through, and never worse
			if ! cmp -s "$img" "$w"; then
				if [ "$mode" = rw ]; then
					deficits "$w" >def.after
					bad=$(worse def.before def.after)
					[ -z "$bad" ] || fail "$name $how $mode: the image got worse: $bad"
				fi
				[ -n "$setbit" ] || { "$IO" setbit "$img" saved.bit; setbit=1; }
				if cmp -s saved.bit "$w"; then what="$what [only the corrupt bit set]"
				else case "$res" in
					*write0=OK*) what="$what [file written]"
						[ $(( $(incompat_lo "$w") & 2 )) = 2 ] &&
						[ $(( $(incompat_lo "$img") & 2 )) = 0 ] &&
						what="$what [corrupt bit set]" ;;
					*) fail "$name $how $mode: host file changed without a successful write" ;;
				esac; fi
			fi
			printf '%-34s %-7s %-34s %s\n' "$name" "$how-$mode" "$qemu" "$what" >>table.txt
		done
	done
done <cases.txt
echo
cat table.txt
echo
echo "t_hostile: $ncases cases x 4 ways; $nfail failures"
[ "$nfail" = 0 ]
