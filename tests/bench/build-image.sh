#!/bin/sh
# build-image.sh DISK DIR: the image-building script of issue 25 (make bench, case
# build), run as a whole, on a raw file or under the shim: a new 1 GiB disk, a GPT
# by sfdisk, a FAT ESP by mkfs.vfat --offset, an ext4 root by mkfs.ext4 -E offset=,
# then every file of DIR copied in by its own mcopy.
# Every random or time-based value is fixed, so both sides write the same bytes.
set -e
d=$1 src=$2
truncate -s 1G "$d"
printf 'label: gpt\nlabel-id: 5A9F3D2E-1B4C-4D6E-8F70-112233445566\nfirst-lba: 2048\nstart=2048, size=131072, type=U, uuid=0C5B6F0A-7E2D-4B8C-9A1F-223344556677\nstart=133120, size=1892352, type=L, uuid=1D6C7A1B-8F3E-4C9D-AB20-334455667788\n' |
	sfdisk -q "$d" >/dev/null
mkfs.vfat -F 16 -n ESP -i 12345678 --invariant --offset 2048 "$d" 65536 >/dev/null 2>&1
E2FSPROGS_FAKE_TIME=1700000000 mkfs.ext4 -q -F -U 6f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0 \
	-E offset=$((133120 * 512)),hash_seed=0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0 "$d" 946176k
for f in "$src"/*; do
	MTOOLS_SKIP_CHECK=1 mcopy -m -i "$d@@1M" "$f" "::/$(basename "$f")"
done
