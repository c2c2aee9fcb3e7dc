#!/bin/sh
# A real full filesystem under tools writing through the shim: the file size
# limit (RLIMIT_FSIZE, `ulimit -f`, with SIGXFSZ ignored so the write fails
# with EFBIG instead of killing the tool) and, where the test may mount one,
# a small tmpfs (ENOSPC).  The tool must see a write error; the image must
# stay consistent (qemu-img check exit 0 or 3: leaks allowed); data fsynced
# before must be intact; and the image must keep working once there is room.
. "$(dirname "$0")/lib_tools.sh"
require_shim
require mkfs.ext4 bash cmp

# consistent IMG WHAT: qemu-img check exits 0 or 3 (leaked clusters only).
consistent() {
	qemu-img check "$1" >"$T/check.log" 2>&1
	_rc=$?
	case $_rc in
	0) pass "$2: qemu-img check clean" ;;
	3) pass "$2: qemu-img check reports only leaked clusters (exit 3)" ;;
	*) fail "$2: qemu-img check exit $_rc"; show_log "$T/check.log" 8 ;;
	esac
}

# intact IMG FILE OFFSET_MIB WHAT: the image holds FILE at OFFSET_MIB.
intact() {
	flatten "$1" "$T/flat.raw" || return
	_n=$(stat -c %s "$2")
	if cmp -s -n "$_n" "$2" "$T/flat.raw" -i "0:$(($3 * 1048576))"; then
		pass "$4: fsynced data intact"
	else
		fail "$4: fsynced data damaged"
	fi
}

# limited KIB CMD...: CMD under the shim with RLIMIT_FSIZE = KIB KiB, SIGXFSZ ignored.
limited() {
	_kb=$1; shift
	timeout -k 5 "$QCS_TIMEOUT" bash -c 'trap "" XFSZ; ulimit -f "$1"; shift; exec "$@"' \
		limited "$_kb" "$QCOWSHIM" "$@"
}

head -c 4194304 /dev/urandom >first.bin
head -c 16777216 /dev/urandom >more.bin

section "RLIMIT_FSIZE: dd through the shim runs into the file size limit"
qemu-img create -q -f qcow2 fs.qcow2 64M
run "dd writes 4 MiB and fsyncs" S dd if=first.bin of=fs.qcow2 bs=1M conv=notrunc,fsync status=none
lim=$(($(stat -c %s fs.qcow2) / 1024 + 2048))
limited "$lim" dd if=more.bin of=fs.qcow2 bs=64k seek=64 conv=notrunc,fsync status=none >"$T/dd.log" 2>&1
rc=$?
[ $rc -ne 0 ] && pass "dd fails at the limit (exit $rc): $(head -n 1 "$T/dd.log")" ||
	fail "dd wrote 16 MiB with 2 MiB of room left"
grep -q 'File too large' "$T/dd.log" && pass "the error is EFBIG (File too large)" ||
	{ fail "dd did not report EFBIG"; show_log "$T/dd.log" 4; }
[ "$(stat -c %s fs.qcow2)" -le $((lim * 1024)) ] && pass "the host file stayed within the limit" ||
	fail "the host file grew past the limit"
consistent fs.qcow2 "after EFBIG"
intact fs.qcow2 first.bin 0 "after EFBIG"
run "once the limit is gone, dd writes and fsyncs again" \
	S dd if=first.bin of=fs.qcow2 bs=1M seek=40 conv=notrunc,fsync status=none
consistent fs.qcow2 "after the write without a limit"
intact fs.qcow2 first.bin 40 "after the write without a limit"
intact fs.qcow2 first.bin 0 "after the write without a limit (the first data)"

section "RLIMIT_FSIZE: mkfs.ext4 through the shim runs into the file size limit"
qemu-img create -q -f qcow2 mk.qcow2 512M
run "dd writes 4 MiB at 400 MiB (past the file system) and fsyncs" \
	S dd if=first.bin of=mk.qcow2 bs=1M seek=400 conv=notrunc,fsync status=none
lim=$(($(stat -c %s mk.qcow2) / 1024 + 64))
limited "$lim" mkfs.ext4 -q -F -E nodiscard,lazy_itable_init=0 mk.qcow2 256M >"$T/mk.log" 2>&1
rc=$?
[ $rc -ne 0 ] && pass "mkfs.ext4 fails at the limit (exit $rc): $(grep -v '^$' "$T/mk.log" | head -n 1)" ||
	fail "mkfs.ext4 succeeded with 64 KiB of room left"
consistent mk.qcow2 "mkfs.ext4 after EFBIG"
intact mk.qcow2 first.bin 400 "mkfs.ext4 after EFBIG"
run "mkfs.ext4 succeeds once the limit is gone" S mkfs.ext4 -q -F -E nodiscard mk.qcow2 256M
consistent mk.qcow2 "after the mkfs.ext4 without a limit"
flatten mk.qcow2 "$T/mk.raw" && run "e2fsck finds the file system clean" e2fsck -fn "$T/mk.raw"
intact mk.qcow2 first.bin 400 "after the mkfs.ext4 without a limit"

section "the host's fsync fails (EIO): fsync, and a write or the last close, report it"
# failsync.so, preloaded after the shim, is the shim's "real" fsync/fdatasync.
cc -shared -fPIC -o failsync.so "$QCS_ROOT/tests/stress/failsync.c" -ldl || fail "cannot build failsync.so"
qemu-img create -q -f qcow2 io.qcow2 64M
run "dd writes 4 MiB and fsyncs" S dd if=first.bin of=io.qcow2 bs=1M conv=notrunc,fsync status=none
LD_PRELOAD="$QCOWSHIM_LIB $T/failsync.so" dd if=more.bin of=io.qcow2 bs=64k seek=128 conv=notrunc,fsync status=none >"$T/io.log" 2>&1
rc=$?
[ $rc -ne 0 ] && grep -q 'fsync.*Input/output error' "$T/io.log" && pass "dd conv=fsync: fsync fails with EIO (exit $rc)" ||
	{ fail "dd conv=fsync did not see the fsync error (exit $rc)"; show_log "$T/io.log" 4; }
LD_PRELOAD="$QCOWSHIM_LIB $T/failsync.so" dd if=more.bin of=io.qcow2 bs=64k seek=512 conv=notrunc status=none >"$T/io.log" 2>&1
rc=$?
# Without fsync nothing waits for the disk at close any more (a raw file's
# close does not either); but the refcounts of new clusters are made durable
# ahead (RWF_DSYNC), and that failure reaches the program: the write fails,
# and the close, which then syncs again, fails too.
[ $rc -ne 0 ] && grep -q 'error writing.*Input/output error' "$T/io.log" && pass "dd without fsync: the write fails with EIO (exit $rc)" ||
	{ fail "dd without fsync: the failed durable write was not reported (exit $rc)"; show_log "$T/io.log" 4; }
consistent io.qcow2 "after fsync errors"
intact io.qcow2 first.bin 0 "after fsync errors"

section "a full tmpfs: ENOSPC"
mkdir mnt
if ! mount -t tmpfs -o size=24m qcstmp "$T/mnt" 2>"$T/mount.log"; then
	echo "#"
	echo "# SKIPPED: cannot mount a tmpfs here ($(head -n 1 "$T/mount.log")); the ENOSPC part"
	echo "# of this test needs root outside a restricted container.  RLIMIT_FSIZE above ran."
	echo "#"
else
	trap 'cd /; umount "$T/mnt" 2>/dev/null; rm -rf "$T"' EXIT
	qemu-img create -q -f qcow2 mnt/t.qcow2 64M
	run "dd writes 4 MiB and fsyncs on the tmpfs" S dd if=first.bin of=mnt/t.qcow2 bs=1M conv=notrunc,fsync status=none
	# fill the rest but about 1 MiB
	free=$(df -k --output=avail "$T/mnt" | tail -n 1)
	dd if=/dev/zero of=mnt/filler bs=1k count=$((free - 1024)) status=none 2>/dev/null
	S dd if=more.bin of=mnt/t.qcow2 bs=64k seek=64 conv=notrunc,fsync status=none >"$T/dd.log" 2>&1
	rc=$?
	[ $rc -ne 0 ] && pass "dd fails on the full tmpfs (exit $rc): $(head -n 1 "$T/dd.log")" ||
		fail "dd wrote 16 MiB on a tmpfs with 1 MiB free"
	grep -q 'No space left' "$T/dd.log" && pass "the error is ENOSPC" ||
		{ fail "dd did not report ENOSPC"; show_log "$T/dd.log" 4; }
	consistent mnt/t.qcow2 "after ENOSPC"
	intact mnt/t.qcow2 first.bin 0 "after ENOSPC"
	rm -f mnt/filler
	run "with room again, dd writes and fsyncs" S dd if=more.bin of=mnt/t.qcow2 bs=64k seek=64 conv=notrunc,fsync status=none
	consistent mnt/t.qcow2 "after the write with room"
	intact mnt/t.qcow2 more.bin 4 "after the write with room"
	intact mnt/t.qcow2 first.bin 0 "after the write with room (the first data)"
	umount "$T/mnt"
fi

finish
