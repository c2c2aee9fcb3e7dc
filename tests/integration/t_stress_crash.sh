#!/bin/sh
# The short run of `make stress`'s power-cut part (tests/stress/crashpoints.c):
# 60 crash points over every geometry, half of them also judged by qemu-img
# check + convert.  Fixed seed, so a failure reproduces.
set -eu
: "${QCS_BUILD:=$(cd "$(dirname "$0")/../.." && pwd)/build}"
mkdir -p "$QCS_BUILD/integration"
exec "$QCS_BUILD/stress/crashpoints" -n 60 -q 2 -s 20261125 -d "$QCS_BUILD/integration"
