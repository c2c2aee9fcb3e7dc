#!/bin/sh
# Filesystem tools under the shim: mkfs.ext4, mkfs.xfs, mkfs.btrfs and
# mkfs.vfat on whole qemu-made and shim-made images and on GPT partitions
# (through offsets), then the matching checker on qemu-img's flat view
# (partitions extracted with dd), without the shim: e2fsck -fn, xfs_repair -n,
# btrfs check, fsck.vfat -n.  Deterministic tools (mke2fs with
# E2FSPROGS_FAKE_TIME and fixed UUIDs, mkfs.vfat --invariant, sfdisk with
# fixed ids) are also byte-compared with a raw twin via qemu-img compare.
. "$(dirname "$0")/lib_tools.sh"
require_shim
require mkfs.ext4 e2fsck mkfs.xfs xfs_repair xfs_db mkfs.btrfs btrfs mkfs.vfat fsck.vfat \
	blkid wipefs sfdisk

U=5eed0000-1111-2222-3333-444455556666

section "mkfs.ext4 on whole images"
for kind in qemu shim; do
	IMG=$T/ext4-$kind.qcow2 TWIN=$T/ext4-$kind.raw
	new_image "$kind" "ext4-$kind" 128M || continue
	both "mkfs.ext4 on the whole image ($kind)" - mkfs.ext4 -q -F -U "$U" -E "hash_seed=$U" @IMG@
	verify_img
	run "e2fsck -fn on the flattened disk ($kind)" e2fsck -fn "$IMG.flat"
	run "e2fsck -fn through the shim ($kind)" S e2fsck -fn "$IMG"
	# A read-write e2fsck pass (-fy) writes the superblock; same on the twin.
	both "e2fsck -fy through the shim ($kind)" - e2fsck -fy @IMG@
	verify_img
	run "dumpe2fs through the shim ($kind)" S dumpe2fs -h "$IMG"
	grep -q "^Filesystem UUID: *$U" "$T/last.log" &&
		pass "dumpe2fs through the shim reads the UUID ($kind)" ||
		{ fail "dumpe2fs through the shim: UUID not found ($kind)"; show_log "$T/last.log" 5; }
done

section "mkfs.xfs on whole images (320 MiB: xfs needs >= 300 MiB)"
for kind in qemu-v2 shim; do
	IMG=$T/xfs-$kind.qcow2 TWIN=$T/xfs-$kind.raw
	new_image "$kind" "xfs-$kind" 320M || continue
	# UUIDs and timestamps differ between runs: no byte comparison.
	both "mkfs.xfs on the whole image ($kind)" - mkfs.xfs -q -f @IMG@
	qcheck "$IMG"
	flatten "$IMG" "$IMG.flat"
	run "xfs_repair -n on the flattened disk ($kind)" xfs_repair -n "$IMG.flat"
	run "xfs_repair -n through the shim ($kind)" S xfs_repair -n "$IMG"
	want=$(xfs_db -r -c 'sb 0' -c 'print dblocks blocksize uuid' "$IMG.flat" 2>&1)
	got=$(S xfs_db -r -c 'sb 0' -c 'print dblocks blocksize uuid' "$IMG" 2>&1)
	same "xfs_db through the shim reads the superblock qemu sees ($kind)" "$want" "$got"
	case $want in "dblocks = 81920"*) pass "xfs uses the whole 320 MiB ($kind)" ;;
	*) fail "xfs superblock on the flattened disk: $want" ;; esac
done

section "mkfs.btrfs on whole images (160 MiB), populated with --rootdir"
mkdir -p tree/sub/deeper
echo "hello btrfs" >tree/hello.txt
head -c 700000 /dev/urandom >tree/sub/random.bin
seq 1 20000 >tree/sub/deeper/numbers.txt
for kind in qemu shim; do
	IMG=$T/btrfs-$kind.qcow2 TWIN=$T/btrfs-$kind.raw
	new_image "$kind" "btrfs-$kind" 160M || continue
	both "mkfs.btrfs --rootdir on the whole image ($kind)" - mkfs.btrfs -q -f -r tree @IMG@
	qcheck "$IMG"
	flatten "$IMG" "$IMG.flat"
	run "btrfs check on the flattened disk ($kind)" btrfs check "$IMG.flat"
	run "btrfs check through the shim ($kind)" S btrfs check "$IMG"
	rm -rf restored && mkdir restored
	if btrfs restore "$IMG.flat" restored >"$T/rs.log" 2>&1 && diff -r tree restored >"$T/rs.log" 2>&1; then
		pass "btrfs restore from the flattened disk gives back the --rootdir tree ($kind)"
	else
		fail "btrfs restore from the flattened disk differs from the --rootdir tree ($kind)"
		show_log "$T/rs.log" 6
	fi
done

section "mkfs.vfat on whole images"
for kind in qemu-pat shim; do
	IMG=$T/vfat-$kind.qcow2 TWIN=$T/vfat-$kind.raw
	new_image "$kind" "vfat-$kind" 64M || continue
	both "mkfs.vfat on the whole image ($kind)" - mkfs.vfat --invariant -i 1234ABCD -n QCOWSHIM @IMG@
	verify_img
	run "fsck.vfat -n on the flattened disk ($kind)" fsck.vfat -n "$IMG.flat"
	run "fsck.vfat -n through the shim ($kind)" S fsck.vfat -n "$IMG"
	got=$(S blkid -p -o value -s UUID "$IMG" 2>&1)
	same "blkid -p through the shim finds the vfat UUID ($kind)" 1234-ABCD "$got"
done

section "GPT partitions: vfat ESP and ext4 root through offsets"
cat >gpt.sfdisk <<'EOF'
label: gpt
label-id: 0BADC0DE-0000-4000-8000-000000000001
start=2048, size=131072, type=uefi, name="ESP", uuid=0BADC0DE-0000-4000-8000-000000000002
start=133120, size=385024, type=linux, name="root", uuid=0BADC0DE-0000-4000-8000-000000000003
EOF
for kind in qemu shim; do
	IMG=$T/parts-$kind.qcow2 TWIN=$T/parts-$kind.raw
	new_image "$kind" "parts-$kind" 256M || continue
	both "sfdisk GPT ($kind)" gpt.sfdisk sfdisk -q --no-reread --no-tell-kernel @IMG@
	both "mkfs.vfat --offset 2048 on partition 1 ($kind)" - mkfs.vfat --invariant -i 0E5F0001 \
		-n ESP --offset 2048 @IMG@ 65536
	both "mkfs.ext4 -E offset on partition 2 ($kind)" - mkfs.ext4 -q -F -U "$U" \
		-E "hash_seed=$U,offset=$((133120 * 512))" @IMG@ $((385024 / 2))k
	verify_img
	extract "$IMG.flat" 2048 131072 p1.img
	extract "$IMG.flat" 133120 385024 p2.img
	run "fsck.vfat -n on partition 1 of the flattened disk ($kind)" fsck.vfat -n p1.img
	run "e2fsck -fn on partition 2 of the flattened disk ($kind)" e2fsck -fn p2.img
	run "e2fsck -fn 'img?offset=' through the shim ($kind)" S e2fsck -fn "$IMG?offset=$((133120 * 512))"
	run "sfdisk --verify on the flattened disk ($kind)" sfdisk --verify "$IMG.flat"
	# The GPT must have survived both mkfs runs.
	sfdisk -d "$TWIN" | sed '/^device:/d; s/^[^ ]*\([0-9]\) :/p\1 :/' >want.d
	sfdisk -d "$IMG.flat" | sed '/^device:/d; s/^[^ ]*\([0-9]\) :/p\1 :/' >flat.d
	same_file "GPT intact after mkfs on both partitions ($kind)" want.d flat.d
	got=$(S blkid -p -O $((133120 * 512)) -o value -s UUID "$IMG" 2>&1)
	same "blkid -p -O through the shim finds the ext4 UUID in partition 2 ($kind)" "$U" "$got"
done

section "wipefs"
IMG=$T/wipe.qcow2 TWIN=$T/wipe.raw
if new_image qemu wipe 64M; then
	both "mkfs.ext4 on the image to wipe" - mkfs.ext4 -q -F -U "$U" -E "hash_seed=$U" @IMG@
	run "wipefs lists the ext4 signature through the shim" S wipefs "$IMG"
	grep -q ext4 "$T/last.log" && pass "wipefs through the shim sees ext4" ||
		{ fail "wipefs through the shim does not list ext4"; show_log "$T/last.log" 4; }
	both "wipefs -a erases the signature" - wipefs -a @IMG@
	verify_img
	got=$(blkid -p -o value -s TYPE "$IMG.flat" 2>&1)
	same "no signature left on the flattened disk" "" "$got"
fi

section "growing a disk: truncate +, sgdisk -e, sfdisk -N 2 (grow), resize2fs"
cat >grow.sfdisk <<'EOF'
label: gpt
label-id: 0BADC0DE-0000-4000-8000-0000000000D1
start=2048, size=65536, type=uefi, uuid=0BADC0DE-0000-4000-8000-0000000000D2
start=67584, size=131072, type=linux, uuid=0BADC0DE-0000-4000-8000-0000000000D3
EOF
for kind in qemu shim; do
	IMG=$T/grow-$kind.qcow2 TWIN=$T/grow-$kind.raw
	new_image "$kind" "grow-$kind" 128M || continue
	both "sfdisk GPT ($kind)" grow.sfdisk sfdisk -q --no-reread --no-tell-kernel @IMG@
	both "mkfs.ext4 on partition 2 ($kind)" - mkfs.ext4 -q -F -U "$U" -E "hash_seed=$U,offset=$((67584 * 512))" @IMG@ 65536k
	both "truncate -s 256M ($kind)" - truncate -s 256M @IMG@
	both "sgdisk -e moves the backup GPT to the new end ($kind)" - sgdisk -e @IMG@
	printf ', +\n' >grow.in
	both "sfdisk -N 2 grows partition 2 ($kind)" grow.in sfdisk -q -N 2 --no-reread --no-tell-kernel @IMG@
	size2=$(sfdisk -d "$TWIN" | sed -n 's/.*2 : start= *67584, size= *\([0-9]*\).*/\1/p')
	[ -n "$size2" ] && [ "$size2" -gt 400000 ] || { fail "twin: partition 2 not grown (test bug): $size2"; size2=131072; }
	both "resize2fs 'img?offset=' to the new partition size ($kind)" - resize2fs \
		"@IMG@?offset=$((67584 * 512))" $((size2 / 2))K
	verify_img
	extract "$IMG.flat" 67584 "$size2" p2.img
	run "e2fsck -fn on the grown partition ($kind)" e2fsck -fn p2.img
	got=$(dumpe2fs -h p2.img 2>/dev/null | sed -n 's/^Block count: *//p')
	bs=$(dumpe2fs -h p2.img 2>/dev/null | sed -n 's/^Block size: *//p')
	case $bs in
	'' | 0 | *[!0-9]*) fail "dumpe2fs cannot read the grown partition ($kind)" ;;
	*) same "the file system fills the grown partition ($kind)" $((size2 * 512 / bs)) "$got" ;;
	esac
done

finish
