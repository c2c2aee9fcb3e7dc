#!/bin/sh
# summary.sh START BUILD: make test's last line, from the logs of this run:
# scripts and unit binaries run, assertions passed and failed, seconds since
# START.  Assertions: criterion's "Passing"/"Failing"+"Crashing" of every
# unit binary (build/unit/log), plus each integration script's "N passed,
# M failed" lines (build/integration/*.log); a script that failed without
# counting its failures counts as one.
start=$1 B=${2:-build}
u=$(cat "$B"/unit/log/*.log 2>/dev/null | sed -n 's/.*Synthesis: Tested: [0-9]* | Passing: \([0-9]*\) | Failing: \([0-9]*\) | Crashing: \([0-9]*\).*/\1 \2 \3/p' |
	awk '{ p += $1; f += $2 + $3; n++ } END { print n + 0, p + 0, f + 0 }')
i=$(for r in "$B"/integration/*.result; do
	[ -f "$r" ] || continue
	n=${r%.result}
	# only "N passed, M failed" counts (a line such as "pwritev2 failed: EBADF"
	# reporting a refusal is no failure)
	f=$(sed -n 's/.*[^0-9][0-9][0-9]* passed, \([0-9][0-9]*\) failed.*/\1/p; s/^[0-9][0-9]* passed, \([0-9][0-9]*\) failed.*/\1/p' "$n.log" 2>/dev/null |
		awk '{ s += $1 } END { print s + 0 }')
	echo "$(cat "$r") $f"
done | awk '{ n++; p += $4; f += ($5 > 0 ? $5 : ($1 != 0)) } END { print n + 0, p + 0, f + 0 }')
set -- $u $i
echo "make test: $4 integration scripts and $1 unit binaries in $(($(date +%s) - start)) s: $(($2 + $5)) passed, $(($3 + $6)) failed"
