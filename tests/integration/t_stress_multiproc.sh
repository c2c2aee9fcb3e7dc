#!/bin/sh
# The short run of `make stress`'s several-processes part
# (tests/stress/multiproc.sh): 4 writer processes on disjoint ranges and 3
# readers on one image under the shim; no read sees anything unwritten, and
# the image ends qemu-img check clean with exactly the writers' data.
exec sh "$(dirname "$0")/../stress/multiproc.sh" 4 3 6
