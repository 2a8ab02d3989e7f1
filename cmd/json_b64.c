/*
 * json_b64.c - base64 back into bytes, for both of mq-send -J's
 * decoders (json_in.c, json_fast.c): the strings mq-recv -J flags
 * "base64" (RFC 4648, with padding, no line breaks)
 */

#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "json_in.h"

/*
 * json_unb64 - decode n bytes of base64 at s into d (room for n / 4 * 3
 * bytes); -EINVAL if they are not base64 with its padding
 */
int
json_unb64(const char *s, size_t n, unsigned char *d, size_t *len)
{
	static const char b64[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	uint32_t acc = 0;
	size_t i, k = 0;
	int bits = 0, pad = 0;

	if (n % 4 != 0)
		return -EINVAL;
	for (i = 0; i < n; i++) {
		const char *c;

		if (s[i] == '=') {
			if (i < n - 2 || ++pad > 2)
				return -EINVAL;
			continue;
		}
		if (pad || s[i] == '\0' || (c = strchr(b64, s[i])) == NULL)
			return -EINVAL;
		acc = acc << 6 | (uint32_t)(c - b64);
		if ((bits += 6) >= 8) {
			bits -= 8;
			d[k++] = (unsigned char)(acc >> bits);
		}
	}
	*len = k;
	return 0;
}
