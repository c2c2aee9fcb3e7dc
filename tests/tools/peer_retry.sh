#!/bin/sh
# peer_retry.sh CMD...: run a peer tool's image-making command, and run it
# again (at most 10 runs in all) only when it failed for a reason that is the
# peer's luck, not the image: qemu's LUKS key setup times PBKDF2 with the
# thread's CPU clock and gives up with "Unable to get accurate CPU usage"
# when one benchmark round measures 0 ms (about 1 run in 3 on a 2-core
# machine, with or without encrypt.iter-time).  Any other failure, or the
# 10th one, is returned as it is, its stderr passed through.
err=$(mktemp "${TMPDIR:-/tmp}/qcs-peer.XXXXXX") || exit 1
n=0
while :; do
	n=$((n + 1))
	"$@" 2>"$err"
	rc=$?
	if [ "$rc" -ne 0 ] && [ "$n" -lt 10 ] && grep -q 'Unable to get accurate CPU usage' "$err"; then
		continue
	fi
	cat "$err" >&2
	rm -f "$err"
	exit "$rc"
done
