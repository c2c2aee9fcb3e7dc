#!/bin/sh
# grow-image.sh - inspect a disk image and grow it: the virtual disk, its
# last partition and the ext2/3/4 file system in it, as growpart and
# resize2fs do on first boot of a cloud image, but offline, without root,
# nbd or loop devices.  Typical use: give a cloud image's overlay more room.
#
#   qemu-img create -f qcow2 -b debian-12-genericcloud-amd64.qcow2 -F qcow2 vm.qcow2
#   qcowshim examples/grow-image.sh vm.qcow2 +10G     (or an absolute size: 20G)
#
# When the image is an overlay, the backing file is only read: everything
# this writes lands in the overlay (and so do the new, empty clusters), and
# the base image stays byte-for-byte unchanged.  Steps: show the image
# (qemu-img info, which runs untouched under the shim, and sfdisk -l), grow
# the virtual disk (truncate), move the GPT backup header to the new end
# (sfdisk --relocate), grow the partition that ends last (sfdisk -N, GPT or
# MBR), then e2fsck -f and resize2fs it at its offset.  Other file systems
# are left as they are, with a note (xfs_growfs and btrfs resize need a
# mounted file system).  The image is never shrunk.
# Runs under qcowshim (re-executes itself when found on PATH or in
# ../build); works unchanged on a raw image.  Needs: sfdisk, blkid,
# e2fsck, resize2fs, numfmt.
set -eu

[ $# -eq 2 ] || { echo "usage: [qcowshim] $0 IMAGE [+]SIZE" >&2; exit 2; }
img=$1 want=$2
[ -f "$img" ] || { echo "$0: $img: no such file" >&2; exit 2; }
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
log=$(mktemp "${TMPDIR:-/tmp}/grow-image.XXXXXX")
trap 'rm -f "$log"' EXIT
quiet() {
	if ! "$@" >"$log" 2>&1; then
		echo "$0: failed: $*" >&2
		sed 's/^/    /' "$log" >&2
		exit 1
	fi
}

# 1. Inspect.  Under the shim, stat and sfdisk see the flat virtual disk.
old=$(stat -c %s "$img")
echo "== $img: $old bytes ($(numfmt --to=iec "$old"))"
if command -v qemu-img >/dev/null 2>&1; then
	qemu-img info "$img" | sed -n 's/^\(file format\|virtual size\|disk size\|backing file\): */   \1: /p'
fi
sfdisk -l "$img" | sed -n '/^Disklabel type/p; /^Device/,$p' | sed 's/^/   /'

case $want in
+*) new=$((old + $(numfmt --from=iec "${want#+}"))) ;;
*) new=$(numfmt --from=iec "$want") ;;
esac
[ "$new" -ge "$old" ] || { echo "$0: $want is smaller than the image ($old bytes): not shrinking" >&2; exit 1; }

# The partition that ends last (cloud images often put the root partition
# last on the disk with a lower number: Debian's is p1 after p14 and p15).
sfdisk -d "$img" >"$log"
label=$(sed -n 's/^label: *//p' "$log")
set -- $(sed -n 's/^[^ ]*[^0-9]\([0-9][0-9]*\) : start= *\([0-9]*\), size= *\([0-9]*\).*/\1 \2 \3/p' "$log" |
	sort -k2,2n | tail -n 1)
[ $# -eq 3 ] || { echo "$0: no partition to grow" >&2; exit 1; }
part=$1 start=$2
off=$((start * 512))

# 2. Grow the virtual disk (an overlay grows, its backing file does not).
quiet truncate -s "$new" "$img"
# 3. GPT keeps a backup header at the very end of the disk: move it there.
[ "$label" = gpt ] && quiet sfdisk --relocate gpt-bak-std --no-reread --no-tell-kernel "$img"
# 4. Grow the partition to the largest size that fits.
echo ', +' | quiet sfdisk --no-reread --no-tell-kernel -N "$part" "$img"
sectors=$(sfdisk -d "$img" | sed -n "s/^[^ ]*[^0-9]$part : start= *[0-9]*, size= *\([0-9]*\).*/\1/p")
echo "== partition $part: now $((sectors / 2048)) MiB from sector $start"

# 5. Grow the file system in it, at its byte offset (IMAGE?offset=BYTES).
# Two resize2fs pitfalls with an offset into a regular file: without a size
# it takes the whole disk's, and after resizing it truncates (or extends)
# the file to the file system's own size, ignoring the offset: that would cut
# the disk.  It skips that step when its descriptor for the file is 0, so it
# runs with stdin closed; the disk size is checked afterwards all the same.
fstype=$(blkid -p -O "$off" -o value -s TYPE "$img" 2>/dev/null || true)
case $fstype in
ext2 | ext3 | ext4)
	e2fsck -fy "$img?offset=$off" >"$log" 2>&1 || [ $? -le 1 ] ||
		{ echo "$0: e2fsck found errors it could not fix:" >&2; sed 's/^/    /' "$log" >&2; exit 1; }
	quiet env LC_ALL=C resize2fs "$img?offset=$off" "${sectors}s" <&-
	[ "$(stat -c %s "$img")" = "$new" ] ||
		{ echo "$0: resize2fs changed the disk size to $(stat -c %s "$img") bytes" >&2; exit 1; }
	echo "== $fstype: $(sed -n 's/.*is now \([0-9]*\) (\([0-9a-z]*\)) blocks long.*/\1 \2 blocks/p' "$log")"
	;;
*) echo "== ${fstype:-no file system} on partition $part: left as is (grow it once mounted)" ;;
esac
echo "$img: grown from $(numfmt --to=iec "$old") to $(numfmt --to=iec "$new")"
