#!/bin/sh
# Runs every tests/integration/t_*.sh; each exits 0 on success.
# Prints one line per test and a closing "N passed, N failed" line.
cd "$(dirname "$0")/../.." || exit 1
export QCS_ROOT="$PWD" QCS_BUILD="$PWD/build"
pass=0 fail=0 failed=""
for t in tests/integration/t_*.sh; do
	[ -e "$t" ] || continue
	log="build/integration/$(basename "$t" .sh).log"
	mkdir -p build/integration
	start=$(date +%s)
	if sh "$t" >"$log" 2>&1; then
		pass=$((pass + 1)); echo "PASS $t ($(( $(date +%s) - start ))s)"
	else
		fail=$((fail + 1)); failed="$failed $t"
		echo "FAIL $t ($(( $(date +%s) - start ))s); last lines of $log:"
		tail -n 30 "$log" | sed 's/^/    /'
	fi
done
echo "integration: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
