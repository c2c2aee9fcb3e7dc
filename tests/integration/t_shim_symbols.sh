#!/bin/sh
# t_shim_symbols.sh - the interposition layer on its own terms:
#   tests/shim/symbols.sh    exports == syms.def, resolution to libc, one
#                            snippet per row (image under the shim == raw twin)
#   tests/shim/semantics.sh  positions across dup/fork/exec, multi-process
#                            coherence, qemu lock interop, exec guard, stdio,
#                            passthrough invisibility, environment switches
# QCS_ROOT/QCS_BUILD are set by run.sh.  Exit 0 = everything passed.
: "${QCS_ROOT:=$(cd "$(dirname "$0")/../.." && pwd)}"
: "${QCS_BUILD:=$QCS_ROOT/build}"
export QCS_ROOT QCS_BUILD
rc=0
sh "$QCS_ROOT/tests/shim/symbols.sh" || rc=1
sh "$QCS_ROOT/tests/shim/semantics.sh" || rc=1
exit $rc
