#!/bin/sh
# The newer examples do what their headers say, judged without the shim:
#   examples/tree-to-image.sh   a tree becomes GPT + ESP (vfat, from
#                               boot/efi) + ext4 root with an fstab by UUID;
#   examples/grow-image.sh      a qemu-made overlay of that image grows (disk,
#                               GPT, last partition, ext4), the same as on a
#                               raw twin, and its backing file stays unchanged;
#   examples/raw2qcow2.c        (make examples) a raw file converted with the
#                               library alone equals it for qemu-img compare.
. "$(dirname "$0")/lib_tools.sh"
require_shim
require sfdisk sgdisk mkfs.vfat mkfs.ext4 mcopy mtype debugfs dumpe2fs e2fsck fsck.vfat blkid resize2fs numfmt sha256sum
export QCOWSHIM
EX=$QCS_ROOT/examples

# uuid_free FILE: an sfdisk dump without what differs between two builds.
uuid_free() { sed '/^device:/d; /label-id/d; s/^[^ ]*\([0-9]\) :/p\1 :/; s/, uuid=[0-9A-F-]*//' "$1"; }

section "examples/tree-to-image.sh"
mkdir -p tree/boot/efi/EFI/BOOT tree/boot/efi/loader tree/etc tree/usr/bin tree/usr/share/demo tree/var/empty
head -c 150000 /dev/urandom >tree/boot/efi/EFI/BOOT/BOOTX64.EFI
echo 'timeout 3' >tree/boot/efi/loader/loader.conf
echo image-host >tree/etc/hostname
seq 1 40000 >tree/usr/share/demo/numbers.txt
head -c 300000 /dev/urandom >tree/usr/bin/tool && chmod 0755 tree/usr/bin/tool
ln -s usr/bin tree/bin
(cd tree && find . | sort) >tree.list
export ESP_MIB=32 # tree-to-image.sh's ESP size: small keeps the test fast
run "tree-to-image.sh tree disk.qcow2 (re-executes itself under qcowshim)" sh "$EX/tree-to-image.sh" tree disk.qcow2
summary=$(tail -n 1 "$T/last.log")
note "$summary"
root_uuid=$(echo "$summary" | sed -n 's/.*(ext4 \([0-9a-f-]*\)).*/\1/p')
esp_uuid=$(echo "$summary" | sed -n 's/.*(vfat \([0-9A-F-]*\)).*/\1/p')
[ -n "$root_uuid" ] && [ -n "$esp_uuid" ] && pass "summary names both file systems' UUIDs" ||
	fail "summary line: '$summary'"
same "the tree is not modified" "$(cat tree.list)" "$(cd tree && find . | sort)"
is_qcow2 disk.qcow2 && pass "disk.qcow2 is QCOW2" || fail "disk.qcow2 is not QCOW2"
qcheck disk.qcow2
flatten disk.qcow2 disk.flat
sfdisk -d disk.flat >disk.d 2>&1
grep -q '^label: gpt' disk.d && pass "flattened: GPT" || { fail "flattened: no GPT"; show_log disk.d 8; }
case $(uname -m) in
x86_64) rtype=4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709 ;;
aarch64) rtype=B921B045-1DF0-41C3-AF44-4C6F280D3FAE ;;
*) rtype=0FC63DAF-8483-4772-8E79-3D69D8477DE4 ;;
esac
same "partition types: ESP, then the discoverable root type" "C12A7328-F81F-11D2-BA4B-00A0C93EC93B $rtype" \
	"$(sed -n 's/.*type=\([0-9A-F-]*\).*/\1/p' disk.d | tr '\n' ' ' | sed 's/ $//')"
run "sgdisk -v on the flattened disk: both GPT headers valid" sgdisk -v disk.flat
if esp_root disk.flat disk.d; then
	mkdir -p back
	mcopy -n -i esp.img ::/EFI/BOOT/BOOTX64.EFI back/BOOTX64.EFI 2>/dev/null
	same_file "ESP: EFI/BOOT/BOOTX64.EFI (copied with mtools)" tree/boot/efi/EFI/BOOT/BOOTX64.EFI back/BOOTX64.EFI
	same "ESP: loader/loader.conf" "timeout 3" "$(mtype -i esp.img ::/loader/loader.conf 2>/dev/null | tr -d '\r')"
	same "ESP volume UUID = fstab's" "$esp_uuid" "$(blkid -p -o value -s UUID esp.img)"
	same "root UUID = fstab's" "$root_uuid" "$(blkid -p -o value -s UUID root.img)"
	same "root label" root "$(blkid -p -o value -s LABEL root.img)"
	debugfs -R "cat /etc/fstab" root.img >fstab 2>/dev/null
	grep -q "^UUID=$root_uuid[[:space:]]*/[[:space:]]*ext4" fstab &&
		grep -q "^UUID=$esp_uuid[[:space:]]*/boot/efi[[:space:]]*vfat" fstab &&
		pass "/etc/fstab mounts both by UUID" || { fail "/etc/fstab"; show_log fstab 5; }
	debugfs -R "dump /usr/share/demo/numbers.txt $T/back/numbers.txt" root.img >/dev/null 2>&1
	same_file "root: usr/share/demo/numbers.txt" tree/usr/share/demo/numbers.txt back/numbers.txt
	debugfs -R "dump -p /usr/bin/tool $T/back/tool" root.img >/dev/null 2>&1
	same_file "root: usr/bin/tool" tree/usr/bin/tool back/tool
	same "root: usr/bin/tool keeps mode 0755" 755 "$(stat -c %a back/tool)"
	debugfs -R "stat /bin" root.img 2>/dev/null | grep -q 'Fast link dest: "usr/bin"' &&
		pass "root: the bin -> usr/bin symlink" || fail "root: /bin is not the symlink"
	same "root: /boot/efi is an empty mount point" ". .." \
		"$(debugfs -R 'ls /boot/efi' root.img 2>/dev/null | tr -s ' \n' '\n\n' | grep -v '^[0-9(]' | grep . | tr '\n' ' ' | sed 's/ $//')"
fi
size=$(vsize disk.qcow2)
run "tree-to-image.sh tree disk.raw (no shim, same size)" sh "$EX/tree-to-image.sh" tree disk.raw "$size"
sfdisk -d disk.raw >raw.d 2>&1
uuid_free raw.d >want.d
uuid_free disk.d >got.d
same_file "the .qcow2 and raw builds have the same partition layout" want.d got.d

section "examples/grow-image.sh on a qemu-made overlay (a cloud image and its VM disk)"
sha256sum disk.qcow2 >base.sum
qemu-img create -q -f qcow2 -b disk.qcow2 -F qcow2 vm.qcow2
cp disk.flat vm.raw # the raw twin of the overlay
old=$(vsize vm.qcow2)
run "grow-image.sh vm.qcow2 +64M (re-executes itself under qcowshim)" sh "$EX/grow-image.sh" vm.qcow2 +64M
cp "$T/last.log" grow.out
grep -q 'backing file: disk.qcow2' grow.out && pass "the inspection shows the backing file" ||
	{ fail "grow-image.sh did not show the backing file"; show_log grow.out 12; }
run "grow-image.sh vm.raw +64M (no shim)" sh "$EX/grow-image.sh" vm.raw +64M
run "the backing file is unchanged (sha256)" sha256sum -c base.sum
qcheck disk.qcow2
qcheck vm.qcow2
same "overlay virtual size grew by 64 MiB" $((old + 67108864)) "$(vsize vm.qcow2)"
qemu-img info -U vm.qcow2 2>/dev/null | grep -q '^backing file: disk.qcow2' &&
	pass "the overlay still names its backing file" || fail "the overlay lost its backing file"
qcompare "$T/vm.qcow2" vm.raw
flatten vm.qcow2 vm.flat
run "sgdisk -v on the grown disk: backup GPT at the new end" sgdisk -v vm.flat
sfdisk -d vm.flat >vm.d 2>&1
last=$(sed -n 's/^last-lba: *//p' vm.d)
set -- $(sed -n 's/.*: start= *\([0-9]*\), size= *\([0-9]*\).*/\1 \2/p' vm.d)
if [ $# -eq 4 ]; then
	same "the root partition now ends at the last usable sector" "$last" $(($3 + $4 - 1))
	extract vm.flat "$3" "$4" vroot.img
	run "e2fsck -fn on the grown, flattened root" e2fsck -fn vroot.img
	bc=$(dumpe2fs -h vroot.img 2>/dev/null | sed -n 's/^Block count: *//p')
	bs=$(dumpe2fs -h vroot.img 2>/dev/null | sed -n 's/^Block size: *//p')
	fsb=$((bc * bs))
	[ "$fsb" -le $(($4 * 512)) ] && [ "$fsb" -gt $(($4 * 512 - 4096 * 2)) ] &&
		pass "ext4 fills the grown partition ($fsb of $(($4 * 512)) bytes)" ||
		fail "ext4 size $fsb bytes for a $(($4 * 512))-byte partition"
	debugfs -R "dump /usr/share/demo/numbers.txt $T/back/numbers2.txt" vroot.img >/dev/null 2>&1
	same_file "root data intact after the resize" tree/usr/share/demo/numbers.txt back/numbers2.txt
else
	fail "no two partitions on the flattened vm.qcow2"
fi
run_fails "grow-image.sh refuses to shrink" sh "$EX/grow-image.sh" vm.qcow2 50M
same "the refused shrink changed nothing" $((old + 67108864)) "$(vsize vm.qcow2)"

section "grow-image.sh grows the partition that ends last (Debian's cloud layout: p1 after p14, p15)"
S truncate -s 48M deb.qcow2
printf 'label: gpt\n%s\n%s\n%s\n' "deb.qcow2p15 : start=2048, size=8192, type=uefi" \
	"deb.qcow2p14 : start=10240, size=2048, type=21686148-6449-6E6F-744E-656564454649" \
	"deb.qcow2p1 : start=12288, type=linux" >deb.sfdisk
run "sfdisk: p15 ESP, p14 BIOS boot, p1 root last" S sfdisk -q --no-reread --no-tell-kernel deb.qcow2 <deb.sfdisk
p1=$(S sfdisk -d deb.qcow2 2>/dev/null | sed -n 's/^deb.qcow2p1 : start= *12288, size= *\([0-9]*\).*/\1/p')
run "mkfs.ext4 on p1" S mkfs.ext4 -q -E offset=$((12288 * 512)) deb.qcow2 $((p1 / 2))k
qemu-img create -q -f qcow2 -b deb.qcow2 -F qcow2 debvm.qcow2
run "grow-image.sh debvm.qcow2 +16M" sh "$EX/grow-image.sh" debvm.qcow2 +16M
grep -q '^== partition 1: now' "$T/last.log" && pass "it picked p1" || { fail "wrong partition"; show_log "$T/last.log" 4; }
qcheck debvm.qcow2
flatten debvm.qcow2 debvm.flat
sfdisk -d debvm.flat >debvm.d 2>&1
last=$(sed -n 's/^last-lba: *//p' debvm.d)
p1=$(sed -n 's/^[^ ]*1 : start= *12288, size= *\([0-9]*\).*/\1/p' debvm.d)
same "p1 ends at the new last usable sector" "$last" $((12288 + ${p1:-0} - 1))
same "p14 and p15 unchanged" "10240 2048 2048 8192" \
	"$(sed -n 's/^[^ ]*1[45] : start= *\([0-9]*\), size= *\([0-9]*\).*/\1 \2/p' debvm.d | tr '\n' ' ' | sed 's/ $//')"
extract debvm.flat 12288 "${p1:-0}" debroot.img
run "e2fsck -fn on the grown p1" e2fsck -fn debroot.img

section "examples/raw2qcow2.c (make examples): the library alone"
bin=$QCS_BUILD/examples/raw2qcow2
if [ -x "$bin" ]; then
	truncate -s 24M r.raw
	head -c 3000000 /dev/urandom | dd of=r.raw bs=1M seek=5000000 oflag=seek_bytes iflag=fullblock conv=notrunc status=none
	seq 1 1000 | dd of=r.raw bs=1M seek=20971000 oflag=seek_bytes iflag=fullblock conv=notrunc status=none
	run "raw2qcow2 r.raw r.qcow2" "$bin" r.raw r.qcow2
	grep -q '^r.qcow2: QCOW2 v3, 25165824 bytes virtual, 65536-byte clusters' "$T/last.log" &&
		pass "raw2qcow2 reports: $(cat "$T/last.log")" || { fail "raw2qcow2 report"; show_log "$T/last.log" 3; }
	qcheck r.qcow2
	qcompare "$T/r.qcow2" r.raw
	alloc=$(qemu-img map -U --output=json r.qcow2 | grep -c '"data": true')
	[ "$(du -k r.qcow2 | cut -f1)" -lt 8192 ] && pass "zero chunks stay unallocated ($(du -k r.qcow2 | cut -f1) KiB on disk, $alloc data extents)" ||
		fail "r.qcow2 takes $(du -k r.qcow2 | cut -f1) KiB"
	run "raw2qcow2 -c 12 -2 (4 KiB clusters, v2)" "$bin" -c 12 -2 r.raw r2.qcow2
	qemu-img info -U r2.qcow2 >r2.info 2>&1
	grep -q 'cluster_size: 4096' r2.info && grep -q 'compat: 0.10' r2.info &&
		pass "qemu-img info: compat 0.10, 4 KiB clusters" || { fail "r2.qcow2 header"; show_log r2.info 8; }
	qcheck r2.qcow2
	qcompare "$T/r2.qcow2" r.raw
	run_fails "raw2qcow2 refuses to overwrite an existing file" "$bin" r.raw r.qcow2
	qcheck r.qcow2
else
	fail "not built: $bin (make examples)"
fi

finish
