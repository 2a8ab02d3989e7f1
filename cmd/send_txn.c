/*
 * send_txn.c - mq-send --commit and --abort: settle a transaction that
 * mq-send --prepare left open, by its ID (TOPIC.HEX16)
 */

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "send.h"

/*
 * parse_txid - TOPIC.HEX16 (what --prepare printed) into its topic and
 * txid; exit 64 if it is not one
 */
static char *
parse_txid(const char *s, uint64_t *txid)
{
	const char *dot = strrchr(s, '.');
	char *topic, *end;

	if (dot == NULL || dot == s || strlen(dot + 1) != 16 ||
	    strspn(dot + 1, "0123456789abcdef") != 16)
		cli_usage_die("%s: not a transaction ID (TOPIC.ID, as "
		    "--prepare prints it)", s);
	*txid = strtoull(dot + 1, &end, 16);
	if ((topic = strndup(s, dot - s)) == NULL)
		cli_die(-ENOMEM, NULL, "%s", s);
	cli_check_topic(topic);
	return topic;
}

/*
 * resolve_txn - --commit or --abort TXID: exit 0 when it is (or was
 * already) so, 66 when unknown, 65 when it went the other way
 */
int
resolve_txn(const char *spool, const char *txstr, int commit)
{
	struct spool *sp;
	struct spool_topic *t;
	uint64_t txid;
	char *topic;
	int r;

	topic = parse_txid(txstr, &txid);
	cli_own(CLI_MEM, topic);
	sp = cli_open_spool(spool, 0);
	cli_check_primary(sp, cli_spool_path(spool));
	if ((r = spool_topic_open(sp, topic, &t)) == -ENOENT)
		cli_fail(r, "%s: No such transaction (no topic %s)", txstr,
		    topic);
	if (r < 0)
		cli_die(r, sp, "%s", topic);
	cli_own(CLI_TOPIC, t);
	if ((r = spool_txn_tick(t, spool_now_ms(), 0)) < 0)
		cli_die(r, sp, "%s: transactions", topic);
	r = commit ? spool_txn_commit(t, txid) : spool_txn_abort(t, txid);
	if (r == -ENOENT)
		cli_fail(r, "%s: No such transaction", txstr);
	if (r == -ECANCELED)
		cli_fail(r, "%s: the transaction was %s", txstr, commit ?
		    "aborted" : "committed");
	if (r < 0)
		cli_die(r, sp, "%s", txstr);
	if (cli_verbose)
		cli_warn("%s: %s", txstr, commit ? "committed" : "aborted");
	(void)cli_close(t);
	(void)cli_close(sp);
	(void)cli_close(topic);
	return EX_OK;
}
