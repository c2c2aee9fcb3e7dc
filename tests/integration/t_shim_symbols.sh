#!/bin/sh
# t_shim_symbols.sh - the interposition layer's per-symbol checks
# (tests/shim/symbols.sh): exports == syms.def, resolution to libc, one
# snippet per row (image under the shim == raw twin).  Its semantics
# (tests/shim/semantics.sh) run as t_shim_semantics.sh, beside it.
# QCS_ROOT/QCS_BUILD are set by run.sh.  Exit 0 = everything passed.
: "${QCS_ROOT:=$(cd "$(dirname "$0")/../.." && pwd)}"
: "${QCS_BUILD:=$QCS_ROOT/build}"
export QCS_ROOT QCS_BUILD
exec sh "$QCS_ROOT/tests/shim/symbols.sh"
