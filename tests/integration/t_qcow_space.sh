#!/bin/sh
# Space and memory: discards release host space (hole punch), the caches
# keep memory bounded on a huge sparse image, and refcount-table growth on
# small-cluster / wide-refcount images leaves images qemu-img check accepts.
set -eu
: "${QCS_BUILD:=$(cd "$(dirname "$0")/../.." && pwd)/build}"
QT="$QCS_BUILD/qcowtool"
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT INT TERM
fails=0

fail() {
	echo "FAIL: $*"
	fails=$((fails + 1))
}

check() { # check NAME IMG: qemu-img check must exit 0
	if ! qemu-img check "$2" >"$T/check" 2>&1; then
		fail "$1: qemu-img check: $(grep -v '^$' "$T/check" | head -6 | tr '\n' '|')"
	fi
}

blocks() { stat -c %b "$1"; }

# 1. discard releases host space
img="$T/punch.qcow2"
"$QT" create "$img" 64M
"$QT" write "$img" 0 32M 0x5c
b1=$(blocks "$img")
"$QT" zero "$img" 0 32M --unmap
b2=$(blocks "$img")
echo "punch: $b1 -> $b2 blocks"
# only where the host filesystem can punch holes at all
head -c 1048576 /dev/urandom >"$T/probe"
sync "$T/probe" 2>/dev/null || true
pb1=$(blocks "$T/probe")
if fallocate -p -o 0 -l 1048576 "$T/probe" 2>/dev/null && [ "$(blocks "$T/probe")" -lt "$pb1" ]; then
	[ "$b2" -lt $((b1 / 4)) ] || fail "discarding 32M released too little: $b1 -> $b2 512-byte blocks"
else
	echo "note: $T cannot punch holes; host space release not checked"
fi
check "after discard" "$img"
qemu-io -f qcow2 -c 'read -P 0 0 64M' "$img" >"$T/qio" 2>&1 && ! grep -q -i 'fail\|error\|mismatch' "$T/qio" ||
	fail "discarded range does not read as zeros in qemu-io: $(head -3 "$T/qio")"
# freed space is reused, the file does not grow
s1=$(stat -c %s "$img")
"$QT" write "$img" 32M 30M 0x5d
s2=$(stat -c %s "$img")
[ "$s2" -le $((s1 + 1048576)) ] || fail "freed clusters not reused: file grew from $s1 to $s2"
check "after reuse" "$img"

# 2. bounded memory: 1200 scattered writes on a 64 TiB image touch 1200 L2
#    tables (75 MiB if they were all kept)
img="$T/huge.qcow2"
"$QT" create "$img" 64T
rss=$("$QT" scatter "$img" 1200 7)
echo "scatter peak RSS: $rss KiB"
[ "$rss" -gt 0 ] && [ "$rss" -lt 49152 ] || fail "peak RSS $rss KiB for 1200 scattered writes (limit 48 MiB)"
check "64 TiB sparse image" "$img"
rm -f "$img"

# 3. refcount table growth: 24 MiB of 512-byte clusters, each refcount width
qemu-img create -q -f raw "$T/ref.raw" 24M
qemu-io -t unsafe -f raw -c 'write -P 0x7 0 24M' "$T/ref.raw" >/dev/null
for v in 3:64 3:16 3:1 2:16; do
	ver=${v%:*} rb=${v#*:}
	img="$T/rt$ver-$rb.qcow2"
	"$QT" create "$img" 24M --cluster-bits 9 --version "$ver" --refcount-bits "$rb"
	"$QT" write "$img" 0 24M 7
	check "24M in 512 B clusters, v$ver refcount_bits $rb" "$img"
	qemu-img compare -q -f qcow2 -F raw "$img" "$T/ref.raw" ||
		fail "24M in 512 B clusters, v$ver refcount_bits $rb: content differs"
	rt=$(od -An -tu1 -j 56 -N 4 "$img" | awk '{print $1*16777216+$2*65536+$3*256+$4}')
	[ "$rb" -ne 64 ] || [ "$rt" -gt 1 ] || fail "refcount table did not grow (v$ver rb $rb: $rt clusters)"
	rm -f "$img"
done

# 4. the 32 MiB L1 limit, exactly where qemu puts it: 128 GiB with 512 B clusters
img="$T/lim.qcow2"
"$QT" create "$img" 128G --cluster-bits 9 2>"$T/err" || fail "create 128G with 512 B clusters: $(cat "$T/err")"
"$QT" write "$img" $((137438953472 - 512)) 512 7 2>"$T/err" || fail "write at the end of 128G: $(cat "$T/err")"
check "128G with 512 B clusters" "$img"
if "$QT" resize "$img" $((137438953472 + 512)) 2>/dev/null; then
	fail "resize past the L1 limit succeeded (qemu-img refuses)"
fi
if "$QT" create "$T/lim2.qcow2" $((137438953472 + 512)) --cluster-bits 9 2>/dev/null; then
	fail "create past the L1 limit succeeded (qemu-img refuses)"
fi
rm -f "$img" "$T/lim2.qcow2"

# 5. repairing a dirty 64 TiB lazy-refcount image is quick and small
img="$T/hd.qcow2"
qemu-img create -q -f qcow2 -o lazy_refcounts=on "$img" 64T
qemu-io -f qcow2 -c 'write -P 1 0 64k' -c 'write -P 2 32T 64k' -c 'write -P 3 63T 1M' -c abort "$img" >/dev/null 2>&1 || true
# "Quick" is judged by CPU time (ulimit -t: SIGXCPU past 10 s of it, about
# 70 times what the repair takes), which the machine's load does not change,
# not by wall time, which it does.
if ! (ulimit -t 10; exec "$QT" write "$img" 1T 4096 9) 2>"$T/err"; then
	fail "write to a dirty 64T image (killed if over 10 s of CPU time): $(cat "$T/err")"
fi
check "repaired dirty 64T image" "$img"
qemu-io -f qcow2 -c 'read -P 2 32T 64k' -c 'read -P 9 1T 4k' -c 'read -P 3 63T 1M' "$img" >"$T/qio" 2>&1
if [ "$(grep -c '^read ' "$T/qio")" != 3 ] || grep -q -i 'fail\|error' "$T/qio"; then
	fail "data after repair: $(head -3 "$T/qio")"
fi
rm -f "$img"

echo "t_qcow_space: $fails failed"
[ "$fails" -eq 0 ]
