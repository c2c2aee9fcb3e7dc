#!/bin/sh
# Partitions as files: IMAGE.qcow2/pN under the shim is partition N of the
# flat disk (GPT, and MBR with logical partitions p5...).  sfdisk partitions
# images under the shim; mkfs.ext4/mkfs.vfat/mkfs.xfs, e2fsck, mcopy/mdir
# and debugfs work on /pN without offsets.  Judged without the shim:
# qemu-img check, then each partition of qemu-img's flat view checked by
# e2fsck -fn / fsck.vfat -n / xfs_repair -n on a dd-extracted copy, mtools
# through "@@offset", and mke2fs's output compared byte for byte with the
# same mke2fs run on a plain file of the partition's size.  Confinement:
# size (stat, statx, fstat, lseek SEEK_END, BLKGETSIZE64), EOF at the end,
# a write across the end is short then ENOSPC and never touches the next
# partition, resizing fails; a missing partition is ENOENT with one line;
# a real directory named x.qcow2 keeps its real file p1; fds cross exec
# with their window.
. "$(dirname "$0")/lib_tools.sh"
require_shim
require sfdisk mkfs.ext4 e2fsck debugfs mkfs.vfat fsck.vfat mcopy mdir mtype mkfs.xfs xfs_repair \
	blockdev dd cmp

U=5eed0000-1111-2222-3333-444455556666
MiB=1048576

# part_bytes DISK N: start and size in bytes of partition N, from sfdisk -d
# of a flat disk (no shim), as "START SIZE".
part_bytes() {
	sfdisk -d "$1" 2>/dev/null | sed -n "s/^[^ ]*[^0-9]$2 : start= *\([0-9]*\), size= *\([0-9]*\),.*/\1 \2/p" |
		{ read -r s n && echo "$((s * 512)) $((n * 512))"; }
}

# partition IMG SIZE LAYOUT DESC N...: a new qemu-made image partitioned by
# sfdisk under the shim; $IMG.flat0 is its flat view, and P<N>/N<N> the
# start/size in bytes of each partition N listed.
partition() {
	_img=$1 _size=$2 _layout=$3 _desc=$4
	shift 4
	qemu-img create -q -f qcow2 "$_img" "$_size"
	run "$_desc" S sfdisk -q --no-reread --no-tell-kernel "$_img" <"$_layout"
	flatten "$_img" "$_img.flat0"
	for _n; do
		set -- $(part_bytes "$_img.flat0" "$_n") 0 0
		eval "P$_n=\$1 N$_n=\$2"
	done
}

# err_lines FILE: the number of qcowshim: lines a command printed.
err_lines() { grep -c '^qcowshim: ' "$1"; }

section "GPT: sfdisk, then a filesystem per partition file"
cat >gpt.sfdisk <<'EOF'
label: gpt
label-id: 6D0DE2C8-5F0D-4A4B-8C2B-1B8B8C1E0001
start=2048, size=64MiB, type=linux, uuid=6D0DE2C8-5F0D-4A4B-8C2B-1B8B8C1E0002
size=32MiB, type=uefi, uuid=6D0DE2C8-5F0D-4A4B-8C2B-1B8B8C1E0003
size=320MiB, type=linux, uuid=6D0DE2C8-5F0D-4A4B-8C2B-1B8B8C1E0004
EOF
IMG=$T/gpt.qcow2
partition "$IMG" 480M gpt.sfdisk "sfdisk writes a GPT with 3 partitions under the shim" 1 2 3
same "partition layout read back from the flat disk" \
	"$MiB $((64 * MiB)) $((65 * MiB)) $((32 * MiB)) $((97 * MiB)) $((320 * MiB))" \
	"$P1 $N1 $P2 $N2 $P3 $N3"

same "stat -c %s of p1, p2, p3 = partition sizes" "$N1 $N2 $N3" \
	"$(S stat -c %s "$IMG/p1" "$IMG/p2" "$IMG/p3" 2>&1 | tr '\n' ' ' | sed 's/ $//')"
same "stat -L -c %s (statx) of p2" "$N2" "$(S stat -L -c %s "$IMG/p2" 2>&1)"
same "blockdev --getsize64 (BLKGETSIZE64) of p3" "$N3" "$(S blockdev --getsize64 "$IMG/p3" 2>&1)"
same "fstat through stdin (stat -c %s -)" "$N1" "$(S sh -c 'stat -c %s - <"$1"' sh "$IMG/p1" 2>&1)"
ino=$(S stat -c '%i' "$IMG" "$IMG/p1" "$IMG/p2" 2>&1 | sort -u | wc -l)
same "the image, p1 and p2 have distinct st_ino" 3 "$ino"

run "mkfs.ext4 on p1 (fixed UUID)" S mkfs.ext4 -q -F -U "$U" -E "hash_seed=$U" "$IMG/p1"
run "mkfs.vfat on p2" S mkfs.vfat --invariant -n PARTFILES "$IMG/p2"
run "mkfs.xfs on p3" S mkfs.xfs -q -f "$IMG/p3"
run "e2fsck -fn on p1 under the shim" S e2fsck -fn "$IMG/p1"
run "xfs_repair -n on p3 under the shim" S xfs_repair -n "$IMG/p3"
printf 'partition files\n' >hello.txt
run "mcopy -i p2 file :: under the shim" S mcopy -i "$IMG/p2" hello.txt ::
run "mdir -i p2 :: lists it" sh -c "'$QCOWSHIM' mdir -i '$IMG/p2' :: | grep -qi 'hello *txt'"
seq 1 20000 >numbers.txt
run "debugfs -w writes a file into p1" S debugfs -w -R "write numbers.txt numbers.txt" "$IMG/p1"
run "e2fsck -fn on p1 after the write" S e2fsck -fn "$IMG/p1"

section "GPT: the flattened disk, checked without the shim"
qcheck "$IMG"
flatten "$IMG" "$T/gpt.flat"
extract "$T/gpt.flat" $((P1 / 512)) $((N1 / 512)) p1.img
extract "$T/gpt.flat" $((P2 / 512)) $((N2 / 512)) p2.img
extract "$T/gpt.flat" $((P3 / 512)) $((N3 / 512)) p3.img
run "e2fsck -fn on the extracted p1" e2fsck -fn p1.img
run "fsck.vfat -n on the extracted p2" fsck.vfat -n p2.img
run "xfs_repair -n on the extracted p3" xfs_repair -n p3.img
same "mtype through @@offset on the flat disk (no shim) = the file" "$(cat hello.txt)" \
	"$(mtype -i "$T/gpt.flat@@$P2" ::hello.txt 2>&1)"
debugfs -R "cat numbers.txt" p1.img 2>/dev/null >numbers.back
same_file "debugfs cat of the extracted p1 (no shim) = the file" numbers.txt numbers.back
# mke2fs through p1 = mke2fs on a plain file of p1's size
truncate -s "$N1" ref1.img
mkfs.ext4 -q -F -U "$U" -E "hash_seed=$U" ref1.img >/dev/null 2>&1
S mkfs.ext4 -q -F -U "$U" -E "hash_seed=$U" "$IMG/p1" >/dev/null 2>&1
flatten "$IMG" "$T/gpt.flat"
extract "$T/gpt.flat" $((P1 / 512)) $((N1 / 512)) p1.img
same_file "mkfs.ext4 through p1 = mkfs.ext4 on a plain file of its size" ref1.img p1.img
extract "$T/gpt.flat" $((P2 / 512)) $((N2 / 512)) p2.before

section "confinement: reads, writes and sizes stop at the partition's end"
head -c 2048 /dev/urandom >rnd.bin
S dd if=rnd.bin of="$IMG/p1" bs=2048 count=1 seek=$((N1 - 1024)) oflag=seek_bytes conv=notrunc \
	>dd.log 2>&1
seek_ok=$?
[ "$seek_ok" -ne 0 ] && grep -q 'No space left on device' dd.log && grep -q '^1024 bytes' dd.log &&
	pass "a 2 KiB write across p1's end writes 1 KiB, then ENOSPC" ||
	{ fail "write across p1's end (exit $seek_ok)"; show_log dd.log; }
run_fails "a write at p1's end fails" \
	S dd if=rnd.bin of="$IMG/p1" bs=512 count=1 seek=$((N1 / 512)) conv=notrunc
grep -q 'No space left on device' "$T/last.log" && pass "... with ENOSPC" ||
	{ fail "write at the end: not ENOSPC"; show_log "$T/last.log"; }
head -c 1024 rnd.bin >rnd.head
S tail -c 1024 "$IMG/p1" >tail.out 2>&1
same_file "tail -c 1024 (lseek SEEK_END) of p1 = the 1 KiB written" rnd.head tail.out
same "a read at p1's end is EOF" 0 "$(S dd if="$IMG/p1" bs=512 skip=$((N1 / 512)) count=1 2>/dev/null | wc -c)"
same "a read across p1's end is short" 512 \
	"$(S dd if="$IMG/p1" bs=1024 skip=$((N1 - 512)) count=1 iflag=skip_bytes 2>/dev/null | wc -c)"
S cat "$IMG/p2" >p2.cat 2>&1
same "cat p2 reads exactly p2's size" "$N2" "$(wc -c <p2.cat)"
run_fails "truncate -s 1M p1 fails" S truncate -s 1M "$IMG/p1"
run_fails "truncate -s +1M p1 fails" S truncate -s +1M "$IMG/p1"
run "truncate to p1's own size succeeds" S truncate -s "$N1" "$IMG/p1"
same "stat of p1 unchanged" "$N1" "$(S stat -c %s "$IMG/p1" 2>&1)"
same "virtual disk size unchanged" $((480 * MiB)) "$(vsize "$IMG")"
qcheck "$IMG"
flatten "$IMG" "$T/gpt.flat"
extract "$T/gpt.flat" $((P2 / 512)) $((N2 / 512)) p2.after
same_file "p2 untouched by the writes at p1's end" p2.before p2.after
dd if="$T/gpt.flat" bs=1024 skip=$(((P1 + N1) / 1024 - 1)) count=1 status=none >flat.tail
same_file "the flat disk holds the 1 KiB at p1's end (no shim)" rnd.head flat.tail
run "fsck.vfat -n on p2 after the writes" fsck.vfat -n p2.after
run_fails "fallocate past p2's end fails" S fallocate -o $((N2 - 512)) -l 4096 "$IMG/p2"
grep -q 'No space left on device' "$T/last.log" && pass "... with ENOSPC" ||
	{ fail "fallocate past the end: not ENOSPC"; show_log "$T/last.log"; }
run "fallocate --punch-hole across p1's end" S fallocate -p -o $((N1 - 1024)) -l $MiB "$IMG/p1"
qcheck "$IMG"
flatten "$IMG" "$T/gpt.flat"
dd if="$T/gpt.flat" bs=1024 skip=$(((P1 + N1) / 1024 - 1)) count=1 status=none >flat.tail
head -c 1024 /dev/zero >zero.1k
same_file "the punched 1 KiB at p1's end reads as zeros (no shim)" zero.1k flat.tail
extract "$T/gpt.flat" $((P2 / 512)) $((N2 / 512)) p2.after
same_file "p2 untouched by the punch" p2.before p2.after

section "system calls on a partition fd (tests/shim/progs/partio.c)"
if cc -std=gnu11 -O1 -Wall -Wextra -Werror -o partio "$QCS_ROOT/tests/shim/progs/partio.c" >cc.log 2>&1; then
	run "partio: sizes, vectored I/O, EOF/ENOSPC, discard/zero/fallocate, ftruncate, sendfile, copy_file_range, O_APPEND/O_EXCL/O_TRUNC, stdio, whole disk in the same process" \
		S ./partio "$IMG" "$IMG/p1" "$N1" "$P1"
else
	fail "compile tests/shim/progs/partio.c"; show_log cc.log
fi
qcheck "$IMG"
flatten "$IMG" "$T/gpt.flat"
extract "$T/gpt.flat" $((P2 / 512)) $((N2 / 512)) p2.after
same_file "p2 untouched by partio" p2.before p2.after
head -c 4096 /dev/zero | tr '\0' '\132' >x5a.4k
head -c 4096 /dev/zero | tr '\0' '\245' >xa5.4k
dd if="$T/gpt.flat" bs=4096 skip=$(((P1 + N1) / 4096 - 1)) count=1 status=none >flat.4k
same_file "p1's last 4 KiB written through the partition fd (no shim)" x5a.4k flat.4k
dd if="$T/gpt.flat" bs=4096 skip=$((P1 / 4096)) count=1 status=none >flat.4k
same_file "p1's first 4 KiB written through the whole-disk fd (no shim)" xa5.4k flat.4k

section "other ways in: stdio, cmp, copy_file_range"
same "sha256sum (stdio) of p2 = that of the extracted p2" "$(sha256sum <p2.before | cut -c1-64)" \
	"$(S sha256sum "$IMG/p2" 2>&1 | cut -c1-64)"
run "cmp of p2 with the extracted p2 under the shim" S cmp "$IMG/p2" p2.before
run "cp (copy_file_range) of p2 to a plain file" S cp "$IMG/p2" p2.cp
same_file "... the copy = the extracted p2" p2.before p2.cp

run "ls -l p2 (lgetxattr) exits 0" S ls -l "$IMG/p2"
[ "$(wc -l <"$T/last.log")" = 1 ] && pass "... and prints just the entry" || show_log "$T/last.log"
run "test -r -a -w p1 in sh (faccessat)" S sh -c '[ -r "$1" ] && [ -w "$1" ] && [ -f "$1" ]' sh "$IMG/p1"
run "test -r p1 in bash (access/eaccess)" S bash -c '[ -r "$1" ] && [ -w "$1" ]' sh "$IMG/p1"
run_fails "test -e of a missing partition is false" S sh -c '[ -e "$1" ]' sh "$IMG/p9"

section "one process: the whole disk and a partition share the image"
# dd reads p2 and writes it into the free space after p3 of the same disk.
FREE=$((420 * MiB))
run "dd from p2 into the whole disk in one process" \
	S dd if="$IMG/p2" of="$IMG" bs=1M seek=$((FREE / MiB)) conv=notrunc
qcheck "$IMG"
flatten "$IMG" "$T/gpt.flat"
extract "$T/gpt.flat" $((FREE / 512)) $((N2 / 512)) copy.img
same_file "the copy in the whole disk = p2 (no shim)" p2.after copy.img
# a partition fd crosses exec: size and reads from the window
same "fstat of an inherited p2 fd in a child program" "$N2" \
	"$(S sh -c 'exec 4<"$1"; stat -L -c %s /dev/fd/4' sh "$IMG/p2" 2>&1)"
same "cat /dev/fd/N of a p2 fd reads p2 (the reopen keeps the window)" "$N2" \
	"$(S sh -c 'exec 4<"$1"; cat /dev/fd/4 | wc -c' sh "$IMG/p2" 2>&1)"
S sh -c 'exec 4<"$1"; exec head -c 512 <&4' sh "$IMG/p2" >boot.inh 2>&1
head -c 512 p2.after >boot.want
same_file "reads on an inherited p2 fd come from p2" boot.want boot.inh

# sh (dash) opens /dev/fd/4 with O_TRUNC: the partition again, never the disk
printf 'label: dos\nstart=2048, size=8MiB, type=83\n' >small.sfdisk
partition "$T/small.qcow2" 16M small.sfdisk "sfdisk: a small MBR disk" 1
run "echo >/dev/fd/4 on a p1 fd (O_TRUNC through /dev/fd)" \
	S sh -c 'exec 4<>"$1"; echo reopened >/dev/fd/4' sh "$T/small.qcow2/p1"
same "... the disk keeps its size" $((16 * MiB)) "$(vsize "$T/small.qcow2")"
same "... p1 keeps its size and got the line" "$N1 reopened" \
	"$(S sh -c 'stat -c %s "$1"; head -n 1 "$1"' sh "$T/small.qcow2/p1" 2>&1 | tr '\n' ' ' | sed 's/ $//')"
qcheck "$T/small.qcow2"

section "missing partitions, precedence and policy"
S cat "$IMG/p9" >miss.out 2>miss.err
rc=$?
[ "$rc" -ne 0 ] && grep -q 'No such file or directory' miss.err && pass "cat p9: ENOENT" ||
	{ fail "cat p9: exit $rc"; show_log miss.err; }
same "one qcowshim line for the missing partition" 1 "$(err_lines miss.err)"
grep -q "^qcowshim: $IMG: no partition 9 (GPT partitions: 1 2 3)\$" miss.err &&
	pass "it names the image and the partitions that exist" ||
	{ fail "message for p9"; show_log miss.err; }
S stat "$IMG/p4" >miss.out 2>miss.err
rc=$?
[ "$rc" -ne 0 ] && grep -q 'No such file or directory' miss.err && [ "$(err_lines miss.err)" = 0 ] &&
	pass "stat p4: ENOENT, silently" || { fail "stat p4: exit $rc"; show_log miss.err; }
run_fails "p0 and p01 are not partition names (ENOTDIR)" S cat "$IMG/p0" "$IMG/p01"
grep -q 'Not a directory' "$T/last.log" && pass "... Not a directory" || show_log "$T/last.log"

mkdir dir.qcow2 && printf 'real file\n' >dir.qcow2/p1
same "a real directory x.qcow2 keeps its real file p1" "real file" "$(S cat dir.qcow2/p1 2>&1)"
same "... and its real size" 10 "$(S stat -c %s dir.qcow2/p1 2>&1)"
run "and a new real file p2 can be created in it" S sh -c 'echo new >dir.qcow2/p2'
same "... as a plain file" "new" "$(cat dir.qcow2/p2)"
printf 'not an image\n' >raw.qcow2
S cat raw.qcow2/p1 >raw.out 2>&1
grep -q 'Not a directory' raw.out && [ "$(err_lines raw.out)" = 0 ] &&
	pass "a non-QCOW2 file named x.qcow2 has no partitions (ENOTDIR, as without the shim)" ||
	{ fail "raw.qcow2/p1"; show_log raw.out; }
cp "$IMG" other.img
run_fails "other.img/p1 is not an image path with the default globs" S cat other.img/p1
same "QCOWSHIM_MATCH='*.img' makes other.img/p2 a partition file" "$N2" \
	"$(QCOWSHIM_MATCH='*.img' S stat -c %s other.img/p2 2>&1)"

S cp --sparse=always "$IMG/p3" p3.sparse >/dev/null 2>&1
same_file "cp --sparse=always (SEEK_DATA/SEEK_HOLE) of p3 = the extracted p3" p3.img p3.sparse
[ "$(du -k p3.sparse | cut -f1)" -lt $((N3 / 1024 / 2)) ] && pass "... and the copy is sparse" ||
	fail "cp --sparse=always of p3: not sparse ($(du -k p3.sparse | cut -f1) KiB)"

section "the table is read at each open (a broken GPT)"
printf 'X' >x.bin
run "break the primary GPT header's CRC through the whole disk" \
	S dd if=x.bin of="$IMG" bs=1 seek=528 conv=notrunc
same "p2 is still found (backup GPT)" "$N2" "$(S stat -c %s "$IMG/p2" 2>&1)"
run "break the backup GPT header's CRC too" \
	S dd if=x.bin of="$IMG" bs=1 seek=$((480 * MiB - 512 + 16)) conv=notrunc
S cat "$IMG/p2" >miss.out 2>miss.err
grep -q "^qcowshim: $IMG: no partition 2: the GPT is invalid (primary: header CRC mismatch; backup: header CRC mismatch)\$" miss.err &&
	grep -q 'No such file or directory' miss.err && pass "p2: ENOENT, the message says why" ||
	{ fail "p2 with both GPT headers broken"; show_log miss.err; }
qcheck "$IMG"

"$QCOWSHIM" --help 2>&1 | grep -q 'IMAGE/pN' && pass "qcowshim --help mentions IMAGE/pN" ||
	fail "qcowshim --help does not mention IMAGE/pN"

section "MBR with an extended partition: logical partitions p5, p6"
cat >dos.sfdisk <<'EOF'
label: dos
label-id: 0x1234abcd
start=2048, size=32MiB, type=c
type=5
size=40MiB, type=83
size=24MiB, type=c
EOF
IMG=$T/dos.qcow2
partition "$IMG" 128M dos.sfdisk "sfdisk writes an MBR with logical partitions under the shim" 1 5 6
same "stat -c %s of p1, p5, p6" "$N1 $N5 $N6" \
	"$(S stat -c %s "$IMG/p1" "$IMG/p5" "$IMG/p6" 2>&1 | tr '\n' ' ' | sed 's/ $//')"
run "mkfs.vfat on p1" S mkfs.vfat --invariant "$IMG/p1"
run "mkfs.ext4 on p5 (logical)" S mkfs.ext4 -q -F -U "$U" "$IMG/p5"
run "mkfs.vfat on p6 (logical)" S mkfs.vfat --invariant "$IMG/p6"
run "mcopy -i p6 file ::" S mcopy -i "$IMG/p6" hello.txt ::
run "e2fsck -fn on p5 under the shim" S e2fsck -fn "$IMG/p5"
S cat "$IMG/p2" >miss.out 2>miss.err
grep -q "^qcowshim: $IMG: partition 2 is the MBR's extended partition" miss.err &&
	grep -q 'No such file or directory' miss.err && pass "p2 (the extended partition): ENOENT, says why" ||
	{ fail "p2 of the MBR"; show_log miss.err; }
S cat "$IMG/p7" >miss.out 2>miss.err
grep -q "^qcowshim: $IMG: no partition 7 (MBR partitions: 1 5 6)\$" miss.err &&
	pass "p7: ENOENT, lists 1 5 6" || { fail "p7 of the MBR"; show_log miss.err; }
qcheck "$IMG"
flatten "$IMG" "$T/dos.flat"
extract "$T/dos.flat" $((P1 / 512)) $((N1 / 512)) d1.img
extract "$T/dos.flat" $((P5 / 512)) $((N5 / 512)) d5.img
extract "$T/dos.flat" $((P6 / 512)) $((N6 / 512)) d6.img
run "fsck.vfat -n on the extracted p1" fsck.vfat -n d1.img
run "e2fsck -fn on the extracted p5" e2fsck -fn d5.img
run "fsck.vfat -n on the extracted p6" fsck.vfat -n d6.img
same "mtype through @@offset of p6 (no shim) = the file" "$(cat hello.txt)" \
	"$(mtype -i "$T/dos.flat@@$P6" ::hello.txt 2>&1)"
dump_norm() { sfdisk -d "$1" 2>&1 | sed -e '/^device:/d' -e 's/^[^ :]*[^0-9]\([0-9][0-9]*\) :/p\1 :/'; }
dump_norm "$IMG.flat0" >d0.dump
dump_norm "$T/dos.flat" >d1.dump
same_file "the MBR table is intact (sfdisk -d before = after)" d0.dump d1.dump

finish
