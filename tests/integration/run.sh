#!/bin/sh
# Runs every tests/integration/t_*.sh (new ones are picked up by name); each
# exits 0 on success.  QCS_JOBS scripts run at once (default: the number of
# CPUs + 1, at least 2: many scripts wait on qemu-img or on each other's
# processes), the longest first, so the longest one is never started last.
# Each script gets its own TMPDIR, removed afterwards; files it left there,
# or processes of its still alive when it ends, make it fail.  Prints one
# line per script as it ends (PASS/FAIL, wall and CPU seconds; the last 30
# lines of its log on failure), then "integration: N passed, N failed".
# Logs: build/integration/NAME.log; NAME.result holds "rc wall cpu asserts".
# Usage: run.sh [t_NAME.sh...]  (default: all).
cd "$(dirname "$0")/../.." || exit 1
export QCS_ROOT="$PWD" QCS_BUILD="$PWD/build"
L=build/integration
mkdir -p "$L"
R=$(mktemp -d "${TMPDIR:-/tmp}/qcs-run.XXXXXX") || exit 1
# Traversable: t_shim_reach.sh and t_tools_repart.sh run tools as an
# unprivileged user inside their own directories below it.
chmod 711 "$R" || exit 1
trap 'rm -rf "$R"' EXIT
trap 'exit 130' INT TERM HUP
J=${QCS_JOBS:-$(($(nproc 2>/dev/null || echo 1) + 1))}
[ "$J" -ge 1 ] 2>/dev/null || J=1

# Roughly the seconds each script takes on the 2-core reference machine,
# to start the longest first on a fresh clone; a script's last measured
# time (its .result) wins.  A new script counts as 50 s until it has run.
hint() {
	case $1 in
	t_shim_semantics) echo 150 ;; t_shim_symbols) echo 140 ;; t_qcow_mirror) echo 120 ;;
	t_hostile) echo 75 ;; t_shim_kinds) echo 70 ;; t_tools_images) echo 65 ;;
	t_qcow_read) echo 45 ;; t_stress_kill) echo 40 ;; t_tools_mkfs) echo 40 ;;
	t_tools_shell | t_tools_partition | t_tools_partfiles) echo 35 ;;
	t_musl | t_stress_crash) echo 30 ;;
	*) echo 50 ;;
	esac
}

# A full run starts from no logs, so tests/summary.sh counts only this run.
if [ $# -gt 0 ]; then list=$*; else
	list=$(ls tests/integration/t_*.sh 2>/dev/null)
	mkdir -p "$R/last" && mv "$L"/*.result "$R/last/" 2>/dev/null
	rm -f "$L"/*.log
fi
for t in $list; do
	[ -f "$t" ] || t=tests/integration/$(basename "$t")
	n=$(basename "$t" .sh)
	w=$(awk '{print $2; exit}' "$L/$n.result" "$R/last/$n.result" 2>/dev/null)
	echo "${w:-$(hint "$n")} $t"
done | sort -k1,1nr -k2 >"$R/order"

# run_one SCRIPT: in a subshell; writes NAME.result, then "NAME" on fd 3.
run_one() {
	n=$(basename "$1" .sh)
	tmp=$R/$n
	mkdir -p "$tmp"
	rm -f "$L/$n.result"
	start=$(date +%s)
	# QCS_RUN_TAG marks the script's processes (environment), to find strays.
	TMPDIR=$tmp QCS_RUN_TAG=$tmp sh "$1" >"$L/$n.log" 2>&1 3>&-
	rc=$?
	wall=$(($(date +%s) - start))
	times >"$tmp.times" # the builtin, in this shell: its children's CPU time on line 2
	cpu=$(awk 'NR == 2 { split($1, u, "m"); split($2, s, "m"); printf "%d", u[1] * 60 + u[2] + s[1] * 60 + s[2] + 0.5 }' "$tmp.times")
	stray=$(grep -lz "^QCS_RUN_TAG=$tmp\$" /proc/[0-9]*/environ 2>/dev/null | cut -d/ -f3)
	if [ -n "$stray" ]; then
		echo "run.sh: processes left running: $(for p in $stray; do tr '\0' ' ' <"/proc/$p/cmdline"; echo "($p)"; done)" >>"$L/$n.log"
		kill -9 $stray 2>/dev/null
		rc=1
	fi
	if [ -n "$(ls -A "$tmp")" ]; then
		echo "run.sh: left in its TMPDIR: $(ls -A "$tmp" | head -n 5 | tr '\n' ' ')" >>"$L/$n.log"
		rc=1
	fi
	rm -rf "$tmp" "$tmp.times"
	asserts=$(sed -n 's/.*[^0-9]\([0-9][0-9]*\) passed, [0-9][0-9]* failed.*/\1/p; s/^\([0-9][0-9]*\) passed, [0-9][0-9]* failed.*/\1/p' "$L/$n.log" |
		awk '{ s += $1 } END { print s + 0 }')
	echo "$rc $wall $cpu $asserts" >"$L/$n.result"
	echo "$n" >&3
}

# report NAME: its PASS/FAIL line; counts.
pass=0 fail=0
report() {
	set -- "$1" $(cat "$L/$1.result" 2>/dev/null || echo "1 0 0 0")
	if [ "$2" = 0 ]; then
		pass=$((pass + 1))
		echo "PASS tests/integration/$1.sh (${3}s, cpu ${4}s)"
	else
		fail=$((fail + 1))
		echo "FAIL tests/integration/$1.sh (${3}s, cpu ${4}s); last lines of $L/$1.log:"
		tail -n 30 "$L/$1.log" | sed 's/^/    /'
	fi
}

# A pool of J jobs: each finished job writes its name into a fifo (lines
# shorter than PIPE_BUF, so never mixed); reading one frees a slot.
mkfifo "$R/done" || exit 1
exec 3<>"$R/done"
running=0
while read -r _w t; do
	if [ "$running" -ge "$J" ]; then
		read -r fin <&3
		report "$fin"
		running=$((running - 1))
	fi
	(run_one "$t") &
	running=$((running + 1))
done <"$R/order"
while [ "$running" -gt 0 ]; do
	read -r fin <&3
	report "$fin"
	running=$((running - 1))
done
wait
echo "integration: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
