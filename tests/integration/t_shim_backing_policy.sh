#!/bin/sh
# The backing/data-file name policy through the shim (issue 4): a name comes
# from an untrusted image, so the shim refuses device, /proc and /sys
# targets (also when reached through symlinks or ".."), non-regular files
# (FIFO, directory), chains deeper than 16 images and loops, and with
# QCOWSHIM_NO_BACKING=1 (or `qcowshim --no-backing`) every backing or data
# file.  Each refusal: the command fails, exactly one line
# "qcowshim: IMG: reason", nothing hangs, the image is untouched.  Relative
# names resolve like qemu's: against the directory of the name the program
# used (a symlink's own directory), from any cwd.  A file whose name does
# not match the image globs is not an image: its bytes pass through and its
# backing name is never followed.
. "$(dirname "$0")/lib_tools.sh"
require_shim
require sha256sum mkfifo

M=1048576
mkbase() { # NAME BYTE: a 1 MiB qcow2 base filled with BYTE
	qemu-img create -q -f qcow2 "$1" 1M >>"$T/mk.log" 2>&1 &&
		qemu-io -t unsafe -f qcow2 -c "write -P $2 0 1M" "$1" >>"$T/mk.log" 2>&1
}
ov() { # OVERLAY BACKING FMT: qemu-img create -u (the backing may be absent or odd)
	qemu-img create -q -f qcow2 -u -b "$2" -F "$3" "$1" 1M >>"$T/mk.log" 2>&1 ||
		{ fail "make $1 on $2"; show_log "$T/mk.log" 3; return 1; }
}

# refused DESC IMG REASON [ENV=V...]: reading IMG through the shim fails
# with one line naming IMG and matching REASON; the image is untouched.
refused() {
	_d=$1 _i=$2 _why=$3; shift 3
	_sum=$(sha256sum <"$_i")
	_out=$(env "$@" timeout -k 5 20 "$QCOWSHIM" cat "$_i" 2>&1 >/dev/null); _rc=$?
	_lines=$(printf '%s\n' "$_out" | grep -c '^qcowshim:')
	_hit=$(printf '%s\n' "$_out" | grep -c "^qcowshim: $_i: .*$_why")
	if [ "$_rc" -ne 0 ] && [ "$_rc" -ne 124 ] && [ "$_lines" = 1 ] && [ "$_hit" = 1 ]; then
		pass "$_d"
	else
		fail "$_d (exit $_rc, $_lines qcowshim lines, want one matching '$_why')"
		printf '%s\n' "$_out" | head -n 4 | sed 's/^/#      | /'
	fi
	same "$_d: image untouched" "$_sum" "$(sha256sum <"$_i")"
}

# reads_as DESC IMG: the shim reads IMG exactly as qemu-img convert does.
reads_as() {
	flatten "$2" "$T/flat.raw" && run "$1" S cmp "$2" "$T/flat.raw"
}

section "QCOWSHIM_NO_BACKING and --no-backing"
mkbase base.qcow2 0x11 && ov ov.qcow2 base.qcow2 qcow2
qemu-img create -q -f qcow2 -o data_file=df.data df.qcow2 1M >>"$T/mk.log" 2>&1 || fail "make df.qcow2"
mkbase plain.qcow2 0x22
reads_as "an overlay reads through its backing file" ov.qcow2
reads_as "an image with an external data file reads" df.qcow2
refused "QCOWSHIM_NO_BACKING=1 refuses an overlay" ov.qcow2 "needs backing file .base.qcow2., which is not allowed here" QCOWSHIM_NO_BACKING=1
refused "QCOWSHIM_NO_BACKING=1 refuses an external data file" df.qcow2 "needs data file .df.data., which is not allowed here" QCOWSHIM_NO_BACKING=1
out=$(S --no-backing cat ov.qcow2 2>&1 >/dev/null); rc=$?
same "qcowshim --no-backing refuses an overlay with one line" "1 1" \
	"$([ $rc -ne 0 ] && echo 1) $(printf '%s\n' "$out" | grep -c "^qcowshim: ov.qcow2: image needs backing file 'base.qcow2', which is not allowed here$")"
flatten plain.qcow2 plain.raw
same "QCOWSHIM_NO_BACKING=1 still reads an image without backing" "$(sha256sum <plain.raw)" \
	"$(QCOWSHIM_NO_BACKING=1 S cat plain.qcow2 | sha256sum)"

section "device, /proc and /sys targets, whatever the name"
ov dev.qcow2 /dev/zero raw && refused "backing /dev/zero" dev.qcow2 "/dev/zero refused"
ov proc.qcow2 /proc/self/environ raw && refused "backing /proc/self/environ" proc.qcow2 "refused: device or /proc path"
ov sys.qcow2 /sys/kernel/notes raw && refused "backing under /sys" sys.qcow2 "refused: device or /proc path"
dots=../../../../../../../../../../../..
ov dots.qcow2 "$dots/dev/zero" raw && refused "backing $dots/dev/zero (relative, up to /)" dots.qcow2 "refused"
ln -s /dev/zero zlink.raw && ov zlink.qcow2 zlink.raw raw &&
	refused "backing symlink to /dev/zero" zlink.qcow2 "refused: not a regular file"
ln -s /proc/self/environ elink.raw && ov elink.qcow2 elink.raw raw &&
	refused "backing symlink to /proc/self/environ (a regular file in /proc)" elink.qcow2 "refused: device or /proc path"
qemu-img create -q -f qcow2 -o data_file=dd.data ddev.qcow2 1M >>"$T/mk.log" 2>&1 && rm -f dd.data &&
	ln -s /dev/zero dd.data && refused "data file symlink to /dev/zero" ddev.qcow2 "refused: not a regular file"

section "non-regular and missing files"
mkfifo fifo.raw && ov fifo.qcow2 fifo.raw raw && refused "backing FIFO (no hang)" fifo.qcow2 "refused: not a regular file"
mkdir dir.raw && ov dir.qcow2 dir.raw raw && refused "backing directory" dir.qcow2 "refused: not a regular file"
ov miss.qcow2 missing.qcow2 qcow2 && refused "missing backing file" miss.qcow2 "cannot open backing file"

section "chain depth and loops"
mkbase c0.qcow2 0x33
i=1
while [ $i -le 16 ]; do ov c$i.qcow2 c$((i - 1)).qcow2 qcow2 || break; i=$((i + 1)); done
qemu-io -t unsafe -f qcow2 -c "write -P 0x44 $((M / 2)) 4096" c15.qcow2 >/dev/null 2>&1
reads_as "a chain of 16 images reads as qemu reads it" c15.qcow2
refused "a chain of 17 images is refused" c16.qcow2 "deeper than 16"
ov la.qcow2 lb.qcow2 qcow2 && ov lb.qcow2 la.qcow2 qcow2 && refused "a loop a -> b -> a is refused" la.qcow2 "or a loop"
ov self.tmp.qcow2 self.qcow2 qcow2 && mv self.tmp.qcow2 self.qcow2 && refused "an image that is its own backing file is refused" self.qcow2 "or a loop"

section "relative names: the directory of the name used, like qemu"
mkdir -p real other run
mkbase real/base.qcow2 0x55 && mkbase other/base.qcow2 0x66 && (cd real && ov ov.qcow2 base.qcow2 qcow2)
ln -s ../real/ov.qcow2 other/link.qcow2
cd run || exit 1
reads_as "through the real path, from another cwd: real/base.qcow2" ../real/ov.qcow2
reads_as "through a symlink in another directory: that directory's base.qcow2 (qemu's choice)" ../other/link.qcow2
same "... which holds 0x66" " 66" "$(S od -An -tx1 -N 1 ../other/link.qcow2)"
cd "$T" || exit 1

section "a name that is not an image is never translated or followed"
cp ov.qcow2 ov.img
same "ov.img (no *.qcow2 match) reads as its host bytes" "$(sha256sum <ov.img)" "$(S sha256sum <ov.img)"
out=$(QCOWSHIM_DEBUG=1 S cat ov.img 2>&1 >/dev/null)
same "... and the shim says nothing about it (no backing file opened)" "" "$out"
flatten ov.img "$T/flat.raw"
QCOWSHIM_MATCH='*.img' S cmp ov.img "$T/flat.raw" >"$T/last.log" 2>&1 &&
	pass "... under QCOWSHIM_MATCH='*.img' it reads as qemu reads it" ||
	{ fail "QCOWSHIM_MATCH='*.img' read of ov.img"; show_log "$T/last.log" 3; }

finish
