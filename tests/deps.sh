#!/bin/sh
# Installs the Debian packages the build and the tests need (make deps).
# Installs with apt-get when root (or with sudo); otherwise prints the exact
# command and fails.  Silent when everything is present.
set -eu
PKGS="build-essential pkg-config qemu-utils libcriterion-dev zlib1g-dev libzstd-dev
 fdisk gdisk parted dosfstools mtools xfsprogs btrfs-progs e2fsprogs util-linux
 coreutils bsdextrautils diffutils musl-tools mandoc man-db fio time
 systemd squashfs-tools erofs-utils file python3"
# issue 24's guard and sweep tests (static programs, syslinux's mtools, renames, io_uring)
PKGS="$PKGS busybox-static syslinux rsync liburing-dev"
# issue 24 point 3: the completeness test parses the headers with clang
PKGS="$PKGS clang"
# make deb / test-deb (the package, lintian) and make test-boot (a UEFI boot
# of an image made under the shim: firmware, boot loader, kernel, busybox).
PKGS="$PKGS debhelper dpkg-dev fakeroot lintian
 qemu-system-x86 ovmf systemd-boot-efi linux-image-amd64 busybox-static cpio kmod"
# issue 25's tests and make bench (strace; qemu-storage-daemon's FUSE export)
PKGS="$PKGS strace qemu-system-common fuse3"
PKGS="$PKGS ${FUZZ_PKGS:-}" # make fuzz adds clang
missing=""
for p in $PKGS; do
	st=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
	case "$st" in *"ok installed"*) ;; *) missing="$missing $p" ;; esac
done
[ -z "$missing" ] && exit 0
cmd="apt-get install -y --no-install-recommends$missing"
if [ "$(id -u)" = 0 ]; then sudo=""
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then sudo="sudo"
else
	echo "make deps: missing packages:$missing" >&2
	echo "make deps: run as root: apt-get update && $cmd" >&2
	exit 1
fi
echo "make deps: installing$missing" >&2
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq >/dev/null
$sudo apt-get install -y -qq --no-install-recommends $missing >/dev/null
