#!/bin/sh
# t_musl.sh - the musl flavour (make musl -> build-musl/libqcowshim.so):
#   1. musl-linked programs (tests/musl/: fdio.c, stdio.c, and misc.c's
#      stdout mode: musl's own stdout onto an image fd) on a QCOW2 image
#      under the musl shim print the same as on the raw twin without it;
#      afterwards qemu-img check is clean and qemu-img compare finds the
#      flat disk equal to the twin;
#   2. what only musl shows (and what needs zlib elsewhere): a GPT
#      partition as its own file; the exec guard (a musl child inherits the
#      image and reads it through stdin, a glibc one is refused), a
#      deflate-compressed image (the built-in decoder: == raw twin) and a
#      zstd one (ENOTSUP and one line, image not marked corrupt), a glibc
#      program with the musl shim preloaded does not start at all, nor a
#      musl program with the glibc shim;
#   3. tests/shim/symbols.sh under musl: exports == the SYM/SYMV rows,
#      every row resolves to musl's libc, and the snippets of the rows
#      below (MUSL_ROWS=all: every row that can run here; make musl-shim-test).
# Skips (loudly) only when musl-gcc is missing; tests/deps.sh installs it.
: "${QCS_ROOT:=$(cd "$(dirname "$0")/../.." && pwd)}"
MB=${QCS_MUSL_BUILD:-$QCS_ROOT/build-musl}
LIB=$MB/libqcowshim.so
unset QCOWSHIM_MATCH QCOWSHIM_DISABLE QCOWSHIM_DEBUG QCOWSHIM_NO_BACKING LD_PRELOAD
export LC_ALL=C
if ! command -v musl-gcc >/dev/null 2>&1; then
	echo "SKIP !!! musl-gcc is missing: the musl flavour is NOT tested (install musl-tools: make deps) !!!" | tee /dev/stderr
	exit 0
fi
[ -f "$LIB" ] || { echo "FAIL - $LIB not built (make musl)"; exit 1; }
T=$(mktemp -d "${TMPDIR:-/tmp}/qcs-musl.XXXXXX") || exit 1
trap 'cd /; rm -rf "$T"' EXIT
cd "$T" || exit 1
npass=0 nfail=0
pass() { npass=$((npass + 1)); echo "ok   - $*"; }
fail() { nfail=$((nfail + 1)); echo "FAIL - $*"; }
same() { # same WHAT EXPECTED ACTUAL
	if [ "$2" = "$3" ]; then pass "$1"; else
		fail "$1"; printf '#      expected: %s\n#      actual:   %s\n' "$2" "$3"; fi
}
M() { env LD_PRELOAD="$LIB" "$@"; }

for p in fdio stdio misc; do
	musl-gcc -std=gnu11 -O1 -g -Wall -Wextra -Werror -o "$p" "$QCS_ROOT/tests/musl/$p.c" ||
		{ fail "$p.c does not build with musl-gcc"; exit 1; }
done
case $(readelf -l fdio 2>/dev/null) in
*ld-musl*) pass "test programs are musl-linked" ;;
*) fail "fdio is not musl-linked" ;;
esac

# A 4 MiB disk: data at 0 and at 1 MiB, a tail at the end, holes between.
mkdisk() {
	qemu-img create -q -f qcow2 "$1.qcow2" 4M &&
	qemu-io -t unsafe -f qcow2 -c 'write -q -P 0x11 0 512' -c 'write -q -P 0xab 1M 64k' \
		-c 'write -q -P 0xcd 4190208 4096' "$1.qcow2" >/dev/null &&
	qemu-img convert -f qcow2 -O raw "$1.qcow2" "$1.raw"
}
oracle() { # oracle NAME: image clean and equal to its twin
	qemu-img check -q "$1.qcow2" >"$1.check" 2>&1 || { fail "$1: qemu-img check"; cat "$1.check"; return; }
	qemu-img compare -q -f qcow2 -F raw "$1.qcow2" "$1.raw" >"$1.cmp" 2>&1 ||
		{ fail "$1: qemu-img compare with the raw twin"; cat "$1.cmp"; return; }
	pass "$1: qemu-img check clean, flat disk == raw twin"
}

# ---- 1. image under the musl shim == raw twin
for p in fdio stdio "misc stdout"; do
	n=${p#misc }
	mkdisk "$n" || { fail "$n: making the disk"; continue; }
	# shellcheck disable=SC2086
	M ./$p "$n.qcow2" >"$n.out.img" 2>"$n.err"; rc1=$?
	# shellcheck disable=SC2086
	./$p "$n.raw" >"$n.out.raw" 2>&1; rc2=$?
	if [ $rc1 = 0 ] && [ $rc2 = 0 ] && cmp -s "$n.out.img" "$n.out.raw" && grep -q '^final size\|^write 4096' "$n.out.img"; then
		pass "$n: image under the musl shim == raw twin ($(wc -l <"$n.out.img") lines)"
	else
		fail "$n: exit $rc1/$rc2"; diff "$n.out.raw" "$n.out.img" | head -20 | sed 's/^/#      | /'
		sed 's/^/#      ! /' "$n.err" | head
	fi
	oracle "$n"
done
same "stdout freopen'd from an image onto a plain file writes there" "plain file|plain file" \
	"$(cat stdout.qcow2.txt)|$(cat stdout.raw.txt)"

# ---- 2. musl-only behaviours
mkdisk st
same "exec guard: a musl child inherits the image as fd 0 and reads it with fread(stdin)" \
	"$(M ./misc read st.qcow2 2>&1)" "$(M ./misc exec st.qcow2 "$T/misc" 2>&1)"
out=$(M ./misc exec st.qcow2 /bin/true 2>&1)
same "exec guard: a glibc child (another loader) with the image fd is refused, one line" "1 1" \
	"$(printf '%s\n' "$out" | grep -c 'exec /bin/true failed errno 1$') $(printf '%s\n' "$out" | grep -c '^qcowshim: refusing to run /bin/true: it uses another dynamic loader')"

qemu-img convert -q -c -f qcow2 -O qcow2 fdio.qcow2 z.qcow2
M ./fdio z.qcow2 >z.out.img 2>z.err; ./fdio fdio.raw >z.out.raw 2>&1
same "a deflate-compressed image (qemu-img convert -c): read, COW over compressed clusters == raw twin" \
	"$(cat z.out.raw)" "$(cat z.out.img z.err)"
qemu-img check -q z.qcow2 && qemu-img compare -q -f qcow2 -F raw z.qcow2 fdio.raw &&
	pass "... qemu-img check clean, flat disk == raw twin" || fail "deflate image: check/compare"
if qemu-img convert -q -c -o compression_type=zstd -f qcow2 -O qcow2 st.qcow2 zs.qcow2 2>/dev/null; then
	out=$(M ./misc read zs.qcow2 2>&1)
	same "a zstd-compressed cluster: ENOTSUP and one line naming the missing decoder" "1 1" \
		"$(printf '%s\n' "$out" | grep -c '^pread -1 errno 95$') $(printf '%s\n' "$out" | grep -c '^qcowshim: zs.qcow2: compressed clusters cannot be read: .*no zstd decoder')"
	same "... and the image is not marked corrupt" "" "$(qemu-img check -q zs.qcow2 2>&1; qemu-img info zs.qcow2 | grep -i 'corrupt: true')"
else
	fail "qemu-img cannot make a zstd-compressed image"
fi

# partitions as files (IMAGE.qcow2/pN): GPT checksums without zlib (crc32.c)
truncate -s 8M pt.raw && printf 'label: gpt\nstart=2048, size=4096\nstart=6144, size=8192\n' |
	sfdisk -q pt.raw >/dev/null 2>&1 &&
	dd if=fdio.raw of=pt.raw bs=512 seek=6144 count=8192 conv=notrunc status=none &&
	dd if=pt.raw of=p2.raw bs=512 skip=6144 count=8192 status=none &&
	qemu-img convert -q -f raw -O qcow2 pt.raw pt.qcow2 || fail "making a GPT disk"
same "a musl program reads partition 2 of a GPT image as its own file (pt.qcow2/p2)" \
	"$(./misc read p2.raw 2>&1)" "$(M ./misc read pt.qcow2/p2 2>&1)"

same "a glibc program with the musl shim preloaded does not start (never reads raw bytes)" "127 0" \
	"$(env LD_PRELOAD="$LIB" /bin/cat st.qcow2 >/dev/null 2>&1; echo $?) $(env LD_PRELOAD="$LIB" /bin/cat st.qcow2 2>/dev/null | wc -c)"
GLIB=${QCS_BUILD:-$QCS_ROOT/build}/libqcowshim.so
if [ -f "$GLIB" ]; then
	same "and a musl program with the glibc shim preloaded does not start either" "127 0" \
		"$(env LD_PRELOAD="$GLIB" ./misc read st.qcow2 >/dev/null 2>&1; echo $?) $(env LD_PRELOAD="$GLIB" ./misc read st.qcow2 2>/dev/null | wc -c)"
fi

# ---- 3. symbols.sh under musl.  Not here: rows whose snippet runs
# /bin/sh (glibc on this host, so it cannot load the musl shim: creat
# fopen truncate posix_spawn_file_actions_addopen system popen shm_open).
ROWS="close copy_file_range dup2 execve fallocate fcntl fileno freopen fstatat ioctl lockf mmap posix_spawn readv sendfile splice syscall rename sigaction clone"
if [ "${MUSL_ROWS:-}" = all ]; then
	ROWS=$(sed -n 's/^SYMV\{0,1\}(\([A-Za-z0-9_]*\),.*/\1/p' "$QCS_ROOT/shim/syms.def" |
		grep -vxE 'creat|fopen|truncate|posix_spawn_file_actions_addopen|system|popen|shm_open')
fi
# shellcheck disable=SC2086
if QCS_LIBC=musl CC="musl-gcc -isystem $MB/kinc" QCS_BUILD=$MB sh "$QCS_ROOT/tests/shim/symbols.sh" $ROWS >sym.log 2>&1; then
	pass "symbols.sh under musl: $(tail -1 sym.log)"
else
	fail "symbols.sh under musl"; grep -v '^ok' sym.log | head -40
fi

echo "t_musl.sh: $npass passed, $nfail failed"
[ $nfail = 0 ]
