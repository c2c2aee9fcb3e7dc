#!/bin/sh
# Image fds a program inherits, now that a parent under the shim announces
# them (QCOWSHIM_FDS) and the child looks at nothing else: the first process
# under the shim (LD_PRELOAD set by hand from a plain shell holding the image
# open) still finds them, so does a chain of shells under the shim, a stale
# announcement is not trusted, posix_spawn file actions are looked at; a
# vfork child (the real vfork while no image is open) cannot open an image;
# system() leaves no announcement in the environment; and a child of a shim
# parent that touches no image makes no system call to look for any.
. "$(dirname "$0")/lib_tools.sh"
require_shim
require cc strace od
LIB=$QCOWSHIM_LIB

# The image and its raw twin: 1 MiB, byte 0 of sector k = k & 0xff.
new_image qemu d 1M
i=0
while [ $i -lt 8 ]; do
	qemu-io -f qcow2 -c "write -P $((i + 1)) $((i * 512)) 512" d.qcow2 >/dev/null 2>&1
	dd if=/dev/zero bs=512 count=1 2>/dev/null | tr '\0' "\\$(printf %o $((i + 1)))" |
		dd of=d.raw bs=512 seek=$i conv=notrunc 2>/dev/null
	i=$((i + 1))
done
qcompare d.qcow2 d.raw

section "the first process under the shim: no announcement, every fd is looked at"
got=$(sh -c "exec 3<d.qcow2; LD_PRELOAD=$LIB od -An -tx1 -N4 <&3" | tr -d ' \n')
same "a plain shell's fd 3 on the image reads virtual bytes in a preloaded child" 01010101 "$got"
got=$(sh -c "exec 3<>d.qcow2; LD_PRELOAD=$LIB dd bs=512 skip=2 count=1 status=none <&3 | od -An -tx1 -N2" | tr -d ' \n')
same "... at a virtual offset (dd skip)" 0303 "$got"

section "a chain of processes under the shim: announced fds"
got=$(LD_PRELOAD=$LIB sh -c 'exec 3<d.qcow2; sh -c "sh -c \"od -An -tx1 -N4 <&3\""' | tr -d ' \n')
same "fd 3 opened by a shell under the shim, read by its grandchild" 01010101 "$got"
LD_PRELOAD=$LIB sh -c 'exec 3<>d.qcow2; dd if=/dev/zero bs=512 count=1 status=none | tr "\0" "z" >b.z
	sh -c "dd if=b.z bs=512 seek=5 count=1 conv=notrunc status=none >&3"' 2>"$T/w.log"
same "a write through an announced fd exits 0" "" "$(cat "$T/w.log")"
dd if=b.z of=d.raw bs=512 seek=5 count=1 conv=notrunc status=none
qcheck d.qcow2
qcompare d.qcow2 d.raw
got=$(LD_PRELOAD=$LIB sh -c 'exec 3<d.qcow2 4<d.raw; cmp /dev/fd/3 /dev/fd/4 && echo same')
same "an announced image fd and the twin read the same (cmp /dev/fd/N)" same "$got"

section "announcements that must not be trusted"
got=$(sh -c "exec 3<d.qcow2; QCOWSHIM_FDS=E1: LD_PRELOAD=$LIB od -An -tx1 -N4 <&3" | tr -d ' \n')
same "an announcement for another pid (stale): every fd is looked at" 01010101 "$got"
got=$(sh -c "exec 3<d.qcow2; QCOWSHIM_FDS=P1:garbage LD_PRELOAD=$LIB od -An -tx1 -N4 <&3" | tr -d ' \n')
same "an announcement of the wrong parent: every fd is looked at" 01010101 "$got"
got=$(sh -c "exec 3<d.qcow2; QCOWSHIM_FDS=E\$\$:3,0,-1 LD_PRELOAD=$LIB exec od -An -tx1 -N4 <&3" | tr -d ' \n')
same "an announcement this shim does not write (own pid): every fd is looked at" 01010101 "$got"
got=$(LD_PRELOAD=$LIB sh -c 'printenv QCOWSHIM_FDS; echo end')
same "the announcement is removed from the program's environment" end "$got"

# The C helpers: vfork with an image open in the child; system() and the environment.
cat >vf.c <<'EOF'
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
int main(int argc, char **argv)
{
	int st;
	if (!strcmp(argv[1], "vfork")) { /* the child opens the image, then execs */
		volatile int child_errno = -1;
		pid_t p = vfork();
		if (p == 0) {
			int fd = open(argv[2], O_RDONLY);
			child_errno = fd < 0 ? errno : 0;
			execl("/bin/true", "true", (char *)NULL);
			_exit(127);
		}
		if (p < 0 || waitpid(p, &st, 0) != p)
			return 2;
		int fd = open(argv[2], O_RDONLY);
		unsigned char b[4] = {0};
		if (fd < 0 || pread(fd, b, 4, 512) != 4)
			return 3;
		printf("child open: %s; child exit %d; parent reads %02x%02x%02x%02x\n",
		       child_errno == 0 ? "ok" : strerror(child_errno), WEXITSTATUS(st), b[0], b[1], b[2], b[3]);
		return 0;
	}
	/* system: with an image fd open on 3, then none; QCOWSHIM_FDS afterwards */
	int fd = open(argv[2], O_RDONLY);
	if (fd != 3)
		return 4;
	fflush(stdout);
	st = system("od -An -tx1 -N4 <&3 | tr -d ' \\n'; echo");
	printf("system %d, after it QCOWSHIM_FDS=%s\n", st, getenv("QCOWSHIM_FDS") ? getenv("QCOWSHIM_FDS") : "(none)");
	close(3);
	fflush(stdout);
	st = system("true");
	printf("system %d, after it QCOWSHIM_FDS=%s\n", st, getenv("QCOWSHIM_FDS") ? getenv("QCOWSHIM_FDS") : "(none)");
	return 0;
}
EOF
if cc -O1 -o vf vf.c >"$T/cc.log" 2>&1; then
	section "vfork: the real one while no image is open"
	got=$(LD_PRELOAD=$LIB ./vf vfork d.qcow2 2>"$T/vf.err")
	same "an image open in a vfork child is refused (EPERM); the parent's open works" \
		"child open: Operation not permitted; child exit 0; parent reads 02020202" "$got"
	grep -q "refusing to open an image in a vfork child" "$T/vf.err" &&
		pass "... with one message" || { fail "no message for the vfork child's open"; show_log "$T/vf.err" 3; }
	got=$(./vf vfork d.raw 2>&1)
	same "the raw twin without the shim: the child's open works" \
		"child open: ok; child exit 0; parent reads 02020202" "$got"
	strace -f -o "$T/vf.tr" env LD_PRELOAD="$LIB" sh -c '/bin/true; /bin/true' >/dev/null 2>&1
	n=$(grep -c 'vfork(' "$T/vf.tr")
	[ "$n" -ge 1 ] && pass "a shell under the shim runs its programs by vfork ($n)" ||
		{ fail "no vfork by dash under the shim"; grep -E 'clone|fork' "$T/vf.tr" | head -n 3; }
	section "system(): the announcement does not stay in the environment"
	got=$(LD_PRELOAD=$LIB ./vf system d.qcow2 2>&1)
	same "system() with an image fd, then without: virtual bytes, no QCOWSHIM_FDS left" \
		"01010101
system 0, after it QCOWSHIM_FDS=(none)
system 0, after it QCOWSHIM_FDS=(none)" "$got"
else
	fail "cc vf.c"; show_log "$T/cc.log" 5
fi

section "a child of a shim parent that touches no image looks for none"
strace -f -o "$T/tr" env LD_PRELOAD="$LIB" sh -c 'exec 3<d.raw; /bin/true; echo x >/dev/null' >/dev/null 2>&1
# the last process: /bin/true (after its execve)
awk '/execve\("\/bin\/true"/ { p = $1 } END { print p }' "$T/tr" >"$T/pid"
pid=$(cat "$T/pid")
n=$(awk -v p="$pid" '$1 == p' "$T/tr" | sed -n '/execve("\/bin\/true"/,$p' | grep -cE 'getdents|readlink|/proc/self/fd')
same "/bin/true under a shim shell: no getdents, readlink or /proc/self/fd" 0 "$n"
n=$(awk -v p="$pid" '$1 == p' "$T/tr" | sed -n '/execve("\/bin\/true"/,$p' | grep -c 'getrandom\|futex')
same "... and no getrandom or futex (no malloc, no pthread_once at start)" 0 "$n"
finish
