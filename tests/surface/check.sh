#!/bin/sh
# check.sh - the completeness test (issue 24, point 3): every function the
# installed glibc exports that takes a path, a descriptor, a FILE *, a DIR *
# or a structure carrying descriptors, every liburing entry point that takes
# a descriptor or a ring, and every x86_64 system call number that takes one
# of those, must be
#   interposed  a row of shim/syms.def (the shim's one symbol table), or
#   routed      (system calls) a "case SYS_x:" of the shim's syscall(), or
#   listed      a row of surface.tsv: how (routed, unreached, refused,
#               limit, TODO(owner)) and why.
# "Takes" is decided mechanically: clang parses every header of libc6-dev
# (and liburing.h) and classify.awk judges each parameter by its type and
# name (protos.awk, classify.awk); exported functions no header declares
# are aliases of declared ones (__X, _IO_X, __isoc99_X, __X_chk -> X) or
# have a reviewed row in undeclared.tsv; system calls have one in
# syscalls.tsv, checked against the glibc function of the same name.
# Fails on anything unclassified, on a surface.tsv row that names nothing
# to classify (stale) or repeats a syms.def row, and on an unknown how.
# Prints the counts.  Exit 0 = complete.
set -u
: "${QCS_ROOT:=$(cd "$(dirname "$0")/../.." && pwd)}"
S=$QCS_ROOT/tests/surface
DEF=$QCS_ROOT/shim/syms.def
TAB=$S/surface.tsv
export LC_ALL=C
T=$(mktemp -d "${TMPDIR:-/tmp}/qcs-surface.XXXXXX") || exit 1
trap 'rm -rf "$T"' EXIT
npass=0 nfail=0
pass() { npass=$((npass + 1)); echo "ok   - $*"; }
fail() { nfail=$((nfail + 1)); echo "FAIL - $*"; }
CC=${CLANG:-clang}
command -v "$CC" >/dev/null || { fail "$CC not installed (make deps)"; exit 1; }
LIBC=$(cc -print-file-name=libc.so.6)
[ -f "$LIBC" ] || { fail "no libc.so.6 ($LIBC)"; exit 1; }
LIBDIR=$(dirname "$(readlink -f "$LIBC")")
URING=$LIBDIR/liburing.so.2

# 1. prototypes: one translation unit including every libc6-dev header
# (the four that cannot be included on x86_64 with glibc 2.36 left out).
dpkg -L libc6-dev | sed -n 's|^/usr/include/\(.*\.h\)$|\1|p' | sed 's|^x86_64-linux-gnu/||' |
	grep -v -e '^bits/' -e '^gnu/' -e '^finclude/' -e '^regexp\.h$' -e '^sys/elf\.h$' -e '^sys/vm86\.h$' |
	sort -u >"$T/headers"
{
	printf '#define _GNU_SOURCE 1\n#define _LARGEFILE64_SOURCE 1\n#define _DYNAMIC_STACK_SIZE_SOURCE 1\n'
	sed 's/.*/#include <&>/' "$T/headers"
	[ -f /usr/include/liburing.h ] && echo '#include <liburing.h>'
} >"$T/all.c"
# Twice: as is, and fortified (declares the __X_chk entry points).
if "$CC" -fsyntax-only -w -fno-color-diagnostics -Xclang -ast-dump "$T/all.c" >"$T/a.ast" 2>"$T/a.err" &&
	"$CC" -fsyntax-only -w -O2 -D_FORTIFY_SOURCE=2 -fno-color-diagnostics -Xclang -ast-dump \
		"$T/all.c" >"$T/f.ast" 2>>"$T/a.err"; then
	:
else
	fail "clang cannot parse the $(wc -l <"$T/headers") libc6-dev headers"; sed 's/^/#      /' "$T/a.err" | head
	exit 1
fi
awk -f "$S/protos.awk" "$T/a.ast" "$T/f.ast" | sort -u -t "$(printf '\t')" -k1,1 >"$T/protos"
awk -f "$S/classify.awk" "$T/protos" | sort >"$T/kinds"
n=$(wc -l <"$T/protos")
[ "$n" -gt 2000 ] && pass "prototypes: $n functions declared by $(wc -l <"$T/headers") headers" ||
	fail "prototypes: only $n functions parsed"

# 2. exports: libc.so.6 and the stub libraries, default and compat
# versions (old binaries bind the compat ones); GLIBC_PRIVATE is glibc's own.
exports() {
	nm -D --defined-only "$1" | awk '$2 ~ /^[TWi]$/ && $3 !~ /GLIBC_PRIVATE/ {n = $3; sub(/@.*/, "", n); print n}'
}
{
	exports "$LIBC"
	for l in libpthread.so.0 librt.so.1 libdl.so.2 libanl.so.1 libutil.so.1; do
		[ -f "$LIBDIR/$l" ] && exports "$LIBDIR/$l"
	done
} | sort -u >"$T/exports"
[ -f "$URING" ] && exports "$URING" | sort -u >"$T/uexports" || : >"$T/uexports"
echo "# $(wc -l <"$T/exports") glibc functions exported, $(wc -l <"$T/uexports") liburing"

# Kinds of each exported function: its prototype, an alias's, or undeclared.tsv.
awk -F '\t' -v OFS='\t' '
FILENAME == ARGV[1] { k[$1] = $2; next }
FILENAME == ARGV[2] { if ($0 !~ /^#/ && NF >= 2) { np++; pat[np] = $1; pk[np] = $2 } next }
function glob2re(g) { gsub(/[.^$+?(){}|\[\]]/, "\\\\&", g); gsub(/\*/, ".*", g); return "^" g "$" }
{
	n = $1
	if (n in k) { print n, k[n], "proto"; next }
	a = n; sub(/^__isoc(99|23)_/, "", a); sub(/^_IO_/, "", a); sub(/^__/, "", a); sub(/_chk$/, "", a)
	if (a in k && a != n) { print n, k[a], "alias of " a; next }
	for (i = 1; i <= np; i++) if (n ~ glob2re(pat[i])) { print n, pk[i], "undeclared.tsv"; next }
	print n, "?", "no prototype, no alias, no undeclared.tsv row"
}' "$T/kinds" "$S/undeclared.tsv" "$T/exports" "$T/uexports" >"$T/ekinds"
if grep -q '	?	' "$T/ekinds"; then
	fail "exported functions of unknown kind (add a row to undeclared.tsv):"
	grep '	?	' "$T/ekinds" | cut -f1 | sed 's/^/#      /'
else
	pass "every exported function classified ($(grep -c '	proto$' "$T/ekinds") by prototype, $(grep -c '	alias of ' "$T/ekinds") as aliases, $(grep -c '	undeclared.tsv$' "$T/ekinds") by undeclared.tsv)"
fi
awk -F '\t' -v OFS='\t' '$2 != "-" && $2 != "?" {print $1, $2}' "$T/ekinds" | sort >"$T/cand"

# 3. system call numbers, from the installed header
awk '/^#define __NR_/ {sub(/^__NR_/, "", $2); print $2}' /usr/include/x86_64-linux-gnu/asm/unistd_64.h |
	sort -u >"$T/nrs"
grep -v '^#' "$S/syscalls.tsv" | sort >"$T/sysk"
missing=$(cut -f1 "$T/sysk" | comm -23 "$T/nrs" -)
extra=$(cut -f1 "$T/sysk" | comm -13 "$T/nrs" -)
if [ -z "$missing$extra" ]; then
	pass "syscalls.tsv classifies exactly the $(wc -l <"$T/nrs") system call numbers of asm/unistd_64.h"
else
	fail "syscalls.tsv vs asm/unistd_64.h: missing: $(echo $missing) / unknown: $(echo $extra)"
fi
# A glibc function of the same name may not take a kind its row lacks.
bad=$(awk -F '\t' 'NR == FNR { k[$1] = $2; next }
	($1 in k) && k[$1] != "-" { n = split(k[$1], a, ","); for (i = 1; i <= n; i++) { x = a[i]; sub(/\?$/, "", x); if (x != "FILE" && x != "DIR" && index("," $2 ",", "," x ",") == 0 && index("," $2 ",", ",!" x ",") == 0) { print $1 "(" k[$1] " vs " $2 ")"; break } } }' "$T/kinds" "$T/sysk")
[ -z "$bad" ] && pass "syscalls.tsv agrees with the glibc prototypes of the same names" ||
	fail "syscalls.tsv lacks kinds the glibc prototype has: $bad"
awk -F "\t" -v OFS="\t" '{ k = $2; gsub(/![a-z]*,?/, "", k); sub(/,$/, "", k); if (k != "" && k != "-") print "SYS_" $1, k }' "$T/sysk" | sort >"$T/scand"
# routed: a case label of the shim's syscall() (any shim/*.c)
grep -ho 'case SYS_[a-z0-9_]*:' "$QCS_ROOT"/shim/*.c | sed 's/case \(.*\):/\1/' | sort -u >"$T/routed"

# 4. the table
sed -n 's/^SYM[A-Z0-9]*(\([A-Za-z0-9_]*\),.*/\1/p' "$DEF" | sort -u >"$T/syms"
grep -v -e '^#' -e '^@' -e '^$' "$TAB" >"$T/rows"
awk -F '\t' 'NF < 3 || $3 == "" {print "#      line without a reason: " $0}' "$T/rows" >"$T/badrows"
awk -F '\t' '$2 !~ /^(routed|unreached|refused|limit|TODO\([a-z0-9 ,-]+\))$/ {print "#      unknown how \"" $2 "\": " $1}' "$T/rows" >>"$T/badrows"
awk -F '\t' 'NR == FNR { if ($0 ~ /^@/) { c = $1; sub(/^@/, "", c); d[c] = 1 } next }
	$3 ~ /^=/ { c = $3; sub(/^=/, "", c); sub(/[ ;].*/, "", c); if (!(c in d)) print "#      " $1 ": no legend @" c }' "$TAB" "$T/rows" >>"$T/badrows"
cut -f1 "$T/rows" | sort | uniq -d | sed 's/^/#      listed twice: /' >>"$T/badrows"
if [ -s "$T/badrows" ]; then fail "surface.tsv rows:"; cat "$T/badrows"; else pass "surface.tsv: $(wc -l <"$T/rows") rows, each with a known how and a reason"; fi
cut -f1 "$T/rows" | sort -u >"$T/listed"
dup=$(comm -12 "$T/listed" "$T/syms")
[ -z "$dup" ] && pass "no surface.tsv row repeats a syms.def row" || fail "listed and interposed: $(echo $dup)"
dupr=$(comm -12 "$T/listed" "$T/routed")
[ -z "$dupr" ] && pass "no surface.tsv row repeats a routed system call" || fail "listed and routed: $(echo $dupr)"
cut -f1 "$T/cand" "$T/scand" | sort -u >"$T/all"
stale=$(comm -23 "$T/listed" "$T/all")
[ -z "$stale" ] && pass "no stale surface.tsv row" || fail "surface.tsv rows that take no path/fd/FILE/DIR or do not exist: $(echo $stale)"

# 5. the verdict
un=$(cut -f1 "$T/cand" | comm -23 - "$T/syms" | comm -23 - "$T/listed")
uns=$(cut -f1 "$T/scand" | comm -23 - "$T/routed" | comm -23 - "$T/listed")
ni=$(cut -f1 "$T/cand" | comm -12 - "$T/syms" | wc -l)
nr=$(cut -f1 "$T/scand" | comm -12 - "$T/routed" | wc -l)
counts=$(cut -f2 "$T/rows" | sed 's/TODO(.*/TODO/' | sort | uniq -c | awk '{printf "%s%s %s", s, $1, $2; s = ", "}')
echo "# functions: $(wc -l <"$T/cand") take a path/fd/FILE/DIR: $ni interposed, the rest listed; system calls: $(wc -l <"$T/scand"): $nr routed by syscall(), the rest listed"
echo "# listed: $counts"
if [ -z "$un" ]; then pass "every such function is interposed or listed"; else
	fail "$(echo "$un" | wc -l) functions neither interposed nor listed:"
	echo "$un" | while read -r f; do printf '#      %s\t%s\n' "$f" "$(awk -F '\t' -v f="$f" '$1 == f {print $2; exit}' "$T/cand")"; done
fi
if [ -z "$uns" ]; then pass "every such system call number is routed or listed"; else
	fail "$(echo "$uns" | wc -l) system calls neither routed nor listed: $(echo $uns)"
fi
echo "check.sh: $npass passed, $nfail failed"
[ "$nfail" = 0 ]
