#!/bin/sh
# t_shim_around.sh - the ways around interposed symbols that the shim
# serves (issue 24 point 3; the completeness test is t_surface.sh): glibc
# entry points that make their own system calls (POSIX AIO through fio's
# posixaio engine), each on an image under the shim and on a raw twin
# without it; the images end qemu-img check clean and qemu-img compare
# identical to their twins.
. "$(dirname "$0")/lib_tools.sh"
require_shim
require fio

section "POSIX AIO: fio --ioengine=posixaio (glibc's helper threads)"
# A fixed seed (the same random offsets on the image and on the twin) and
# contents made of each block's offset (fio's verify_pattern %o), so both
# get the same bytes; do_verify reads them back through posixaio.
FIO="--ioengine=posixaio --iodepth=8 --randrepeat=1 --randseed=2411 --norandommap --verify=pattern --verify_pattern=%o"
new_image qemu aio 8M || finish
IMG=$T/aio.qcow2 TWIN=$T/aio.raw
# shellcheck disable=SC2086
both "fio posixaio randwrite 4k, 3M, verified by reading back" - fio --name=w --filename=@IMG@ \
	--rw=randwrite --bs=4k --size=3M --do_verify=1 $FIO
# shellcheck disable=SC2086
both "fio posixaio write 64k at 4M, 2M, not verified" - fio --name=s --filename=@IMG@ --rw=write \
	--offset=4M --bs=64k --size=2M --do_verify=0 $FIO
# shellcheck disable=SC2086
both "fio posixaio randread 64k at 4M verifies what the write above left" - fio --name=r \
	--filename=@IMG@ --rw=randread --offset=4M --bs=64k --size=2M --io_size=1M $FIO
# shellcheck disable=SC2086
both "fio posixaio randrw 8k over the whole disk, verified" - fio --name=m --filename=@IMG@ \
	--rw=randrw --bs=8k --size=8M --io_size=2M --do_verify=1 $FIO
is_qcow2 "$IMG" && pass "the image is still QCOW2" || fail "the image is no longer QCOW2"
qcheck "$IMG"
qcompare "$IMG" "$TWIN"

finish
IMG=$T/aio.qcow2 TWIN=$T/aio.raw
# shellcheck disable=SC2086
both "fio posixaio randwrite" - fio --name=w --filename=@IMG@ --rw=randwrite $FIO
# shellcheck disable=SC2086
both "fio posixaio sequential write at 1M, 64k blocks" - fio --name=s --filename=@IMG@ --rw=write \
	--offset=1M --ioengine=posixaio --iodepth=4 --bs=64k --size=2M
# shellcheck disable=SC2086
both "fio posixaio randread + verify of its own write (crc32c)" - fio --name=v --filename=@IMG@ \
	--rw=randwrite --verify=crc32c --do_verify=1 --offset=5M $FIO
is_qcow2 "$IMG" && pass "the image is still QCOW2" || fail "the image is no longer QCOW2"
qcheck "$IMG"
qcompare "$IMG" "$TWIN"
# Reads through posixaio see the flat disk: the same bytes fio read on the twin.
same "fio posixaio read: the bytes read (md5 of a dumped copy) = twin's" \
	"$(fio --name=r --filename="$TWIN" --rw=read --ioengine=posixaio --bs=64k --size=8M \
		--verify=md5 --do_verify=0 --output-format=terse --minimal >/dev/null 2>&1; md5sum <"$TWIN")" \
	"$(S cat "$IMG" | md5sum)"

finish
