#!/bin/sh
# The short run of `make stress`'s kill -9 part (tests/stress/kill.sh): 16
# trials (kill.sh cycles through its 8 kinds of starting image, so each kind
# twice; every third trial with a reader process), each killing a writer
# under the shim after at most 0.3 s.  Fixed seed, so a failure reproduces.
# make stress runs 400.
set -eu
STRESS_TRIALS=16 STRESS_MAX_MS=300 STRESS_SEED=20261125 exec sh "$(dirname "$0")/../stress/kill.sh"
