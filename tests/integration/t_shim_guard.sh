#!/bin/sh
# t_shim_guard.sh - issue 24, points 1 and 2: safe by construction.
#   1. No descriptor a program holds can change an image's host bytes: the
#      kernel's access mode of every image descriptor is read-only
#      (fdtab.c fd_seal), so system calls made past every wrapper (syscall
#      instructions: write, pwrite64, pwritev2, writev, ftruncate, fallocate,
#      a shared writable mmap, a dup2 race) fail with EBADF/EINVAL/EACCES and
#      the image file stays byte-identical; the same calls on a raw twin
#      under the shim go through.  F_GETFL still shows the mode asked for.
#   2. Nothing that runs without the shim gets an image: a static program
#      (busybox) named with an image in its arguments, or inheriting an
#      image fd, is refused with one "qcowshim: refusing to run" line, from
#      the wrapper and from a shell under the shim, and the image is
#      untouched; a child whose environment dropped LD_PRELOAD gets the
#      shim back; an unlinked image and a hard link inherited across exec
#      are still the image in the child.
. "$(dirname "$0")/lib_tools.sh"
require_shim
require cc python3 busybox od cmp
cc -std=gnu11 -O1 -Wall -Wextra -Werror -pthread -o "$T/rawsys" "$QCS_ROOT/tests/shim/progs/rawsys.c" ||
	{ fail "compile rawsys.c"; finish; }

mkdisk() { # NAME: NAME.qcow2 (1 MiB, 0x11 in the first 4 KiB) and NAME.raw, its twin
	rm -f "$1.qcow2" "$1.raw"
	qemu-img create -q -f qcow2 "$1.qcow2" 1M &&
		qemu-io -t unsafe -f qcow2 -c 'write -q -P 0x11 0 4096' "$1.qcow2" >/dev/null &&
		qemu-img convert -f qcow2 -O raw "$1.qcow2" "$1.raw" && cp "$1.qcow2" "$1.before"
}

# one_line DESC FILE: exactly one line, a qcowshim refusal
one_line() {
	if [ "$(grep -c '^qcowshim: ' "$2")" = 1 ] && grep -q '^qcowshim: .*refusing' "$2"; then
		pass "$1: one refusal line"
	else
		fail "$1: expected exactly one 'qcowshim: ... refusing' line"
		show_log "$2"
	fi
}

section "1. raw system calls on an image descriptor find nothing to write"
for m in write pwrite pwritev2 writev ftruncate fallocate mmapw dup2race; do
	mkdisk d
	S "$T/rawsys" "$m" d.qcow2 >out.img 2>err.img
	case $(cat out.img) in
	"$m: -9" | "$m: -22" | "$m: -13" | "dup2race: 0") pass "$m on the image: $(cat out.img) (refused by the kernel)" ;;
	*) fail "$m on the image: '$(cat out.img)'"; show_log err.img ;;
	esac
	same_file "$m: the image file is byte-identical" d.before d.qcow2
	S "$T/rawsys" "$m" d.raw >out.raw 2>&1
	case $m in
	dup2race) ;; # on a raw file the race writes, as it would without the shim
	*) case $(cat out.raw) in "$m: -"*) fail "$m on the raw twin under the shim: $(cat out.raw)" ;;
		*) pass "$m on the raw twin under the shim goes through: $(cat out.raw)" ;; esac ;;
	esac
done
mkdisk d
S "$T/rawsys" fdinfo d.qcow2 >out 2>&1
same "an O_RDWR image fd: read-only to the kernel, O_RDWR to F_GETFL" "kernel accmode 0 getfl accmode 2" "$(cat out)"
S "$T/rawsys" fdinfo d.raw >out 2>&1
same "an O_RDWR raw fd under the shim is untouched" "kernel accmode 2 getfl accmode 2" "$(cat out)"
qcheck d.qcow2 && pass "qemu-img check clean after the raw calls" || fail "qemu-img check"

section "2. a static program never gets an image"
mkdisk d
S busybox sh -c 'echo hi > d.qcow2' >out 2>err
same "qcowshim busybox sh -c 'echo hi > d.qcow2': exit 126" 126 "$?"
one_line "wrapper, image named in a static program's arguments" err
same_file "the image is byte-identical" d.before d.qcow2
printf 'w\n' | S busybox fdisk d.qcow2 >out 2>err
same "qcowshim busybox fdisk d.qcow2: exit 126" 126 "$?"
one_line "wrapper, busybox fdisk" err
same_file "the image is byte-identical" d.before d.qcow2
S sh -c 'busybox dd if=/dev/zero of=d.qcow2 bs=512 count=1 conv=notrunc; echo "dd: $?"' >out 2>err
same "sh under the shim runs busybox dd of=d.qcow2: refused (EPERM, the shell's 126)" "dd: 126" "$(cat out)"
one_line "shell under the shim, image named" err
same_file "the image is byte-identical" d.before d.qcow2
S sh -c 'exec 3<>d.qcow2; busybox true; echo "true: $?"' >out 2>err
same "an image fd inherited by a static program: refused" "true: 126" "$(cat out)"
one_line "shell under the shim, image fd inherited" err
same_file "the image is byte-identical" d.before d.qcow2
S python3 -c 'import os; fd = os.open("d.qcow2", os.O_RDWR); os.set_inheritable(fd, True)
try:
    os.execv("/bin/busybox", ["busybox", "true"])
except PermissionError:
    print("refused")' >out 2>err
same "python os.execv of a static program with an image fd: PermissionError" refused "$(cat out)"
one_line "python execv" err
S busybox sh -c 'echo hi > d.raw' >out 2>err
same "a static program naming only a raw file runs" "0 $(printf 'hi\n' | wc -c)" "$? $(wc -c <d.raw)"

section "2. the shim stays in children, whatever their environment"
mkdisk d
S python3 -c 'import subprocess; subprocess.run(["od", "-An", "-tx1", "-N4"], stdin=open("d.qcow2", "rb"), env={})' >out 2>err
same "subprocess.run(stdin=image, env={}): the child reads the disk" " 11 11 11 11" "$(cat out)"
S env -i /bin/sh -c 'stat -c %s d.qcow2' >out 2>err
same "env -i: stat sees the virtual size" 1048576 "$(cat out)"
mkdisk e
S sh -c 'exec 3<e.qcow2; rm e.qcow2; od -An -tx1 -N4 <&3' >out 2>err
same "an unlinked image across exec: the child reads the disk" " 11 11 11 11" "$(cat out)"
mkdisk d
ln d.qcow2 a.img
S sh -c 'exec 3<a.img 4<d.qcow2; exec od -An -tx1 -N4 <&3' >out 2>err
same "a hard link inherited before the image's own fd: the child reads the disk" " 11 11 11 11" "$(cat out)"
section "a reopen of another process's partition descriptor gives that partition"
rm -f p.qcow2 p.raw
qemu-img create -q -f qcow2 p.qcow2 64M
printf 'label: dos\nlabel-id: 0x1234\nstart=2048, type=c\n' | S sfdisk -q p.qcow2 &&
	S mkfs.vfat -i 12345678 p.qcow2/p1 >/dev/null && S sh -c 'printf PART | dd of=p.qcow2/p1 bs=1 seek=3 conv=notrunc status=none' ||
	fail "making a FAT partition in p.qcow2"
qemu-img convert -f qcow2 -O raw p.qcow2 p.raw
S python3 -c 'import os; fd = os.open("p.qcow2/p1", os.O_RDONLY)
os.system("sh -c \"od -An -c -j3 -N4 /proc/%d/fd/%d\"" % (os.getpid(), fd))' >out 2>err
same "a grandchild reads /proc/PID/fd/N of a close-on-exec partition fd" "   P   A   R   T" "$(cat out)"
if command -v syslinux >/dev/null 2>&1; then
	SOURCE_DATE_EPOCH=1700000000 # mtools' file times, so the twins compare
	export SOURCE_DATE_EPOCH
	S syslinux --install p.qcow2/p1 >out 2>&1
	same "syslinux --install p.qcow2/p1 (its mtools reopen /proc/PPID/fd/N)" "0" "$?"
	show_log out 4
	syslinux --offset 1048576 --install p.raw >out 2>&1
	qcompare p.qcow2 p.raw && pass "the image equals the raw twin that syslinux --offset wrote" ||
		fail "syslinux on the partition differs from syslinux --offset on the raw twin"
	qcheck p.qcow2 && pass "qemu-img check clean" || fail "qemu-img check after syslinux"
else
	fail "tool missing: syslinux (run make deps)"
fi
rm -f a.img d.* e.* p.* out out.* err err.*
finish
