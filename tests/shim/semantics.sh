#!/bin/sh
# semantics.sh - behaviour of the shim beyond single calls (issue 3,
# "Semantics"): invisibility, environment switches, positions across
# processes, multi-process coherence, qemu lock interop, the exec guard,
# refusals with one message, s_maxbytes fallback, threads, backing policy.
# Every check compares with what qemu-img/qemu-io say (no shim) or with a
# raw twin.  Exit 0 = all passed.
set -u
: "${QCS_ROOT:=$(cd "$(dirname "$0")/../.." && pwd)}"
: "${QCS_BUILD:=$QCS_ROOT/build}"
LIB=$QCS_BUILD/libqcowshim.so
unset QCOWSHIM_MATCH QCOWSHIM_DISABLE QCOWSHIM_DEBUG QCOWSHIM_NO_BACKING QCOWSHIM_WAIT_MS LD_PRELOAD
export LC_ALL=C
T=$(mktemp -d "${TMPDIR:-/tmp}/qcs-semantics.XXXXXX") || exit 1
BG=""
trap 'for p in $BG; do kill $p 2>/dev/null; done; cd /; rm -rf "$T"' EXIT
cd "$T" || exit 1
npass=0 nfail=0
pass() { npass=$((npass + 1)); echo "ok   - $*"; }
fail() { nfail=$((nfail + 1)); echo "FAIL - $*"; }
# same DESC EXPECTED ACTUAL
same() {
	if [ "$2" = "$3" ]; then pass "$1"; else
		fail "$1"; echo "#      expected: $(printf '%s' "$2" | head -c 300)"
		echo "#      actual:   $(printf '%s' "$3" | head -c 300)"; fi
}
S() { LD_PRELOAD=$LIB timeout -k 5 60 "$@"; }
CC=${CC:-cc}
for p in errno_keep stale threads bigseek hold rnd spawn_append oldout pingpong; do
	$CC -std=gnu11 -O1 -Wall -Wextra -Werror -o "$T/$p" "$QCS_ROOT/tests/shim/progs/$p.c" -lpthread ||
		{ fail "compile $p"; }
done
mkdisk() { # NAME SIZE: image with data at 0, 1 MiB, 3 MiB; NAME.raw twin
	qemu-img create -q -f qcow2 "$1.qcow2" "$2" &&
	qemu-io -f qcow2 -c 'write -q -P 0x11 0 4096' -c 'write -q -P 0xab 1M 64k' \
		-c 'write -q -P 0x5c 3M 4096' "$1.qcow2" >/dev/null &&
	qemu-img convert -f qcow2 -O raw "$1.qcow2" "$1.raw"
}
mkdisk d 8M || { echo "cannot make images"; exit 1; }
FLAT=$(sha256sum <d.raw)

# ---- invisibility and switches
echo "## invisibility, switches"
printf 'plain file contents\n' >plain.txt
same "errno unchanged on success (image and plain file)" "errno: kept" "$(S ./errno_keep d.qcow2 plain.txt 2>&1)"
same "no output on success (stderr of a shimmed run is empty)" "" "$(S cat d.qcow2 plain.txt 2>&1 >/dev/null)"
same "QCOWSHIM_DISABLE=1 passes everything through (host size)" "$(stat -c %s d.qcow2)" \
	"$(QCOWSHIM_DISABLE=1 S stat -c %s d.qcow2)"
cp d.qcow2 other.img
same "QCOWSHIM_MATCH='*.img' makes other names images" 8388608 "$(QCOWSHIM_MATCH='*.img:*.nope' S stat -c %s other.img)"
same "without QCOWSHIM_MATCH other names are not images" "$(stat -c %s other.img)" "$(S stat -c %s other.img)"
same "qemu-img runs untouched under the shim" "file format: qcow2" "$(S qemu-img info d.qcow2 | grep '^file format')"
$CC -std=gnu11 -O1 -Wall -Wextra -Werror -shared -fPIC -o "$T/libctor.so" "$QCS_ROOT/tests/shim/progs/ctorlib.c" || fail "compile ctorlib"
same "a library constructor running before the shim's reads the image translated" "ctor read 4 ab end 8388608" \
	"$(QCS_CTOR_DISK=d.qcow2 LD_PRELOAD="$T/libctor.so:$LIB" /bin/true)"
same "... and one running after it" "ctor read 4 ab end 8388608" \
	"$(QCS_CTOR_DISK=d.qcow2 LD_PRELOAD="$LIB:$T/libctor.so" /bin/true)"
same "QCOWSHIM_DEBUG=1 logs the image open" 1 "$(QCOWSHIM_DEBUG=1 S cat d.qcow2 2>&1 >/dev/null | grep -c 'd.qcow2: opened read-only')"

# ---- positions shared across dup/fork/exec
echo "## positions"
same "{ head -c 512 >/dev/null; cat; } < image: the position is shared" \
	"$(tail -c +513 d.raw | sha256sum)" "$(S sh -c '{ head -c 512 >/dev/null; cat; } < d.qcow2 | sha256sum')"
same "sha256sum < image (stdin stdio)" "$FLAT" "$(S sh -c 'sha256sum < d.qcow2')"
same "od <&3 after exec 3<" "$(od -An -tx1 -j 1048576 -N 8 d.raw)" \
	"$(S bash -c 'exec 3<d.qcow2; dd bs=1M count=1 of=/dev/null status=none <&3; od -An -tx1 -N 8 <&3')"
cp d.qcow2 w.qcow2; cp d.raw w.raw
script='exec 3<>"$1"; head -c 100 <&3 >/dev/null; printf "HELLO" >&3; echo " world" >>"$1";
	printf abc | dd of="$1" bs=1 seek=5000 conv=notrunc status=none; sfdisk -q "$1" </dev/null >/dev/null 2>&1;
	dd if=/dev/zero bs=512 count=2 status=none >&3; exec 3>&-'
S bash -c "$script" sh w.qcow2; bash -c "$script" sh w.raw
same "shell redirections + builtins + children on one image == raw twin" "$(sha256sum <w.raw)" "$(S sha256sum <w.qcow2)"
same "and the image is clean" "No errors were found on the image." "$(qemu-img check w.qcow2 2>&1 | head -1)"
cp d.qcow2 ap.qcow2; cp d.raw ap.raw; printf 'appended by a child\n' >line.txt
script='exec 3>>"$1"; cat line.txt >&3; dd if=line.txt status=none >&3; printf "by the shell" >&3; exec 3>&-'
S bash -c "$script" sh ap.qcow2; bash -c "$script" sh ap.raw
same "O_APPEND opened by the shell holds in exec'd children (QCOWSHIM_FDS)" "$(sha256sum <ap.raw)" "$(S sha256sum <ap.qcow2)"
qemu-img create -q -f qcow2 oo.qcow2 1M
S ./oldout oo.qcow2
same "stdout reopened on an image: pending and new output land in the flat disk" \
	"pending-before-swap|via-new-stdout" "$(S head -c 34 oo.qcow2)"
same "... and a FILE kept from before never writes raw bytes" "No errors were found on the image." \
	"$(qemu-img check oo.qcow2 2>&1 | head -1)"
cp d.qcow2 sp.qcow2; cp d.raw sp.raw
same "spawn_append runs on both" "spawned spawned" "$(S ./spawn_append sp.qcow2) $(./spawn_append sp.raw)"
same "O_APPEND reaches children of posix_spawn, system and popen" "$(sha256sum <sp.raw)" "$(S sha256sum <sp.qcow2)"

# ---- coherence between processes
echo "## coherence"
cp d.qcow2 c.qcow2
mkfifo go
(S ./stale c.qcow2 <go >stale.out 2>&1 &)
exec 9<>go
# Polls below give up after 60 s: only a hang fails them, never a slow machine.
waitfor() { _i=0; while [ $_i -lt 1200 ] && ! grep -q "$1" "$2" 2>/dev/null; do sleep 0.05; _i=$((_i + 1)); done; }
waitfor before stale.out
printf '\042' | S dd of=c.qcow2 bs=1 seek=1048576 conv=notrunc status=none
printf '\043' | S dd of=c.qcow2 bs=1 seek=3145728 conv=notrunc status=none
echo go >&9; exec 9>&-
waitfor after stale.out
same "a reader sees what another process wrote meanwhile" "before ab
after 22 23" "$(cat stale.out)"
cp d.qcow2 l.qcow2
LD_PRELOAD=$LIB ./hold l.qcow2 3600 >hold.out & HOLD=$!; BG="$BG $HOLD"
waitfor holding hold.out
out=$(QCOWSHIM_WAIT_MS=300 S dd if=/dev/zero of=l.qcow2 bs=512 count=1 conv=notrunc status=none 2>&1); rc=$?
same "a second writer is refused while one writes (EBUSY after QCOWSHIM_WAIT_MS)" "1 1" \
	"$([ $rc -ne 0 ] && echo 1) $(printf '%s\n' "$out" | grep -c 'qcowshim: l.qcow2: image is being written by another qcowshim process')"
same "... with one message line" 1 "$(printf '%s\n' "$out" | grep -c '^qcowshim:')"
same "qemu-img info refuses an image the shim writes" 1 "$(qemu-img info l.qcow2 2>&1 | grep -c 'Failed to get shared "write" lock')"
ino=$(stat -c %i l.qcow2)
same "/proc/locks: the writer holds qemu's bytes 100,101,103,201,203" "100 101 103 201 203" \
	"$(grep ":$ino " /proc/locks | grep OFDLCK | awk '$(NF-1) < 1000 {for (b = $(NF-1); b <= $NF; b++) print b}' | sort -n | tr '\n' ' ' | sed 's/ $//')"
kill $HOLD; wait $HOLD
same "after the writer exits another writer proceeds" 0 \
	"$(S dd if=/dev/zero of=l.qcow2 bs=512 count=1 conv=notrunc status=none; echo $?)"
same "idle holder blocks nobody: shell holds fd 3 open while children write" "0 0" \
	"$(S bash -c 'exec 3<>l.qcow2; read -r -N 4 x <&3; dd if=/dev/zero of=l.qcow2 bs=512 count=1 seek=9 conv=notrunc status=none; a=$?; printf y >&3; dd if=/dev/zero of=l.qcow2 bs=512 count=1 seek=9 conv=notrunc status=none; echo $a $?')"
qemu-io -f qcow2 -c 'sleep 3600000' l.qcow2 >/dev/null 2>&1 & QIO=$!; BG="$BG $QIO"
held_byte() { awk -v i=":$ino\$" -v b="$1" '$6 ~ i && $7 <= b+0 && $8 >= b+0 {f=1} END {exit !f}' /proc/locks; }
qemu_holds() { _i=0; while [ $_i -lt 1200 ] && ! held_byte "$1"; do sleep 0.05; _i=$((_i + 1)); done; }
qemu_holds 201
out=$(S dd if=l.qcow2 of=/dev/null count=1 status=none 2>&1); rc=$?
same "the shim refuses an image qemu-io holds for writing, with one line" "1 1" \
	"$([ $rc -ne 0 ] && echo 1) $(printf '%s\n' "$out" | grep -c '^qcowshim: l.qcow2: .*qemu')"
kill $QIO; wait $QIO 2>/dev/null
qemu-img convert -O raw l.qcow2 l.raw
qemu-io -r -f qcow2 -c 'sleep 3600000' l.qcow2 >/dev/null 2>&1 & QIO=$!; BG="$BG $QIO"
qemu_holds 201
same "reading is fine while qemu-io reads" "$(dd if=l.raw bs=512 count=1 status=none | sha256sum)" \
	"$(S dd if=l.qcow2 bs=512 count=1 status=none | sha256sum)"
out=$(S dd if=/dev/zero of=l.qcow2 bs=512 count=1 conv=notrunc status=none 2>&1); rc=$?
same "writing is refused while qemu-io has it open (qemu does not share write)" "1 1" \
	"$([ $rc -ne 0 ] && echo 1) $(printf '%s\n' "$out" | grep -c '^qcowshim: l.qcow2: .*qemu')"
kill $QIO; wait $QIO 2>/dev/null
cp d.qcow2 pp.qcow2; cp d.raw pp.raw
dd if=pp.raw bs=1M count=4 status=none | dd of=pp.raw bs=1M seek=4 conv=notrunc status=none
out=$(S sh -c 'dd if=pp.qcow2 bs=1M count=4 status=none | dd of=pp.qcow2 bs=1M seek=4 conv=notrunc status=none' 2>&1)
same "a pipeline reading and writing one image (concurrent reader and writer)" "" "$out"
same "... gives the raw twin's result" "Images are identical." "$(qemu-img compare -f qcow2 -F raw pp.qcow2 pp.raw 2>&1)"
# Two live processes: every write the writer has answered is what the
# reader reads next (fresh clusters, overwrites, an L2 table of its own).
# Normally they meet on a change page in /dev/shm (the reader then needs
# no system call per read); a page it must not trust (here: one another
# program made world-writable) sends both back to asking the kernel.  The
# reader's periodic re-check is off (QCOWSHIM_RECHECK_MS), so only the
# page, or the fallback, can tell it.
page_of() { ls /dev/shm | grep "^qcowshim\.[0-9a-f]*\.$(printf %x "$(stat -c %i "$1")")\$"; }
pingpong() { # IMG: leaves in pp.ok how many of 8 written bytes the reader saw
	rm -f wi ri wo.out ro.out; mkfifo wi ri
	(S ./pingpong "$1" <wi >wo.out 2>&1 &)
	(QCOWSHIM_RECHECK_MS=600000 S ./pingpong "$1" <ri >ro.out 2>&1 &)
	exec 7>wi 8>ri
	echo "r 0" >&8
	waitfor '^[0-9]' ro.out
	ok=0 i=0
	for off in 1048576 5000000 1048577 2000000000 6291456 1048576 7340031 1; do
		i=$((i + 1)) v=$((i * 29 % 251 + 1))
		echo "w $off $v" >&7
		_j=0; while [ "$(grep -c . wo.out)" -lt $i ] && [ $_j -lt 3000 ]; do sleep 0.02; _j=$((_j + 1)); done
		echo "r $off" >&8
		_j=0; while [ "$(grep -c . ro.out)" -lt $((i + 1)) ] && [ $_j -lt 3000 ]; do sleep 0.02; _j=$((_j + 1)); done
		[ "$(tail -n 1 ro.out)" = "$v" ] && ok=$((ok + 1)) || echo "# offset $off: wrote $v, read $(tail -n 1 ro.out)"
	done
	echo "$ok" >pp.ok
}
pingpong_end() { # IMG [kept]: until both have exited: they hold locks on IMG, then
	# leave its page (the last one out unlinks it, unless it is not theirs: kept)
	exec 7>&- 8>&-
	_ino=$(stat -c %i "$1")
	_j=0; while grep -q ":$_ino " /proc/locks && [ $_j -lt 1200 ]; do sleep 0.05; _j=$((_j + 1)); done
	[ $# -gt 1 ] && return
	_j=0; while [ -n "$(page_of "$1")" ] && [ $_j -lt 1200 ]; do sleep 0.05; _j=$((_j + 1)); done
}
cp d.qcow2 lv.qcow2
pingpong lv.qcow2
same "a live reader reads each byte a live writer just wrote (8 of 8)" 8 "$(cat pp.ok)"
same "... through a change page in /dev/shm, private to the user" "-rw-------" \
	"$(stat -c %A "/dev/shm/$(page_of lv.qcow2)" 2>&1)"
same "... while the reader holds qemu's 'no shared write' byte, so qemu-io cannot write" 1 \
	"$(qemu-io -f qcow2 -c 'write 0 512' lv.qcow2 2>&1 | grep -c 'Failed to get .*lock')"
pingpong_end lv.qcow2
same "the change page is gone once both have exited" "" "$(page_of lv.qcow2)"
same "... and the image is clean" "No errors were found on the image." "$(qemu-img check lv.qcow2 2>&1 | head -1)"
cp d.qcow2 lw.qcow2
pg=/dev/shm/qcowshim.$(printf %x "$(stat -c %d lw.qcow2)").$(printf %x "$(stat -c %i lw.qcow2)")
: >"$pg"; chmod 666 "$pg"
pingpong lw.qcow2
same "with an untrusted page (mode 666) both fall back and still agree (8 of 8)" 8 "$(cat pp.ok)"
pingpong_end lw.qcow2 kept
same "... and leave that page alone" "-rw-rw-rw- 0" "$(stat -c '%A %s' "$pg" 2>&1)"
rm -f "$pg"
same "threads: concurrent pwrite/pread on one fd" "threads ok" "$(S ./threads l.qcow2)"
same "and the image is clean" "No errors were found on the image." "$(qemu-img check l.qcow2 2>&1 | head -1)"
# reuse_close.so (preloaded after the shim, so the shim's "real" close) has
# another thread open the image in the middle of a close, getting its number.
$CC -std=gnu11 -O1 -Wall -Wextra -Werror -shared -fPIC -o "$T/reuse_close.so" \
	"$QCS_ROOT/tests/shim/progs/reuse_close.c" -lpthread || fail "compile reuse_close"
$CC -std=gnu11 -O1 -Wall -Wextra -Werror -o "$T/closereuse" "$QCS_ROOT/tests/shim/progs/closereuse.c" -ldl ||
	fail "compile closereuse"
qemu-img create -q -f qcow2 cr.qcow2 8M
same "threads: an open getting the number of an fd being closed stays an image fd" "fd reused: size 8388608" \
	"$(LD_PRELOAD="$LIB $T/reuse_close.so" timeout -k 5 60 ./closereuse cr.qcow2 </dev/null 2>&1)"
same "... and its write is in the disk" "read 4096/4096 bytes at offset 1048576" \
	"$(qemu-io -f qcow2 -c 'read -P 0x7e 1M 4k' cr.qcow2 2>&1 | head -1)"
qemu-img create -q -f qcow2 cr2.qcow2 8M
same "threads: a private descriptor taking the number of an image fd being closed does not keep that image open" \
	released "$(LD_PRELOAD="$LIB $T/reuse_close.so" timeout -k 5 60 ./closereuse cr.qcow2 cr2.qcow2 </dev/null 2>&1)"
same "... and the write made through that fd is in the disk" "read 4096/4096 bytes at offset 0" \
	"$(qemu-io -f qcow2 -c 'read -P 0x5a 0 4k' cr.qcow2 2>&1 | head -1)"
# the raw twin of both closereuse runs: 4 KiB of 0x5a at 0, 4 KiB of 0x7e at 1 MiB
head -c 8M /dev/zero >cr.raw
printf '\132%.0s' $(seq 4096) | dd of=cr.raw conv=notrunc status=none
printf '\176%.0s' $(seq 4096) | dd of=cr.raw bs=4096 seek=256 conv=notrunc status=none
same "... and both images pass qemu-img check" "0 0" \
	"$(qemu-img check -q cr.qcow2 >/dev/null 2>&1; echo $?) $(qemu-img check -q cr2.qcow2 >/dev/null 2>&1; echo $?)"
same "... and the disk equals its raw twin" "Images are identical." "$(qemu-img compare -f qcow2 -F raw cr.qcow2 cr.raw 2>&1)"

# ---- the exec guard
echo "## exec guard"
printf '#include <unistd.h>\nint main(void){char b[4];return read(0,b,4)==4&&b[0]==0x11?0:3;}\n' >rd.c
if command -v musl-gcc >/dev/null 2>&1; then MCC=musl-gcc; else MCC="$CC"; fi
$MCC -static -o rd_static rd.c 2>/dev/null || $CC -static -o rd_static rd.c
$CC -o rd_dyn rd.c
out=$(S bash -c './rd_static < d.qcow2; echo "rc=$?"' 2>&1)
same "a static program inheriting an image fd is refused" "1 1" \
	"$(printf '%s\n' "$out" | grep -c 'rc=126') $(printf '%s\n' "$out" | grep -c 'qcowshim: refusing to run ./rd_static: it is statically linked')"
cp rd_dyn rd_suid && chown nobody rd_suid 2>/dev/null && chmod u+s rd_suid
out=$(S bash -c './rd_suid < d.qcow2; echo "rc=$?"' 2>&1)
same "a setuid program (owned by another user) inheriting an image fd is refused" "1 1" \
	"$(printf '%s\n' "$out" | grep -c 'rc=126') $(printf '%s\n' "$out" | grep -c 'qcowshim: refusing to run ./rd_suid: it is setuid')"
same "the same program without image fds runs" 0 "$(S bash -c './rd_static < d.raw; echo $?')"
same "LD_PRELOAD dropped by env: re-added for a dynamic child with an image fd" 0 \
	"$(S bash -c 'env -u LD_PRELOAD ./rd_dyn < d.qcow2; echo $?')"

# ---- refusals with one line
echo "## refusals"
printf 'QFI\373\000\000\000\003garbage garbage garbage' >bad.qcow2
out=$(S cat bad.qcow2 2>&1 >/dev/null); rc=$?
same "a malformed image: the call fails and one line names it" "1 1" \
	"$([ $rc -ne 0 ] && echo 1) $(printf '%s\n' "$out" | grep -c '^qcowshim: bad.qcow2: ')"
if sh "$QCS_ROOT/tests/tools/peer_retry.sh" qemu-img create -q -f qcow2 --object secret,id=s0,data=pw \
	-o encrypt.format=luks,encrypt.key-secret=s0 enc.qcow2 1M 2>/dev/null; then
	out=$(S cat enc.qcow2 2>&1 >/dev/null); rc=$?
	same "an encrypted image is refused with its reason" "1 1" \
		"$([ $rc -ne 0 ] && echo 1) $(printf '%s\n' "$out" | grep -c '^qcowshim: enc.qcow2: .*encrypt')"
else
	fail "qemu-img could not make an encrypted image"
fi
qemu-img create -q -f qcow2 cor.qcow2 1M && printf '\002' | dd of=cor.qcow2 bs=1 seek=79 conv=notrunc status=none
out=$(S dd if=/dev/zero of=cor.qcow2 bs=512 count=1 conv=notrunc status=none 2>&1); rc=$?
same "an image marked corrupt is refused for writing at open, with one line" "1 1" \
	"$([ $rc -ne 0 ] && echo 1) $(printf '%s\n' "$out" | grep -c '^qcowshim: cor.qcow2: image is marked corrupt')"
same "... and reads fine" 0 "$(S dd if=cor.qcow2 of=/dev/null count=1 status=none 2>&1; echo $?)"
qemu-img create -q -f qcow2 -b d.qcow2 -F qcow2 ov.qcow2
same "an overlay reads through its backing file" "$FLAT" "$(S sha256sum <ov.qcow2)"
out=$(QCOWSHIM_NO_BACKING=1 S cat ov.qcow2 2>&1 >/dev/null); rc=$?
same "QCOWSHIM_NO_BACKING=1 refuses it with one line" "1 1" \
	"$([ $rc -ne 0 ] && echo 1) $(printf '%s\n' "$out" | grep -c '^qcowshim: ov.qcow2: ')"
qemu-img create -q -f qcow2 -b /dev/zero -F raw dev.qcow2 1M 2>/dev/null
out=$(S cat dev.qcow2 2>&1 >/dev/null); rc=$?
same "a backing file under /dev is refused" "1 1" \
	"$([ $rc -ne 0 ] && echo 1) $(printf '%s\n' "$out" | grep -c '^qcowshim: dev.qcow2: .*/dev/zero')"
same "mmap refused, cmp falls back to read" "" "$(S cmp d.qcow2 d.raw 2>&1)"

# ---- copies, creation, stdin
echo "## copies"
same "O_DIRECT is accepted and emulated (dd iflag=direct,oflag=direct)" "$(dd if=d.raw bs=4k skip=256 count=1 status=none | sha256sum)" \
	"$(S dd if=d.qcow2 iflag=direct bs=4k skip=256 count=1 status=none | sha256sum)"
cp d.qcow2 od.qcow2; cp d.raw od.raw
printf 'direct' | dd of=od.raw bs=1 seek=7 conv=notrunc status=none
printf 'direct' | S dd of=od.qcow2 oflag=direct bs=1 seek=7 conv=notrunc status=none
same "... unaligned O_DIRECT writes land as on a raw file" "Images are identical." "$(qemu-img compare -f qcow2 -F raw od.qcow2 od.raw 2>&1)"
S cp --sparse=always d.qcow2 sparse.out
same "cp --sparse=always flattens the image" "$FLAT" "$(sha256sum <sparse.out)"
same "... sparsely (allocated < virtual)" 1 "$([ "$(du -k sparse.out | cut -f1)" -lt 8192 ] && echo 1)"
S cat d.qcow2 >cat.out
same "cat (copy_file_range) copies the flat disk" "$FLAT" "$(sha256sum <cat.out)"
S cp d.raw made.qcow2
same "cp raw -> new.qcow2 creates an image with the content" "Images are identical." \
	"$(qemu-img compare -f qcow2 -F raw made.qcow2 d.raw 2>&1)"
S dd if=d.raw of=dd.qcow2 bs=64k status=none
same "dd of=new.qcow2 creates an image" "Images are identical." "$(qemu-img compare -f qcow2 -F raw dd.qcow2 d.raw 2>&1)"
cp d.qcow2 t.qcow2; S dd if=/dev/zero of=t.qcow2 bs=512 count=1 seek=2 status=none
same "dd without conv=notrunc truncates the virtual disk at its end" 1536 "$(S stat -c %s t.qcow2)"
same "... and keeps valid QCOW2" "No errors were found on the image." "$(qemu-img check t.qcow2 2>&1 | head -1)"

# ---- a random workload on every kind of image layout, against raw twins
echo "## random workloads"
for opts in cluster_size=65536 compat=0.10,cluster_size=4096 cluster_size=512,refcount_bits=1 \
	extended_l2=on,cluster_size=65536 cluster_size=2097152,refcount_bits=64 lazy_refcounts=on; do
	for seed in 1 2; do
		rm -f r.qcow2 r.raw
		qemu-img create -q -f qcow2 -o "$opts" r.qcow2 4M && truncate -s 4M r.raw
		a=$(S ./rnd r.qcow2 $seed 2>&1); b=$(./rnd r.raw $seed 2>&1)
		same "random workload ($opts, seed $seed): same size" "$b" "$a"
		same "random workload ($opts, seed $seed): disks equal, image clean" "Images are identical. No errors were found on the image." \
			"$(qemu-img compare -f qcow2 -F raw r.qcow2 r.raw 2>&1 | head -1) $(qemu-img check r.qcow2 2>&1 | head -1)"
	done
done

# ---- beyond the host filesystem's maximum file size
echo "## s_maxbytes"
qemu-img create -q -f qcow2 big.qcow2 20T
fs=$(stat -f -c %T . 2>/dev/null)
out=$(S ./bigseek big.qcow2 19791209299968)
same "positions beyond s_maxbytes (${fs:-?} here) work on a 20 TiB image" \
	"end 21990232555520 set 19791209299968 write 8 cur 19791209299976 back 19791209299968 read 8 BIGSEEK! dup 19791209299976" "$out"
same "... and the byte lands there" 1 "$(qemu-io -f qcow2 -c 'read -P 0x42 19791209299968 1' big.qcow2 | grep -c 'read 1/1')"

echo "semantics.sh: $npass passed, $nfail failed"
[ $nfail = 0 ]
