#!/bin/sh
# t_shim_names.sh - issue 24, point 4: names that would replace or cut an
# image.  A rename of a file that is not an image over an image fails with
# EXDEV (as across file systems) and one qcowshim line: sed -i, perl -pi and
# ln -f fail with that line and their own, and leave the image byte-identical and no temporary
# file; mv and rsync fall back to copying into the image (served: the image
# equals the raw twin that got the same command); renaming the image itself
# still works.  truncate, stat, statx and an O_TRUNC open of a hard link of
# an image the process has open act on the image (tests/shim/progs/
# hardlink.c, same output as on the raw twin); shm_open of an image in
# /dev/shm is the image (tests/shim/snippets/shm_open.c covers O_TRUNC).
. "$(dirname "$0")/lib_tools.sh"
require_shim
require cc sed perl rsync mv ln sha256sum
cc -std=gnu11 -O1 -Wall -Wextra -Werror -o "$T/hardlink" "$QCS_ROOT/tests/shim/progs/hardlink.c" ||
	{ fail "compile hardlink.c"; finish; }

mkdisk() { # x.qcow2 (1 MiB, "a" bytes at 0) and its twin x.raw
	rm -rf w && mkdir w && cd w || { fail "mkdir"; finish; }
	qemu-img create -q -f qcow2 x.qcow2 1M &&
		qemu-io -f qcow2 -c 'write -q -P 0x61 0 4096' x.qcow2 >/dev/null &&
		qemu-img convert -f qcow2 -O raw x.qcow2 x.raw || { fail "making the disk"; finish; }
}
done_disk() { cd "$T" || exit 1; rm -rf w; }

section "rewrites by rename are refused: the tool fails cleanly, the image is untouched"
for tool in "sed -i s/a/b/" "perl -pi -e s/a/b/" "ln -f other"; do
	mkdisk
	echo other >other
	sum=$(sha256sum <x.qcow2)
	# shellcheck disable=SC2086
	S $tool x.qcow2 >"$T/out" 2>&1
	rc=$?
	[ $rc -ne 0 ] && pass "$tool: fails (exit $rc)" || fail "$tool: exit 0"
	same "$tool: one qcowshim line, and the tool's own" "1 2" \
		"$(grep -c '^qcowshim: .*refusing to rename' "$T/out") $(wc -l <"$T/out" | tr -d ' ')"
	note "$(cat "$T/out")"
	grep -q 'cross-device' "$T/out" && pass "$tool: says why (EXDEV)" || fail "$tool: $(cat "$T/out")"
	same "$tool: image byte-identical" "$sum" "$(sha256sum <x.qcow2)"
	same "$tool: no file left behind" "other x.qcow2 x.raw" "$(ls -A | tr '\n' ' ' | sed 's/ $//')"
	done_disk
done

section "mv and rsync over an image copy into it (served)"
seed=24
awk -v s=$seed 'BEGIN { srand(s); for (i = 0; i < 4096; i++) printf "%c", 32 + int(rand() * 90) }' >"$T/src"
note "source: 4096 bytes of awk rand() text, seed $seed"
for tool in mv "rsync"; do
	mkdisk
	cp "$T/src" a && cp "$T/src" b
	run "$tool over the image" S $tool a x.qcow2
	$tool b x.raw
	is_qcow2 x.qcow2 && pass "$tool: still a QCOW2 file" || fail "$tool: the image was replaced"
	qcheck x.qcow2
	qcompare x.qcow2 x.raw
	[ "$tool" = mv ] && left="x.qcow2 x.raw" || left="a b x.qcow2 x.raw"
	same "$tool: no file left behind" "$left" "$(ls -A | tr '\n' ' ' | sed 's/ $//')"
	done_disk
done
mkdisk
run "mv of the image itself to another image name" S mv x.qcow2 y.qcow2
run "... and back over an existing image" S sh -c 'cp -p y.qcow2 z.qcow2 && mv z.qcow2 y.qcow2 && mv y.qcow2 x.qcow2'
qcheck x.qcow2
qcompare x.qcow2 x.raw
done_disk

section "another name of an open image: truncate, stat, statx, O_TRUNC"
mkdisk
ln x.qcow2 disk.img && ln x.raw disk2.img
S "$T/hardlink" x.qcow2 disk.img >"$T/img.out" 2>&1
"$T/hardlink" x.raw disk2.img >"$T/raw.out" 2>&1
sed 's/^/#      /' "$T/img.out"
same "hard link: the image's view, as the twin's" "$(cat "$T/raw.out")" "$(cat "$T/img.out")"
qcheck x.qcow2
qcompare x.qcow2 x.raw
done_disk

section "shm_open of an image in /dev/shm"
mkdisk
n=qcs-names-$$
cp x.qcow2 "/dev/shm/$n.qcow2" && cp x.raw "/dev/shm/$n.raw"
cat >"$T/shm.py" <<EOF
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
libc.shm_open.argtypes = [ctypes.c_char_p, ctypes.c_int, ctypes.c_uint]
fd = libc.shm_open(b"/$n.qcow2", os.O_RDWR | os.O_TRUNC, 0)
assert fd >= 0, os.strerror(ctypes.get_errno())
print("after O_TRUNC:", os.fstat(fd).st_size)
os.pwrite(fd, b"S" * 1024, 0)
print("written:", os.fstat(fd).st_size, os.pread(fd, 4, 0))
EOF
S python3 "$T/shm.py" >"$T/img.out" 2>&1
sed "s/$n.qcow2/$n.raw/" "$T/shm.py" >"$T/shm2.py"
python3 "$T/shm2.py" >"$T/raw.out" 2>&1
same "shm_open O_TRUNC, write, read: as the twin" "$(cat "$T/raw.out")" "$(cat "$T/img.out")"
is_qcow2 "/dev/shm/$n.qcow2" && pass "still a QCOW2 file" || fail "/dev/shm/$n.qcow2 was cut"
qcheck "/dev/shm/$n.qcow2"
qcompare "/dev/shm/$n.qcow2" "/dev/shm/$n.raw"
rm -f "/dev/shm/$n.qcow2" "/dev/shm/$n.raw"
done_disk

finish
