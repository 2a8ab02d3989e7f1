/*
 * cli_parse.c - the parsers of what users type, shared by the mq-*
 * programs: numbers, durations, times, positions, escapes in a
 * delimiter and -F formats.  A bad value exits 64 here or makes the
 * caller do so.
 */

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"

/* cli_number - a decimal integer in [lo, hi], or exit 64 */
long long
cli_number(const char *s, const char *what, long long lo, long long hi)
{
	char *end;
	long long v;

	errno = 0;
	v = strtoll(s, &end, 10);
	if (*s == '\0' || isspace((unsigned char)*s) || *end != '\0' ||
	    errno != 0 || v < lo || v > hi)
		cli_usage_die("%s: invalid %s (expected %lld to %lld)", s, what,
		    lo, hi);
	return v;
}

/* cli_duration - "1.5s", "200ms", "2m", "1h", "1d", or seconds */
int
cli_duration(const char *s, int64_t *ms)
{
	char *end;
	double v, mult = 1000;
	size_t n = strspn(s, "0123456789.");

	/* digits with one point at most: strtod would take 0x10 and 1e3 */
	if (n == 0 || memchr(s, '.', n) != memrchr(s, '.', n) ||
	    strspn(s, ".") == n)
		return -EINVAL;
	errno = 0;
	v = strtod(s, &end);
	if (errno != 0 || end != s + n)
		return -EINVAL;
	if (strcmp(end, "ms") == 0)
		mult = 1;
	else if (strcmp(end, "s") == 0 || *end == '\0')
		mult = 1000;
	else if (strcmp(end, "m") == 0)
		mult = 60000;
	else if (strcmp(end, "h") == 0)
		mult = 3600000;
	else if (strcmp(end, "d") == 0)
		mult = 86400000;
	else
		return -EINVAL;
	if (v * mult > 9e15)
		return -EINVAL;
	*ms = (int64_t)(v * mult + 0.5);
	return 0;
}

/* digits - n decimal digits at *p */
static int
digits(const char **p, int n, int *v)
{
	*v = 0;
	while (n-- > 0) {
		if (!isdigit((unsigned char)**p))
			return 0;
		*v = *v * 10 + (*(*p)++ - '0');
	}
	return 1;
}

/* mdays - the days of month mo (1 to 12) of year y, Gregorian */
static int
mdays(int y, int mo)
{
	static const int d[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30,
	    31 };

	if (mo == 2 && y % 4 == 0 && (y % 100 != 0 || y % 400 == 0))
		return 29;
	return d[mo - 1];
}

/*
 * cli_time - epoch milliseconds, or ISO 8601: YYYY-MM-DD, optionally
 * [T ]HH:MM[:SS[.fff]] and Z or +HH:MM / -HHMM (no zone: UTC)
 */
int
cli_time(const char *s, int64_t *ms)
{
	struct tm tm;
	const char *p = s;
	int y, mo, d, h = 0, mi = 0, sec = 0, frac = 0, zh, zm, sign, n;
	int64_t t;

	if (*s != '\0' && strspn(s, "0123456789") == strlen(s)) {
		errno = 0;
		t = strtoll(s, NULL, 10);
		if (errno != 0)
			return -EINVAL;
		*ms = t;
		return 0;
	}
	if (!digits(&p, 4, &y) || *p++ != '-' || !digits(&p, 2, &mo) ||
	    *p++ != '-' || !digits(&p, 2, &d))
		return -EINVAL;
	if (*p == 'T' || *p == ' ') {
		p++;
		if (!digits(&p, 2, &h) || *p++ != ':' || !digits(&p, 2, &mi))
			return -EINVAL;
		if (*p == ':') {
			p++;
			if (!digits(&p, 2, &sec))
				return -EINVAL;
			if (*p == '.' || *p == ',') {
				p++;
				for (n = 0; isdigit((unsigned char)*p); n++, p++)
					if (n < 3)
						frac = frac * 10 + (*p - '0');
				if (n == 0)
					return -EINVAL;
				for (; n < 3; n++)
					frac *= 10;
			}
		}
	}
	/* timegm would move 2026-02-30 to March 2 without a word */
	if (mo < 1 || mo > 12 || d < 1 || d > mdays(y, mo) || h > 23 ||
	    mi > 59 || sec > 60)
		return -EINVAL;
	memset(&tm, 0, sizeof(tm));
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = sec;
	t = (int64_t)timegm(&tm);
	if (*p == 'Z' || *p == 'z')
		p++;
	else if (*p == '+' || *p == '-') {
		sign = *p++ == '-' ? -1 : 1;
		if (!digits(&p, 2, &zh))
			return -EINVAL;
		if (*p == ':')
			p++;
		if (!digits(&p, 2, &zm) || zh > 23 || zm > 59)
			return -EINVAL;
		t -= sign * (zh * 3600 + zm * 60);
	}
	if (*p != '\0')
		return -EINVAL;
	*ms = t * 1000 + frac;
	return 0;
}

/* cli_pos - beginning, end, N, -N or @TIME */
int
cli_pos(const char *s, struct spool_pos *pos)
{
	char *end;
	long long v;

	if (strcmp(s, "beginning") == 0) {
		pos->kind = SPOOL_POS_BEGIN;
		return 0;
	}
	if (strcmp(s, "end") == 0) {
		pos->kind = SPOOL_POS_END;
		return 0;
	}
	if (*s == '@') {
		pos->kind = SPOOL_POS_TIME;
		return cli_time(s + 1, &pos->value);
	}
	if (!isdigit((unsigned char)s[*s == '-']))
		return -EINVAL;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno != 0 || *end != '\0' || v == LLONG_MIN)
		return -EINVAL;
	pos->kind = v < 0 || *s == '-' ? SPOOL_POS_FROM_END : SPOOL_POS_OFFSET;
	pos->value = v < 0 ? -v : v;
	return 0;
}

/* cli_unescape - \n \t \r \0 \\ \xNN in a delimiter or format; malloc'd */
char *
cli_unescape(const char *s, size_t *len)
{
	char *out, *o;
	int v, i;

	if ((o = out = malloc(strlen(s) + 1)) == NULL)
		cli_die(-ENOMEM, NULL, "unescape");
	while (*s != '\0') {
		if (*s != '\\') {
			*o++ = *s++;
			continue;
		}
		switch (*++s) {
		case 'n': *o++ = '\n'; s++; break;
		case 't': *o++ = '\t'; s++; break;
		case 'r': *o++ = '\r'; s++; break;
		case '0': *o++ = '\0'; s++; break;
		case '\\': *o++ = '\\'; s++; break;
		case 'x':
			s++;
			for (v = 0, i = 0; i < 2 && isxdigit((unsigned char)*s);
			    i++, s++)
				v = v * 16 + (isdigit((unsigned char)*s) ?
				    *s - '0' : (tolower((unsigned char)*s) -
				    'a' + 10));
			if (i == 0) {
				free(out);
				return NULL;
			}
			*o++ = (char)v;
			break;
		default:
			free(out);
			return NULL;
		}
	}
	*len = o - out;
	return out;
}

/*
 * cli_format_ok - whether a -F format (escapes already undone) uses only
 * kcat's tokens: %s %S %R %k %K %t %p %o %T %h %%
 */
int
cli_format_ok(const char *f, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (f[i] != '%')
			continue;
		if (++i == n || f[i] == '\0' || strchr("sSRkKtpoTh%", f[i]) == NULL)
			return -EINVAL;
	}
	return 0;
}
