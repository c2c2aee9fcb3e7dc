#!/bin/sh
# t_shim_around.sh - the ways around interposed symbols that the shim
# serves (issue 24 point 3; the completeness test is t_surface.sh): glibc
# entry points that make their own system calls (POSIX AIO through fio's
# posixaio engine), each on an image under the shim and on a raw twin
# without it; the images end qemu-img check clean and qemu-img compare
# identical to their twins; raw syscall() numbers routed to the wrappers
# (tests/shim/progs/around.c).
. "$(dirname "$0")/lib_tools.sh"
require_shim
require fio cc
cc -std=gnu11 -O1 -Wall -Wextra -Werror -o "$T/around" "$QCS_ROOT/tests/shim/progs/around.c" &&
	cc -std=gnu11 -O1 -Wall -Wextra -Werror -shared -fPIC -o "$T/nextlib.so" \
		"$QCS_ROOT/tests/shim/progs/nextlib.c" || { fail "cannot build around.c, nextlib.c"; finish; }

section "POSIX AIO: fio --ioengine=posixaio (glibc's helper threads)"
# A fixed seed (the same random offsets on the image and on the twin) and
# contents made of each block's offset (fio's verify_pattern %o), so both
# get the same bytes; do_verify reads them back through posixaio.
FIO="--ioengine=posixaio --iodepth=8 --randrepeat=1 --randseed=2411 --norandommap --verify=pattern --verify_pattern=%o"
new_image qemu aio 8M || finish
IMG=$T/aio.qcow2 TWIN=$T/aio.raw
# shellcheck disable=SC2086
both "fio posixaio randwrite 4k, 3M, verified by reading back" - fio --name=w --filename=@IMG@ \
	--rw=randwrite --bs=4k --size=3M --do_verify=1 $FIO
# shellcheck disable=SC2086
both "fio posixaio write 64k at 4M, 2M, not verified" - fio --name=s --filename=@IMG@ --rw=write \
	--offset=4M --bs=64k --size=2M --do_verify=0 $FIO
# shellcheck disable=SC2086
both "fio posixaio randread 64k at 4M verifies what the write above left" - fio --name=r \
	--filename=@IMG@ --rw=randread --offset=4M --bs=64k --size=2M --io_size=1M $FIO
# shellcheck disable=SC2086
both "fio posixaio randrw 8k over the whole disk, verified" - fio --name=m --filename=@IMG@ \
	--rw=randrw --bs=8k --size=8M --io_size=2M --do_verify=1 $FIO
is_qcow2 "$IMG" && pass "the image is still QCOW2" || fail "the image is no longer QCOW2"
qcheck "$IMG"
qcompare "$IMG" "$TWIN"

section "raw syscall() numbers routed to the wrappers"
new_image qemu sys 4M || finish
IMG=$T/sys.qcow2 TWIN=$T/sys.raw
"$T/around" "$TWIN" >"$T/sys.twin" 2>&1 || { fail "around.c on the raw twin"; show_log "$T/sys.twin"; }
QCS_IMAGE=1 S "$T/around" "$IMG" >"$T/sys.img" 2>&1 || { fail "around.c on the image under the shim"; show_log "$T/sys.img"; }
same_file "every routed number on the image = on the raw twin ($(wc -l <"$T/sys.twin") lines)" "$T/sys.twin" "$T/sys.img"
grep -q ' first 51 ' "$T/sys.img" && fail "SYS_readv on the image returned the QCOW2 magic" ||
	pass "SYS_readv on the image did not return the QCOW2 magic"
is_qcow2 "$IMG" && pass "the image is still QCOW2" || fail "the image is no longer QCOW2"
qcheck "$IMG"
qcompare "$IMG" "$TWIN"

section "lookups relative to the caller: another preload library's RTLD_NEXT, RUNPATH"
# The shim's dlsym/dlopen jump on to glibc with the caller's return address
# in place: a library preloaded before the shim finds the shim's read as its
# "next" (else it would read the host bytes), and a library's dlopen of a
# bare name searches that library's RUNPATH.
new_image qemu-pat nx 8M || finish
IMG=$T/nx.qcow2 TWIN=$T/nx.raw
want=$(od -An -tx1 -N 16 -j 12340 "$TWIN")
# dd reads with read(2) (od would use stdio, the shim's own stream)
dd_at() { dd if="$1" iflag=skip_bytes,count_bytes skip=12340 count=16 status=none | od -An -tx1; }
got=$(LD_PRELOAD="$T/nextlib.so $QCOWSHIM_LIB" NEXTLIB_OUT=$T/nx.calls dd_at "$IMG" 2>&1)
same "a library preloaded before the shim: its RTLD_NEXT read is the shim's (flat bytes)" "$want" "$got"
[ -s "$T/nx.calls" ] && pass "and its read was called ($(cat "$T/nx.calls") times)" ||
	fail "the preloaded library's read was not called"
got=$(LD_PRELOAD="$QCOWSHIM_LIB $T/nextlib.so" dd_at "$IMG" 2>&1)
same "a library preloaded after the shim: flat bytes" "$want" "$got"
# dd's read of a plain file: the shim's read passes it to the next read,
# this library's, which asked a handle of libc for read: it must get
# libc's, not the shim's again (a loop)
got=$(LD_PRELOAD="$QCOWSHIM_LIB $T/nextlib.so" NEXTLIB_LIBC=1 NEXTLIB_OUT=$T/nx.calls2 timeout -k 5 \
	"$QCS_TIMEOUT" dd if="$TWIN" iflag=skip_bytes,count_bytes skip=12340 count=16 status=none | od -An -tx1)
same "a library preloaded after the shim that asks a libc handle for read: libc's, no loop" "$want" "$got"
[ -s "$T/nx.calls2" ] && pass "and its read was called ($(cat "$T/nx.calls2") times)" ||
	fail "the library preloaded after the shim: its read was not called"
mkdir -p "$T/rp/lib"
printf 'int b_value(void) { return 42; }\n' >"$T/rp/b.c"
printf '#include <dlfcn.h>\nint a_load(void) { void *h = dlopen("libB.so", RTLD_NOW); int (*f)(void) = h ? (int (*)(void))dlsym(h, "b_value") : 0; return f ? f() : -1; }\n' >"$T/rp/a.c"
printf '#include <dlfcn.h>\n#include <stdio.h>\nint main(int c, char **v) { void *h = c > 1 ? dlopen(v[1], RTLD_NOW) : 0; int (*f)(void) = h ? (int (*)(void))dlsym(h, "a_load") : 0; printf("%%d\\n", f ? f() : -2); return 0; }\n' >"$T/rp/m.c"
if cc -shared -fPIC -o "$T/rp/lib/libB.so" "$T/rp/b.c" &&
	cc -shared -fPIC -o "$T/rp/lib/libA.so" "$T/rp/a.c" -Wl,-rpath,'$ORIGIN' -Wl,--enable-new-dtags &&
	cc -o "$T/rp/m" "$T/rp/m.c"; then
	same "dlopen of a bare name from a library with RUNPATH \$ORIGIN, under the shim" 42 \
		"$(LD_PRELOAD=$QCOWSHIM_LIB "$T/rp/m" "$T/rp/lib/libA.so" 2>&1)"
else
	fail "cannot build the RUNPATH libraries"
fi

finish
