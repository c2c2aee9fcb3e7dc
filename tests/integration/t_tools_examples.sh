#!/bin/sh
# The examples stay working: examples/demo.sh (make demo) runs to its OK
# line; examples/gpt-esp-root.sh builds the same disk as a .qcow2 (re-running
# itself under qcowshim) and as a raw file, and the two hold the same files
# (judged without the shim on qemu-img's flat view); examples/inspect.sh
# reports the same contents for both.
. "$(dirname "$0")/lib_tools.sh"
require_shim
require sfdisk mkfs.vfat mkfs.ext4 mcopy mmd mdir debugfs e2fsck fsck.vfat blkid
export QCOWSHIM

section "examples/demo.sh"
sh "$QCS_ROOT/examples/demo.sh" >demo.out 2>&1
rc=$?
same "demo.sh exits 0" 0 "$rc"
grep -q '^demo: OK: 1 GiB (1073741824 bytes) virtual disk' demo.out && pass "demo.sh prints its OK line: $(grep '^demo: OK' demo.out)" ||
	{ fail "demo.sh: no OK line"; show_log demo.out 15; }

section "examples/gpt-esp-root.sh: .qcow2 and raw builds hold the same files"
mkdir -p esp/EFI/BOOT root/etc root/var/lib
head -c 150000 /dev/urandom >esp/EFI/BOOT/BOOTX64.EFI
echo 'timeout 3' >esp/loader.conf
echo example >root/etc/hostname
seq 1 30000 >root/var/lib/data.txt
run "gpt-esp-root.sh out.qcow2 (re-executes itself under qcowshim)" \
	sh "$QCS_ROOT/examples/gpt-esp-root.sh" out.qcow2 300M esp root 64
grep -q '^out.qcow2: GPT, ESP 64 MiB (FAT16)' "$T/last.log" && pass "gpt-esp-root.sh reports the layout" ||
	{ fail "gpt-esp-root.sh: unexpected report"; show_log "$T/last.log" 3; }
is_qcow2 out.qcow2 && pass "out.qcow2 is QCOW2" || fail "out.qcow2 is not QCOW2"
run "gpt-esp-root.sh out.raw (no shim)" sh "$QCS_ROOT/examples/gpt-esp-root.sh" out.raw 300M esp root 64
qcheck out.qcow2
flatten out.qcow2 out.flat
sfdisk -d out.raw | sed '/^device:/d; /label-id/d; s/^[^ ]*\([0-9]\) :/p\1 :/; s/, uuid=[0-9A-F-]*//' >want.d
sfdisk -d out.flat | sed '/^device:/d; /label-id/d; s/^[^ ]*\([0-9]\) :/p\1 :/; s/, uuid=[0-9A-F-]*//' >got.d
same_file "same partition layout (qcow2 flattened vs raw)" want.d got.d
if esp_root out.flat got.d; then
	rm -rf back && mkdir -p back
	MTOOLS_SKIP_CHECK=1 mcopy -n -i esp.img ::/EFI/BOOT/BOOTX64.EFI back/BOOTX64.EFI 2>/dev/null
	same_file "BOOTX64.EFI from the flattened ESP" esp/EFI/BOOT/BOOTX64.EFI back/BOOTX64.EFI
	debugfs -R "dump /var/lib/data.txt $T/back/data.txt" root.img >/dev/null 2>&1
	same_file "data.txt from the flattened root" root/var/lib/data.txt back/data.txt
fi

section "examples/inspect.sh"
run "inspect.sh out.qcow2 (re-executes itself under qcowshim)" sh "$QCS_ROOT/examples/inspect.sh" out.qcow2
sed 's/out\.qcow2p\([0-9]\)/IMG\1/g; s/out\.qcow2/IMG/g' "$T/last.log" | tr -s ' ' >insp.qcow2.txt
run "inspect.sh out.raw (no shim)" sh "$QCS_ROOT/examples/inspect.sh" out.raw
sed 's/out\.raw/IMG/g' "$T/last.log" | tr -s ' ' >insp.raw.txt
grep -q 'ext4, label root' insp.raw.txt && grep -q 'vfat, label ESP' insp.raw.txt &&
	pass "inspect.sh finds both file systems on the raw build" || { fail "inspect.sh on raw: unexpected"; cat insp.raw.txt; }
# Partition names differ (out.qcow2p1 vs out.raw1) and so does the column padding.
same_file "inspect.sh reports the same for the .qcow2 and the raw build" insp.raw.txt insp.qcow2.txt

finish
