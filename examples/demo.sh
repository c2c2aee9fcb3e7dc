#!/bin/sh
# demo.sh - qcowshim end to end (run by `make demo`).
#
# Builds a partitioned, populated QCOW2 disk with nothing but ordinary disk
# tools, each run under qcowshim: create the image, write a GPT with an EFI
# system partition and a root partition (sfdisk), make the file systems
# (mkfs.vfat, mkfs.ext4), copy files in (mtools, mkfs.ext4 -d, debugfs),
# check them (fsck.vfat, e2fsck), then let qemu-img judge the result.
# Runs in a temporary directory; DEMO_KEEP=1 keeps it.  Exits non-zero on
# the first failure, showing the failing command's output.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
QCOWSHIM=${QCOWSHIM:-}
if [ -z "$QCOWSHIM" ]; then
	if [ -x "$here/../build/qcowshim" ]; then QCOWSHIM=$here/../build/qcowshim
	elif command -v qcowshim >/dev/null 2>&1; then QCOWSHIM=$(command -v qcowshim)
	else echo "demo: qcowshim not found: run make first" >&2; exit 1
	fi
fi
for t in qemu-img sfdisk mkfs.vfat mkfs.ext4 mcopy mmd mtype debugfs e2fsck fsck.vfat; do
	command -v "$t" >/dev/null 2>&1 || { echo "demo: $t is missing (make deps installs it)" >&2; exit 1; }
done

dir=$(mktemp -d "${TMPDIR:-/tmp}/qcowshim-demo.XXXXXX")
if [ "${DEMO_KEEP:-0}" = 1 ]; then
	trap 'echo "demo: kept $dir"' EXIT
else
	trap 'rm -rf "$dir"' EXIT
fi
trap 'exit 130' INT TERM
cd "$dir"
export MTOOLS_SKIP_CHECK=1
img=disk.qcow2
n=0

say() { printf '\n%s\n' "$*"; }
# echo_cmd CMD...: print a command the way one would type it.
echo_cmd() {
	_l=" "
	for _a in "$@"; do
		case $_a in *[!A-Za-z0-9_./=@:,+%-]*) _a="'$_a'" ;; esac
		_l="$_l $_a"
	done
	echo " \$${_l#?}" | sed 's/^  *\$ *qs /  $ qcowshim /; s/^  *\$ */  $ /'
}
# run CMD...: print the command, run it; on failure show its output and stop.
run() {
	echo_cmd "$@"
	if ! "$@" >out.log 2>err.log; then
		echo "demo: FAILED: $*" >&2
		cat out.log err.log | sed 's/^/    | /' >&2
		exit 1
	fi
}
# show CMD...: like run, and its standard output is part of the story.
show() {
	run "$@"
	sed 's/^/    /' out.log
}
qs() { "$QCOWSHIM" "$@"; }

echo "qcowshim demo: building a bootable-layout disk image in $dir"
echo "(every disk tool below is the unmodified system binary, run as: qcowshim TOOL ...)"

say "1. Create a 1 GiB image. truncate(1) knows nothing about QCOW2; under the"
echo "   shim, creating a *.qcow2 path makes a QCOW2 image."
run qs truncate -s 1G "$img"
show qemu-img info "$img"
echo "   host file: $(du -k "$img" | cut -f1) KiB on disk for a 1 GiB virtual disk"

say "2. Partition it: GPT, a 100 MiB EFI system partition and a root partition."
printf 'label: gpt\nsize=100MiB, type=uefi, name="EFI system"\ntype=linux, name="root"\n' >layout.sfdisk
printf '  $ qcowshim sfdisk %s < layout.sfdisk\n' "$img"
qs sfdisk -q --no-reread --no-tell-kernel "$img" <layout.sfdisk >out.log 2>&1 ||
	{ echo "demo: FAILED: sfdisk" >&2; sed 's/^/    | /' out.log >&2; exit 1; }

show qs sfdisk -l "$img"
set -- $(qs sfdisk -d "$img" | sed -n 's/.*: start= *\([0-9]*\), size= *\([0-9]*\).*/\1 \2/p')
[ $# -eq 4 ] || { echo "demo: FAILED: could not read the partition table back" >&2; exit 1; }
esp_start=$1 esp_size=$2 root_start=$3 root_size=$4
esp_off=$((esp_start * 512)) root_off=$((root_start * 512))

say "3. Make the file systems in place, at the partitions' offsets."
run qs mkfs.vfat -F 16 -n ESP --offset "$esp_start" "$img" $((esp_size / 2))
mkdir -p rootfs/etc rootfs/srv/www
echo "qcowshim-demo" >rootfs/etc/hostname
printf 'NAME="qcowshim demo"\nID=demo\n' >rootfs/etc/os-release
seq 1 100000 >rootfs/srv/www/numbers.txt
echo "root file system populated by mkfs.ext4 -d" >rootfs/README
run qs mkfs.ext4 -q -F -L root -d rootfs -E offset="$root_off" "$img" $((root_size / 2))k

say "4. Copy files in: mtools into the ESP, debugfs into the root file system."
head -c 200000 /dev/urandom >BOOTX64.EFI
printf 'default demo\ntimeout 3\n' >loader.conf
run qs mmd -i "$img@@$esp_off" ::/EFI ::/EFI/BOOT ::/loader
run qs mcopy -i "$img@@$esp_off" BOOTX64.EFI ::/EFI/BOOT/
run qs mcopy -i "$img@@$esp_off" loader.conf ::/loader/
echo "written by debugfs through the shim" >motd
run qs debugfs -w -R "write motd /etc/motd" "$img?offset=$root_off"

say "5. Check both file systems and read files back, still through the shim."
run qs e2fsck -fn "$img?offset=$root_off"
echo "   e2fsck: $(tail -n 1 out.log)"
run qs dd if="$img" of=esp.raw bs=1M iflag=skip_bytes,count_bytes skip="$esp_off" count=$((esp_size * 512)) conv=sparse status=none
run fsck.vfat -n esp.raw
echo "   fsck.vfat: $(tail -n 1 out.log)"
show qs mdir -i "$img@@$esp_off" ::/EFI/BOOT
run qs mcopy -n -i "$img@@$esp_off" ::/EFI/BOOT/BOOTX64.EFI back.efi
cmp BOOTX64.EFI back.efi
echo "   BOOTX64.EFI read back identical"
show qs debugfs -R "cat /etc/motd" "$img?offset=$root_off"
run qs debugfs -R "dump /srv/www/numbers.txt back.txt" "$img?offset=$root_off"
cmp rootfs/srv/www/numbers.txt back.txt
echo "   numbers.txt read back identical"

say "6. Ask qemu: the image is valid QCOW2 and holds exactly that disk."
show qemu-img check "$img"
show qemu-img info "$img"
run qemu-img convert -f qcow2 -O raw "$img" flat.raw
dd if=flat.raw of=esp2.raw bs=1M iflag=skip_bytes,count_bytes skip="$esp_off" count=$((esp_size * 512)) conv=sparse status=none
dd if=flat.raw of=root.raw bs=1M iflag=skip_bytes,count_bytes skip="$root_off" count=$((root_size * 512)) conv=sparse status=none
run fsck.vfat -n esp2.raw
run e2fsck -fn root.raw
echo "   fsck.vfat and e2fsck on qemu's flat view of both partitions (no shim): clean"

say "7. Whole scripts run under the shim too: examples/gpt-esp-root.sh does steps"
echo "   1-5 for any pair of directories, with no qcowshim calls inside."
mkdir -p espdir/EFI/BOOT && cp BOOTX64.EFI espdir/EFI/BOOT/ && cp loader.conf espdir/
show qs sh "$here/gpt-esp-root.sh" second.qcow2 512M espdir rootfs 64
show qemu-img check second.qcow2
echo
echo "demo: OK: $(qemu-img info "$img" | sed -n 's/^virtual size: //p') virtual disk in $(du -k "$img" | cut -f1) KiB of QCOW2, built with stock tools under qcowshim"
