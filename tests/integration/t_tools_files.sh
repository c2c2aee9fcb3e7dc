#!/bin/sh
# Copying files into filesystems inside images under the shim: debugfs -w
# (write, mkdir, rm), mkfs.ext4 -d, and mtools (mmd, mcopy, mdel) on a vfat
# ESP at an offset.  Files are read back without the shim from qemu-img's
# flat view (debugfs dump, mcopy out) and through the shim, and must be
# byte-identical; fsck and qemu-img check must pass.
. "$(dirname "$0")/lib_tools.sh"
require_shim
require mkfs.ext4 debugfs e2fsck mkfs.vfat fsck.vfat mcopy mmd mdel mtype mdir sfdisk

U=5eed0000-aaaa-bbbb-cccc-ddddeeeeffff
mkdir -p src/dir/sub
head -c 3000000 /dev/urandom >src/big.bin
seq 1 50000 >src/numbers.txt
printf 'tiny' >src/tiny.txt
: >src/empty
head -c 70001 /dev/urandom >src/dir/odd.bin
echo "nested" >src/dir/sub/n.txt
touch -d @1700000000 src/big.bin src/numbers.txt src/tiny.txt src/empty src/dir/odd.bin src/dir/sub/n.txt
# mkfs.ext4 -d copies atimes.  Read everything once now, so that relatime
# does not update them between the twin's run and the image's run.
find src -type f -exec cat {} + >/dev/null
ls -R src >/dev/null

OFF2=$((133120 * 512))
cat >gpt.sfdisk <<'EOF'
label: gpt
label-id: 0BADC0DE-0000-4000-8000-0000000000F1
start=2048, size=131072, type=uefi, name="ESP", uuid=0BADC0DE-0000-4000-8000-0000000000F2
start=133120, size=120832, type=linux, name="root", uuid=0BADC0DE-0000-4000-8000-0000000000F3
EOF

# debugfs_cmds: the same debugfs script for twin and image.
cat >debugfs.cmds <<EOF
mkdir /etc
mkdir /data
write $T/src/big.bin /data/big.bin
write $T/src/numbers.txt /data/numbers.txt
write $T/src/tiny.txt /etc/tiny.txt
write $T/src/empty /etc/empty
write $T/src/dir/odd.bin /data/odd.bin
symlink /etc/link /data/tiny.txt
write $T/src/numbers.txt /data/doomed.txt
rm /data/doomed.txt
EOF

# dump_check DESC IMAGE_OR_FLAT DEBUGFS_PREFIX: read files back and compare.
dump_check() {
	_how=$1 _dev=$2; shift 2
	rm -rf out && mkdir out
	_bad=""
	for _f in data/big.bin:big.bin data/numbers.txt:numbers.txt etc/tiny.txt:tiny.txt \
		etc/empty:empty data/odd.bin:dir/odd.bin; do
		_in=${_f%%:*} _want=src/${_f#*:}
		"$@" debugfs -R "dump /$_in out/x" "$_dev" >"$T/dump.log" 2>&1
		cmp -s "$_want" out/x || _bad="$_bad /$_in"
		rm -f out/x
	done
	if [ -z "$_bad" ]; then pass "debugfs dump $_how: 5 files identical"
	else fail "debugfs dump $_how: differ or missing:$_bad"; show_log "$T/dump.log" 4; fi
}

section "debugfs -w writes files into ext4 on whole images"
for kind in qemu shim; do
	IMG=$T/dbg-$kind.qcow2 TWIN=$T/dbg-$kind.raw
	new_image "$kind" "dbg-$kind" 64M || continue
	both "mkfs.ext4 ($kind)" - mkfs.ext4 -q -F -U "$U" -E "hash_seed=$U" @IMG@
	both "debugfs -w -f script: mkdir, write x5, symlink, rm ($kind)" - debugfs -w -f debugfs.cmds @IMG@
	verify_img
	run "e2fsck -fn on the flattened disk ($kind)" e2fsck -fn "$IMG.flat"
	dump_check "from the flattened disk ($kind)" "$IMG.flat"
	dump_check "through the shim ($kind)" "$IMG" S
	got=$(S debugfs -R 'cat /etc/tiny.txt' "$IMG" 2>/dev/null)
	same "debugfs cat through the shim ($kind)" tiny "$got"
	n=$(debugfs -R 'ls -l /data' "$IMG.flat" 2>/dev/null | grep -c doomed)
	same "removed file is gone on the flattened disk ($kind)" 0 "$n"
done

section "mkfs.ext4 -d populates a partition at an offset"
for kind in qemu-pat shim; do
	IMG=$T/popd-$kind.qcow2 TWIN=$T/popd-$kind.raw
	new_image "$kind" "popd-$kind" 128M || continue
	both "sfdisk GPT ($kind)" gpt.sfdisk sfdisk -q --no-reread --no-tell-kernel @IMG@
	both "mkfs.ext4 -d src -E offset=$OFF2 ($kind)" - mkfs.ext4 -q -F -U "$U" \
		-E "hash_seed=$U,offset=$OFF2" -d src @IMG@ $((120832 / 2))k
	verify_img
	extract "$IMG.flat" 133120 120832 p2.img
	run "e2fsck -fn on partition 2 of the flattened disk ($kind)" e2fsck -fn p2.img
	rm -rf rd && mkdir rd
	debugfs -R "rdump / $T/rd" p2.img >"$T/rd.log" 2>&1
	rm -rf rd/lost+found
	if diff -r src rd >"$T/rd.log" 2>&1; then pass "rdump of the flattened partition = source tree ($kind)"
	else fail "rdump of the flattened partition differs from the source tree ($kind)"; show_log "$T/rd.log" 5; fi
	# debugfs with ?offset= through the shim, read-write: add one more file.
	both "debugfs -w 'img?offset=' writes a file through the shim ($kind)" - \
		debugfs -w -R "write $T/src/tiny.txt /added.txt" "@IMG@?offset=$OFF2"
	verify_img
	extract "$IMG.flat" 133120 120832 p2.img
	got=$(debugfs -R 'cat /added.txt' p2.img 2>/dev/null)
	same "added file reads back from the flattened partition ($kind)" tiny "$got"
	run "e2fsck -fn on partition 2 after the addition ($kind)" e2fsck -fn p2.img
done

section "mtools on a vfat ESP at 1 MiB"
for kind in qemu shim; do
	IMG=$T/esp-$kind.qcow2 TWIN=$T/esp-$kind.raw
	new_image "$kind" "esp-$kind" 128M || continue
	both "sfdisk GPT ($kind)" gpt.sfdisk sfdisk -q --no-reread --no-tell-kernel @IMG@
	both "mkfs.vfat --offset 2048 ($kind)" - mkfs.vfat --invariant -i 0E5F00F1 -n ESP --offset 2048 @IMG@ 65536
	run "mmd ::/EFI ::/EFI/BOOT through the shim ($kind)" S mmd -i "$IMG@@1M" ::/EFI ::/EFI/BOOT
	run "mcopy 4 files through the shim ($kind)" S mcopy -i "$IMG@@1M" src/big.bin src/numbers.txt \
		src/tiny.txt src/dir/odd.bin ::/EFI/BOOT/
	run "mcopy -s a directory tree through the shim ($kind)" S mcopy -s -i "$IMG@@1M" src/dir ::/
	run "mdel a file through the shim ($kind)" S mdel -i "$IMG@@1M" ::/EFI/BOOT/tiny.txt
	qcheck "$IMG"
	flatten "$IMG" "$IMG.flat"
	extract "$IMG.flat" 2048 131072 esp.img
	run "fsck.vfat -n on the flattened ESP ($kind)" fsck.vfat -n esp.img
	rm -rf mo && mkdir mo
	_bad=""
	for f in big.bin numbers.txt odd.bin; do
		want=src/$f; [ "$f" = odd.bin ] && want=src/dir/odd.bin
		mcopy -n -i esp.img "::/EFI/BOOT/$f" "mo/$f" >"$T/mc.log" 2>&1
		cmp -s "$want" "mo/$f" || _bad="$_bad $f"
	done
	mcopy -n -i esp.img ::/dir/sub/n.txt mo/n.txt >"$T/mc.log" 2>&1
	cmp -s src/dir/sub/n.txt mo/n.txt || _bad="$_bad dir/sub/n.txt"
	if [ -z "$_bad" ]; then pass "mcopy out of the flattened ESP: 4 files identical ($kind)"
	else fail "mcopy out of the flattened ESP: differ or missing:$_bad ($kind)"; show_log "$T/mc.log" 4; fi
	if mdir -i esp.img ::/EFI/BOOT 2>/dev/null | grep -qi '^tiny'; then fail "deleted tiny.txt still listed ($kind)"
	else pass "deleted file is gone ($kind)"; fi
	got=$(S mtype -i "$IMG@@1M" ::/EFI/BOOT/numbers.txt 2>&1 | sha256sum)
	same "mtype through the shim = source ($kind)" "$(sha256sum <src/numbers.txt)" "$got"
	got=$(S mcopy -n -i "$IMG@@1M" ::/EFI/BOOT/big.bin - 2>/dev/null | sha256sum)
	same "mcopy to stdout through the shim = source ($kind)" "$(sha256sum <src/big.bin)" "$got"
done

finish
