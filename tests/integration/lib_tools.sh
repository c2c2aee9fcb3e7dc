# lib_tools.sh - sourced by tests/integration/t_tools_*.sh (POSIX sh).
#
# Each test runs real, unmodified tools on *.qcow2 images under the qcowshim
# wrapper and judges the result WITHOUT the shim: qemu-img check, qemu-img
# convert -O raw (the flat disk qemu sees), and raw twins that received the
# same commands without the shim.  Every assertion prints one line,
# "ok   - ..." or "FAIL - ...", with the failing command's last output lines
# indented below it.  Tests keep going after a failure so one run shows
# everything, and exit non-zero if any assertion failed.

set -u
: "${QCS_ROOT:=$(cd "$(dirname "$0")/../.." && pwd)}"
: "${QCS_BUILD:=$QCS_ROOT/build}"
QCOWSHIM=$QCS_BUILD/qcowshim
QCS_TIMEOUT=${QCS_TIMEOUT:-60}
# Deterministic mke2fs/debugfs/e2fsck output, so twins compare byte for byte.
E2FSPROGS_FAKE_TIME=1700000000
E2FSCK_TIME=1700000000
MTOOLS_SKIP_CHECK=1
LC_ALL=C
export E2FSPROGS_FAKE_TIME E2FSCK_TIME MTOOLS_SKIP_CHECK LC_ALL
unset QCOWSHIM_MATCH QCOWSHIM_DISABLE QCOWSHIM_DEBUG QCOWSHIM_NO_BACKING QCOWSHIM_SNAPSHOT QCOWSHIM_LIB

npass=0
nfail=0
T=$(mktemp -d "${TMPDIR:-/tmp}/qcs-$(basename "$0" .sh).XXXXXX") || exit 1
trap 'cd /; rm -rf "$T"' EXIT
trap 'exit 130' INT TERM HUP
trap 'exit 141' PIPE
cd "$T" || exit 1

pass() { npass=$((npass + 1)); echo "ok   - $*"; }
fail() { nfail=$((nfail + 1)); echo "FAIL - $*"; echo "FAIL - $*" >>"$T/failures"; }
note() { echo "#      $*"; }
section() { echo; echo "## $*"; }

# show_log FILE: the last lines of a failing command's output.
show_log() { tail -n "${2:-12}" "$1" 2>/dev/null | sed 's/^/#      | /'; }

# finish: summary line and exit status.
finish() {
	echo
	if [ -s "$T/failures" ]; then
		echo "failed assertions (details above):"
		sed 's/^/  /' "$T/failures"
	fi
	echo "$(basename "$0"): $npass passed, $nfail failed"
	[ "$nfail" -eq 0 ] && exit 0
	exit 1
}

# S CMD...: run CMD under the wrapper, with a timeout so a hung shim fails
# the assertion instead of the whole run.
S() { timeout -k 5 "$QCS_TIMEOUT" "$QCOWSHIM" "$@"; }

# run DESC CMD...: assert that CMD exits 0.  Output goes to $T/last.log.
run() {
	_d=$1; shift
	"$@" >"$T/last.log" 2>&1
	_rc=$?
	if [ "$_rc" -eq 0 ]; then pass "$_d"; return 0; fi
	fail "$_d (exit $_rc: $*)"
	show_log "$T/last.log"
	return 1
}

# run_fails DESC CMD...: assert that CMD exits non-zero.
run_fails() {
	_d=$1; shift
	if "$@" >"$T/last.log" 2>&1; then
		fail "$_d (exit 0, expected failure: $*)"
		show_log "$T/last.log"
		return 1
	fi
	pass "$_d"
	return 0
}

# same DESC EXPECTED ACTUAL: assert two strings are equal.
same() {
	if [ "$2" = "$3" ]; then pass "$1"; return 0; fi
	fail "$1: expected '$2', got '$3'"
	return 1
}

# same_file DESC EXPECTED_FILE ACTUAL_FILE: byte-identical files.
same_file() {
	if cmp "$2" "$3" >"$T/cmp.log" 2>&1; then pass "$1"; return 0; fi
	fail "$1: $(head -n 1 "$T/cmp.log")"
	if [ -s "$2" ] && [ -s "$3" ] && [ "$(wc -c <"$2")" -lt 65536 ]; then
		diff "$2" "$3" | head -n 12 | sed 's/^/#      | /'
	fi
	return 1
}

# require TOOL...: a missing tool is a failure (make deps installs them).
require() {
	for _t in "$@"; do
		command -v "$_t" >/dev/null 2>&1 || { fail "tool missing: $_t (run make deps)"; finish; }
	done
}

# require_shim: the wrapper and the library must be built.
require_shim() {
	require qemu-img qemu-io timeout
	if [ ! -x "$QCOWSHIM" ] || [ ! -f "$QCS_BUILD/libqcowshim.so" ]; then
		fail "not built: $QCOWSHIM and $QCS_BUILD/libqcowshim.so (run make)"
		finish
	fi
	# Use a private copy of the library: a rebuild in the shared build dir
	# while a test runs would make ld.so skip the preload, and the tool
	# would then write raw bytes into the .qcow2 file.
	mkdir -p "$T/lib" && cp "$QCS_BUILD/libqcowshim.so" "$T/lib/" || { fail "cannot copy the library"; finish; }
	QCOWSHIM_LIB=$T/lib/libqcowshim.so
	export QCOWSHIM_LIB
}

# is_qcow2 FILE: the host file starts with the QCOW2 magic.
is_qcow2() { [ "$(od -An -tx1 -N4 "$1" 2>/dev/null | tr -d ' \n')" = 514649fb ]; }

# vsize IMG: virtual size according to qemu-img.
vsize() {
	qemu-img info -U --output=json "$1" 2>/dev/null |
		sed -n 's/^ *"virtual-size": *\([0-9]*\).*/\1/p' | head -n 1
}

# qcheck IMG: qemu-img check exits 0 (not 2 corrupt, not 3 leaks).
qcheck() {
	qemu-img check "$1" >"$T/check.log" 2>&1
	_rc=$?
	if [ "$_rc" -eq 0 ]; then
		pass "qemu-img check $(basename "$1"): clean"
		return 0
	fi
	fail "qemu-img check $(basename "$1"): exit $_rc"
	show_log "$T/check.log" 8
	return 1
}

# flatten IMG OUT: qemu's view of the virtual disk, as a raw file.
flatten() {
	rm -f "$2"
	if qemu-img convert -U -f qcow2 -O raw "$1" "$2" >"$T/conv.log" 2>&1; then return 0; fi
	fail "qemu-img convert -O raw $(basename "$1") failed"
	show_log "$T/conv.log" 5
	: >"$2"
	return 1
}

# qcompare IMG TWIN: qemu-img compare (strict size) of an image and a raw twin.
# qemu sees whole 512-byte sectors only (it rounds a qcow2 virtual size down),
# so when the twin's size is not a multiple of 512 the qemu comparison uses
# the twin cut or padded to qemu's size, and the exact size and content are
# checked through the shim as well.
qcompare() {
	_vs=$(vsize "$1")
	_rs=$(stat -c %s "$2")
	_tw=$2
	if [ $((_rs % 512)) -ne 0 ]; then
		_ss=$(S stat -c %s "$1" 2>&1)
		same "size through the shim = twin's unaligned size ($(basename "$1"))" "$_rs" "$_ss"
		S cmp "$1" "$2" >"$T/cmp.log" 2>&1 &&
			pass "content through the shim = twin ($(basename "$1"))" ||
			{ fail "content through the shim differs from twin ($(basename "$1"))"; show_log "$T/cmp.log" 3; }
		if [ "$_vs" = $((_rs / 512 * 512)) ] || [ "$_vs" = $(((_rs + 511) / 512 * 512)) ]; then
			note "qemu sees $_vs bytes of the $_rs-byte disk (whole sectors)"
			cp "$2" "$T/twin.cut" && truncate -s "$_vs" "$T/twin.cut"
			_tw=$T/twin.cut _rs=$_vs
		fi
	fi
	if [ "$_vs" != "$_rs" ]; then
		fail "qemu-img compare $(basename "$1") vs twin: virtual size $_vs, twin $_rs"
		return 1
	fi
	if qemu-img compare -U -f qcow2 -F raw "$1" "$_tw" >"$T/cmp.log" 2>&1; then
		pass "qemu-img compare $(basename "$1") = raw twin $(basename "$2")"
		return 0
	fi
	fail "qemu-img compare $(basename "$1") vs raw twin $(basename "$2")"
	show_log "$T/cmp.log" 5
	return 1
}

# new_image KIND NAME SIZE: makes NAME.qcow2 and its raw twin NAME.raw.
#   qemu     qemu-img create, default options (v3, 64 KiB clusters)
#   qemu-v2  qemu-img create -o compat=0.10,cluster_size=4096
#   qemu-pat qemu-img create + qemu-io patterns (partly allocated, a zeroed
#            and a discarded range) so tools write over existing data
#   shim     truncate -s SIZE under the shim (O_CREAT makes the image)
# The twin is qemu-img convert -O raw of the fresh image, so both start equal.
new_image() {
	_k=$1 _n=$2 _s=$3
	rm -f "$_n.qcow2" "$_n.raw"
	case $_k in
	qemu) qemu-img create -q -f qcow2 "$_n.qcow2" "$_s" >"$T/mk.log" 2>&1 ;;
	qemu-v2) qemu-img create -q -f qcow2 -o compat=0.10,cluster_size=4096 "$_n.qcow2" "$_s" >"$T/mk.log" 2>&1 ;;
	qemu-pat)
		qemu-img create -q -f qcow2 -o cluster_size=65536 "$_n.qcow2" "$_s" >"$T/mk.log" 2>&1 &&
			qemu-io -t unsafe -f qcow2 -c 'write -P 0x5a 0 3M' -c 'write -P 0xa5 5000000 70000' \
				-c 'write -z 1M 64k' -c 'discard 2M 128k' -c 'write -P 0x33 12345 1000' \
				"$_n.qcow2" >>"$T/mk.log" 2>&1 ;;
	shim) S truncate -s "$_s" "$_n.qcow2" >"$T/mk.log" 2>&1 ;;
	*) echo "new_image: unknown kind $_k" >&2; return 2 ;;
	esac || {
		fail "create $_k image $_n.qcow2 ($_s)"
		show_log "$T/mk.log" 5
		return 1
	}
	if ! is_qcow2 "$_n.qcow2"; then
		fail "create $_k image $_n.qcow2: host file is not QCOW2"
		return 1
	fi
	qemu-img convert -U -f qcow2 -O raw "$_n.qcow2" "$_n.raw" >"$T/mk.log" 2>&1 || {
		fail "qemu-img convert of new $_k image $_n.qcow2"
		show_log "$T/mk.log" 5
		return 1
	}
	return 0
}

# on_twin CMD...: run CMD with every @IMG@ in its arguments replaced by the
# raw twin $TWIN, without the shim; on_img does the same with $IMG under the
# shim.  Both put the output in $T/twin.out / $T/img.out.
_subst_run() {
	_v=$1; shift
	_c=$#
	while [ "$_c" -gt 0 ]; do
		_a=$1; shift
		case $_a in *@IMG@*) _a="${_a%%@IMG@*}$_v${_a#*@IMG@}" ;; esac
		set -- "$@" "$_a"
		_c=$((_c - 1))
	done
	"$@"
}

# both DESC STDIN CMD...: the same command on the raw twin (no shim) and on
# the image (under the shim); both must exit 0.  STDIN is a file or -.
# Sets BOTH_OK=1 when both succeeded.
both() {
	_d=$1 _in=$2; shift 2
	[ "$_in" = - ] && _in=/dev/null
	BOTH_OK=0
	if ! _subst_run "$TWIN" "$@" <"$_in" >"$T/twin.out" 2>&1; then
		fail "$_d: on the raw twin (no shim, test environment problem): $*"
		show_log "$T/twin.out"
		return 1
	fi
	if ! _subst_run "$IMG" S "$@" <"$_in" >"$T/img.out" 2>&1; then
		fail "$_d: under the shim: $*"
		show_log "$T/img.out"
		return 1
	fi
	pass "$_d"
	BOTH_OK=1
	return 0
}

# verify_flat DESC: qemu-img check of $IMG, then qemu-img compare with $TWIN,
# then leaves qemu's flat view of $IMG in $IMG.flat for further checks.
verify_img() {
	qcheck "$IMG"
	qcompare "$IMG" "$TWIN"
	flatten "$IMG" "$IMG.flat"
}

# extract FILE START_SECTOR SECTORS OUT: copy a partition out (no shim).
extract() {
	dd if="$1" of="$4" bs=1M iflag=skip_bytes,count_bytes skip=$(($2 * 512)) count=$(($3 * 512)) conv=sparse status=none
}

# esp_root FLAT DUMP: FLAT is a flat disk with an ESP and a root partition,
# DUMP its `sfdisk -d`.  Copies them out to esp.img and root.img and asserts
# that fsck.vfat and e2fsck find both clean.  Returns 1 when DUMP does not
# list exactly two partitions.
esp_root() {
	set -- "$1" $(sed -n 's/.*: start= *\([0-9]*\), size= *\([0-9]*\).*/\1 \2/p' "$2")
	[ $# -eq 5 ] || { fail "no two partitions on $(basename "$1")"; return 1; }
	extract "$1" "$2" "$3" esp.img
	extract "$1" "$4" "$5" root.img
	run "fsck.vfat -n on the flattened ESP" fsck.vfat -n esp.img
	run "e2fsck -fn on the flattened root" e2fsck -fn root.img
	return 0
}
