#!/bin/sh
# gpt-esp-root.sh - build a GPT disk image with an EFI system partition
# (FAT32) and an ext4 root partition, filled from two directories, using
# only ordinary tools (sfdisk, mkfs.vfat, mtools, mkfs.ext4) on a .qcow2 path.
#
#   qcowshim examples/gpt-esp-root.sh OUT.qcow2 SIZE ESP_DIR ROOT_DIR [ESP_MIB]
#
# Run it under qcowshim (it re-executes itself under qcowshim when found on
# PATH or next to it in ../build).  The same script builds a raw image when
# OUT does not end in .qcow2: nothing in it knows about QCOW2.
# Needs: sfdisk, mkfs.vfat, mcopy/mmd (mtools), mkfs.ext4 (e2fsprogs >= 1.43
# for -d), e2fsck, fsck.vfat.  Copy it and adapt it.
set -eu

usage() {
	echo "usage: [qcowshim] $0 OUT.qcow2 SIZE ESP_DIR ROOT_DIR [ESP_MIB]" >&2
	echo "  e.g. qcowshim $0 disk.qcow2 2G esp/ rootfs/ 260" >&2
	exit 2
}
[ $# -ge 4 ] || usage
out=$1 size=$2 espdir=$3 rootdir=$4 espmib=${5:-260}
[ -d "$espdir" ] || { echo "$0: $espdir: not a directory" >&2; exit 2; }
[ -d "$rootdir" ] || { echo "$0: $rootdir: not a directory" >&2; exit 2; }

# Not under the shim yet?  Re-run this script under qcowshim.
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
log=$(mktemp "${TMPDIR:-/tmp}/gpt-esp-root.XXXXXX")
trap 'rm -f "$log"' EXIT
# quiet CMD...: run CMD, show its output only when it fails.
quiet() {
	if ! "$@" >"$log" 2>&1; then
		echo "$0: failed: $*" >&2
		sed 's/^/    /' "$log" >&2
		exit 1
	fi
}

rm -f "$out"
quiet truncate -s "$size" "$out"            # creates the image (O_CREAT)
printf 'label: gpt\nsize=%sMiB, type=uefi, name="EFI system"\ntype=linux, name="root"\n' "$espmib" |
	quiet sfdisk --no-reread --no-tell-kernel "$out"

# Partition starts and sizes in 512-byte sectors, from the table just written.
set -- $(sfdisk -d "$out" | sed -n 's/.*: start= *\([0-9]*\), size= *\([0-9]*\).*/\1 \2/p')
[ $# -eq 4 ] || { echo "$0: unexpected partition table" >&2; exit 1; }
esp_start=$1 esp_size=$2 root_start=$3 root_size=$4

# ESP: FAT at its offset; mtools addresses it as IMAGE@@BYTEOFFSET.  FAT32
# needs 65525 clusters, so small ESPs get FAT16 (firmware reads both).
fat=32
[ "$espmib" -lt 260 ] && fat=16
quiet mkfs.vfat -F "$fat" -n ESP --offset "$esp_start" "$out" $((esp_size / 2))
esp="$out@@$((esp_start * 512))"
(cd "$espdir" && find . -mindepth 1 -type d | sed 's|^\./||') | while read -r d; do
	quiet mmd -D s -i "$esp" "::/$d"
done
(cd "$espdir" && find . -type f | sed 's|^\./||') | while read -r f; do
	quiet mcopy -m -o -i "$esp" "$espdir/$f" "::/$f"
done

# Root: ext4 populated from the directory in one go (-d), at its offset.
quiet mkfs.ext4 -q -F -L root -d "$rootdir" -E offset=$((root_start * 512)) \
	"$out" $((root_size / 2))k

# Check both file systems in place (e2fsck reads IMAGE?offset=BYTES) and,
# for FAT, on a copy of the partition made with dd.
quiet e2fsck -fn "$out?offset=$((root_start * 512))"
espcopy=$(mktemp "${TMPDIR:-/tmp}/esp.XXXXXX")
trap 'rm -f "$log" "$espcopy"' EXIT
quiet dd if="$out" of="$espcopy" bs=1M iflag=skip_bytes,count_bytes skip=$((esp_start * 512)) count=$((esp_size * 512)) conv=sparse status=none
quiet fsck.vfat -n "$espcopy"
echo "$out: GPT, ESP $((esp_size / 2048)) MiB (FAT$fat) at sector $esp_start, root $((root_size / 2048)) MiB (ext4) at sector $root_start"
