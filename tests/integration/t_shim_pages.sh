#!/bin/sh
# Change pages (/dev/shm/qcowshim.DEV.INO, shim/coherence.c) never
# accumulate: a process killed with SIGKILL cannot remove its page, so the
# first image open of every later process under the shim removes each page
# of ours that no process holds any more; a page in use is never removed,
# even while processes attach, detach and die around it; pages that are not
# ours to trust (another mode) are left alone.
#
# Every process of a user sweeps that user's pages, so the shim processes
# of the other scripts running beside this one (make test runs several at
# once) would remove the pages this script kills before it counts them.
# As root, this script's shim processes therefore run as a user no other
# test uses (uid 64123, through setpriv); the sweep only touches pages its
# own user owns.
. "$(dirname "$0")/lib_tools.sh"
require_shim
require cc
cc -std=gnu11 -O1 -Wall -Wextra -Werror -o "$T/pagehold" "$QCS_ROOT/tests/shim/progs/pagehold.c" ||
	{ fail "compile pagehold"; finish; }
LIB=$QCOWSHIM_LIB
AS=""
if [ "$(id -u)" = 0 ] && command -v setpriv >/dev/null; then
	AS="setpriv --reuid=64123 --regid=64123 --clear-groups"
	chmod 755 "$T" "$T/lib" "$T/pagehold" && chmod 644 "$LIB" && chmod 777 "$T" ||
		{ fail "making the directory usable by uid 64123"; finish; }
else
	note "not root: the pages are this user's, and other shim processes of this user running now may sweep them"
fi

# page IMG: the path of IMG's change page.
page() { echo "/dev/shm/qcowshim.$(printf %x "$(stat -c %d "$1")").$(printf %x "$(stat -c %i "$1")")"; }
# hold r|w IMG OUT: a process attached to IMG's page; its pid in $held.
hold() {
	$AS env LD_PRELOAD="$LIB" "$T/pagehold" "$1" "$2" >"$3" 2>&1 &
	held=$!
}
# ready OUT...: until each holder has said "holding" (QCS_TIMEOUT: a hang).
ready() {
	for _o in "$@"; do
		_i=0
		while ! grep -q holding "$_o" 2>/dev/null && [ $_i -lt $((QCS_TIMEOUT * 20)) ]; do
			sleep 0.05; _i=$((_i + 1))
		done
	done
}
# in_use PID PAGE: PID has PAGE open and it is still linked.
in_use() { ls -l "/proc/$1/fd" 2>/dev/null | grep -q " -> $2\$"; }
# sweep: a new process opens an unrelated image (its first attach sweeps).
sweep() { $AS timeout -k 5 "$QCS_TIMEOUT" env LD_PRELOAD="$LIB" cat other.qcow2 >/dev/null; }
# gone PAGE...: how many of PAGE... exist.
present() { _n=0; for _p in "$@"; do [ -e "$_p" ] && _n=$((_n + 1)); done; echo $_n; }

for n in w r wr live other; do
	qemu-img create -q -f qcow2 $n.qcow2 4M || { fail "qemu-img create"; finish; }
done
qemu-io -t unsafe -f qcow2 -c 'write -q -P 0x5a 0 1M' live.qcow2 >/dev/null
[ -z "$AS" ] || chmod 666 ./*.qcow2
PW=$(page w.qcow2) PR=$(page r.qcow2) PWR=$(page wr.qcow2) PL=$(page live.qcow2)

section "pages of processes killed with SIGKILL are removed by the next process"
hold w w.qcow2 w.out; k1=$held
hold r r.qcow2 r.out; k2=$held
hold w wr.qcow2 wr1.out; k3=$held
hold r wr.qcow2 wr2.out; k4=$held
hold r live.qcow2 live.out; live=$held
ready w.out r.out wr1.out wr2.out live.out
same "a writer, a reader, a writer beside a reader and a reader to keep: 4 pages" 4 "$(present "$PW" "$PR" "$PWR" "$PL")"
kill -9 $k1 $k2 $k3 $k4
wait $k1 $k2 $k3 $k4 2>/dev/null
same "SIGKILL leaves the 3 pages of the killed processes behind (the case to clean)" 3 \
	"$(present "$PW" "$PR" "$PWR")"
sweep
same "the next process under the shim removed them" 0 "$(present "$PW" "$PR" "$PWR")"
same "... and kept the page of the live reader" 1 "$(present "$PL")"
in_use $live "$PL" && pass "... which that reader still has open, linked" ||
	fail "the live reader's page was removed or replaced: $(ls -l /proc/$live/fd | grep qcowshim)"

section "a page of ours whose image is gone is removed; pages we must not trust stay"
dead=/dev/shm/qcowshim.0.$(printf %x "$(stat -c %i "$T")")
foreign=/dev/shm/qcowshim.1.$(printf %x "$(stat -c %i "$T")")
$AS sh -c ': >"$1"; chmod 600 "$1"; : >"$2"; chmod 666 "$2"' sh "$dead" "$foreign"
sweep
same "a stale page (mode 600, no holder) is removed" 0 "$(present "$dead")"
same "a page with another mode (666) is left alone" 1 "$(present "$foreign")"
rm -f "$dead" "$foreign"

section "attaching, detaching and dying around a page in use"
# 3 images, each with a reader that stays; 60 processes attach to them, of
# which every other one is killed with SIGKILL at once (at any point: before,
# during or after its attach and sweep), the others read the whole disk.
qemu-img convert -f qcow2 -O raw live.qcow2 live.raw
for n in a b c; do cp live.qcow2 $n.qcow2; done
[ -z "$AS" ] || chmod 666 ./*.qcow2 live.raw
keep=""
for n in a b c; do hold r $n.qcow2 keep-$n.out; keep="$keep $held"; done
ready keep-a.out keep-b.out keep-c.out
bad=0 pids=""
for i in $(seq 1 60); do
	n=$(echo a b c | cut -d' ' -f$((i % 3 + 1)))
	if [ $((i % 2)) = 0 ]; then
		hold r $n.qcow2 /dev/null
		kill -9 $held
		pids="$pids $held"
	else
		($AS timeout -k 5 "$QCS_TIMEOUT" env LD_PRELOAD="$LIB" cmp $n.qcow2 live.raw >cmp-$i.out 2>&1
		 echo $? >cmp-$i.rc) &
		pids="$pids $!"
	fi
done
wait $pids 2>/dev/null
for i in $(seq 1 2 60); do
	[ "$(cat cmp-$i.rc 2>/dev/null)" = 0 ] || { bad=$((bad + 1)); note "reader $i: $(cat cmp-$i.out)"; }
done
same "the 30 readers that were not killed read the disk exactly" 0 "$bad"
i=0
for p in $keep; do
	i=$((i + 1)) n=$(echo a b c | cut -d' ' -f$i)
	in_use $p "$(page $n.qcow2)" || bad=$((bad + 1))
done
same "the 3 readers kept throughout still hold their pages, linked" 0 "$bad"
kill -9 $keep $live
wait $keep $live 2>/dev/null
sweep
same "once every holder is killed, the next process leaves no page of these images" 0 \
	"$(present "$(page a.qcow2)" "$(page b.qcow2)" "$(page c.qcow2)" "$PL" "$PW" "$PR" "$PWR")"
same "... nor of the image it opened itself" 0 "$(present "$(page other.qcow2)")"

finish
