#!/bin/sh
# The short run of `make stress`'s several-processes part
# (tests/stress/multiproc.sh): 6 writer processes on disjoint ranges and 4
# readers on one image under the shim; no read sees anything unwritten, no
# open or re-read fails, and the image ends qemu-img check clean with exactly
# the writers' data.  (This size caught readers racing a publishing writer,
# "L1 entry 0 is invalid", in 2 runs of 3 before the fix.)
exec sh "$(dirname "$0")/../stress/multiproc.sh" 6 4 10
