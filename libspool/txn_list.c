/*
 * txn_list.c - looking at a topic's transactions: the open ones with
 * their age, deadline, check command and message count (mq-topic,
 * mq-send's --check runs), and a verify of every state file and open
 * transaction's batch files
 *
 * Reads only, takes no lock: a transaction resolved meanwhile is
 * passed over.  What this does not do: it resolves nothing and runs no
 * check command itself.
 */

#include <sys/file.h>
#include <sys/stat.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "spool_impl.h"
#include "txn.h"

/*
 * spool_txn_verify - check the state file of every transaction and the
 * batch files of the open ones, reporting each damaged one; returns how
 * many, or -errno.  Reads only.
 */
int
spool_txn_verify(struct spool_topic *t, void (*report)(void *, const char *),
    void *arg)
{
	struct spool_bhdr h;
	struct tstate s;
	struct tfile *files;
	unsigned char *buf;
	char **v, msg[SPOOL_ERRMSG_MAX + 64];
	size_t n, i, j, nf, blen;
	int xfd, dfd, r = 0, bad = 0;

	if ((xfd = spool_txn_opendir(t->sp, t->dirfd, TXN_DIR, 0)) < 0)
		return xfd == -ENOENT ? 0 : xfd;
	if ((r = spool_txn_dirs(xfd, ".", &v, &n)) < 0) {
		close(xfd);
		return r;
	}
	for (i = 0; i < n && r >= 0; i++) {
		if ((dfd = spool_txn_opendir(t->sp, xfd, v[i], 0)) < 0)
			continue;
		if ((r = spool_txn_state_read(t->sp, dfd, v[i], &s)) ==
		    -EBADMSG) {
			snprintf(msg, sizeof(msg), "%s", spool_errmsg(t->sp));
			if (report != NULL)
				report(arg, msg);
			bad++;
			r = 0;
		}
		if (r == 0 && (s.st == ST_PREPARED || s.st == ST_COMMITTING) &&
		    (r = spool_txn_files(dfd, &files, &nf)) == 0) {
			for (j = 0; j < nf && r >= 0; j++) {
				r = spool_batch_read_file(t->sp, "txn batch ",
				    dfd, files[j].name, &buf, &blen, &h);
				if (r == 0)
					free(buf);
				else if (r == -EBADMSG || r == -EPROTO) {
					snprintf(msg, sizeof(msg), "%s/txn/%s/"
					    "%s: %s", t->name, v[i],
					    files[j].name, r == -EPROTO ?
					    "written by a newer version of mq" :
					    "checksum mismatch");
					if (report != NULL)
						report(arg, msg);
					bad++;
					r = 0;
				} else if (r == -ENOENT)
					r = 0;	/* resolved meanwhile */
			}
			free(files);
		}
		spool_txn_state_free(&s);
		close(dfd);
	}
	spool_txn_dirs_free(v, n);
	close(xfd);
	return r < 0 ? r : bad;
}

/* cmp_created - qsort open transactions oldest first */
static int
cmp_created(const void *a, const void *b)
{
	int64_t x = ((const struct spool_txn_info *)a)->created;
	int64_t y = ((const struct spool_txn_info *)b)->created;

	return x < y ? -1 : x > y;
}

/*
 * spool_txn_list - the open (prepared or committing) transactions of a
 * topic, oldest first; free with spool_txn_list_free
 */
int
spool_txn_list(struct spool_topic *t, struct spool_txn_info **out, size_t *np)
{
	struct spool_txn_info *v = NULL, *nv;
	struct tstate s;
	struct tfile *files;
	char **names;
	size_t n, i, j, nf, k = 0;
	int xfd, dfd, r;

	*out = NULL;
	*np = 0;
	if ((xfd = spool_txn_opendir(t->sp, t->dirfd, TXN_DIR, 0)) < 0)
		return xfd == -ENOENT ? 0 : xfd;
	if ((r = spool_txn_dirs(xfd, ".", &names, &n)) < 0) {
		close(xfd);
		return r;
	}
	for (i = 0; i < n && r >= 0; i++) {
		if ((dfd = spool_txn_opendir(t->sp, xfd, names[i], 0)) < 0)
			continue;
		if ((r = spool_txn_state_read(t->sp, dfd, names[i], &s)) < 0 ||
		    (s.st != ST_PREPARED && s.st != ST_COMMITTING)) {
			spool_txn_state_free(&s);
			close(dfd);
			if (r == -EBADMSG)
				r = 0;
			continue;
		}
		if ((nv = realloc(v, (k + 1) * sizeof(*v))) == NULL) {
			r = -ENOMEM;
			spool_txn_state_free(&s);
			close(dfd);
			break;
		}
		v = nv;
		memset(&v[k], 0, sizeof(v[k]));
		v[k].txid = strtoull(names[i], NULL, 16);
		v[k].committing = s.st == ST_COMMITTING;
		v[k].created = s.created;
		v[k].deadline = s.deadline;
		if (s.check != NULL && (v[k].check = strdup(s.check)) == NULL)
			r = -ENOMEM;
		k++;
		if (r == 0 && (r = spool_txn_files(dfd, &files, &nf)) == 0) {
			for (j = 0; j < nf; j++)
				v[k - 1].messages += files[j].count;
			free(files);
		}
		spool_txn_state_free(&s);
		close(dfd);
	}
	spool_txn_dirs_free(names, n);
	close(xfd);
	if (r < 0) {
		spool_txn_list_free(v, k);
		return r;
	}
	if (k > 1)
		qsort(v, k, sizeof(*v), cmp_created);
	*out = v;
	*np = k;
	return 0;
}

/* spool_txn_list_free - release what spool_txn_list returned */
void
spool_txn_list_free(struct spool_txn_info *v, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		free(v[i].check);
	free(v);
}
