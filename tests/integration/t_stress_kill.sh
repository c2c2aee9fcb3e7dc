#!/bin/sh
# The short run of `make stress`'s kill -9 part (tests/stress/kill.sh): 20
# trials, each killing a writer under the shim after at most 0.3 s, on every
# kind of starting image.  Fixed seed, so a failure reproduces.
set -eu
STRESS_TRIALS=20 STRESS_MAX_MS=300 STRESS_SEED=20261125 exec sh "$(dirname "$0")/../stress/kill.sh"
