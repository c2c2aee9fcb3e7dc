#!/bin/sh
# t_tools_repart.sh - systemd-repart (issue 12), judged without the shim.
# systemd opens the disk as openat(dirfd, NAME, O_PATH), reopens it through
# /proc/self/fd/N, and creates a new one with O_RDONLY|O_CREAT|O_EXCL.
#   partition-only definitions (no Format=): --empty=create --size= on a new
#   *.qcow2 path, and --empty=allow on existing qemu-made images (sparse and
#   preallocation=full), as root and as an unprivileged user; each run is
#   repeated on a raw twin without the shim (same --seed, so the same
#   UUIDs): qemu-img check clean, qemu-img compare identical.
#   Format= (as root; systemd 252 formats through a loop device): refused
#   with one line before the kernel sees the file, image byte-identical.
#   The documented recipe for Format=/CopyFiles= (docs/USING.md): repart
#   the partitions, then mkfs.ext4 -d into IMAGE/pN; equal to a twin made
#   the same way, e2fsck clean, the copied file reads back.
. "$(dirname "$0")/lib_tools.sh"
require_shim
require systemd-repart mkfs.ext4 e2fsck debugfs sha256sum
SEED=e2a40bf9-73f1-4278-9160-49c031e7aee3
U=3f0e2a1c-5b6d-4e7f-8a9b-0c1d2e3f4a5b

mkdir -p defs fdefs rdefs
printf '[Partition]\nType=root\nSizeMinBytes=64M\n' >defs/10-root.conf
printf '[Partition]\nType=swap\nSizeMinBytes=32M\n' >defs/20-swap.conf
printf '[Partition]\nType=root\nFormat=ext4\nSizeMinBytes=64M\n' >fdefs/10-root.conf
printf '[Partition]\nType=root\nLabel=root\nSizeMinBytes=64M\nSizeMaxBytes=64M\n' >rdefs/10-root.conf

# repart DIR NAME ARGS... [-- RUNAS...]: systemd-repart on DIR/NAME.qcow2
# under the shim and on DIR/NAME.raw without it, then check and compare
repart() {
	rdir=$1 _n=$2; shift 2
	_args="" _as=""
	while [ $# -gt 0 ] && [ "$1" != -- ]; do _args="$_args $1"; shift; done
	[ $# -gt 0 ] && shift && _as="$*"
	# shellcheck disable=SC2086
	run "systemd-repart$_args $_n.qcow2${_as:+ (as $_as)}" $_as "$QCOWSHIM" \
		timeout "$QCS_TIMEOUT" systemd-repart --definitions="$T/defs" --dry-run=no \
		--no-pager --seed=$SEED $_args "$rdir/$_n.qcow2"
	# shellcheck disable=SC2086
	run "... the same on the raw twin" $_as systemd-repart --definitions="$T/defs" \
		--dry-run=no --no-pager --seed=$SEED $_args "$rdir/$_n.raw"
	if is_qcow2 "$rdir/$_n.qcow2"; then pass "$_n.qcow2 is still QCOW2"; else
		fail "$_n.qcow2 is no longer QCOW2"; fi
	qcheck "$rdir/$_n.qcow2"
	qcompare "$rdir/$_n.qcow2" "$rdir/$_n.raw"
}

# cases DIR [RUNAS...]
cases() {
	cdir=$1; shift
	rm -f "$cdir"/*.qcow2 "$cdir"/*.raw
	repart "$cdir" new --empty=create --size=256M ${1:+-- "$@"}
	for k in sparse full; do
		_o=""
		[ $k = full ] && _o="-o preallocation=full"
		# shellcheck disable=SC2086
		${1:+"$@"} qemu-img create -q -f qcow2 $_o "$cdir/$k.qcow2" 256M &&
			${1:+"$@"} truncate -s 256M "$cdir/$k.raw" || fail "making $k.qcow2"
		repart "$cdir" $k --empty=allow ${1:+-- "$@"}
	done
}

section "partition-only definitions, as $(id -un)"
mkdir -p "$T/root"
cases "$T/root"

if [ "$(id -u)" = 0 ] && command -v setpriv >/dev/null; then
	section "partition-only definitions, as an unprivileged user"
	chmod 755 "$T" "$T/lib" "$T/defs" && chmod 644 "$QCOWSHIM_LIB" "$T"/defs/*
	mkdir -p "$T/user" && chmod 777 "$T/user"
	cases "$T/user" setpriv --reuid=65534 --regid=65534 --clear-groups

	section "Format= needs a loop device: refused, image untouched"
	qemu-img create -q -f qcow2 f.qcow2 256M
	before=$(sha256sum <f.qcow2)
	S systemd-repart --definitions="$T/fdefs" --empty=allow --dry-run=no --no-pager \
		--seed=$SEED f.qcow2 >f.log 2>&1
	rc=$?
	same "systemd-repart with Format=ext4 fails" 1 "$([ $rc -ne 0 ] && echo 1)"
	same "... with one qcowshim line naming the image and what to use" 1 \
		"$(grep -c '^qcowshim: f.qcow2: refusing a loop device (LOOP_CONFIGURE): .*partitions as files' f.log)"
	same "... and no other qcowshim line" 1 "$(grep -c '^qcowshim: ' f.log)"
	same "... the image file is byte-identical" "$before" "$(sha256sum <f.qcow2)"
	same "... no loop device is backed by it" "" "$(losetup -j "$T/f.qcow2" 2>/dev/null)"
	qcheck f.qcow2
fi

section "recipe: Format=/CopyFiles= through partitions as files"
mkdir -p tree/etc && printf 'hello from the recipe\n' >tree/etc/hello
# mkfs.ext4 -d copies atimes: read the tree once first so that (relatime)
# neither run changes them
touch -d @1700000000 tree/etc/hello tree/etc tree && cat tree/etc/hello >/dev/null &&
	ls -R tree >/dev/null
for k in qcow2 raw; do
	rm -f "r.$k"
	if [ $k = qcow2 ]; then W="$QCOWSHIM"; P=r.qcow2/p1; else W=""; P=""; fi
	run "recipe step 1: systemd-repart --empty=create r.$k" $W systemd-repart \
		--definitions="$T/rdefs" --empty=create --size=128M --dry-run=no --no-pager \
		--seed=$SEED "r.$k"
	if [ $k = raw ]; then # the twin's partition 1, cut out and put back
		start=$(sfdisk -J r.raw | sed -n 's/.*"start": *\([0-9]*\).*/\1/p' | head -n 1)
		dd if=r.raw of=p1.raw bs=512 skip="$start" count=131072 status=none
		P=p1.raw
	fi
	run "recipe step 2: mkfs.ext4 -d tree -L root $P" $W mkfs.ext4 -q -F -L root -U "$U" \
		-E "hash_seed=$U" -d tree "$P"
	[ $k = raw ] && dd if=p1.raw of=r.raw bs=512 seek="$start" conv=notrunc status=none
done
qcheck r.qcow2
qcompare r.qcow2 r.raw
run "e2fsck -fn r.qcow2/p1: clean" S e2fsck -fn r.qcow2/p1
same "the copied file reads back from the image's partition" "hello from the recipe" \
	"$(S debugfs -R 'cat /etc/hello' r.qcow2/p1 2>/dev/null)"
finish
