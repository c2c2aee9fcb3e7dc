#!/bin/sh
# t_tools_builders.sh - issue 12's further verified tools, each run on an
# image under the shim and on a raw twin without it, judged without the shim
# (qemu-img check, qemu-img compare, the tool's own checker):
#   xfs_io pwrite (buffered and -d), blkid -p, wipefs -a, mkswap on IMAGE/pN,
#   file -s, e2image -ra (into a new image and into a partition),
#   mksquashfs into IMAGE/pN, mkfs.erofs into a new image (it truncates its
#   output to 0 first, which a partition cannot do) and that copied into
#   IMAGE/pN by dd, a Python script reading with os.open/os.pread after
#   mmap fails (the shim refuses mmap of an image with ENODEV), and one
#   opening a partition O_PATH, then reading it through /proc/self/fd/N.
. "$(dirname "$0")/lib_tools.sh"
require_shim
require xfs_io blkid wipefs mkswap e2image mkfs.ext4 e2fsck mksquashfs unsquashfs mkfs.erofs \
	fsck.erofs file sfdisk sha256sum
PY=/usr/bin/python3
[ -x "$PY" ] || PY=$(command -v python3) || { fail "tool missing: python3"; finish; }
U=3f0e2a1c-5b6d-4e7f-8a9b-0c1d2e3f4a5b
SU=12345678-1234-1234-1234-123456789abc
M=1048576

# both DESC CMD ARGS...: CMD under the shim with @ = d.qcow2, @pN =
# d.qcow2/pN, @f:NAME = NAME.qcow2; and without it on the twins d.raw,
# pN.raw (the twin's partition cut out), NAME.raw; same exit, same output
both() {
	_desc=$1; shift
	_ia="" _ra=""
	for _x in "$@"; do
		case $_x in
		@) _ia="$_ia d.qcow2" _ra="$_ra d.raw" ;;
		@p*) _ia="$_ia d.qcow2/${_x#@}" _ra="$_ra ${_x#@}.raw" ;;
		@f:*) _ia="$_ia ${_x#@f:}.qcow2" _ra="$_ra ${_x#@f:}.raw" ;;
		*) _ia="$_ia $_x" _ra="$_ra $_x" ;;
		esac
	done
	# shellcheck disable=SC2086
	S $_ia >img.out 2>img.err
	_r1=$?
	# shellcheck disable=SC2086
	$_ra >raw.out 2>raw.err
	_r2=$?
	sed 's/d\.qcow2\//\//; s/\([a-z]*\)\.qcow2/\1.raw/g' img.out >img.cmp
	sed 's/\(p[0-9]\)\.raw/\/\1/g' raw.out >raw.cmp
	if [ "$_r1" = "$_r2" ] && cmp -s img.cmp raw.cmp; then
		pass "$_desc: same exit ($_r1) and output as on the twin"
	else
		fail "$_desc: exit $_r1 vs twin $_r2, or outputs differ"
		diff raw.cmp img.cmp | head -n 8 | sed 's/^/#      | /'
		show_log img.err 4
	fi
}

# partitions of the twin live in separate files while a tool runs on them
cut_parts() { for _p in 1 2; do dd if=d.raw of=p$_p.raw bs=512 skip=$(($(start $_p))) \
	count=40960 status=none; done; }
put_parts() { for _p in 1 2; do dd if=p$_p.raw of=d.raw bs=512 seek=$(($(start $_p))) \
	conv=notrunc status=none; done; rm -f p1.raw p2.raw; }
start() { [ "$1" = 1 ] && echo 2048 || echo 43008; }

new_image qemu d 64M
cat >pt <<EOF
label: gpt
label-id: 11111111-2222-3333-4444-555555555555
start=2048, size=40960, type=linux, uuid=aaaaaaaa-2222-3333-4444-555555555555
start=43008, size=40960, type=linux, uuid=bbbbbbbb-2222-3333-4444-555555555555
EOF
run "sfdisk on the image" S sfdisk -q d.qcow2 <pt
sfdisk -q d.raw <pt >/dev/null 2>&1
qcompare d.qcow2 d.raw

section "xfs_io"
both "xfs_io pwrite (buffered)" xfs_io -c "pwrite -q -S 0x5a $((30 * M)) 1m" -c "pread -q 0 4k" @
both "xfs_io -d pwrite (O_DIRECT)" xfs_io -d -c "pwrite -q -S 0x77 $((40 * M)) 1m" \
	-c "pread -q -v $((40 * M)) 16" @
qcompare d.qcow2 d.raw

section "mkswap, blkid -p, wipefs -a, file -s"
cut_parts
both "mkswap -L sw -U on p2" mkswap -L sw -U $SU @p2
put_parts
qcompare d.qcow2 d.raw
cut_parts
both "blkid -p on p2" blkid -p @p2
both "file -s on p2" file -s @p2
both "wipefs -a on p2" wipefs -a @p2
both "blkid -p on p2 after wipefs -a (nothing)" blkid -p @p2
put_parts
both "blkid -p on the disk" blkid -p @
both "file -s on the disk" file -s @
qcompare d.qcow2 d.raw

section "e2image -ra"
mkdir -p tree/etc && printf 'built by a tool\n' >tree/etc/hello
touch -d @1700000000 tree/etc/hello tree/etc tree && cat tree/etc/hello >/dev/null && ls -R tree >/dev/null
cut_parts
both "mkfs.ext4 -d on p1" mkfs.ext4 -q -F -U $U -E hash_seed=$U -d tree @p1
both "e2image -ra p1 into p2" e2image -ra @p1 @p2
rm -f copy.qcow2 copy.raw
both "e2image -ra p1 into a new image" e2image -ra @p1 @f:copy
put_parts
qcompare d.qcow2 d.raw
run "e2fsck -fn on p2 (the copy): clean" S e2fsck -fn d.qcow2/p2
qcheck copy.qcow2
qcompare copy.qcow2 copy.raw

section "mksquashfs, mkfs.erofs"
cut_parts
both "mksquashfs into p1" mksquashfs tree @p1 -noappend -quiet -no-progress -mkfs-time 1700000000 \
	-all-time 1700000000
put_parts
qcompare d.qcow2 d.raw
same "unsquashfs -cat from p1" "built by a tool" "$(S unsquashfs -cat d.qcow2/p1 etc/hello 2>/dev/null)"
rm -f e.qcow2 e.raw
both "mkfs.erofs into a new image" mkfs.erofs -T1700000000 -U $U @f:e tree
qcheck e.qcow2
qcompare e.qcow2 e.raw
run "fsck.erofs on it" S fsck.erofs e.qcow2
run "dd it into p2" S dd if=e.qcow2 of=d.qcow2/p2 conv=notrunc status=none
dd if=e.raw of=d.raw bs=512 seek=43008 conv=notrunc status=none
qcompare d.qcow2 d.raw
run "fsck.erofs on p2" S fsck.erofs d.qcow2/p2

section "Python: os.open, os.pread after mmap fails"
cat >read.py <<'EOF'
import hashlib, mmap, os, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
size = os.fstat(fd).st_size
try:
    with mmap.mmap(fd, size, access=mmap.ACCESS_READ) as m:
        data = bytes(m)
except OSError:
    data, off = bytearray(), 0
    while off < size:
        chunk = os.pread(fd, min(1 << 20, size - off), off)
        if not chunk:
            break
        data += chunk
        off += len(chunk)
os.close(fd)
print(size, hashlib.sha256(data).hexdigest())
EOF
both "python os.open/os.pread (mmap refused) of the disk" "$PY" read.py @
same "... and it read the flat disk" "$(stat -c %s d.raw) $(sha256sum <d.raw | cut -d' ' -f1)" \
	"$(cat raw.out)"
cat >opath.py <<'EOF'
import hashlib, os, sys
fd = os.open(sys.argv[1], os.O_PATH)
size = os.fstat(fd).st_size
with open("/proc/self/fd/%d" % fd, "rb") as f:
    print(size, hashlib.sha256(f.read()).hexdigest())
EOF
cut_parts
both "python O_PATH of p2, fstat, reopen through /proc/self/fd/N" "$PY" opath.py @p2
put_parts
qcheck d.qcow2
finish
