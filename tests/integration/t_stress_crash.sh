#!/bin/sh
# The short run of `make stress`'s power-cut part (tests/stress/crashpoints.c):
# 30 crash points, each on a random geometry, half of them also judged by
# qemu-img check + convert.  Fixed seed, so a failure reproduces.  (The
# unit tests run the same crash model under ASan+UBSan; make stress runs
# 3000 points, the repetitions that used to be 60 here.)
# Then the points that once failed in make stress, replayed one by one
# (SEED POINT MAX_CALLS, as the failure printed them): the library must pass
# each, and the mutant (crashpoints_mutant: the reservation's ordering
# removed) must fail each, or the replay no longer reaches that ordering.
set -eu
: "${QCS_BUILD:=$(cd "$(dirname "$0")/../.." && pwd)/build}"
D=$QCS_BUILD/integration/crash
rm -rf "$D" && mkdir -p "$D/mutant"
"$QCS_BUILD/stress/crashpoints" -n 30 -q 2 -s 20261125 -d "$D"
pass=0 fail=0
# seed 1796530433 point 2955: a refcount block evicted from a minimal cache,
# then named by a refcount-table entry written durably before any sync
for p in "1796530433 2955 114" "1796530433 2955 121"; do
	set -- $p
	if "$QCS_BUILD/stress/crashpoints" -s "$1" -p "$2" -m "$3" -q 1 -d "$D" >"$D/replay.log" 2>&1; then
		pass=$((pass + 1))
	else
		fail=$((fail + 1)); echo "FAIL: replay of seed $1 point $2 (-m $3)"; cat "$D/replay.log"
	fi
	if "$QCS_BUILD/stress/crashpoints_mutant" -s "$1" -p "$2" -m "$3" -q 0 -d "$D/mutant" \
		>"$D/mutant.log" 2>&1; then
		fail=$((fail + 1)); echo "FAIL: the mutant passes seed $1 point $2 (-m $3): the replay no longer tests the ordering"
	else
		pass=$((pass + 1))
	fi
done
echo "replays of past power-cut failures: $pass passed, $fail failed"
[ "$fail" = 0 ]
