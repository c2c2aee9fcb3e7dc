#!/bin/sh
# The qcowshim wrapper and the shim's environment switches: --help,
# --version, --check, errors (missing library, bad option, unknown command),
# exit-code passthrough, LD_PRELOAD without duplicates when nested, -v,
# --match / QCOWSHIM_MATCH, QCOWSHIM_DISABLE, --no-backing, and qemu-img /
# qemu-io running untouched under the wrapper.
. "$(dirname "$0")/lib_tools.sh"
require qemu-img qemu-io timeout
[ -x "$QCOWSHIM" ] || { fail "not built: $QCOWSHIM (run make)"; finish; }

section "wrapper alone (no library needed)"
run "qcowshim --help exits 0" "$QCOWSHIM" --help
grep -q '^Usage: qcowshim' "$T/last.log" && pass "--help prints the usage" || fail "--help: no usage line"
run "qcowshim --version exits 0" "$QCOWSHIM" --version
grep -q '^qcowshim [0-9]' "$T/last.log" && pass "--version prints the version" || fail "--version: $(cat "$T/last.log")"
"$QCOWSHIM" --no-such-option true >"$T/o.log" 2>&1
same "unknown option: exit 125" 125 "$?"
"$QCOWSHIM" >"$T/o.log" 2>&1
same "no command: exit 125" 125 "$?"
QCOWSHIM_LIB=$T/nonexistent/libqcowshim.so "$QCOWSHIM" true >"$T/o.log" 2>&1
same "missing library: exit 125" 125 "$?"
grep -q "shim library not found: $T/nonexistent/libqcowshim.so" "$T/o.log" &&
	pass "missing library: the message names the path" ||
	{ fail "missing library: unclear message"; show_log "$T/o.log" 3; }
sed "s|^libdir=.*|libdir='$T/nowhere'|" "$QCOWSHIM" >badwrap && chmod +x badwrap
./badwrap --check >"$T/o.log" 2>&1
same "--check with the library missing: exit 125" 125 "$?"
grep -q "shim library not found: $T/nowhere/libqcowshim.so" "$T/o.log" &&
	pass "--check with the library missing: clear message" || { fail "--check, library missing: unclear message"; show_log "$T/o.log" 3; }

require_shim

section "--check"
"$QCOWSHIM" --check >"$T/ck.out" 2>"$T/ck.err"
rc=$?
same "qcowshim --check exits 0" 0 "$rc"
if [ "$(wc -l <"$T/ck.out")" -eq 1 ] && grep -q '^qcowshim: OK' "$T/ck.out"; then
	pass "--check prints one OK line: $(cat "$T/ck.out")"
else
	fail "--check output: $(cat "$T/ck.out" "$T/ck.err" | head -n 5)"
fi

section "exit codes and LD_PRELOAD"
S sh -c 'exit 42'
same "exit code 42 passes through" 42 "$?"
S false
same "false: exit code 1 passes through" 1 "$?"
S sh -c 'kill -TERM $$'
same "killed by SIGTERM: exit 143" 143 "$?"
"$QCOWSHIM" no-such-command-xyz >"$T/o.log" 2>&1
same "unknown command: exit 127" 127 "$?"
lib=$QCOWSHIM_LIB
got=$(S sh -c 'printf %s "$LD_PRELOAD"')
same "LD_PRELOAD is the library (QCOWSHIM_LIB)" "$lib" "$got"
got=$(env -u QCOWSHIM_LIB "$QCOWSHIM" sh -c 'printf %s "$LD_PRELOAD"')
same "LD_PRELOAD is the built library by default" "$QCS_BUILD/libqcowshim.so" "$got"
zlib=$(ldconfig -p | sed -n 's/.*libz.so.1 .*=> //p' | head -n 1)
got=$(LD_PRELOAD=$zlib S sh -c 'printf %s "$LD_PRELOAD"')
same "an existing LD_PRELOAD is kept after the library" "$lib:$zlib" "$got"
got=$(S "$QCOWSHIM" "$QCOWSHIM" sh -c 'printf %s "$LD_PRELOAD"')
same "nested qcowshim qcowshim qcowshim: one copy" "$lib" "$got"
mkdir -p other && cp "$lib" other/libqcowshim.so
got=$(LD_PRELOAD="$T/other/libqcowshim.so $zlib" S sh -c 'printf %s "$LD_PRELOAD"')
same "another build of the library in LD_PRELOAD is replaced" "$lib:$zlib" "$got"

new_image qemu-pat w 64M || finish
IMG=$T/w.qcow2
flatten "$IMG" w.flat
same "stat through the shim: virtual size" 67108864 "$(S stat -c %s "$IMG" 2>&1)"
same "nested wrapper inside a wrapped script still translates" 67108864 \
	"$(S sh -c '"$1" stat -c %s "$2"' sh "$QCOWSHIM" "$IMG" 2>&1)"
S cmp -s "$IMG" "$T/w.raw"
same "cmp image vs its twin through the shim: exit 0" 0 "$?"
head -c 1000 w.flat >w.short
S cmp -s "$IMG" w.short
same "cmp image vs a different file through the shim: exit 1 passes through" 1 "$?"
S sh -c 'echo plain > plain.txt && cat plain.txt' >"$T/p.out" 2>&1
same "non-image files are untouched" plain "$(cat "$T/p.out")"

section "invisible on success, -v / --debug"
S stat -c %s "$IMG" >/dev/null 2>"$T/q.err"
same "no stderr output on success" "" "$(cat "$T/q.err")"
"$QCOWSHIM" -v stat -c %s "$IMG" >"$T/v.out" 2>"$T/v.err"
same "-v: stdout unchanged" 67108864 "$(cat "$T/v.out")"
grep -q "w.qcow2" "$T/v.err" && pass "-v logs the image open on stderr: $(head -n 1 "$T/v.err")" ||
	fail "-v: no log line naming w.qcow2 on stderr"
"$QCOWSHIM" --debug stat -c %s "$IMG" >/dev/null 2>"$T/v.err"
grep -q "w.qcow2" "$T/v.err" && pass "--debug logs the image open" || fail "--debug: no log line"

section "--match / QCOWSHIM_MATCH, QCOWSHIM_DISABLE"
hsize=$(stat -c %s "$IMG")
cp "$IMG" disk.img
same "--match '*.img' translates disk.img" 67108864 "$("$QCOWSHIM" --match '*.img' stat -c %s disk.img 2>&1)"
same "--match='*.img' form" 67108864 "$("$QCOWSHIM" --match='*.img' stat -c %s disk.img 2>&1)"
same "--match '*.img' leaves *.qcow2 alone" "$hsize" "$("$QCOWSHIM" --match '*.img' stat -c %s "$IMG" 2>&1)"
same "QCOWSHIM_MATCH='*.img:*.qcow2' matches both (1)" 67108864 "$(QCOWSHIM_MATCH='*.img:*.qcow2' S stat -c %s disk.img 2>&1)"
same "QCOWSHIM_MATCH='*.img:*.qcow2' matches both (2)" 67108864 "$(QCOWSHIM_MATCH='*.img:*.qcow2' S stat -c %s "$IMG" 2>&1)"
run "--match '*.img': truncate -s 8M new.img creates an image" "$QCOWSHIM" --match '*.img' truncate -s 8M new.img
is_qcow2 new.img && pass "new.img is QCOW2" || fail "new.img is not QCOW2"
same "new.img virtual size (qemu)" 8388608 "$(qemu-img info -U -f qcow2 --output=json new.img 2>/dev/null | sed -n 's/^ *"virtual-size": *\([0-9]*\).*/\1/p')"
same "without a match disk.img is a plain file" "$hsize" "$(S stat -c %s disk.img 2>&1)"
same "QCOWSHIM_DISABLE=1: stat sees the host file" "$hsize" "$(QCOWSHIM_DISABLE=1 S stat -c %s "$IMG" 2>&1)"
same "QCOWSHIM_DISABLE=1: reads see the QCOW2 magic" 514649fb \
	"$(QCOWSHIM_DISABLE=1 S od -An -tx1 -N4 "$IMG" 2>&1 | tr -d ' \n')"

section "backing files, --no-backing"
qemu-img create -q -f qcow2 -b w.qcow2 -F qcow2 overlay.qcow2
S cmp overlay.qcow2 w.flat >"$T/o.log" 2>&1
same "an overlay reads through to its backing file" 0 "$?"
"$QCOWSHIM" --no-backing cmp overlay.qcow2 w.flat >"$T/o.log" 2>&1
same "--no-backing: cmp cannot open/read the overlay (cmp exit 2 = trouble)" 2 "$?"
grep 'overlay.qcow2' "$T/o.log" | grep -qv ' differ: \|EOF on' &&
	pass "--no-backing: the refusal names the image: $(grep 'overlay.qcow2' "$T/o.log" | head -n 1)" ||
	{ fail "--no-backing: no message naming overlay.qcow2"; show_log "$T/o.log" 3; }
QCOWSHIM_NO_BACKING=1 S cmp overlay.qcow2 w.flat >"$T/o.log" 2>&1
same "QCOWSHIM_NO_BACKING=1: cmp cannot open/read the overlay" 2 "$?"

section "qemu-img and qemu-io run untouched under the wrapper"
run "qemu-img info under the wrapper" S qemu-img info "$IMG"
grep -q '^file format: qcow2' "$T/last.log" && pass "qemu-img info under the wrapper sees qcow2" ||
	{ fail "qemu-img info under the wrapper does not see qcow2"; show_log "$T/last.log" 4; }
run "qemu-img check under the wrapper" S qemu-img check "$IMG"
run "qemu-img convert -O raw under the wrapper" S qemu-img convert -f qcow2 -O raw "$IMG" conv.raw
same_file "qemu-img convert under the wrapper = without" w.flat conv.raw
run "qemu-img create under the wrapper" S qemu-img create -q -f qcow2 made.qcow2 8M
same "qemu-img create under the wrapper: 8 MiB image" 8388608 "$(vsize made.qcow2)"
run "qemu-io write under the wrapper" S qemu-io -f qcow2 -c 'write -P 0x11 0 64k' "$IMG"
qcheck "$IMG"
flatten "$IMG" w2.flat
same "qemu-io's write landed" "$(head -c 65536 /dev/zero | tr '\0' '\021' | sha256sum)" "$(head -c 65536 w2.flat | sha256sum)"
same "a wrapped script mixes shim tools and qemu-img" "file format: qcow2
virtual size: 8 MiB (8388608 bytes)" \
	"$(S sh -c 'truncate -s 8M s.qcow2 && qemu-img info s.qcow2 | grep -E "^(file format|virtual size)"' 2>&1)"

section "exec guard: programs that would not load the shim"
require ldconfig
static=$(command -v ldconfig)
if ldd "$static" 2>&1 | grep -q 'statically linked\|not a dynamic'; then
	S bash -c '"$1" -p >/dev/null' bash "$static" >"$T/g.log" 2>&1
	same "a static program runs when no image fd is open" 0 "$?"
	S bash -c 'exec 3<>"$1"; "$2" -p >/dev/null' bash "$IMG" "$static" >"$T/g.log" 2>&1
	rc=$?
	[ "$rc" -ne 0 ] && grep -q 'w.qcow2\|fd 3' "$T/g.log" &&
		pass "a static program is refused while image fd 3 is open: $(head -n 1 "$T/g.log")" ||
		{ fail "a static program ran with image fd 3 open (exit $rc)"; show_log "$T/g.log" 3; }
else
	fail "$static is not static here: the exec guard test needs a static binary"
fi
cp "$IMG" guard.qcow2 && flatten guard.qcow2 guard.raw
printf 'STRIPPED-ENV' >ge.txt
dd if=ge.txt of=guard.raw bs=512 seek=4 conv=notrunc status=none
S bash -c 'exec 3<>"$1"; env -i /usr/bin/dd if=ge.txt bs=512 seek=4 conv=notrunc status=none >&3' bash "$T/guard.qcow2" >"$T/g.log" 2>&1
rc=$?
if [ "$rc" -eq 0 ]; then
	pass "env -i dd on an inherited image fd ran (the shim re-added itself)"
	qcheck guard.qcow2
	qcompare "$T/guard.qcow2" guard.raw
elif grep -q 'guard.qcow2\|fd 3' "$T/g.log"; then
	pass "env -i dd on an inherited image fd refused with a message: $(head -n 1 "$T/g.log")"
	qcheck guard.qcow2
else
	fail "env -i dd on an inherited image fd failed without a message (exit $rc)"
	show_log "$T/g.log" 3
	qcheck guard.qcow2
fi

finish
