#!/bin/sh
# t_shim_reentry.sh - issue 24, point 5: the shim's own re-entrancy.
#   signals: a SIGXFSZ handler (sigaction SA_SIGINFO, and signal()) writes
#   the disk while the main thread's pwrite runs into RLIMIT_FSIZE; on the
#   image the signal is raised inside the shim with the image lock held (a
#   deadlock before: the timeout fails it);
#   cancel: a thread with a cancel pending calls fstat (the shim opens the
#   image inside it, calling open, a cancellation point) then pwrite;
#   children without atfork handlers: _Fork, clone (no CLONE_VM) and a raw
#   fork system call write the disk and exit, the parent writes again;
#   ENOSPC: dd into an image on a full tmpfs (in a mount namespace), then a
#   normal exit: no leaked cluster.
# Each on an image under the shim and on its raw twin without it (outputs
# identical, qemu-img check clean, qemu-img compare equal), tests/shim/progs/
# reentry.c.  Nothing is timed: every ordering is forced by the program.
. "$(dirname "$0")/lib_tools.sh"
require_shim
require cc unshare dd cmp
cc -std=gnu11 -O1 -Wall -Wextra -Werror -o "$T/reentry" "$QCS_ROOT/tests/shim/progs/reentry.c" -lpthread ||
	{ fail "compile reentry.c"; finish; }
R=$T/reentry

mkdisk() { # d.qcow2 (4 MiB, data at 0) and its twin d.raw
	rm -f d.qcow2 d.raw
	qemu-img create -q -f qcow2 d.qcow2 4M &&
		qemu-io -f qcow2 -c 'write -q -P 0x11 0 4096' d.qcow2 >/dev/null &&
		qemu-img convert -f qcow2 -O raw d.qcow2 d.raw || { fail "making the disk"; finish; }
}

# twin DESC ARGS...: reentry ARGS on the image (under the shim, @D@ = d.qcow2)
# and on the twin (@D@ = d.raw): same output, image clean and equal to twin.
twin() {
	_d=$1; shift
	_subst() { _v=$1; shift; for _a; do case $_a in @D@) printf '%s\n' "$_v" ;; *) printf '%s\n' "$_a" ;; esac; done; }
	# shellcheck disable=SC2046
	S "$R" $(_subst d.qcow2 "$@") >"$T/img.out" 2>"$T/img.err"
	_ri=$?
	# shellcheck disable=SC2046
	"$R" $(_subst d.raw "$@") >"$T/raw.out" 2>"$T/raw.err"
	_rr=$?
	note "$(head -n 3 "$T/img.out" | tr '\n' '|')"
	if [ $_ri -eq 0 ] && [ $_rr -eq 0 ] && cmp -s "$T/img.out" "$T/raw.out"; then
		pass "$_d: image under the shim == raw twin"
	else
		fail "$_d: image exit $_ri (124: hung), twin exit $_rr"
		diff "$T/raw.out" "$T/img.out" | head -n 10 | sed 's/^/#      | /'
		show_log "$T/img.err" 4
	fi
	same "$_d: nothing on stderr" "" "$(cat "$T/img.err")"
	qcheck d.qcow2
	qcompare d.qcow2 d.raw
}

section "a signal handler writing the image, raised inside the shim's critical section"
for how in sigxfsz signal; do
	mkdisk
	# RLIMIT_FSIZE: the image's host size (its next cluster is past it),
	# the twin's 2 MiB (the program writes at 2 MiB)
	hs=$(stat -c %s d.qcow2)
	S "$R" "$how" d.qcow2 "$hs" >"$T/img.out" 2>"$T/img.err"
	ri=$?
	"$R" "$how" d.raw 2097152 >"$T/raw.out" 2>"$T/raw.err"
	rr=$?
	note "$(sed -n 3p "$T/img.out")"
	if [ $ri -eq 0 ] && [ $rr -eq 0 ] && cmp -s "$T/img.out" "$T/raw.out"; then
		pass "$how: handler ran after the section, its write landed; image == raw twin"
	else
		fail "$how: image exit $ri (124: deadlocked), twin exit $rr"
		diff "$T/raw.out" "$T/img.out" | head -n 10 | sed 's/^/#      | /'
	fi
	qcheck d.qcow2
	qcompare d.qcow2 d.raw
done

section "pthread_cancel of a thread inside the shim"
mkdisk
twin "cancel pending across fstat (opens the image) and pwrite" cancel @D@

section "children made without atfork handlers"
for how in _Fork clone sysfork; do
	mkdisk
	twin "$how child writes while the parent only read: served" forkread @D@ "$how"
done
for how in _Fork clone; do
	mkdisk
	twin "$how child writes between the parent's writes: served" fork @D@ "$how"
done
# A raw fork system call runs no handler: the parent, a writer, still holds
# the image; the child notices it is a new process and waits for the write
# lock (QCOWSHIM_WAIT_MS), then is refused with one line instead of writing
# through the parent's translator state (its block was lost before).
mkdisk
QCOWSHIM_WAIT_MS=100 S "$R" fork d.qcow2 sysfork >"$T/img.out" 2>"$T/img.err"
same "raw fork syscall, writing parent: the child's pwrite is refused (EBUSY)" \
	"child pwrite: -1 Device or resource busy" "$(sed -n 1p "$T/img.out")"
same "... with exactly one line" "1" "$(wc -l <"$T/img.err" | tr -d ' ')"
same "... naming the image" "qcowshim: d.qcow2: image is being written by another qcowshim process" \
	"$(cat "$T/img.err")"
same "... and the parent reads no block of it" "parent reads the child's block: 00" "$(sed -n 3p "$T/img.out")"
qcheck d.qcow2
# the twin gets the parent's writes only
qemu-io -f raw -c 'write -q -P 0xa1 0 64k' -c 'write -q -P 0xb2 2M 64k' -c 'write -q -P 0xb2 3M 4k' d.raw >/dev/null
qcompare d.qcow2 d.raw

section "ENOSPC mid-write, then a normal exit: no leaked cluster"
# A 3 MiB tmpfs in a private mount namespace (user namespace when not root);
# dd of 8 MiB into a 64 MiB image fills it.  Seeded input, printed.
seed=2424
awk -v s=$seed 'BEGIN { srand(s); for (i = 0; i < 8388608 / 16; i++) printf "%016x", int(rand() * 2^53) }' >big
note "input: 8 MiB of awk rand() text, seed $seed"
cat >"$T/full.sh" <<'EOF'
set -u
mount -t tmpfs -o size=3m tmpfs m || exit 99
for cs in 512 4096 65536; do
	for bs in 4k 64k 3000; do
		rm -f m/x.qcow2
		qemu-img create -q -f qcow2 -o cluster_size=$cs m/x.qcow2 64M || exit 98
		timeout -k 5 60 "$QCOWSHIM" dd if=big of=m/x.qcow2 bs=$bs conv=notrunc 2>dd.err
		echo "cs=$cs bs=$bs dd=$? $(grep -c 'No space left' dd.err)"
		n=$(sed -n 's/^\([0-9]*\) bytes.*/\1/p' dd.err)
		qemu-img check m/x.qcow2 >check.out 2>&1; echo "  check=$? $(grep -i leak check.out | head -n 1)"
		timeout -k 5 60 "$QCOWSHIM" cmp -n "$n" big m/x.qcow2 >/dev/null 2>&1; echo "  readback=$? ($n bytes)"
	done
done
EOF
mkdir m
if [ "$(id -u)" = 0 ]; then ns="unshare -m"; else ns="unshare -rm"; fi
QCOWSHIM=$QCOWSHIM $ns sh "$T/full.sh" >"$T/full.out" 2>&1
rc=$?
if [ $rc -eq 99 ] || [ $rc -eq 98 ]; then
	fail "cannot mount a small tmpfs with $ns (exit $rc)"; show_log "$T/full.out"
else
	sed 's/^/#      /' "$T/full.out"
	same "every dd hit ENOSPC (9 runs)" 9 "$(grep -c '^cs=.* dd=1 1$' "$T/full.out")"
	same "every image on the full file system is clean: no leaked cluster" 9 "$(grep -c '^  check=0 $' "$T/full.out")"
	same "every byte dd reported written reads back" 9 "$(grep -c '^  readback=0 ' "$T/full.out")"
fi
rm -f big dd.err check.out

finish
