#!/bin/sh
# Partitioning tools under the shim: sfdisk, fdisk, parted and sgdisk write a
# table into qemu-made and shim-made images; a raw twin receives the same
# commands without the shim.  Judged without the shim: qemu-img check,
# qemu-img compare with the twin (where the tool is deterministic), and the
# table read back by sfdisk/sgdisk/parted from qemu-img convert -O raw output.
# The table is also read back through the shim.
. "$(dirname "$0")/lib_tools.sh"
require_shim
require sfdisk fdisk parted sgdisk

# normalized sfdisk dump: device names and random GUIDs removed.
dump_norm() {
	sfdisk -d "$1" 2>&1 | sed -e 's/^[^ :]*\([0-9][0-9]*\) :/p\1 :/' \
		-e '/^device:/d' -e '/^label-id:/d' -e 's/, uuid=[0-9A-Fa-f-]*//'
}
dump_norm_shim() {
	S sfdisk -d "$1" 2>&1 | sed -e 's/^[^ :]*\([0-9][0-9]*\) :/p\1 :/' \
		-e '/^device:/d' -e '/^label-id:/d' -e 's/, uuid=[0-9A-Fa-f-]*//'
}

# check_table TOOL [NPART]: the table of $IMG read without the shim (flattened by
# qemu-img) and through the shim equals the twin's.
check_table() {
	dump_norm "$TWIN" >"$T/want.dump"
	grep -q "^p${2:-2} :" "$T/want.dump" || { fail "$1: the twin has no partition ${2:-2} (test bug)"; cat "$T/want.dump"; }
	dump_norm "$IMG.flat" >"$T/flat.dump"
	same_file "$1: table read back from qemu-img convert output = twin's" "$T/want.dump" "$T/flat.dump"
	dump_norm_shim "$IMG" >"$T/shim.dump"
	same_file "$1: table read back through the shim (sfdisk -d) = twin's" "$T/want.dump" "$T/shim.dump"
}

cat >gpt.sfdisk <<'EOF'
label: gpt
label-id: 6D0DE2C8-5F0D-4A4B-8C2B-1B8B8C1E0001
first-lba: 2048
start=2048, size=64MiB, type=uefi, name="EFI system", uuid=6D0DE2C8-5F0D-4A4B-8C2B-1B8B8C1E0002
type=linux, name="root", uuid=6D0DE2C8-5F0D-4A4B-8C2B-1B8B8C1E0003
EOF
cat >dos.sfdisk <<'EOF'
label: dos
label-id: 0x1234abcd
start=2048, size=32MiB, type=c, bootable
size=64MiB, type=83
type=5
size=16MiB, type=83
type=82
EOF

for kind in qemu qemu-v2 qemu-pat shim; do
	section "sfdisk GPT, $kind image"
	IMG=$T/sf-$kind.qcow2 TWIN=$T/sf-$kind.raw
	new_image "$kind" "sf-$kind" 256M || continue
	both "sfdisk writes a GPT with 2 partitions ($kind)" gpt.sfdisk sfdisk -q --no-reread --no-tell-kernel @IMG@
	verify_img
	check_table "sfdisk GPT ($kind)"
	run "sgdisk -v finds no GPT problems on the flattened disk ($kind)" sh -c "sgdisk -v '$IMG.flat' | grep -q 'No problems found'"
done

section "sfdisk MBR with logical partitions"
IMG=$T/sfdos.qcow2 TWIN=$T/sfdos.raw
if new_image shim sfdos 200M; then
	both "sfdisk writes a DOS table with an extended partition" dos.sfdisk sfdisk -q --no-reread --no-tell-kernel @IMG@
	verify_img
	check_table "sfdisk DOS"
	n=$(sfdisk -l "$IMG.flat" 2>/dev/null | grep -c "^$IMG.flat[0-9]")
	same "sfdisk -l sees 5 partitions (1,2,3 extended,5,6) on the flattened disk" 5 "$n"
fi

# fdisk: interactive commands on stdin.  GPT GUIDs are random, so the twin is
# compared through the normalized dump, not byte for byte.
section "fdisk"
printf 'g\nn\n1\n2048\n+32M\nt\n1\nn\n2\n\n\nw\n' >fdisk-gpt.in
printf 'o\nn\np\n1\n2048\n+40M\nn\np\n2\n\n\nt\n2\n83\nw\n' >fdisk-dos.in
for kind in qemu shim; do
	IMG=$T/fd-$kind.qcow2 TWIN=$T/fd-$kind.raw
	new_image "$kind" "fd-$kind" 128M || continue
	both "fdisk creates a GPT with 2 partitions ($kind)" fdisk-gpt.in fdisk @IMG@
	qcheck "$IMG"
	flatten "$IMG" "$IMG.flat"
	check_table "fdisk GPT ($kind)"
	S fdisk -l "$IMG" >"$T/fdl.out" 2>&1
	grep -q "Disk $IMG: 128 MiB, 134217728 bytes" "$T/fdl.out" &&
		pass "fdisk -l through the shim reports the virtual size ($kind)" ||
		{ fail "fdisk -l through the shim does not report 128 MiB ($kind)"; show_log "$T/fdl.out" 6; }
	grep -q "^${IMG}p1 *2048 *67583 *65536 *32M EFI System" "$T/fdl.out" &&
		pass "fdisk -l through the shim lists partition 1 ($kind)" ||
		{ fail "fdisk -l through the shim: partition 1 missing ($kind)"; show_log "$T/fdl.out" 6; }
done
IMG=$T/fddos.qcow2 TWIN=$T/fddos.raw
if new_image qemu-pat fddos 96M; then
	# fdisk 'o' keeps no old data; the disk identifier is random.
	both "fdisk creates a DOS table over existing data" fdisk-dos.in fdisk @IMG@
	qcheck "$IMG"
	flatten "$IMG" "$IMG.flat"
	check_table "fdisk DOS"
	# Outside the first sector and the unused gap the twin and image must agree.
	if cmp -s "$IMG.flat" "$TWIN" 2>/dev/null; then
		pass "fdisk DOS: flattened disk = twin"
	else
		# only the 4-byte disk identifier at 440 may differ
		cmp -l "$IMG.flat" "$TWIN" | awk '$1 < 441 || $1 > 444 { bad = 1 } END { exit bad }' &&
			pass "fdisk DOS: flattened disk = twin except the random disk identifier" ||
			{ fail "fdisk DOS: flattened disk differs from twin beyond the disk identifier"; cmp -l "$IMG.flat" "$TWIN" | head -n 5 | sed 's/^/#      | /'; }
	fi
fi

section "parted"
for kind in qemu-v2 shim; do
	IMG=$T/pa-$kind.qcow2 TWIN=$T/pa-$kind.raw
	new_image "$kind" "pa-$kind" 256M || continue
	both "parted -s mklabel gpt + 2 x mkpart + set esp ($kind)" - parted -s @IMG@ \
		mklabel gpt mkpart ESP fat32 1MiB 65MiB set 1 esp on mkpart root ext4 65MiB 100%
	qcheck "$IMG"
	flatten "$IMG" "$IMG.flat"
	check_table "parted ($kind)"
	parted -s -m "$TWIN" unit s print 2>&1 | sed 1,2d >"$T/want.pm"
	parted -s -m "$IMG.flat" unit s print 2>&1 | sed 1,2d >"$T/flat.pm"
	S parted -s -m "$IMG" unit s print 2>&1 | sed 1,2d >"$T/shim.pm"
	grep -q '^2:133120s:522239s:389120s::root:;' "$T/want.pm" || { fail "parted twin table unexpected (test bug)"; cat "$T/want.pm"; }
	same_file "parted print of the flattened disk = twin's ($kind)" "$T/want.pm" "$T/flat.pm"
	same_file "parted print through the shim = twin's ($kind)" "$T/want.pm" "$T/shim.pm"
	S parted -s "$IMG" unit B print >"$T/pb.out" 2>&1
	grep -q '^Disk .*: 268435456B' "$T/pb.out" &&
		pass "parted through the shim sees a 268435456-byte disk ($kind)" ||
		{ fail "parted through the shim: wrong disk size ($kind)"; show_log "$T/pb.out" 6; }
done
IMG=$T/pa-resize.qcow2 TWIN=$T/pa-resize.raw
if new_image qemu pa-resize 128M; then
	both "parted: mklabel msdos, mkpart, resizepart" - parted -s @IMG@ \
		mklabel msdos mkpart primary ext4 1MiB 50MiB resizepart 1 100MiB
	qcheck "$IMG"
	flatten "$IMG" "$IMG.flat"
	check_table "parted msdos resizepart" 1
fi

section "sgdisk (deterministic GUIDs: byte-compared with the twin)"
for kind in qemu shim; do
	IMG=$T/sg-$kind.qcow2 TWIN=$T/sg-$kind.raw
	new_image "$kind" "sg-$kind" 256M || continue
	both "sgdisk -o -n -t -c -u creates a GPT ($kind)" - sgdisk -o \
		-U 0F0F0F0F-1111-2222-3333-444444444444 \
		-n 1:2048:+64M -t 1:ef00 -c 1:ESP -u 1:0F0F0F0F-1111-2222-3333-000000000001 \
		-n 2:0:0 -t 2:8300 -c 2:root -u 2:0F0F0F0F-1111-2222-3333-000000000002 @IMG@
	verify_img
	check_table "sgdisk ($kind)"
	# The "Sector size" line differs by design: the shim answers the block
	# size ioctls (BLKSSZGET/BLKPBSZGET) that fail with ENOTTY on a raw file.
	sgdisk -p "$TWIN" 2>&1 | sed '1d; /^Sector size/d' >"$T/want.sg"
	sgdisk -p "$IMG.flat" 2>&1 | sed '1d; /^Sector size/d' >"$T/flat.sg"
	S sgdisk -p "$IMG" 2>&1 | sed '1d; /^Sector size/d' >"$T/shim.sg"
	grep -q 'Partition GUID code: EF00\|^ *1 *2048 *133119' "$T/want.sg" || { fail "sgdisk -p of the twin: partition 1 missing (test bug)"; cat "$T/want.sg"; }
	same_file "sgdisk -p of the flattened disk = twin's ($kind)" "$T/want.sg" "$T/flat.sg"
	same_file "sgdisk -p through the shim = twin's ($kind)" "$T/want.sg" "$T/shim.sg"
	# Second pass: modify the existing table (delete 2, make 2 and 3).
	both "sgdisk modifies an existing table ($kind)" - sgdisk -d 2 \
		-n 2:0:+100M -u 2:0F0F0F0F-1111-2222-3333-000000000003 \
		-n 3:0:0 -u 3:0F0F0F0F-1111-2222-3333-000000000004 @IMG@
	verify_img
	check_table "sgdisk modify ($kind)"
	run "sgdisk -v on the flattened disk: no problems ($kind)" sh -c "sgdisk -v '$IMG.flat' | grep -q 'No problems found'"
done

finish
