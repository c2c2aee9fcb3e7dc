#!/bin/sh
# make test-deb: the package built by make deb (QCS_DEB) is installed on this
# machine with apt-get, used (qcowshim --check, --version and the man page
# agree on the version, LD_PRELOAD=libqcowshim.so by name on an image, an
# installed example), then purged: none of its files is left, and neither
# the loader nor PATH finds it.  Needs root; refuses to run when a qcowshim
# package is already installed (it would be replaced, then purged).  The
# trap purges the package on any exit.  Run by tests/integration/run.sh.
. "$(dirname "$0")/../integration/lib_tools.sh"
require qemu-img dpkg dpkg-query apt-get ldconfig flock man sfdisk fdisk sha256sum
export DEBIAN_FRONTEND=noninteractive
MA=$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || gcc -print-multiarch)
LIB=/usr/lib/$MA/qcowshim/libqcowshim.so
CONF=/etc/ld.so.conf.d/qcowshim-$MA.conf
VER=$(sed -n '1s/^qcowshim (\([^)]*\)).*/\1/p' "$QCS_ROOT/debian/changelog")

section "the package"
[ "$(id -u)" = 0 ] || { fail "make test-deb installs a package: run it as root"; finish; }
[ -n "${QCS_DEB:-}" ] && [ -f "$QCS_DEB" ] || { fail "no package (QCS_DEB='${QCS_DEB:-}'; make test-deb builds it)"; finish; }
same "the package's name carries debian/changelog's version" "qcowshim_${VER}_$(dpkg --print-architecture).deb" "$(basename "$QCS_DEB")"
if dpkg-query -W -f='${Status}' qcowshim 2>/dev/null | grep -q 'ok installed'; then
	fail "a qcowshim package is already installed here: not touched (remove it to run this test)"
	finish
fi
installed=0
undo() {
	[ "$installed" = 1 ] && apt-get purge -y -qq qcowshim >/dev/null 2>&1
	installed=0
}
trap 'undo; cd /; rm -rf "$T"' EXIT
# The loader's search path is shared with t_install.sh (in another checkout's
# make test): one script at a time changes it.
exec 9</etc/ld.so.conf.d && flock 9
other=$(ldconfig -p | grep 'libqcowshim\.so ')
[ -n "$other" ] && note "the loader already knows another copy: $other (bare-name runs not tried)"
onpath=$(command -v qcowshim || true)

section "apt-get install ./$(basename "$QCS_DEB")"
cp "$QCS_DEB" "$T/" || { fail "copy of the package"; finish; }
installed=1
run "apt-get install ./$(basename "$QCS_DEB")" apt-get install -y -q --no-install-recommends "./$(basename "$QCS_DEB")"
rm -f "$T/$(basename "$QCS_DEB")"
dpkg -L qcowshim >pkg.list 2>&1
while read -r f; do [ -f "$f" ] && echo "$f"; done <pkg.list | sort >files.list
note "dpkg -L qcowshim: $(wc -l <files.list) files, e.g. $(grep -c '/examples/' files.list) examples"
for f in /usr/bin/qcowshim "$LIB" "$CONF" /usr/share/man/man1/qcowshim.1.gz /usr/share/man/man7/libqcowshim.7.gz \
	/usr/share/doc/qcowshim/copyright /usr/share/doc/qcowshim/README.md.gz /usr/share/doc/qcowshim/docs/USING.md.gz \
	/usr/share/doc/qcowshim/examples/tree-to-image.sh /usr/share/doc/qcowshim/examples/uefi-boot-image.sh; do
	grep -qx "$f" files.list || fail "the package lacks $f"
done
pass "the package holds the wrapper, the library, its loader entry, man pages, docs, examples"
same "$CONF names the library's directory" "/usr/lib/$MA/qcowshim" "$(cat "$CONF" 2>&1)"
ldconfig -p | grep -q "libqcowshim\.so .*=> $LIB\$" && pass "ldconfig -p lists $LIB (the ldconfig trigger ran)" ||
	fail "ldconfig -p does not list $LIB"

section "the installed package works"
/usr/bin/qcowshim --check >ck.out 2>&1
same "qcowshim --check: exit 0" 0 "$?"
grep -q "^qcowshim: OK: $LIB" ck.out && pass "$(cat ck.out)" || { fail "--check output"; show_log ck.out; }
same "qcowshim --version: the package's version and library" "qcowshim $VER (library: $LIB)" "$(/usr/bin/qcowshim --version 2>&1)"
same "dpkg's version of it" "$VER" "$(dpkg-query -W -f='${Version}' qcowshim)"
MANWIDTH=80 man qcowshim 2>/dev/null | tail -n 1 | grep -q "^qcowshim $VER " &&
	pass "man qcowshim: the footer names qcowshim $VER" || { fail "man page footer"; man qcowshim 2>&1 | tail -n 2 | sed 's/^/#      | /'; }
MANWIDTH=80 man 7 libqcowshim 2>/dev/null | tail -n 1 | grep -q "^qcowshim $VER " &&
	pass "man 7 libqcowshim: the same version" || fail "libqcowshim(7) footer"
if [ -z "$other" ]; then
	printf 'label: dos\nlabel-id: 0x51c0b0a7\nstart=2048, size=40960, type=83\ntype=c\n' >layout
	LD_PRELOAD=libqcowshim.so truncate -s 96M bare.qcow2 2>bare.err
	is_qcow2 bare.qcow2 && pass "LD_PRELOAD=libqcowshim.so truncate -s 96M bare.qcow2 made a QCOW2 image" ||
		{ fail "bare name: not QCOW2"; show_log bare.err; }
	truncate -s 96M bare.raw
	LD_PRELOAD=libqcowshim.so sfdisk -q bare.qcow2 <layout >sf.out 2>&1
	same "LD_PRELOAD=libqcowshim.so sfdisk bare.qcow2: exit 0" 0 "$?" || show_log sf.out
	sfdisk -q bare.raw <layout >/dev/null 2>&1
	LD_PRELOAD=libqcowshim.so fdisk -l bare.qcow2 >fd.out 2>fd.err
	same "LD_PRELOAD=libqcowshim.so fdisk -l: the flat disk" "Disk bare.qcow2: 96 MiB, 100663296 bytes, 196608 sectors" "$(head -n 1 fd.out)"
	[ ! -s fd.err ] && pass "no loader message" || { fail "fdisk stderr"; show_log fd.err; }
	same "the process mapped the package's library" "$LIB" \
		"$(LD_PRELOAD=libqcowshim.so grep -o '/[^ ]*/libqcowshim\.so$' /proc/self/maps | head -n 1)"
	qcheck bare.qcow2
	qcompare "$T/bare.qcow2" bare.raw
fi
mkdir -p tree/boot/efi/EFI/BOOT tree/etc
head -c 50000 /dev/urandom >tree/boot/efi/EFI/BOOT/BOOTX64.EFI
echo packaged >tree/etc/hostname
EX=/usr/share/doc/qcowshim/examples
run "$EX/tree-to-image.sh tree img.qcow2 (it finds /usr/bin/qcowshim)" \
	env -u QCOWSHIM PATH=/usr/bin:/bin:/usr/sbin:/sbin ESP_MIB=32 sh "$EX/tree-to-image.sh" tree img.qcow2
qcheck img.qcow2
/usr/bin/qcowshim debugfs -R 'cat /etc/hostname' img.qcow2/p2 >host.out 2>/dev/null
same "the image's root holds the tree (debugfs through the installed wrapper)" packaged "$(cat host.out)"
rm -f img.qcow2 bare.qcow2 bare.raw

section "apt-get purge qcowshim: nothing is left"
run "apt-get purge qcowshim" apt-get purge -y -q qcowshim && installed=0
dpkg-query -W -f='${Status}' qcowshim >st.out 2>&1
grep -q 'ok installed\|config-files' st.out && fail "dpkg still knows the package: $(cat st.out)" ||
	pass "dpkg: qcowshim not installed, no config files"
left=$(while read -r f; do [ -e "$f" ] && echo "$f"; done <files.list)
same "none of the package's $(wc -l <files.list) files is left" "" "$left"
[ ! -e "/usr/lib/$MA/qcowshim" ] && [ ! -e /usr/share/doc/qcowshim ] && pass "its directories are gone" ||
	fail "directories left: $(ls -d "/usr/lib/$MA/qcowshim" /usr/share/doc/qcowshim 2>/dev/null)"
ldconfig -p | grep -q "=> $LIB\$" && fail "ldconfig -p still lists $LIB" || pass "ldconfig -p no longer lists $LIB"
same "PATH finds the qcowshim it found before (none: '')" "$onpath" "$(command -v qcowshim || true)"
if [ -z "$other" ]; then
	LD_PRELOAD=libqcowshim.so /bin/true 2>pre.err
	grep -q "object 'libqcowshim.so' from LD_PRELOAD cannot be preloaded" pre.err &&
		pass "the loader no longer finds it: $(cat pre.err)" || { fail "bare name after purge"; show_log pre.err; }
fi
exec 9<&-
finish
