#!/bin/sh
# symbols.sh - the per-symbol checks, all driven by shim/syms.def:
#   1. exports: libqcowshim.so exports exactly the table's names (nm -D);
#   2. resolution: each row's real_* resolved to the next definition, libc
#      (QCOWSHIM_DEBUG=resolve lists where each one landed);
#   3. snippets: tests/shim/snippets/<row>.c exists for every row, imports
#      its symbol, and prints the same on a QCOW2 image under the shim as on
#      the raw twin without it; afterwards the flat disks are identical
#      (qemu-img compare) and the image is clean (qemu-img check).
# Usage: symbols.sh [ROW...]  (default: every row).  Exit 0 = all passed.
# QCS_LIBC=musl (with CC=musl-gcc, QCS_BUILD=build-musl): the musl flavour,
# whose table is the SYM/SYMV rows only (syms.def).
set -u
: "${QCS_ROOT:=$(cd "$(dirname "$0")/../.." && pwd)}"
: "${QCS_BUILD:=$QCS_ROOT/build}"
LIB=$QCS_BUILD/libqcowshim.so
DEF=$QCS_ROOT/shim/syms.def
SN=$QCS_ROOT/tests/shim/snippets
unset QCOWSHIM_MATCH QCOWSHIM_DISABLE QCOWSHIM_DEBUG QCOWSHIM_NO_BACKING LD_PRELOAD
export LC_ALL=C
T=$(mktemp -d "${TMPDIR:-/tmp}/qcs-symbols.XXXXXX") || exit 1
trap 'cd /; rm -rf "$T"' EXIT
npass=0 nfail=0
pass() { npass=$((npass + 1)); echo "ok   - $*"; }
fail() { nfail=$((nfail + 1)); echo "FAIL - $*"; }

[ -f "$LIB" ] || { echo "FAIL - $LIB not built"; exit 1; }
CC=${CC:-cc}
if [ "${QCS_LIBC:-glibc}" = musl ]; then
	kinds='V' libc_re='*/ld-musl-*.so.1' libc_re2='*-linux-musl/libc.so'
	printf 'int main(void){return 0;}\n' >"$T/true.c" && $CC -o "$T/true" "$T/true.c" || exit 1
	TRUE=$T/true
else
	kinds='V\|64\|G\|VG\|U' libc_re='*/libc.so.6' libc_re2=$libc_re TRUE=/bin/true
fi
sed -n "s/^SYM\\($kinds\\)\\{0,1\\}(\\([A-Za-z0-9_]*\\),.*/\\2/p" "$DEF" | sort >"$T/table"
# SYMU rows: another library's entry points (liburing), not libc's
sed -n 's/^SYMU(\([A-Za-z0-9_]*\),.*/\1/p' "$DEF" | sort >"$T/other"
[ -s "$T/table" ] || { echo "FAIL - no rows parsed from $DEF"; exit 1; }

# 1. exports == table
nm -D --defined-only "$LIB" | awk '$2 ~ /^[TWi]$/ {print $3}' | sed 's/@.*//' | sort -u >"$T/exports"
if cmp -s "$T/table" "$T/exports"; then
	pass "exports: exactly the $(wc -l <"$T/table") rows of syms.def"
else
	fail "exports differ from syms.def (< table only, > exported only):"
	diff "$T/table" "$T/exports" | grep '^[<>]' | sed 's/^/#      /'
fi

# 2. every row resolves to libc, none to the shim, none missing
QCOWSHIM_DEBUG=resolve LD_PRELOAD=$LIB "$TRUE" 2>"$T/resolve"
bad=0
while read -r s; do
	obj=$(awk -v s="$s" '$2 == "resolve" && $3 == s {print $4}' "$T/resolve")
	# shellcheck disable=SC2254
	if grep -qx "$s" "$T/other"; then
		# shellcheck disable=SC2254
		case $obj in */liburing.so.* | "(missing)") continue ;; esac
	fi
	case $obj in
	$libc_re | $libc_re2) ;;
	*) echo "#      $s resolved to '${obj:-nothing}'"; bad=1 ;;
	esac
done <"$T/table"
if [ $bad = 0 ]; then pass "resolution: every row's next definition is libc's (liburing's for the SYMU rows)"; else fail "resolution"; fi

# 3. snippets
if [ $# -gt 0 ]; then printf '%s\n' "$@" >"$T/rows"; else cp "$T/table" "$T/rows"; fi
mkdir -p "$T/bin" "$T/run" "$T/cc"
# Every snippet compiled first, two at a time (compiling is most of the
# CPU); cc/ROW.rc holds the compiler's exit status, cc/ROW.log its output.
# A line "/* LDLIBS: -lNAME */" in a snippet adds libraries (liburing).
while read -r s; do [ -f "$SN/$s.c" ] && echo "$s"; done <"$T/rows" |
	CC=$CC SN=$SN T=$T xargs -r -P 2 -I @ sh -c 'libs=$(sed -n "s|^/\* LDLIBS: \(.*\) \*/\$|\1|p" "$SN/$1.c")
		$CC -std=gnu11 -O1 -g -Wall -Wextra -Werror \
		-Wno-unused-function -Wno-unused-parameter -o "$T/bin/$1" "$SN/$1.c" $libs >"$T/cc/$1.log" 2>&1
		echo $? >"$T/cc/$1.rc"' sh @
# The disk, made once and copied for each row: 4 MiB, data at 0 and 1 MiB,
# a tail at the end, holes between.  Clean and identical to its twin here,
# so a row that leaves both files byte-identical needs neither
# qemu-img check nor compare again.
mkdir "$T/disk"
qemu-img create -q -f qcow2 "$T/disk/disk.qcow2" 4M &&
qemu-io -t unsafe -f qcow2 -c 'write -q -P 0x11 0 512' -c 'write -q -P 0xab 1M 64k' \
	-c 'write -q -P 0xcd 4190208 4096' "$T/disk/disk.qcow2" >/dev/null &&
qemu-img convert -f qcow2 -O raw "$T/disk/disk.qcow2" "$T/disk/disk.raw" &&
qemu-img check -q "$T/disk/disk.qcow2" >"$T/disk/check" 2>&1 &&
qemu-img compare -q -f qcow2 -F raw "$T/disk/disk.qcow2" "$T/disk/disk.raw" >"$T/disk/compare" 2>&1 ||
	{ fail "making the disk"; cat "$T/disk/check" "$T/disk/compare" 2>/dev/null | head -10 | sed 's/^/#      ! /'; }
while read -r s; do
	src=$SN/$s.c
	if [ ! -f "$src" ]; then fail "$s: no snippet $src"; continue; fi
	rc=; read -r rc <"$T/cc/$s.rc" 2>/dev/null
	if [ "$rc" != 0 ]; then
		fail "$s: snippet does not compile"; sed 's/^/#      | /' "$T/cc/$s.log" | head -20; continue
	fi
	if ! nm -D --undefined-only "$T/bin/$s" | awk -v s="$s" '{ n = $NF; sub(/@.*/, "", n) } n == s { f = 1 } END { exit !f }'; then
		fail "$s: the snippet does not call $s through the dynamic symbol table"; continue
	fi
	d=$T/run/$s; mkdir -p "$d"
	cp "$T/disk/disk.qcow2" "$T/disk/disk.raw" "$d/" || { fail "$s: copying the disk"; continue; }
	(cd "$d" && QCS_IMAGE=1 timeout 60 env LD_PRELOAD="$LIB" "$T/bin/$s" "$d/disk.qcow2" >"$d/out.img" 2>"$d/err.img"); rc1=$?
	(cd "$d" && timeout 60 "$T/bin/$s" "$d/disk.raw" >"$d/out.raw" 2>"$d/err.raw"); rc2=$?
	why=""
	[ $rc1 = 0 ] || why="$why image run exit $rc1;"
	[ $rc2 = 0 ] || why="$why twin run exit $rc2;"
	cmp -s "$d/out.img" "$d/out.raw" || why="$why outputs differ;"
	grep -q '^final size' "$d/out.img" || why="$why no final state;"
	: >"$d/check"
	: >"$d/compare"
	same=1
	cmp -s "$d/disk.qcow2" "$T/disk/disk.qcow2" || same=0
	[ $same = 1 ] || qemu-img check -q "$d/disk.qcow2" >"$d/check" 2>&1 || why="$why qemu-img check failed;"
	[ $same = 1 ] && cmp -s "$d/disk.raw" "$T/disk/disk.raw" ||
		qemu-img compare -q -f qcow2 -F raw "$d/disk.qcow2" "$d/disk.raw" >"$d/compare" 2>&1 || why="$why disks differ;"
	if [ -z "$why" ]; then
		pass "$s: image under the shim == raw twin ($(wc -l <"$d/out.img") lines)"
	else
		fail "$s:$why"
		diff "$d/out.raw" "$d/out.img" | head -20 | sed 's/^/#      | /'
		cat "$d/err.img" "$d/check" "$d/compare" | head -10 | sed 's/^/#      ! /'
	fi
done <"$T/rows"

echo "symbols.sh: $npass passed, $nfail failed"
[ $nfail = 0 ]
