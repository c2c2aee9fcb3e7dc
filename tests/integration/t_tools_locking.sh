#!/bin/sh
# Locking interop with qemu's image locks (OFD locks on bytes 100+i/200+i):
# while qemu-io holds an image for writing, the shim refuses to write (and
# says why, naming the image); while the shim writes, qemu-img info without
# -U fails and with -U works; a shim reader does not block qemu readers.
# The refused write must leave the image untouched.
. "$(dirname "$0")/lib_tools.sh"
require_shim

head -c 4096 /dev/urandom >patch.bin
new_image qemu-pat lk 64M || finish
IMG=$T/lk.qcow2 TWIN=$T/lk.raw

# wait_locked IMG [BYTE]: until some process holds an OFD lock covering
# BYTE (default 101, qemu's "uses write" permission byte) on IMG.  Reads /proc/locks rather than
# probing with qemu-img, whose own short-lived locks would race with the
# holder taking its lock.  Gives up after QCS_TIMEOUT seconds: only a hang.
wait_locked() {
	_ino=$(stat -c %i "$1") _b=${2:-101}
	_i=0
	while ! awk -v ino="$_ino" -v b="$_b" '$2 == "OFDLCK" && $6 ~ (":" ino "$") && $7 <= b && ($8 == "EOF" || $8 >= b) { f = 1 } END { exit !f }' /proc/locks; do
		_i=$((_i + 1))
		[ $_i -gt $((QCS_TIMEOUT * 10)) ] && return 1
		sleep 0.1
	done
	return 0
}

# Every holder below lives until this script lets it go (not for a number
# of seconds), so what is checked while it holds does not depend on how
# fast the machine is: qemu-io without -c reads commands from its stdin, a
# fifo this shell keeps open on fd 8, until end of file; a shim dd gets its
# input from a fifo on fd 9.  Background jobs close fds 8 and 9 first
# (exec in a subshell: a redirection on a function call would only save them
# aside), so no other process keeps a fifo open.
mkfifo "$T/q.in" "$T/w.in"

section "qemu-io holds the image read-write"
qemu-io -f qcow2 "$IMG" <"$T/q.in" >/dev/null 2>&1 8>&- 9>&- &
qpid=$!
exec 8>"$T/q.in"
if wait_locked "$IMG"; then
	pass "qemu-io holds the image (write lock byte 101 in /proc/locks)"
	S dd if=patch.bin of="$IMG" bs=4096 seek=10 conv=notrunc status=none >"$T/w.log" 2>&1
	rc=$?
	[ "$rc" -ne 0 ] && pass "shim write refused while qemu-io writes (dd exit $rc)" ||
		fail "shim write was allowed while qemu-io holds the image"
	grep -q 'lk.qcow2' "$T/w.log" && pass "the refusal names the image: $(grep 'lk.qcow2' "$T/w.log" | head -n 1)" ||
		{ fail "the refusal does not name the image"; show_log "$T/w.log" 3; }
	grep -q 'locked for writing by another program' "$T/w.log" && pass "the refusal says why (locked by another program)" ||
		{ fail "the refusal does not say the image is locked"; show_log "$T/w.log" 3; }
	grep -q "failed to open .*Device or resource busy" "$T/w.log" && pass "the write open itself fails with EBUSY" ||
		{ fail "the write open was not refused with EBUSY"; show_log "$T/w.log" 3; }
	S sha256sum "$IMG" >"$T/r.log" 2>&1
	rc=$?
	[ "$rc" -ne 0 ] && pass "shim read refused while qemu-io writes (no consistent read; exit $rc)" ||
		fail "shim read was allowed while qemu-io writes (qemu-img info without -U is refused here)"
else
	fail "qemu-io did not take its lock (test environment)"
fi
exec 8>&-
wait "$qpid"
verify_img

section "qemu-io holds the image read-only (-r)"
qemu-io -r -f qcow2 "$IMG" <"$T/q.in" >/dev/null 2>&1 8>&- 9>&- &
qpid=$!
exec 8>"$T/q.in"
wait_locked "$IMG" 201 && pass "qemu-io -r holds the image (byte 201: does not share write)" ||
	fail "qemu-io -r did not take its lock (test environment)"
S sha256sum "$IMG" >"$T/r.log" 2>&1
rc=$?
same "shim read works beside a qemu reader" 0 "$rc"
S dd if=patch.bin of="$IMG" bs=4096 seek=10 conv=notrunc status=none >"$T/w.log" 2>&1
rc=$?
[ "$rc" -ne 0 ] && pass "shim write refused beside a qemu reader (it does not share write; exit $rc)" ||
	fail "shim write was allowed beside a qemu reader"
exec 8>&-
wait "$qpid"
verify_img

section "the shim writes: qemu must see the lock"
# dd writes one byte, then blocks on the fifo with the image open.
(exec 8>&- 9>&-; S dd of="$IMG" bs=1 seek=1000 conv=notrunc status=none <"$T/w.in" 2>"$T/dd.err") &
dpid=$!
exec 9>"$T/w.in"
printf X >&9
(printf X; printf Y) | dd of="$TWIN" bs=1 seek=1000 conv=notrunc status=none
if wait_locked "$IMG"; then
	pass "the shim holds qemu's write lock (byte 101) while it writes"
else
	fail "no qemu write lock (byte 101) appeared in /proc/locks within $QCS_TIMEOUT s while the shim writes"
fi
qemu-img info "$IMG" >"$T/i.log" 2>&1
rc=$?
[ "$rc" -ne 0 ] && pass "qemu-img info without -U fails while the shim writes" ||
	fail "qemu-img info without -U succeeded while the shim writes"
grep -q 'get .*lock' "$T/i.log" && pass "qemu-img reports a lock conflict: $(grep 'get .*lock' "$T/i.log" | head -n 1)" ||
	{ fail "qemu-img info: no lock message"; show_log "$T/i.log" 3; }
run "qemu-img info -U works while the shim writes" qemu-img info -U "$IMG"
qemu-io -f qcow2 -c 'write -P 0x77 0 4k' "$IMG" >"$T/q.log" 2>&1
rc=$?
[ "$rc" -ne 0 ] && pass "qemu-io write refused while the shim writes" ||
	fail "qemu-io wrote while the shim writes (the image may now be corrupt)"
printf Y >&9
exec 9>&-
wait "$dpid"
same "the shim's dd exits 0" 0 "$?"
run "qemu-img info works once the shim is done" qemu-img info "$IMG"
verify_img

section "the shim reads: qemu readers are not blocked"
# tail -f keeps the image open in a process that has read from it, until
# the process it watches (--pid) ends: a cat reading the fifo on fd 8,
# which ends when this script closes it (or exits).
rm -f "$T/reading"
cat <"$T/q.in" >/dev/null 8>&- 9>&- &
life=$!
exec 8>"$T/q.in"
(exec 8>&- 9>&-; S tail -f --pid="$life" -c 16 "$IMG" >"$T/reading" 2>"$T/rd.err") &
rpid=$!
i=0
while [ ! -s "$T/reading" ] && [ $i -lt $((QCS_TIMEOUT * 10)) ]; do sleep 0.1; i=$((i + 1)); done
[ -s "$T/reading" ] && pass "tail -f under the shim has read the image and keeps it open" || fail "tail -f under the shim did not read the image"
run "qemu-img info (read-only) works while the shim reads" qemu-img info "$IMG"
run "qemu-img convert works while the shim reads" qemu-img convert -f qcow2 -O raw "$IMG" during.raw
exec 8>&-
wait "$rpid"
same "tail -f ends when the process it follows ends (0), not by an error" 0 "$?"
same "... and says nothing on stderr" "" "$(cat "$T/rd.err")"
same "tail -f printed the image's last 16 bytes" "$(tail -c 16 "$TWIN" | od -An -tx1)" "$(od -An -tx1 <"$T/reading")"

section "an idle holder does not block: a shell keeps exec 3<> open, children write by path"
S sh -c 'exec 3<>"$1"; dd if=patch.bin of="$1" bs=4096 seek=20 conv=notrunc status=none && qemu-img info "$1" >/dev/null 2>&1; r=$?; exec 3>&-; exit $r' sh "$IMG" >"$T/h.log" 2>&1
rc=$?
dd if=patch.bin of="$TWIN" bs=4096 seek=20 conv=notrunc status=none
same "child dd writes and qemu-img info opens while the shell holds fd 3 idle" 0 "$rc"
verify_img

section "two shim processes writing one image take turns (README: QCOWSHIM_WAIT_MS)"
head -c 3145728 /dev/urandom >r1.bin
head -c 3145728 /dev/urandom >r2.bin
dd if=r1.bin of="$TWIN" bs=64k seek=64 conv=notrunc status=none
dd if=r2.bin of="$TWIN" bs=64k seek=256 conv=notrunc status=none
# Slow writers: 48 blocks each, fed through pipes so both are open at once.
# Each may wait for the other as long as the test's own timeout (not the
# default 10 s), so a loaded machine cannot turn the wait into EBUSY.
QCOWSHIM_WAIT_MS=$((QCS_TIMEOUT * 1000))
export QCOWSHIM_WAIT_MS
(for i in $(seq 0 47); do dd if=r1.bin bs=64k skip=$i count=1 status=none; sleep 0.02; done) |
	S dd of="$IMG" bs=64k iflag=fullblock seek=64 conv=notrunc status=none 2>"$T/w1.err" &
p1=$!
(for i in $(seq 0 47); do dd if=r2.bin bs=64k skip=$i count=1 status=none; sleep 0.02; done) |
	S dd of="$IMG" bs=64k iflag=fullblock seek=256 conv=notrunc status=none 2>"$T/w2.err" &
p2=$!
wait "$p1"; r1=$?
wait "$p2"; r2=$?
unset QCOWSHIM_WAIT_MS
same "first concurrent writer exits 0" 0 "$r1"
same "second concurrent writer exits 0" 0 "$r2"
[ -s "$T/w1.err" ] || [ -s "$T/w2.err" ] && note "stderr: $(cat "$T/w1.err" "$T/w2.err" | head -n 2)"
verify_img

# With no waiting allowed, the second writer must fail cleanly (EBUSY and a
# message naming the image) while the first holds the image.
(exec 8>&- 9>&-; S dd of="$IMG" bs=1 seek=2000 conv=notrunc status=none <"$T/w.in" 2>"$T/h.err") &
hp=$!
exec 9>"$T/w.in"
printf X >&9
printf XY | dd of="$TWIN" bs=1 seek=2000 conv=notrunc status=none
wait_locked "$IMG" || fail "the first writer did not take the image"
QCOWSHIM_WAIT_MS=0 S dd if=patch.bin of="$IMG" bs=4096 seek=30 conv=notrunc status=none >"$T/w0.log" 2>&1
rc=$?
[ "$rc" -ne 0 ] && pass "QCOWSHIM_WAIT_MS=0: a second writer is refused (exit $rc)" ||
	{ fail "QCOWSHIM_WAIT_MS=0: a second writer ran while the first held the image"; dd if=patch.bin of="$TWIN" bs=4096 seek=30 conv=notrunc status=none; }
grep -q 'lk.qcow2' "$T/w0.log" && pass "the refusal names the image: $(grep 'lk.qcow2' "$T/w0.log" | head -n 1)" ||
	{ fail "the refusal does not name the image"; show_log "$T/w0.log" 3; }
printf Y >&9
exec 9>&-
wait "$hp"
same "the first writer exits 0" 0 "$?"
verify_img

finish
