#!/bin/sh
# inspect.sh - list what is inside a disk image, read-only, with stock tools:
# the partition table (sfdisk), each partition's file system (blkid), and
# the top directory of each ext2/3/4 (debugfs) and FAT (mtools) partition.
# No qemu-nbd, no loop devices, no root.
#
#   qcowshim examples/inspect.sh IMAGE.qcow2
#
# Re-executes itself under qcowshim when found (on PATH or in ../build).
# Works unchanged on a raw image.
set -eu
[ $# -eq 1 ] || { echo "usage: [qcowshim] $0 IMAGE" >&2; exit 2; }
img=$1
[ -e "$img" ] || { echo "$0: $img: no such file" >&2; exit 2; }
case ${LD_PRELOAD-} in
*libqcowshim.so*) ;;
*)
	case $img in *.qcow2)
		here=$(cd "$(dirname "$0")" && pwd)
		for w in "${QCOWSHIM:-}" "$here/../build/qcowshim" "$(command -v qcowshim || true)"; do
			[ -n "$w" ] && [ -x "$w" ] && exec "$w" "$0" "$@"
		done
		echo "$0: run me under qcowshim (not found on PATH or in ../build)" >&2
		exit 2 ;;
	esac ;;
esac
export MTOOLS_SKIP_CHECK=1

echo "$img: $(stat -c %s "$img") bytes"
if ! sfdisk -d "$img" >/dev/null 2>&1; then
	echo "no partition table"
	echo "whole disk: $(blkid -p -o export "$img" 2>/dev/null | sed -n 's/^TYPE=//p' || true)"
	exit 0
fi
sfdisk -l "$img" | sed -n '/^Disklabel type/p; /^Device/,$p'
sfdisk -d "$img" | sed -n 's/^\([^ ]*\) : start= *\([0-9]*\), size= *\([0-9]*\).*/\1 \2 \3/p' |
while read -r name start size; do
	off=$((start * 512))
	fstype=$(blkid -p -O "$off" -o value -s TYPE "$img" 2>/dev/null || true)
	label=$(blkid -p -O "$off" -o value -s LABEL "$img" 2>/dev/null || true)
	echo
	echo "== $name: $((size / 2048)) MiB at byte $off: ${fstype:-no file system}${label:+, label $label}"
	case $fstype in
	ext2 | ext3 | ext4)
		debugfs -R 'ls -l /' "$img?offset=$off" 2>/dev/null |
			awk 'NF >= 9 && $NF != "." && $NF != ".." { print "   " $NF "\t" $6 " bytes" }' ;;
	vfat)
		mdir -b -i "$img@@$off" ::/ 2>/dev/null | sed 's|^::/|   |' ;;
	esac
done
