#!/bin/sh
# make test-boot: examples/uefi-boot-image.sh makes a UEFI-bootable image
# under the shim (GPT, FAT ESP with systemd-boot and a loader entry, ext4
# root from mkfs.ext4 -d) from the Debian kernel, its initramfs and a tiny
# root tree (static busybox; an /init that prints a marker line with the
# checksums of the files it finds, writes a file, syncs, remounts read-only
# and powers off).  qemu-system-x86_64 boots it with OVMF: KVM when a probe
# boot under KVM reaches the kernel, else TCG (BOOT_ACCEL=tcg|kvm forces
# one), under `timeout`, serial console to a file.  Then: the marker line
# with the checksums computed here, the guest's file read back through the
# shim (debugfs on IMAGE.qcow2/p2), e2fsck -fn through the shim and
# qemu-img check without it, all clean.  Prints the boot's wall time.
#
# Without /boot/initrd.img-VERSION (or with BOOT_INITRD=busybox) the
# initramfs is built here: static busybox, the virtio and ext4 modules of
# that kernel (modprobe --show-depends) and an /init that loads them, mounts
# /dev/vda2 and switches to it (cpio, gzip).  Run by tests/integration/run.sh
# (its own TMPDIR, nothing left behind).
. "$(dirname "$0")/../integration/lib_tools.sh"
require_shim
require qemu-system-x86_64 sfdisk mkfs.vfat mcopy mmd mkfs.ext4 e2fsck debugfs fsck.vfat \
	sha256sum readelf cpio gzip modprobe awk

section "what the image is made from"
ver=$(ls /boot/vmlinuz-* 2>/dev/null | sed 's|^/boot/vmlinuz-||' | sort -V | tail -n 1)
[ -n "$ver" ] || { fail "no /boot/vmlinuz-* (make deps installs linux-image-amd64)"; finish; }
kernel=/boot/vmlinuz-$ver
pass "kernel: $kernel"
code= vars=
for c in /usr/share/OVMF/OVMF_CODE_4M.fd /usr/share/OVMF/OVMF_CODE.fd; do
	[ -f "$c" ] && [ -f "${c%CODE*}VARS${c#*CODE}" ] && { code=$c vars=${c%CODE*}VARS${c#*CODE}; break; }
done
[ -n "$code" ] && pass "firmware: $code, variables from a copy of $vars" || { fail "no OVMF firmware (package ovmf)"; finish; }
[ -f /usr/lib/systemd/boot/efi/systemd-bootx64.efi ] && pass "boot loader: systemd-bootx64.efi" ||
	{ fail "no systemd-bootx64.efi (package systemd-boot-efi)"; finish; }
bb=$(command -v busybox || echo /bin/busybox)
if [ -x "$bb" ] && ! readelf -l "$bb" 2>/dev/null | grep -q 'INTERP'; then
	pass "static busybox: $bb"
else
	fail "no static busybox (package busybox-static)"
	finish
fi

# The root tree: busybox, two data files (fixed contents, seed 26), /init.
mkdir -p root/bin root/etc root/data root/proc root/sys root/dev root/tmp
cp "$bb" root/bin/busybox
echo qcowshim-guest >root/etc/hostname
yes 'qcowshim boot payload, seed 26' | head -c 300000 >root/data/payload
cat >root/init <<'EOF'
#!/bin/busybox sh
# PID 1 of the test image: checksums, a file written, sync, power off.
bb=/bin/busybox
$bb mount -t proc proc /proc
sums=$(cd / && $bb sha256sum etc/hostname data/payload bin/busybox | $bb awk '{printf " %s=%s", $2, $1}')
echo "QCOWSHIM-BOOT-MARKER kernel=$($bb uname -r)$sums"
echo "written by the guest: kernel $($bb uname -r)$sums" >/guest.txt
$bb sync
$bb mount -o remount,ro /
echo "QCOWSHIM-BOOT-DONE"
$bb poweroff -f
EOF
chmod 755 root/init
sums=$(cd root && sha256sum etc/hostname data/payload bin/busybox | awk '{printf " %s=%s", $2, $1}')
note "expected checksums:$sums"

initrd=/boot/initrd.img-$ver
if [ "${BOOT_INITRD:-}" = busybox ] || [ ! -f "$initrd" ]; then
	# A minimal initramfs: busybox, the modules that reach an ext4 root on
	# virtio-blk (with their dependencies, in load order), an /init.
	note "no $initrd (or BOOT_INITRD=busybox): building a busybox initramfs"
	mkdir -p ird/bin ird/dev ird/proc ird/sys ird/newroot ird/lib/modules
	cp "$bb" ird/bin/busybox
	for m in virtio_pci virtio_blk ext4; do # one module per call (the rest would be its options)
		modprobe --show-depends -S "$ver" "$m" >>mods.list 2>mods.err ||
			{ fail "modprobe --show-depends $m for $ver"; show_log mods.err; finish; }
	done
	awk '$1 == "insmod" && !seen[$2]++ { print $2 }' mods.list >mods.order
	: >ird/modules
	while read -r m; do
		cp "$m" ird/lib/modules/ && echo "/lib/modules/$(basename "$m")" >>ird/modules
	done <mods.order
	cat >ird/init <<'EOF'
#!/bin/busybox sh
# Minimal initramfs (tests/system/s_boot.sh): load the modules, wait for the
# root disk (bounded), mount it read-write, hand over to its init.
bb=/bin/busybox
$bb mount -t devtmpfs devtmpfs /dev
$bb mount -t proc proc /proc
while read -r m; do $bb insmod "$m" || echo "initramfs: insmod $m failed"; done </modules
i=0
while [ ! -b /dev/vda2 ] && [ $i -lt 300 ]; do $bb usleep 100000; i=$((i + 1)); done
$bb mount -t ext4 -o rw /dev/vda2 /newroot || { echo "initramfs: cannot mount /dev/vda2"; $bb poweroff -f; }
$bb umount /proc
$bb mount --move /dev /newroot/dev
exec $bb switch_root /newroot /init
EOF
	chmod 755 ird/init
	(cd ird && find . | cpio -o -H newc 2>/dev/null) | gzip -9 >initrd.img
	initrd=$T/initrd.img
	rm -rf ird
	pass "busybox initramfs: $(wc -l <mods.order) modules, $(wc -c <initrd.img) bytes"
else
	pass "initramfs: $initrd"
fi

section "examples/uefi-boot-image.sh makes the image under the shim"
run "uefi-boot-image.sh disk.qcow2 $kernel $(basename "$initrd") root" \
	sh "$QCS_ROOT/examples/uefi-boot-image.sh" disk.qcow2 "$kernel" "$initrd" root "console=ttyS0 init=/init panic=-1"
note "$(cat "$T/last.log")"
is_qcow2 disk.qcow2 && pass "disk.qcow2 is QCOW2" || { fail "disk.qcow2 is not QCOW2"; finish; }
qcheck disk.qcow2
S sfdisk -d disk.qcow2 >table.out 2>&1
grep -q 'p1 : .*type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, .*name="EFI system"' table.out &&
	grep -q 'p2 : .*type=4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709, .*name="root"' table.out &&
	pass "GPT: ESP and an x86-64 root partition" || { fail "partition table"; show_log table.out; }
S mdir -b -/ -i disk.qcow2/p1 ::/ >esp.list 2>&1
for f in ::/EFI/BOOT/BOOTX64.EFI ::/loader/loader.conf ::/loader/entries/qcowshim.conf ::/vmlinuz ::/initrd.img; do
	grep -qx "$f" esp.list || { fail "ESP: $f missing"; show_log esp.list; }
done
S mtype -i disk.qcow2/p1 ::/loader/entries/qcowshim.conf >entry.out 2>&1
grep -q '^options root=PARTUUID=.* rw console=ttyS0 init=/init panic=-1$' entry.out &&
	pass "ESP: systemd-boot, loader.conf, the entry ($(grep '^options' entry.out))" || { fail "loader entry"; show_log entry.out; }

section "boot it: qemu-system-x86_64, OVMF"
# boot ACCEL TIMEOUT LOG: one boot of disk.qcow2; its exit status.
cp "$vars" vars.fd
boot() {
	timeout -k 10 "$2" qemu-system-x86_64 -machine q35,accel="$1" -m 1024 -smp 1 \
		-nodefaults -display none -no-reboot \
		-drive if=pflash,format=raw,unit=0,readonly=on,file="$code" \
		-drive if=pflash,format=raw,unit=1,file="$T/vars.fd" \
		-drive file="$T/disk.qcow2",format=qcow2,if=virtio \
		-serial file:"$3" >"$3.qemu" 2>&1
}
accel=${BOOT_ACCEL:-}
if [ -z "$accel" ]; then
	# The probe boot: the kernel alone under KVM, no root (it panics and,
	# with panic=-1 and -no-reboot, qemu exits in a few seconds).  The
	# kernel's banner on the serial console means KVM runs guest code here;
	# /dev/kvm can exist and still fail (a nested set-up that hangs or
	# aborts), which the probe's 20 s timeout catches.
	accel=tcg
	if [ -r /dev/kvm ] && [ -w /dev/kvm ]; then
		timeout -k 5 20 qemu-system-x86_64 -machine q35,accel=kvm -m 256 -nodefaults \
			-display none -no-reboot -kernel "$kernel" -append 'console=ttyS0 panic=-1' \
			-serial file:"$T/probe.log" >probe.qemu 2>&1
		grep -aq 'Linux version' probe.log && accel=kvm
		note "KVM probe boot: $(grep -ac 'Linux version' probe.log) kernel banner(s) on the serial console -> $accel"
		rm -f probe.log probe.qemu
	else
		note "/dev/kvm not usable: TCG"
	fi
fi
case $accel in kvm) to=300 ;; *) to=1200 ;; esac
start=$(date +%s.%N)
boot "$accel" "$to" "$T/serial.log"
rc=$?
wall=$(awk -v s="$start" -v e="$(date +%s.%N)" 'BEGIN { printf "%.1f", e - s }')
same "qemu exits 0 after the guest powers off ($accel, timeout ${to}s)" 0 "$rc"
[ "$rc" = 0 ] || { show_log serial.log 20; show_log serial.log.qemu; }
tr -d '\r' <serial.log >serial.txt
want="QCOWSHIM-BOOT-MARKER kernel=$ver$sums"
if grep -qxF "$want" serial.txt; then
	pass "serial console: the marker with the checksums computed here"
	echo "#      $want"
else
	fail "serial console: no marker line '$want'"
	grep -a 'QCOWSHIM' serial.txt | sed 's/^/#      | /'
	show_log serial.txt 20
fi
grep -qx 'QCOWSHIM-BOOT-DONE' serial.txt && pass "serial console: the guest synced, remounted / read-only, powered off" ||
	fail "serial console: no QCOWSHIM-BOOT-DONE"
pass "boot wall time: $wall s ($accel, $(nproc) CPUs here, guest: 1 vCPU, 1 GiB)"

section "what the guest wrote, read back"
S debugfs -R 'cat /guest.txt' disk.qcow2/p2 >guest.out 2>guest.err
same "qcowshim debugfs -R 'cat /guest.txt' disk.qcow2/p2" "written by the guest: kernel $ver$sums" "$(cat guest.out)"
S e2fsck -fn disk.qcow2/p2 >fsck.out 2>&1
same "qcowshim e2fsck -fn disk.qcow2/p2: exit 0" 0 "$?" || show_log fsck.out
S fsck.vfat -n disk.qcow2/p1 >fsck.out 2>&1
same "qcowshim fsck.vfat -n disk.qcow2/p1: exit 0" 0 "$?" || show_log fsck.out
qcheck disk.qcow2
rm -f disk.qcow2 vars.fd serial.log serial.log.qemu serial.txt
finish
