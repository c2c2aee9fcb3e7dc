/*
 * crc32.c - CRC-32 (IEEE 802.3, the GPT checksum) for parttab.c: zlib's
 * crc32() gives the same results, but the shim does not link zlib (it is
 * loaded only for compressed clusters).  Bitwise: GPT headers and entry
 * arrays are small.
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
