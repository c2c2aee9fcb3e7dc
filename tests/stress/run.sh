#!/bin/sh
# make stress: the long runs of issue 6 (crashes, power loss, threads, several
# processes).  Each part prints its figures; exits non-zero if any failed.
#   STRESS_TRIALS  kill -9 trials through the shim   (default 400)
#   STRESS_POINTS  power-cut points                  (default 3000)
#   STRESS_QEMU    judge every Nth point with qemu-img check + convert (default 3)
#   STRESS_SEED    seed for both (default: the time)
# Then the unit binaries and the integration scripts that use
# tests/integration/lib_reps.sh, with QCS_LONG=1: make test runs their
# randomized workloads with fewer seeds and operations (qt_reps, reps), this
# runs the full counts.
cd "$(dirname "$0")/../.." || exit 1
B=${QCS_BUILD:-$PWD/build}
SEED=${STRESS_SEED:-$(date +%s)}
rc=0
part() {
	echo "== $1"
	shift
	start=$(date +%s)
	"$@" || rc=1
	echo "   ($(($(date +%s) - start)) s)"
}
mkdir -p "$B/stress/failed"
part "power cuts (tests/stress/crashpoints.c)" \
	"$B/stress/crashpoints" -n "${STRESS_POINTS:-3000}" -q "${STRESS_QEMU:-3}" -s "$SEED" -d "$B/stress/failed"
# The mutation check: without the reservation's durable writes (build/stress/
# crashpoints_mutant, see the Makefile) the power cuts must find corruption.
mutant() {
	if "$B/stress/crashpoints_mutant" -n "${STRESS_MUTANT_POINTS:-400}" -q 0 -s "$SEED" \
		-d "$B/stress/failed/mutant" >"$B/stress/mutant.log" 2>&1; then
		echo "   FAIL: the mutant passed: these power cuts do not test the reservation's ordering"
		return 1
	fi
	echo "   the mutant failed, as it must: $(grep -c -i 'fail' "$B/stress/mutant.log") failure lines (log: $B/stress/mutant.log)"
}
part "mutation check: reservation not durable (crashpoints_mutant)" mutant
part "kill -9 through the shim (tests/stress/kill.sh)" env STRESS_SEED="$SEED" sh tests/stress/kill.sh
part "threads under ThreadSanitizer (tests/stress/threads.sh)" sh tests/stress/threads.sh 16 1500
part "several processes on one image (tests/stress/multiproc.sh)" sh tests/stress/multiproc.sh 6 4 30
# every unit binary, the full repetitions, two criterion workers each
unit_long() {
	f=0
	for t in "$B"/unit/test_*; do
		[ -x "$t" ] || continue
		QCS_LONG=1 ASAN_OPTIONS=detect_leaks=1 "$t" --jobs 2 >"$B/stress/${t##*/}.log" 2>&1 ||
			{ echo "   FAIL $t (log: $B/stress/${t##*/}.log)"; f=1; }
		grep 'Synthesis' "$B/stress/${t##*/}.log" | sed "s|^|   ${t##*/}: |"
	done
	return $f
}
part "unit tests, full repetitions (QCS_LONG=1)" unit_long
# the integration scripts whose repetitions make test shortens (lib_reps.sh)
part "integration scripts, full repetitions (QCS_LONG=1)" env QCS_LONG=1 sh tests/integration/run.sh \
	$(grep -l 'lib_reps.sh' tests/integration/t_*.sh)
exit $rc
