#!/bin/sh
# uefi-boot-image.sh - a UEFI-bootable disk image from a kernel, an initramfs
# and a root file system tree, without root, loop devices or a VM: a GPT, an
# EFI system partition (FAT) holding systemd-boot, a loader entry, the kernel
# and the initramfs (copied with mtools), and an ext4 root partition filled
# with `mkfs.ext4 -d`.  Every tool works on the partitions as files
# (OUT.qcow2/p1, OUT.qcow2/p2): no offset arithmetic.
#
#   qcowshim examples/uefi-boot-image.sh OUT.qcow2 VMLINUZ INITRD ROOT_DIR [OPTIONS]
#
# OPTIONS is added to the kernel command line after
# "root=PARTUUID=<root partition> rw" (e.g. "console=ttyS0 init=/init").
# Environment: SDBOOT, the boot loader (default: systemd-boot from the
# systemd-boot-efi package); ESP_MIB, ROOT_MIB the partition sizes (default:
# what the files need, with room to spare).  Boot the result with, e.g.:
#
#   cp /usr/share/OVMF/OVMF_VARS_4M.fd vars.fd
#   qemu-system-x86_64 -machine q35 -m 1G -nographic \
#     -drive if=pflash,format=raw,readonly=on,file=/usr/share/OVMF/OVMF_CODE_4M.fd \
#     -drive if=pflash,format=raw,file=vars.fd -drive file=OUT.qcow2,if=virtio
#
# Run it under qcowshim (it re-executes itself under qcowshim when found on
# PATH or in ../build); OUT may also be a raw file.  `make test-boot` builds
# such an image from the Debian kernel and boots it (tests/system/s_boot.sh).
# Needs: sfdisk, mkfs.vfat, mtools, mkfs.ext4 (e2fsprogs >= 1.43), e2fsck,
# fsck.vfat; the kernel must have the EFI stub (Debian's has).
set -eu

[ $# -ge 4 ] && [ $# -le 5 ] || {
	echo "usage: [qcowshim] $0 OUT.qcow2 VMLINUZ INITRD ROOT_DIR [KERNEL_OPTIONS]" >&2
	exit 2
}
out=$1 kernel=$2 initrd=$3 rootdir=$4 options=${5:-}
sdboot=${SDBOOT:-/usr/lib/systemd/boot/efi/systemd-bootx64.efi}
for f in "$kernel" "$initrd" "$sdboot"; do
	[ -f "$f" ] && [ -r "$f" ] || { echo "$0: $f: not a readable file" >&2; exit 2; }
done
[ -d "$rootdir" ] || { echo "$0: $rootdir: not a directory" >&2; exit 2; }

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
work=$(mktemp -d "${TMPDIR:-/tmp}/uefi-boot-image.XXXXXX")
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

# Partitions as files: OUT.qcow2/pN under the shim; a raw OUT has none, so
# its partitions are reached through an offset instead (mtools @@, -E offset).
case $out in *.qcow2) parts=1 ;; *) parts=0 ;; esac

mib() { echo $(((($(stat -c %s "$1") + 1048575) / 1048576))); }
esp_mib=${ESP_MIB:-$(((($(mib "$kernel") + $(mib "$initrd") + $(mib "$sdboot")) * 5 / 4 + 16)))}
[ "$esp_mib" -ge 34 ] || esp_mib=34 # FAT16's smallest comfortable size
root_mib=${ROOT_MIB:-$(($(du -sk "$rootdir" | cut -f1) * 3 / 2 / 1024 + 32))}

# The root partition: the discoverable-partitions type of x86-64, and a
# PARTUUID the kernel command line names (no initramfs guesswork).
root_type=4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709
partuuid=$(cat /proc/sys/kernel/random/uuid)

rm -f "$out"
quiet truncate -s $((esp_mib + root_mib + 2))M "$out"
printf 'label: gpt\nsize=%sMiB, type=uefi, name="EFI system"\nsize=%sMiB, type=%s, uuid=%s, name="root"\n' \
	"$esp_mib" "$root_mib" "$root_type" "$partuuid" | quiet sfdisk --no-reread --no-tell-kernel "$out"
set -- $(sfdisk -d "$out" | sed -n 's/.*: start= *\([0-9]*\), size= *\([0-9]*\).*/\1 \2/p')
[ $# -eq 4 ] || { echo "$0: unexpected partition table" >&2; exit 1; }
if [ "$parts" = 1 ]; then
	esp=$out/p1 root=$out/p2
	quiet mkfs.vfat -n ESP "$esp"
else
	esp="$out@@$(($1 * 512))" root="$out?offset=$(($3 * 512))"
	quiet mkfs.vfat -n ESP --offset "$1" "$out" $(($2 / 2))
fi

# The ESP: systemd-boot where the firmware looks without a boot entry
# (EFI/BOOT/BOOTX64.EFI), its configuration, one loader entry.
cat >"$work/loader.conf" <<EOF
default qcowshim.conf
timeout 0
editor no
EOF
cat >"$work/qcowshim.conf" <<EOF
title   qcowshim-built image
linux   /vmlinuz
initrd  /initrd.img
options root=PARTUUID=$partuuid rw${options:+ $options}
EOF
quiet mmd -i "$esp" ::/EFI ::/EFI/BOOT ::/loader ::/loader/entries
quiet mcopy -i "$esp" "$sdboot" ::/EFI/BOOT/BOOTX64.EFI
quiet mcopy -i "$esp" "$work/loader.conf" ::/loader/loader.conf
quiet mcopy -i "$esp" "$work/qcowshim.conf" ::/loader/entries/qcowshim.conf
quiet mcopy -i "$esp" "$kernel" ::/vmlinuz
quiet mcopy -i "$esp" "$initrd" ::/initrd.img

# The root: ext4 filled from the tree in one pass.
if [ "$parts" = 1 ]; then
	quiet mkfs.ext4 -q -F -L root -d "$rootdir" "$root"
else
	quiet mkfs.ext4 -q -F -L root -d "$rootdir" -E offset=$(($3 * 512)) "$out" $(($4 / 2))k
fi

# Both file systems checked where they are.
quiet e2fsck -fn "$root"
if [ "$parts" = 1 ]; then
	quiet fsck.vfat -n "$esp"
fi
echo "$out: GPT, ESP $esp_mib MiB (systemd-boot, $(basename "$kernel"), $(basename "$initrd")), root $root_mib MiB (ext4, PARTUUID $partuuid)"
