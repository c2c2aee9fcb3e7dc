#!/bin/sh
# t_surface.sh - the completeness test (tests/surface/check.sh): every glibc
# and liburing function and every system call number that takes a path, a
# descriptor, a FILE * or a DIR * is interposed (shim/syms.def), routed
# (syscall()) or listed with its reason (tests/surface/surface.tsv).
# QCS_ROOT is set by run.sh.  Exit 0 = complete.
: "${QCS_ROOT:=$(cd "$(dirname "$0")/../.." && pwd)}"
export QCS_ROOT
exec sh "$QCS_ROOT/tests/surface/check.sh"
