#!/bin/sh
# Real tools on unusual images: compressed (deflate, zstd), overlays on qcow2
# and raw backing files, internal snapshots, extended L2, 512 B and 2 MiB
# clusters, refcount widths 1 and 64, lazy refcounts left dirty by a crash,
# metadata preallocation, an external data file, and a 20 TiB disk whose
# backup GPT lies beyond ext4's 16 TiB file size limit.
# The workload (sfdisk, mkfs.vfat and mkfs.ext4 at offsets, debugfs -w) runs
# on the image under the shim and on a raw twin without it; judged without
# the shim: qemu-img check, qemu-img compare, fsck of the flattened
# partitions, and for overlays/snapshots that the base/snapshot is untouched.
. "$(dirname "$0")/lib_tools.sh"
require_shim
require sfdisk mkfs.vfat fsck.vfat mkfs.ext4 e2fsck debugfs sgdisk

U=5eed0000-1234-5678-9abc-def012345678
cat >gpt.sfdisk <<'EOF'
label: gpt
label-id: 0BADC0DE-0000-4000-8000-0000000000C1
start=2048, size=32768, type=uefi, name="ESP", uuid=0BADC0DE-0000-4000-8000-0000000000C2
start=34816, size=159744, type=linux, name="root", uuid=0BADC0DE-0000-4000-8000-0000000000C3
EOF
seq 1 30000 >file.txt
head -c 400000 /dev/urandom >file.bin
# text.raw: 96 MiB of compressible content with holes, for compressed images.
truncate -s 96M text.raw
seq 1 400000 | dd of=text.raw conv=notrunc status=none
seq 1 100000 | dd of=text.raw bs=1M seek=40 conv=notrunc status=none
seq 1 100000 | dd of=text.raw bs=1M seek=90 conv=notrunc status=none

# workload KIND: the same commands on $TWIN (no shim) and $IMG (shim).
workload() {
	both "sfdisk GPT ($1)" gpt.sfdisk sfdisk -q --no-reread --no-tell-kernel @IMG@ || return 1
	both "mkfs.vfat --offset 2048 ($1)" - mkfs.vfat --invariant -i 0E5F00C1 -n ESP --offset 2048 @IMG@ 16384
	both "mkfs.ext4 -E offset ($1)" - mkfs.ext4 -q -F -U "$U" -E "hash_seed=$U,offset=$((34816 * 512))" @IMG@ 79872k
	both "debugfs -w writes two files ($1)" - debugfs -w -R "write file.bin /file.bin" "@IMG@?offset=$((34816 * 512))"
	both "debugfs -w writes a second file ($1)" - debugfs -w -R "write file.txt /file.txt" "@IMG@?offset=$((34816 * 512))"
	verify_img
	extract "$IMG.flat" 2048 32768 p1.img
	extract "$IMG.flat" 34816 159744 p2.img
	run "fsck.vfat -n on the flattened ESP ($1)" fsck.vfat -n p1.img
	run "e2fsck -fn on the flattened root ($1)" e2fsck -fn p2.img
	rm -f back.bin
	debugfs -R "dump /file.bin $T/back.bin" p2.img >/dev/null 2>&1
	same_file "file.bin from the flattened root ($1)" file.bin back.bin
}

# mk KIND: makes $IMG and $TWIN for one image kind.
mk() {
	IMG=$T/$1.qcow2 TWIN=$T/$1.raw
	rm -f "$IMG" "$TWIN"
	case $1 in
	zlib) qemu-img convert -q -c -f raw -O qcow2 text.raw "$IMG" ;;
	zstd) qemu-img convert -q -c -f raw -O qcow2 -o compression_type=zstd text.raw "$IMG" ;;
	extl2) qemu-img create -q -f qcow2 -o extended_l2=on,cluster_size=65536 "$IMG" 96M &&
		qemu-io -t unsafe -f qcow2 -c 'write -P 0x61 4k 8k' -c 'write -P 0x62 100k 3k' "$IMG" >/dev/null ;;
	c512) qemu-img create -q -f qcow2 -o cluster_size=512 "$IMG" 96M ;;
	c2m) qemu-img create -q -f qcow2 -o cluster_size=2M "$IMG" 96M &&
		qemu-io -t unsafe -f qcow2 -c 'write -P 0x63 0 3M' "$IMG" >/dev/null ;;
	rc1) qemu-img create -q -f qcow2 -o refcount_bits=1 "$IMG" 96M ;;
	rc64) qemu-img create -q -f qcow2 -o refcount_bits=64,cluster_size=4096 "$IMG" 96M ;;
	prealloc) qemu-img create -q -f qcow2 -o preallocation=metadata "$IMG" 96M ;;
	lazydirty) qemu-img create -q -f qcow2 -o lazy_refcounts=on "$IMG" 96M &&
		{ qemu-io -f qcow2 -c 'write -P 0x64 0 2M' -c 'write -P 0x65 50M 1M' -c abort "$IMG" >/dev/null 2>&1; true; } ;;
	overlay) qemu-img create -q -f qcow2 base-q.qcow2 96M &&
		qemu-io -f qcow2 -c 'write -P 0x66 0 5M' -c 'write -P 0x67 60M 1M' base-q.qcow2 >/dev/null &&
		qemu-img create -q -f qcow2 -b base-q.qcow2 -F qcow2 "$IMG" ;;
	overlay-raw) cp text.raw base-r.raw &&
		qemu-img create -q -f qcow2 -b base-r.raw -F raw "$IMG" ;;
	snapshot) qemu-img create -q -f qcow2 "$IMG" 96M &&
		qemu-io -f qcow2 -c 'write -P 0x68 0 4M' -c 'write -P 0x69 70M 2M' "$IMG" >/dev/null &&
		qemu-img snapshot -c before "$IMG" ;;
	datafile) qemu-img create -q -f qcow2 -o data_file="$1.data" "$IMG" 96M ;;
	*) echo "mk: $1?" >&2; return 2 ;;
	esac >"$T/mk.log" 2>&1 || { fail "create the $1 image"; show_log "$T/mk.log" 4; return 1; }
	qemu-img convert -U -f qcow2 -O raw "$IMG" "$TWIN" >"$T/mk.log" 2>&1 ||
		{ fail "qemu-img convert of the new $1 image"; show_log "$T/mk.log" 4; return 1; }
	return 0
}

for kind in zlib zstd extl2 c512 c2m rc1 rc64 prealloc lazydirty datafile; do
	section "$kind image"
	mk "$kind" || continue
	run "cmp through the shim: the new image reads as qemu reads it ($kind)" S cmp "$IMG" "$TWIN"
	workload "$kind"
done

section "external data file: small writes into one cluster keep each other"
IMG=$T/dfsmall.qcow2 TWIN=$T/dfsmall.raw
rm -f "$IMG" "$TWIN" dfsmall.data
if qemu-img create -q -f qcow2 -o data_file=dfsmall.data "$IMG" 16M >"$T/mk.log" 2>&1; then
	truncate -s 16M "$TWIN"
	printf AAAA >a4.txt
	printf BBBB >b4.txt
	both "dd writes 4 bytes at 0" - dd if=a4.txt of=@IMG@ bs=1 conv=notrunc status=none
	both "dd writes 4 bytes at 512" - dd if=b4.txt of=@IMG@ bs=1 seek=512 conv=notrunc status=none
	verify_img
	same "qemu reads AAAA at 0 and BBBB at 512" "AAAA BBBB" \
		"$(dd if="$IMG.flat" bs=1 count=4 status=none) $(dd if="$IMG.flat" bs=1 skip=512 count=4 status=none)"
else
	fail "create the dfsmall image"; show_log "$T/mk.log" 3
fi

section "overlay on a qcow2 backing file"
if mk overlay; then
	before=$(sha256sum <base-q.qcow2)
	workload overlay
	same "the backing file is untouched" "$before" "$(sha256sum <base-q.qcow2)"
	qcheck "$T/base-q.qcow2"
fi

section "overlay on a raw backing file"
if mk overlay-raw; then
	before=$(sha256sum <base-r.raw)
	workload overlay-raw
	same "the raw backing file is untouched" "$before" "$(sha256sum <base-r.raw)"
fi

section "image with an internal snapshot"
if mk snapshot; then
	cp "$TWIN" snap-before.raw
	workload snapshot
	rm -f snap-after.raw
	if qemu-img convert -U -f qcow2 -l snapshot.name=before -O raw "$IMG" snap-after.raw >"$T/s.log" 2>&1; then
		same_file "the snapshot still holds the pre-workload disk" snap-before.raw snap-after.raw
	else
		fail "qemu-img convert -l snapshot.name=before"; show_log "$T/s.log" 3
	fi
	qemu-img snapshot -l "$IMG" | grep -q before && pass "snapshot 'before' still listed" ||
		fail "snapshot 'before' lost"
fi

section "20 TiB disk: the backup GPT lies beyond ext4's 16 TiB file size limit"
IMG=$T/big.qcow2
if run "truncate -s 20T big.qcow2 through the shim" S truncate -s 20T "$IMG"; then
	same "virtual size 20 TiB" 21990232555520 "$(vsize "$IMG")"
	run "sgdisk creates a GPT on the 20 TiB disk" S sgdisk -o \
		-U 0F0F0F0F-1111-2222-3333-0000000000B1 -n 1:2048:+1G -n 2:0:0 "$IMG"
	qcheck "$IMG"
	last=$((21990232555520 / 512 - 1))
	qemu-io -r -f qcow2 -c "read -v $((last * 512)) 16" "$IMG" >"$T/q.log" 2>&1
	grep -q 'EFI.PART' "$T/q.log" && pass "qemu sees the backup GPT header in the last sector" ||
		{ fail "no backup GPT header in the last sector (qemu-io read)"; show_log "$T/q.log" 3; }
	qemu-io -r -f qcow2 -c "read -v 512 16" "$IMG" >"$T/q.log" 2>&1
	grep -q 'EFI.PART' "$T/q.log" && pass "qemu sees the primary GPT header in sector 1" ||
		{ fail "no primary GPT header (qemu-io read)"; show_log "$T/q.log" 3; }
	run "sgdisk -v through the shim" S sgdisk -v "$IMG"
	grep -q 'No problems found' "$T/last.log" && pass "sgdisk -v: no problems" ||
		{ fail "sgdisk -v reports problems"; show_log "$T/last.log" 5; }
	got=$(S sfdisk -d "$IMG" 2>&1 | sed -n 's/^last-lba: //p')
	same "sfdisk -d through the shim reads the backup-derived last LBA" $((last - 33)) "$got"
	hs=$(stat -c %s "$IMG")
	[ "$hs" -lt 67108864 ] && pass "host file stays small ($hs bytes)" || fail "host file is $hs bytes"
fi

finish
