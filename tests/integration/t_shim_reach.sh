#!/bin/sh
# t_shim_reach.sh - issue 12: every way of naming or reopening an image
# leads to the image, and what cannot be served is refused, never passed to
# the kernel.
#   ways: tests/shim/progs/reach.c opens the disk every way it knows (path,
#   openat from a dirfd and an O_PATH dirfd, O_PATH + fstat/fstatat/statx,
#   reopen through /proc/self/fd/N, /dev/fd/N, /proc/thread-self/fd/N,
#   /proc/PID/fd/N, /proc/self/task/TID/fd/N, dups of an O_PATH fd, a
#   child's /proc/PPID/fd/N, an O_PATH fd across exec, hard links and a
#   symlink, linkat, O_RDONLY|O_CREAT of new names) on an image under the
#   shim and on its raw twin without it: the outputs are identical, the
#   disks equal, the created files are clean QCOW2 images; also as an
#   unprivileged user, and through /proc/PID/fd/N of a process without the
#   shim.
#   refusals: each call that would hand the kernel the image (loop ioctls,
#   file handles, map_files, execve/fexecve/execveat, swapon, mount, losetup,
#   mount -o loop) fails with its errno and exactly one "qcowshim: PATH:
#   refusing ..." line, and the image file is byte-identical afterwards.
. "$(dirname "$0")/lib_tools.sh"
require_shim
require cc sha256sum od
cc -std=gnu11 -O1 -Wall -Wextra -Werror -o "$T/reach" "$QCS_ROOT/tests/shim/progs/reach.c" ||
	{ fail "compile reach.c"; finish; }
R=$T/reach

mkdisk() { # DIR: DIR/d.qcow2 with data at 0 and 1 MiB, DIR/d.raw its twin
	qemu-img create -q -f qcow2 "$1/d.qcow2" 8M &&
		qemu-io -t unsafe -f qcow2 -c 'write -q -P 0x11 0 4096' -c 'write -q -P 0xab 1M 64k' \
			"$1/d.qcow2" >/dev/null &&
		qemu-img convert -f qcow2 -O raw "$1/d.qcow2" "$1/d.raw"
}

# ways DIR [RUNAS...]: the sweep in DIR, image vs twin
ways() {
	_d=$1; shift
	"$@" "$QCOWSHIM" "$R" ways "$_d/d.qcow2" >"$_d/img.out" 2>"$_d/img.err"
	_rc1=$?
	"$@" "$R" ways "$_d/d.raw" >"$_d/raw.out" 2>&1
	_rc2=$?
	same "sweep ran on the image and on the twin${1:+ (as $*)}" "0 0" "$_rc1 $_rc2"
	same_file "every way of reaching the file: image under the shim = raw twin" \
		"$_d/raw.out" "$_d/img.out"
	same "no output on stderr under the shim" "" "$(cat "$_d/img.err")"
	qcheck "$_d/d.qcow2"
	qcompare "$_d/d.qcow2" "$_d/d.raw"
	for _c in rocreat rocreatexcl; do
		if is_qcow2 "$_d/d-$_c.qcow2"; then
			pass "O_RDONLY|O_CREAT ($_c) made a QCOW2 image"
		else
			fail "O_RDONLY|O_CREAT ($_c) left a non-QCOW2 file"
		fi
		qcheck "$_d/d-$_c.qcow2"
		qcompare "$_d/d-$_c.qcow2" "$_d/d-$_c.raw"
	done
}

section "every way of reaching the file"
mkdir -p "$T/w" && mkdisk "$T/w" || { fail "making the disk"; finish; }
ways "$T/w"

if [ "$(id -u)" = 0 ] && command -v setpriv >/dev/null; then
	section "... as an unprivileged user"
	chmod 755 "$T" "$T/lib" && chmod 644 "$QCOWSHIM_LIB" && chmod 755 "$R"
	mkdir -p "$T/u" && chmod 777 "$T/u"
	NOBODY="setpriv --reuid=65534 --regid=65534 --clear-groups"
	if $NOBODY sh -c "$(command -v qemu-img) create -q -f qcow2 $T/u/d.qcow2 8M" &&
		$NOBODY qemu-io -t unsafe -f qcow2 -c 'write -q -P 0x11 0 4096' -c 'write -q -P 0xab 1M 64k' \
			"$T/u/d.qcow2" >/dev/null &&
		$NOBODY qemu-img convert -f qcow2 -O raw "$T/u/d.qcow2" "$T/u/d.raw"; then
		ways "$T/u" $NOBODY
	else
		fail "making the disk as an unprivileged user"
	fi
fi

section "/proc/PID/fd/N of a process without the shim"
mkdir -p "$T/o" && mkdisk "$T/o" || fail "making the disk"
sleep 600 3<"$T/o/d.qcow2" &
HOLDER=$!
i=0
while [ $i -lt 100 ] && [ ! -e "/proc/$HOLDER/fd/3" ]; do sleep 0.05; i=$((i + 1)); done
same "cat /proc/PID/fd/3 (another process's image fd) reads the virtual disk" \
	"$(sha256sum <"$T/o/d.raw")" "$(S cat "/proc/$HOLDER/fd/3" | sha256sum)"
same "stat -L /proc/PID/fd/3 gives the virtual size" "$(stat -c %s "$T/o/d.raw")" \
	"$(S stat -L -c %s "/proc/$HOLDER/fd/3")"
kill "$HOLDER" 2>/dev/null
wait "$HOLDER" 2>/dev/null

section "refusals: one message, the image untouched"
mkdir -p "$T/r" && mkdisk "$T/r" || fail "making the disk"
IMG=$T/r/d.qcow2
# refused DESC WANT CMD...: CMD exits WANT (0: reach saw the documented
# errno; nonzero: a tool failed), prints exactly one qcowshim line naming the
# image, and the image file is byte-identical afterwards
refused() {
	_desc=$1 _want=$2; shift 2
	_before=$(sha256sum <"$IMG")
	"$@" >"$T/ref.out" 2>"$T/ref.err"
	_rc=$?
	_lines=$(grep -c '^qcowshim: ' "$T/ref.err")
	_ok=$(grep -c "^qcowshim: $IMG: refusing .*; " "$T/ref.err")
	[ "$_want" = nonzero ] && [ "$_rc" -ne 0 ] && _rc=nonzero
	if [ "$_rc" = "$_want" ] && [ "$_lines" = 1 ] && [ "$_ok" = 1 ]; then
		pass "$_desc: refused with one line"
	else
		fail "$_desc: exit $_rc (want $_want), $_lines qcowshim lines"
		show_log "$T/ref.out" 4
		show_log "$T/ref.err" 4
	fi
	same "$_desc: image byte-identical afterwards" "$_before" "$(sha256sum <"$IMG")"
}
mkdir -p "$T/mnt"
for w in LOOP_SET_FD LOOP_CHANGE_FD LOOP_CONFIGURE LOOP_CONFIGURE_O_PATH name_to_handle_at \
	fexecve fexecve_O_PATH execve execveat swapon; do
	refused "$w of an image (on /dev/null: the kernel is never asked)" 0 S "$R" refuse "$w" "$IMG"
done
refused "mount of an image file" 0 S "$R" refuse mount "$IMG" "$T/mnt"
if [ "$(id -u)" = 0 ]; then
	ln -f "$IMG" "$T/r/other-name"
	refused "open_by_handle_at of a handle taken through another name" 0 \
		S "$R" refuse open_by_handle_at "$IMG" "$T/r/other-name"
	rm -f "$T/r/other-name"
	mkfifo "$T/hold"
	"$R" maphold "$IMG" <"$T/hold" >"$T/map.txt" &
	MAPPER=$!
	exec 7>"$T/hold"
	i=0
	while [ $i -lt 100 ] && [ ! -s "$T/map.txt" ]; do sleep 0.05; i=$((i + 1)); done
	refused "/proc/PID/map_files/X of another process's mapping" 0 \
		S "$R" refuse map_files "$IMG" "$(cat "$T/map.txt")"
	exec 7>&-
	wait "$MAPPER"
	if command -v losetup >/dev/null && [ -e /dev/loop-control ]; then
		# (a shim that let one through: detach it, unmount, so the
		# failure does not outlive the test)
		unloop() { losetup -j "$IMG" | cut -d: -f1 | xargs -r -n1 losetup -d; }
		refused "losetup -f --show IMAGE" nonzero S losetup -f --show "$IMG"
		same "... no loop device is backed by it" "" "$(losetup -j "$IMG")"
		unloop
		refused "mount -o loop IMAGE" nonzero S mount -o loop,ro "$IMG" "$T/mnt"
		same "... no loop device is backed by it" "" "$(losetup -j "$IMG")"
		mountpoint -q "$T/mnt" && umount "$T/mnt"
		unloop
	else
		note "no loop devices here: losetup itself not run (the ioctls are checked above)"
	fi
fi
qcheck "$IMG"
finish
