#!/bin/sh
# The short run of `make stress`'s threads part (tests/stress/threads.sh):
# 4 threads x 150 ops through a ThreadSanitizer build of the shim on two
# images, plus an open/close thread, then the same on the library alone;
# TSan clean, qemu-img check clean, qemu-img compare equal to the raw twins.
exec sh "$(dirname "$0")/../stress/threads.sh" 4 150
