#!/bin/sh
# Writes the libFuzzer seed corpus for fuzz_qcow into DIR: small qemu-made
# images (v2 and v3, several cluster and refcount sizes, data, compressed
# clusters, zero clusters, an internal snapshot, a backing file, extended
# L2, a bitmap, lazy refcounts left dirty), each prefixed with the harness's
# 4-byte mode header and followed by a few operation words.
#   sh tests/fuzz/seeds.sh DIR
set -eu
dir=$1
mkdir -p "$dir"
t=$(mktemp -d)
trap 'rm -rf "$t"' EXIT
qi() { qemu-io -f qcow2 "$@" >/dev/null; }
n=0
seed() { # seed IMAGE MODE: one corpus file per mode
	n=$((n + 1))
	{ printf "\\$(printf %03o "$2")\\040\\125\\000"; cat "$1"
	  head -c 256 /dev/urandom; } > "$dir/seed-$n-$(basename "$1" .qcow2)-m$2"
}
mk() { # mk NAME SIZE OPTIONS: create and fill with a little of everything
	qemu-img create -q -f qcow2 -o "$3" "$t/$1.qcow2" "$2"
	qi -c 'write -P 0x11 0 1k' -c 'write -z 8k 4k' -c 'write -P 0x22 20k 3k' \
		-c 'write -c -P 0x33 64k 64k' "$t/$1.qcow2"
}
mk v2-512 256k compat=0.10,cluster_size=512
mk v3-512 256k compat=1.1,cluster_size=512
mk v3-4k-rc1 1M compat=1.1,cluster_size=4096,refcount_bits=1
mk v3-4k-rc64 1M compat=1.1,cluster_size=4096,refcount_bits=64
mk v3-4k-zstd 1M compat=1.1,cluster_size=4096,compression_type=zstd
mk v3-16k-extl2 1M compat=1.1,cluster_size=16384,extended_l2=on
mk v3-4k-snap 512k compat=1.1,cluster_size=4096
qemu-img snapshot -c s1 "$t/v3-4k-snap.qcow2"
qi -c 'write -P 0x44 0 2k' "$t/v3-4k-snap.qcow2"
mk v3-4k-bitmap 512k compat=1.1,cluster_size=4096
qemu-img bitmap --add "$t/v3-4k-bitmap.qcow2" b0 2>/dev/null || true
qemu-img create -q -f qcow2 -o compat=1.1,cluster_size=4096 -b v3-512.qcow2 -F qcow2 \
	"$t/v3-4k-overlay.qcow2" 256k
qi -c 'write -P 0x55 4k 4k' "$t/v3-4k-overlay.qcow2"
qemu-img create -q -f qcow2 -o compat=1.1,cluster_size=4096,lazy_refcounts=on "$t/v3-lazy.qcow2" 512k
# a write killed before closing leaves the dirty bit and stale refcounts (no core file)
ulimit -c 0
qemu-io -f qcow2 -c 'write -P 0x66 0 12k' -c 'abort' "$t/v3-lazy.qcow2" >/dev/null 2>&1 || true
for f in "$t"/*.qcow2; do
	for m in 0 1 2 12; do seed "$f" $m; done
done
echo "seeds.sh: $(ls "$dir" | wc -l) seeds in $dir"
