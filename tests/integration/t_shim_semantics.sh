#!/bin/sh
# t_shim_semantics.sh - the interposition layer beyond single calls
# (tests/shim/semantics.sh): positions across dup/fork/exec, multi-process
# coherence, qemu lock interop, exec guard, stdio, passthrough invisibility,
# environment switches.  QCS_ROOT/QCS_BUILD are set by run.sh.
: "${QCS_ROOT:=$(cd "$(dirname "$0")/../.." && pwd)}"
: "${QCS_BUILD:=$QCS_ROOT/build}"
export QCS_ROOT QCS_BUILD
exec sh "$QCS_ROOT/tests/shim/semantics.sh"
