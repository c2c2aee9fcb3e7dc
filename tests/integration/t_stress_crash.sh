#!/bin/sh
# The short run of `make stress`'s power-cut part (tests/stress/crashpoints.c):
# 30 crash points, each on a random geometry, half of them also judged by
# qemu-img check + convert.  Fixed seed, so a failure reproduces.  (The
# unit tests run the same crash model under ASan+UBSan; make stress runs
# 3000 points, the repetitions that used to be 60 here.)
set -eu
: "${QCS_BUILD:=$(cd "$(dirname "$0")/../.." && pwd)/build}"
mkdir -p "$QCS_BUILD/integration"
exec "$QCS_BUILD/stress/crashpoints" -n 30 -q 2 -s 20261125 -d "$QCS_BUILD/integration"
