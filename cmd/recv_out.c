/*
 * recv_out.c - mq-recv's output: messages as payloads and a delimiter,
 * a -F format or -J JSON lines, into a buffer that is written when
 * full, when the reader has caught up (flush) and at exit; with -g a
 * message is committed only after the buffer holding it was written.
 * A closed stdout ends the run quietly with status 0.
 */

#include <sys/uio.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "recv.h"

/*
 * 256 KB: faster than 1 MB by 7% to /dev/null, 13% into a pipe and
 * level into a file (farm-bench, 3M messages of 100 bytes), likely as
 * it fits in a core's L2 cache beside the reader's 1 MB read chunk
 */
#define OBUF		(256u << 10)
#define BIGMSG		(32u << 10)	/* written from where it lies */

static char *obuf;
/* -J's line, grown by spool_json_encode; file scope, so never lost */
static char *jbuf;
static size_t olen, jcap;

/* writeall - write to stdout; a closed pipe ends the run quietly */
static void
writeall(const char *p, size_t len)
{
	ssize_t n;

	while (len > 0) {
		n = write(STDOUT_FILENO, p, len);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 && errno == EPIPE)
			exit(EX_OK);
		if (n == -1)
			cli_die(-errno, NULL, "stdout");
		p += n;
		len -= n;
	}
}

/* writevall - writeall for the buffer, one payload and its delimiter */
static void
writevall(struct iovec *iov, int n)
{
	ssize_t w;

	while (n > 0) {
		w = writev(STDOUT_FILENO, iov, n);
		if (w == -1 && errno == EINTR)
			continue;
		if (w == -1 && errno == EPIPE)
			exit(EX_OK);
		if (w == -1)
			cli_die(-errno, NULL, "stdout");
		for (; n > 0 && (size_t)w >= iov->iov_len; iov++, n--)
			w -= iov->iov_len;
		if (n > 0) {
			iov->iov_base = (char *)iov->iov_base + w;
			iov->iov_len -= w;
		}
	}
}

/* flush - write out what the buffer holds, then commit what it held */
void
flush(void)
{
	writeall(obuf, olen);
	olen = 0;
	commit();
}

/* out - queue bytes for stdout */
static void
out(const void *p, size_t n)
{
	if (olen + n > OBUF) {
		flush();
		if (n > OBUF) {
			writeall(p, n);
			return;
		}
	}
	memcpy(obuf + olen, p, n);
	olen += n;
}

/* outnum - a decimal number */
static void
outnum(long long v)
{
	char b[24];
	int n = snprintf(b, sizeof(b), "%lld", v);

	out(b, n);
}

/* outbe32 - a length as 4 bytes, big-endian (kcat's %R), for framing */
static void
outbe32(size_t v)
{
	unsigned char b[4];

	b[0] = (unsigned char)(v >> 24);
	b[1] = (unsigned char)(v >> 16);
	b[2] = (unsigned char)(v >> 8);
	b[3] = (unsigned char)v;
	out(b, 4);
}

/*
 * print_format - print m by a -F format: kcat's tokens %s %S %R %k %K %t
 * %p %o %T %h %%; the format was checked by cli_format_ok
 */
static void
print_format(const char *f, size_t flen, const struct spool_msg *m)
{
	const char *end = f + flen, *run;
	size_t i;

	while (f < end) {
		for (run = f; f < end && *f != '%'; f++)
			;
		out(run, f - run);
		if (f++ == end)
			break;
		switch (*f++) {
		case 's': out(m->payload, m->len); break;
		case 'S': outnum((long long)m->len); break;
		case 'R': outbe32(m->len); break;
		case 'k': if (m->key) out(m->key, m->keylen); break;
		case 'K': outnum(m->key ? (long long)m->keylen : -1); break;
		case 't': out(recv_topic, strlen(recv_topic)); break;
		case 'p': outnum(m->partition); break;
		case 'o': outnum((long long)m->offset); break;
		case 'T': outnum(m->ts); break;
		case '%': out("%", 1); break;
		case 'h':
			for (i = 0; i < m->nheaders; i++) {
				if (i > 0)
					out(",", 1);
				out(m->headers[i].name, m->headers[i].namelen);
				out("=", 1);
				out(m->headers[i].value,
				    m->headers[i].valuelen);
			}
			break;
		}
	}
}

/* out_init - the output buffer, owned until out_free */
void
out_init(void)
{
	if ((obuf = malloc(OBUF)) == NULL)
		cli_die(-ENOMEM, NULL, "output");
	cli_own(CLI_MEM, obuf);
}

/* out_free - release the buffers (flushed before) */
void
out_free(void)
{
	(void)cli_close(obuf);
	free(jbuf);
}

/*
 * print_run - after print_msg of a payload-and-delimiter message, the
 * rest of its batch copied by the reader straight into the buffer, at
 * most max messages, acked as print_msg's are: how many
 */
long long
print_run(const struct recv_opts *o, long long max)
{
	struct spool_msg last;
	long long got = 0;
	size_t n;

	while (max > got) {
		/* room for any message it copies (under BIGMSG) */
		if (OBUF - olen < BIGMSG + o->dlen)
			flush();
		olen += src_copy(obuf + olen, OBUF - olen, o->delim, o->dlen,
		    BIGMSG, max - got, &n, &last);
		if (n == 0)
			break;
		ack(last.partition, last.offset, 0);
		got += n;
	}
	return got;
}

/* print_msg - queue one message as -J, -F or the payload and delimiter say */
void
print_msg(const struct recv_opts *o, const struct spool_msg *m)
{
	size_t jlen;

	if (o->json) {
		jlen = 0;
		if (spool_json_encode(recv_topic, m, &jbuf, &jcap, &jlen) < 0)
			cli_die(-ENOMEM, NULL, "output");
		out(jbuf, jlen);
	} else if (o->fmt != NULL)
		print_format(o->fmt, o->flen, m);
	else if (m->len >= BIGMSG) {
		/*
		 * a large payload goes out from where the reader holds it,
		 * after what is queued and before its delimiter: one system
		 * call and no copy into the buffer (the message is acked
		 * after this, so the commit covers only those before it)
		 */
		struct iovec iov[3] = {
			{ obuf, olen },
			{ (void *)m->payload, m->len },
			{ (void *)o->delim, o->dlen },
		};

		writevall(iov, 3);
		olen = 0;
		commit();
	} else if (olen + m->len + o->dlen <= OBUF) {
		/* the common case, without two calls to out */
		memcpy(obuf + olen, m->payload, m->len);
		if (o->dlen == 1)
			obuf[olen + m->len] = *o->delim;
		else
			memcpy(obuf + olen + m->len, o->delim, o->dlen);
		olen += m->len + o->dlen;
	} else {
		out(m->payload, m->len);
		out(o->delim, o->dlen);
	}
}
