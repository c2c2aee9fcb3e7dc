#!/bin/sh
# tree-to-image.sh - turn a root file system tree (the output of debootstrap,
# mkosi, a container export...) into a bootable-layout disk image: GPT, an
# EFI system partition filled from TREE/boot/efi (EFI/BOOT/BOOTX64.EFI and
# friends, copied with mtools), and a root partition made with
# `mkfs.ext4 -d` from the rest of the tree, with an /etc/fstab that mounts
# both by UUID.  The root partition gets the discoverable-partitions type of
# this machine's architecture, so systemd-gpt-auto-generator finds it.
#
#   qcowshim examples/tree-to-image.sh TREE OUT.qcow2 [SIZE]
#
# SIZE (e.g. 2G) defaults to the tree's size plus half, plus the ESP.
# ESP_MIB (default 64) sets the ESP size.  The tree is not modified: the
# root file system is staged in a temporary copy (it needs that much space
# in $TMPDIR).  Run it under qcowshim; it re-executes itself under qcowshim
# when found on PATH or in ../build.  OUT may also be a raw file (no .qcow2
# suffix): nothing below knows about QCOW2.  No root, no loop devices.
# Needs: sfdisk, mkfs.vfat, mtools, mkfs.ext4 (e2fsprogs >= 1.43), e2fsck,
# fsck.vfat.  Prints one summary line; exits non-zero on the first failure.
set -eu

[ $# -ge 2 ] && [ $# -le 3 ] || {
	echo "usage: [qcowshim] $0 TREE OUT.qcow2 [SIZE]" >&2
	exit 2
}
tree=$1 out=$2 size=${3:-}
[ -d "$tree" ] || { echo "$0: $tree: not a directory" >&2; exit 2; }

case ${LD_PRELOAD-} in
*libqcowshim.so*) ;;
*)
	case $out in *.qcow2)
		here=$(cd "$(dirname "$0")" && pwd)
		for w in "${QCOWSHIM:-}" "$here/../build/qcowshim" "$(command -v qcowshim || true)"; do
			[ -n "$w" ] && [ -x "$w" ] && exec "$w" "$0" "$@"
		done
		echo "$0: run me under qcowshim (not found on PATH or in ../build)" >&2
		exit 2 ;;
	esac ;;
esac

export MTOOLS_SKIP_CHECK=1
esp_mib=${ESP_MIB:-64}
work=$(mktemp -d "${TMPDIR:-/tmp}/tree-to-image.XXXXXX")
trap 'rm -rf "$work"' EXIT
trap 'exit 130' INT TERM
# quiet CMD...: run CMD, show its output only when it fails.
quiet() {
	if ! "$@" >"$work/log" 2>&1; then
		echo "$0: failed: $*" >&2
		sed 's/^/    /' "$work/log" >&2
		exit 1
	fi
}

# The root partition type from the Discoverable Partitions Specification.
case $(uname -m) in
x86_64) root_type=4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709 ;;
aarch64) root_type=B921B045-1DF0-41C3-AF44-4C6F280D3FAE ;;
*) root_type=0FC63DAF-8483-4772-8E79-3D69D8477DE4 ;; # generic Linux data
esac

# Stage the root file system: the tree without the ESP's contents (boot/efi
# stays as an empty mount point), plus an fstab naming both file systems.
mkdir "$work/root" && cp -a "$tree/." "$work/root/"
rm -rf "$work/root/boot/efi"
mkdir -p "$work/root/boot/efi" "$work/root/etc"
root_uuid=$(cat /proc/sys/kernel/random/uuid)
esp_id=$(od -An -tx1 -N4 /dev/urandom | tr -d ' \n' | tr a-f A-F)
esp_uuid=$(echo "$esp_id" | sed 's/^\(....\)/\1-/')
cat >"$work/root/etc/fstab" <<EOF
# written by tree-to-image.sh
UUID=$root_uuid	/		ext4	defaults	0 1
UUID=$esp_uuid	/boot/efi	vfat	umask=0077	0 2
EOF

if [ -z "$size" ]; then
	kib=$(du -sk "$work/root" | cut -f1)
	size=$((kib * 3 / 2 / 1024 + 32 + esp_mib + 2))M
fi

rm -f "$out"
quiet truncate -s "$size" "$out"
printf 'label: gpt\nsize=%sMiB, type=uefi, name="EFI system"\ntype=%s, name="root"\n' \
	"$esp_mib" "$root_type" | quiet sfdisk --no-reread --no-tell-kernel "$out"
set -- $(sfdisk -d "$out" | sed -n 's/.*: start= *\([0-9]*\), size= *\([0-9]*\).*/\1 \2/p')
[ $# -eq 4 ] || { echo "$0: unexpected partition table" >&2; exit 1; }
esp_start=$1 esp_size=$2 root_start=$3 root_size=$4

# ESP: mkfs.vfat picks FAT12/16/32 for the size; mtools writes at IMAGE@@OFFSET.
quiet mkfs.vfat -i "$esp_id" -n ESP --offset "$esp_start" "$out" $((esp_size / 2))
esp="$out@@$((esp_start * 512))"
if [ -d "$tree/boot/efi" ] && [ -n "$(ls -A "$tree/boot/efi")" ]; then
	quiet mcopy -s -m -i "$esp" "$tree/boot/efi/"* ::/
fi
[ -f "$tree/boot/efi/EFI/BOOT/BOOTX64.EFI" ] || [ -f "$tree/boot/efi/EFI/BOOT/BOOTAA64.EFI" ] ||
	echo "$0: note: no EFI/BOOT/BOOT*.EFI under $tree/boot/efi: firmware will not find a boot loader" >&2

# Root: ext4 filled from the staged tree in one pass.
quiet mkfs.ext4 -q -F -L root -U "$root_uuid" -d "$work/root" \
	-E offset=$((root_start * 512)) "$out" $((root_size / 2))k

# Check both file systems (FAT on a dd copy of its partition).
quiet e2fsck -fn "$out?offset=$((root_start * 512))"
quiet dd if="$out" of="$work/esp.img" bs=1M iflag=skip_bytes,count_bytes \
	skip=$((esp_start * 512)) count=$((esp_size * 512)) conv=sparse status=none
quiet fsck.vfat -n "$work/esp.img"
echo "$out: $size, GPT: ESP $((esp_size / 2048)) MiB (vfat $esp_uuid), root $((root_size / 2048)) MiB (ext4 $root_uuid)"
