# lib_reps.sh - sourced by integration scripts with randomized repetitions.
# reps SHORT LONG: how many times (operations, seeds, rounds): SHORT in
# make test, LONG when QCS_LONG is set and not 0 (make stress runs those
# scripts so), like qt_reps in tests/unit/qt.h.  Only repetition counts
# differ between the two, never which kinds of image, geometry or check run.
reps() {
	case ${QCS_LONG:-0} in 0) echo "$1" ;; *) echo "$2" ;; esac
}
