#!/bin/sh
# Install and documentation: both man pages lint clean (mandoc -Tlint,
# man --warnings); `make install` from a copy of the source tree, built in a
# temporary directory, puts exactly the documented files under DESTDIR and
# under a real PREFIX; the copy is deleted and the installed wrapper still
# works (create, write, qemu-img check/compare, --check, --version, the
# installed examples); a library ld.so cannot preload is refused with a
# message; `make uninstall` removes exactly what install put there.  A root
# install without DESTDIR makes LD_PRELOAD=libqcowshim.so work by name (an
# /etc/ld.so.conf.d entry, ldconfig) until make uninstall; a per-user one
# says what to use instead.
. "$(dirname "$0")/lib_tools.sh"
require qemu-img mandoc man make cc tar sfdisk mkfs.vfat mkfs.ext4 mcopy e2fsck fsck.vfat blkid debugfs

section "man pages lint clean"
for page in "$QCS_ROOT/man/qcowshim.1" "$QCS_ROOT/man/libqcowshim.7"; do
	name=$(basename "$page")
	mandoc -Tlint -W warning "$page" >lint.log 2>&1
	rc=$?
	[ "$rc" -eq 0 ] && [ ! -s lint.log ] && pass "mandoc -Tlint -W warning $name: no message" ||
		{ fail "mandoc -Tlint $name (exit $rc)"; show_log lint.log; }
	# Style notes too, except the two that depend on which pages this
	# machine has installed (cross-references to them).
	mandoc -Tlint "$page" 2>&1 | grep -v 'referenced manual not found\|mandoc.db' >style.log
	[ ! -s style.log ] && pass "mandoc -Tlint $name: no style note" || { fail "mandoc style notes in $name"; show_log style.log; }
	MANWIDTH=80 man --warnings -l "$page" >man.out 2>man.err
	rc=$?
	[ "$rc" -eq 0 ] && [ ! -s man.err ] && pass "man --warnings -l $name: no warning" ||
		{ fail "man --warnings -l $name (exit $rc)"; show_log man.err; }
	grep -q '^NAME' man.out && pass "man renders $name" || fail "man -l $name: no NAME section"
done

section "make install from a temporary copy of the source tree"
mkdir src
tar -C "$QCS_ROOT" --exclude=./build --exclude=./.git -cf - . | tar -C src -xf - ||
	{ fail "copy of the source tree"; finish; }
DEST=$T/dest PFX=$T/prefix
run "make -j2 install DESTDIR=\$T/dest PREFIX=/usr/local (builds in the copy)" \
	make -C src -j2 install DESTDIR="$DEST" PREFIX=/usr/local
# A per-user install: run by an unprivileged user when this is root (the
# copy's build is up to date: nothing is rebuilt).  It cannot register the
# library with the loader, and says in one line what to use instead.
if [ "$(id -u)" = 0 ]; then
	chmod 711 "$T" && chown -R 65534:65534 src && mkdir "$PFX" && chown 65534:65534 "$PFX"
	AS_USER="setpriv --reuid=65534 --regid=65534 --clear-groups"
else
	AS_USER=""
fi
run "make install PREFIX=\$T/prefix as an unprivileged user (no DESTDIR)" $AS_USER make -C src install PREFIX="$PFX"
same "the per-user install says in one line what to use instead of the bare name" \
	"qcowshim: per-user install: use '$PFX/bin/qcowshim PROG', or LD_PRELOAD=$PFX/lib/qcowshim/libqcowshim.so (the bare name needs a root install)" \
	"$(grep '^qcowshim: ' "$T/last.log")"
grep -q 'ldconfig' "$T/last.log" && fail "the per-user install ran ldconfig" || pass "the per-user install leaves the loader alone"

# A system install (root, no DESTDIR) registers the library's directory with
# the loader: LD_PRELOAD=libqcowshim.so then finds it by name, as fakeroot's
# package makes LD_PRELOAD=libfakeroot-sysv.so work.  It is done for real
# (an /etc/ld.so.conf.d entry, ldconfig) under a PREFIX in $T, so an install
# the machine may already have is never touched.  Scripts that change the
# loader's path hold a lock on /etc/ld.so.conf.d (another checkout's make
# test, make test-deb), and the trap removes the entry on any exit.
section "a system install: LD_PRELOAD=libqcowshim.so works by name, until make uninstall"
SYS=$T/sys
CONF=/etc/ld.so.conf.d/qcowshim$(printf %s "$SYS" | tr / -).conf
undo_ldso() {
	if [ -f "$CONF" ] && [ "$(cat "$CONF")" = "$SYS/lib/qcowshim" ]; then rm -f "$CONF" && ldconfig; fi
}
if [ "$(id -u)" != 0 ]; then
	note "not root: the system install is not tried"
elif ! command -v flock >/dev/null || ! command -v ldconfig >/dev/null; then
	fail "flock or ldconfig missing"
else
	trap 'undo_ldso; cd /; rm -rf "$T"' EXIT
	exec 9</etc/ld.so.conf.d && flock 9
	other=$(ldconfig -p | grep 'libqcowshim\.so ')
	[ -n "$other" ] && note "the loader already knows another copy: $other (bare-name runs not tried)"
	run "make install PREFIX=\$T/sys as root (no DESTDIR)" make -C src install PREFIX="$SYS"
	same "install wrote $CONF naming the library's directory" "$SYS/lib/qcowshim" "$(cat "$CONF" 2>&1)"
	grep -q "^echo $SYS/lib/qcowshim > $CONF && .*ldconfig\$" "$T/last.log" &&
		pass "install shows the entry it writes and the ldconfig it runs" || { fail "install output"; show_log "$T/last.log"; }
	ldconfig -p | grep -q "libqcowshim\.so .*=> $SYS/lib/qcowshim/libqcowshim.so\$" &&
		pass "ldconfig -p lists $SYS/lib/qcowshim/libqcowshim.so" || fail "ldconfig -p does not list the library"
	if [ -z "$other" ]; then
		printf 'label: dos\nlabel-id: 0x51c0b0a7\nstart=2048, size=40960, type=83\ntype=c\n' >layout
		LD_PRELOAD=libqcowshim.so truncate -s 96M bare.qcow2 2>bare.err
		is_qcow2 bare.qcow2 && pass "LD_PRELOAD=libqcowshim.so truncate -s 96M bare.qcow2 made a QCOW2 image" ||
			{ fail "bare name: bare.qcow2 is not QCOW2"; show_log bare.err; }
		truncate -s 96M bare.raw
		LD_PRELOAD=libqcowshim.so sfdisk -q bare.qcow2 <layout >sf.out 2>&1
		same "LD_PRELOAD=libqcowshim.so sfdisk bare.qcow2: exit 0" 0 "$?"
		sfdisk -q bare.raw <layout >/dev/null 2>&1
		LD_PRELOAD=libqcowshim.so fdisk -l bare.qcow2 >fd.out 2>fd.err
		same "LD_PRELOAD=libqcowshim.so fdisk -l sees the flat 96 MiB disk" \
			"Disk bare.qcow2: 96 MiB, 100663296 bytes, 196608 sectors" "$(head -n 1 fd.out)"
		[ ! -s fd.err ] && pass "no loader message" || { fail "fdisk stderr"; show_log fd.err; }
		tr -s ' ' <fd.out | grep -q '^bare.qcow2p2 43008 196607 153600 75M c W95 FAT32 (LBA)$' &&
			pass "fdisk -l lists the partitions sfdisk wrote" || { fail "fdisk -l partitions"; show_log fd.out; }
		same "the process mapped the installed library" "$SYS/lib/qcowshim/libqcowshim.so" \
			"$(LD_PRELOAD=libqcowshim.so grep -o '/[^ ]*/libqcowshim\.so$' /proc/self/maps | head -n 1)"
		qcheck bare.qcow2
		qcompare "$T/bare.qcow2" bare.raw
	fi
	run "make uninstall PREFIX=\$T/sys" make -C src uninstall PREFIX="$SYS"
	[ ! -e "$CONF" ] && pass "uninstall removed $CONF" || fail "$CONF is still there"
	grep -q "^rm -f $CONF && .*ldconfig\$" "$T/last.log" && pass "uninstall reran ldconfig" ||
		{ fail "uninstall output"; show_log "$T/last.log"; }
	ldconfig -p | grep -q "=> $SYS/lib/" && fail "ldconfig -p still lists $SYS" ||
		pass "ldconfig -p no longer lists the library"
	same "uninstall left no file under \$T/sys" "" "$(find "$SYS" -type f 2>&1)"
	if [ -z "$other" ]; then
		LD_PRELOAD=libqcowshim.so stat -c %s bare.qcow2 >st.out 2>st.err
		grep -q "object 'libqcowshim.so' from LD_PRELOAD cannot be preloaded" st.err &&
			pass "the loader no longer finds libqcowshim.so by name: $(cat st.err)" ||
			{ fail "bare name after uninstall"; show_log st.err; }
		same "... and stat sees the host file, not the 96 MiB disk" "$(stat -c %s bare.qcow2)" "$(cat st.out)"
	fi
	exec 9<&-
fi
examples=$(cd "$QCS_ROOT/examples" && ls *.sh *.c | sort)
docs=$(cd "$QCS_ROOT/docs" && ls *.md | sort)
rm -rf src
[ ! -e src ] && pass "the source and build copy is deleted" || fail "src still there"

expected() { # expected ROOT: the files install must create, sorted
	{
		echo "$1/bin/qcowshim"
		echo "$1/lib/qcowshim/libqcowshim.so"
		echo "$1/share/man/man1/qcowshim.1"
		echo "$1/share/man/man7/libqcowshim.7"
		echo "$1/share/doc/qcowshim/README.md"
		echo "$1/share/doc/qcowshim/LICENSE"
		for e in $examples; do echo "$1/share/doc/qcowshim/examples/$e"; done
		for d in $docs; do echo "$1/share/doc/qcowshim/docs/$d"; done
	} | sort
}
expected "$DEST/usr/local" >want.list
find "$DEST" -type f | sort >got.list
same_file "DESTDIR holds exactly the documented files" want.list got.list
expected "$PFX" >want.list
find "$PFX" -type f | sort >got.list
same_file "PREFIX holds exactly the documented files" want.list got.list
same "modes: wrapper 755, library 755, man pages 644, scripts 755, C example 644" "755 755 644 644 755 644" \
	"$(stat -c %a "$PFX/bin/qcowshim" "$PFX/lib/qcowshim/libqcowshim.so" "$PFX/share/man/man1/qcowshim.1" \
		"$PFX/share/man/man7/libqcowshim.7" "$PFX/share/doc/qcowshim/examples/grow-image.sh" \
		"$PFX/share/doc/qcowshim/examples/raw2qcow2.c" | tr '\n' ' ' | sed 's/ $//')"
same "the DESTDIR wrapper names the final library directory (no DESTDIR, no build dir)" \
	"libdir='/usr/local/lib/qcowshim'" "$(grep '^libdir=' "$DEST/usr/local/bin/qcowshim")"
same "the PREFIX wrapper names \$PREFIX/lib/qcowshim" "libdir='$PFX/lib/qcowshim'" "$(grep '^libdir=' "$PFX/bin/qcowshim")"
MANPATH=$PFX/share/man man -w qcowshim >manw.out 2>&1
same "man finds the installed qcowshim(1) through MANPATH" "$PFX/share/man/man1/qcowshim.1" "$(cat manw.out)"
MANPATH=$PFX/share/man man -w 7 libqcowshim >manw.out 2>&1
same "man finds the installed libqcowshim(7)" "$PFX/share/man/man7/libqcowshim.7" "$(cat manw.out)"

section "the installed wrapper works without the build directory"
W=$PFX/bin/qcowshim
run "qcowshim --version" "$W" --version
same "--version names the installed library" "qcowshim 0.1.0 (library: $PFX/lib/qcowshim/libqcowshim.so)" "$(cat "$T/last.log")"
"$W" --check >ck.out 2>ck.err
same "installed qcowshim --check exits 0" 0 "$?"
grep -q "^qcowshim: OK: $PFX/lib/qcowshim/libqcowshim.so" ck.out && pass "--check: $(cat ck.out)" ||
	{ fail "--check output"; show_log ck.out; show_log ck.err; }
same "LD_PRELOAD under the installed wrapper" "$PFX/lib/qcowshim/libqcowshim.so" "$("$W" sh -c 'printf %s "$LD_PRELOAD"')"
run "qcowshim truncate -s 64M new.qcow2" "$W" truncate -s 64M new.qcow2
is_qcow2 new.qcow2 && pass "new.qcow2 is QCOW2" || fail "new.qcow2 is not QCOW2"
truncate -s 64M new.raw
head -c 3000000 /dev/urandom >pat
run "qcowshim dd a pattern into it" "$W" dd if=pat of=new.qcow2 bs=64k seek=100 conv=notrunc status=none
dd if=pat of=new.raw bs=64k seek=100 conv=notrunc status=none
qcheck new.qcow2
qcompare "$T/new.qcow2" new.raw
"$W" sh -c 'exit 7'
same "exit status passes through" 7 "$?"

section "the installed examples find the installed wrapper on PATH"
mkdir -p tree/boot/efi/EFI/BOOT tree/etc
head -c 50000 /dev/urandom >tree/boot/efi/EFI/BOOT/BOOTX64.EFI
echo installed >tree/etc/hostname
EXD=$PFX/share/doc/qcowshim/examples
run "tree-to-image.sh (installed copy) tree img.qcow2" env PATH="$PFX/bin:$PATH" sh "$EXD/tree-to-image.sh" tree img.qcow2
qcheck img.qcow2
run "inspect.sh (installed copy) img.qcow2" env PATH="$PFX/bin:$PATH" sh "$EXD/inspect.sh" img.qcow2
grep -q 'ext4, label root' "$T/last.log" && grep -q 'vfat, label ESP' "$T/last.log" &&
	pass "inspect.sh sees both file systems" || { fail "inspect.sh output"; show_log "$T/last.log"; }

section "the DESTDIR tree runs with QCOWSHIM_LIB"
DW=$DEST/usr/local/bin/qcowshim
QCOWSHIM_LIB=$DEST/usr/local/lib/qcowshim/libqcowshim.so "$DW" --check >ck.out 2>&1
same "DESTDIR qcowshim --check (QCOWSHIM_LIB into DESTDIR) exits 0" 0 "$?"
if [ ! -e /usr/local/lib/qcowshim/libqcowshim.so ]; then
	"$DW" true >o.log 2>&1
	same "DESTDIR wrapper before the tree is in place: exit 125" 125 "$?"
	grep -q 'shim library not found: /usr/local/lib/qcowshim/libqcowshim.so' o.log &&
		pass "... and it names the missing library" || { fail "missing library message"; show_log o.log; }
else
	note "/usr/local/lib/qcowshim is installed on this machine: missing-library case not run"
fi

section "a library ld.so cannot preload is refused, nothing runs without it"
cp "$PFX/lib/qcowshim/libqcowshim.so" corrupt.so
dd if=/dev/urandom of=corrupt.so bs=1 count=64 conv=notrunc status=none
cp "$PFX/lib/qcowshim/libqcowshim.so" foreign.so
printf '\267\000' | dd of=foreign.so bs=1 seek=18 conv=notrunc status=none # e_machine: aarch64
for bad in corrupt foreign; do
	QCOWSHIM_LIB=$T/$bad.so "$W" truncate -s 1M "$bad.qcow2" >o.log 2>&1
	same "$bad library: exit 125" 125 "$?"
	[ ! -e "$bad.qcow2" ] && pass "$bad library: the command did not run" ||
		fail "$bad library: truncate ran without the shim"
	grep -q "cannot be preloaded here: $T/$bad.so" o.log && grep -q 'ld.so' o.log &&
		pass "$bad library: the message names it and quotes ld.so" || { fail "$bad library: message"; show_log o.log; }
	QCOWSHIM_LIB=$T/$bad.so "$W" --check >o.log 2>&1
	same "$bad library: --check exits 1" 1 "$?"
	grep -q 'FAILED: the library does not load' o.log && pass "$bad library: --check says why" ||
		{ fail "$bad library: --check message"; show_log o.log; }
done

section "make uninstall removes exactly what install put there"
mkdir src2
tar -C "$QCS_ROOT" --exclude=./build --exclude=./.git -cf - . | tar -C src2 -xf -
mkdir -p "$DEST/usr/local/share/doc/other"
echo keep >"$DEST/usr/local/bin/other-tool"
echo keep >"$DEST/usr/local/share/doc/other/README"
run "make uninstall DESTDIR=\$T/dest PREFIX=/usr/local (fresh tree, nothing built)" \
	make -C src2 uninstall DESTDIR="$DEST" PREFIX=/usr/local
same "only the unrelated files remain" "$DEST/usr/local/bin/other-tool
$DEST/usr/local/share/doc/other/README" "$(find "$DEST" -type f | sort)"
[ ! -e "$DEST/usr/local/lib/qcowshim" ] && [ ! -e "$DEST/usr/local/share/doc/qcowshim" ] &&
	pass "the qcowshim directories are gone" || fail "qcowshim directories left: $(find "$DEST" -path '*qcowshim*')"
run "make uninstall PREFIX=\$T/prefix" make -C src2 uninstall PREFIX="$PFX"
same "PREFIX: no file left" "" "$(find "$PFX" -type f)"
[ -d src2/build ] && fail "uninstall built something" || pass "uninstall builds nothing"

finish
