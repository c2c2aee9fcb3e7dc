/*
 * crc32.c - CRC-32 (IEEE 802.3, the GPT checksum) for builds without zlib
 * (QCOW_NO_CODECS, the musl flavour), where parttab.c cannot use zlib's
 * crc32(); same results.  Bitwise: GPT headers and entry arrays are small.
 */
#include <stddef.h>
#include <stdint.h>

__attribute__((visibility("hidden"))) uint32_t shim_crc32(uint32_t crc, const void *p, size_t n)
{
	const uint8_t *b = p;
	crc = ~crc;
	while (n--) {
		crc ^= *b++;
		for (int k = 0; k < 8; k++)
			crc = (crc >> 1) ^ (0xedb88320u & -(crc & 1u));
	}
	return ~crc;
}
