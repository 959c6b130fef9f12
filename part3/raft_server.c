/*
 * raft_server: one part-3 server as a process of its own, on file storage
 * (storage.h), so that it can be killed with SIGKILL and started again on
 * what it left on disk. The Go original has no such program (its servers
 * live in the test process, on MapStorage); crash_test.c starts three of
 * these and kills them at random.
 *
 *   raft_server ID N DIR     server ID (0 <= ID < N) of a cluster of N,
 *                            its state in directory DIR
 *
 * It is driven by lines on stdin and answers with lines on stdout, so that
 * a parent process (or a person at a terminal) can play Go's harness:
 *
 *   stdin                        stdout
 *   connect PEER PORT            (nothing; an error line if it fails)
 *   disconnect PEER
 *   start                        (closes ready: the CM's countdown begins)
 *   submit CMD                   submitted CMD INDEX  (INDEX -1: not leader)
 *   status                       status TERM LEADER   (LEADER 0 or 1)
 *   quit, or end of input        (shuts down, exit 0)
 *                                listening PORT       (once, at start)
 *                                commit INDEX TERM CMD (each delivery)
 *                                error TEXT
 *
 * Peers are on 127.0.0.1; CMD is an int, as in the tests. The CM's log
 * (Go's, RAFT_DEBUG and the other switches as in the tests) goes to stderr.
 * Exit status: 0 after quit, 1 on bad usage, 2 if the storage cannot be
 * opened or restored, 3 if the server cannot start or stop.
 *
 * DESIGN: the main thread reads stdin and calls the server; a task
 * ("print-commits") reads the commit channel and prints each entry. Lines
 * go out through stdio, line-buffered (its lock keeps lines whole).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/chan.h"
#include "lib/go.h"
#include "raft.h"
#include "server.h"
#include "storage.h"

#define MAX_SERVERS 16

/* Reads commit_chan until it is closed; prints every entry. */
static void print_commits(void *arg)
{
	struct chan *commit_chan = arg;
	struct commit_entry e;

	while (chan_recv(commit_chan, &e, NULL, NULL) == 0)
		printf("commit %d %d %.*s\n", e.index, e.term, (int)e.command.len,
		       (const char *)e.command.bytes);
}

/* A decimal int in [lo, hi] from s, or false. */
static bool parse_int(const char *s, int lo, int hi, int *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < lo || v > hi)
		return false;
	*out = (int)v;
	return true;
}

static void do_connect(struct server *s, int peer, int port)
{
	struct sockaddr_in addr = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	int rc;

	addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	/* A peer that restarted listens on a new port: drop the old client first. */
	(void)server_disconnect_peer(s, peer);
	rc = server_connect_to_peer(s, peer, &addr);
	if (rc < 0)
		printf("error connect %d %d: %s\n", peer, port, strerror(-rc));
}

static void do_submit(struct server *s, const char *arg)
{
	struct cm_command cmd = { 0 };
	size_t len = strlen(arg);
	int v;

	if (!parse_int(arg, INT32_MIN, INT32_MAX, &v) || len > CM_COMMAND_MAX) {
		printf("error bad command '%s'\n", arg);
		return;
	}
	cmd.len = (uint16_t)len;
	memcpy(cmd.bytes, arg, len);
	printf("submitted %s %d\n", arg, server_submit(s, &cmd));
}

static void do_status(struct server *s)
{
	int term;
	bool is_leader;

	cm_report(server_cm(s), NULL, &term, &is_leader);
	printf("status %d %d\n", term, is_leader ? 1 : 0);
}

/* One line of stdin; false on quit. */
static bool handle_line(struct server *s, struct chan *ready, int n, char *line)
{
	char *save = NULL;
	char *verb = strtok_r(line, " \t\n", &save);
	char *a = strtok_r(NULL, " \t\n", &save);
	char *b = strtok_r(NULL, " \t\n", &save);
	int peer, port;

	if (!verb)
		return true;
	if (strcmp(verb, "quit") == 0)
		return false;
	if (strcmp(verb, "start") == 0)
		chan_close(ready);
	else if (strcmp(verb, "status") == 0)
		do_status(s);
	else if (strcmp(verb, "submit") == 0 && a)
		do_submit(s, a);
	else if (strcmp(verb, "connect") == 0 && a && b && parse_int(a, 0, n - 1, &peer) &&
		 parse_int(b, 1, 65535, &port))
		do_connect(s, peer, port);
	else if (strcmp(verb, "disconnect") == 0 && a && parse_int(a, 0, n - 1, &peer))
		(void)server_disconnect_peer(s, peer);
	else
		printf("error bad line '%s'\n", verb);
	return true;
}

/* Serves until quit; 0, or the exit status. */
static int run(int id, int n, struct storage *storage)
{
	int peers[MAX_SERVERS], npeers = 0, rc = 0;
	struct chan *ready = chan_new(1, 0);
	struct chan *commit_chan = chan_new(sizeof(struct commit_entry), 0);
	struct go_group *printer = go_group_new("out");
	struct sockaddr_in addr;
	struct server *s;
	char *line = NULL, why[512];
	size_t cap = 0;

	if (!ready || !commit_chan || !printer) {
		fprintf(stderr, "raft_server: out of memory\n");
		exit(3);
	}
	for (int p = 0; p < n; p++)
		if (p != id)
			peers[npeers++] = p;
	s = server_new(id, peers, npeers, storage, ready, commit_chan, NULL);
	if (!s)
		return 3;
	rc = server_serve(s);
	if (rc < 0 || server_get_listen_addr(s, &addr) < 0) {
		/* The process ends here: its threads go with it. */
		fprintf(stderr, "raft_server: cannot serve: %s\n", strerror(-rc));
		return rc == -EBADMSG ? 2 : 3;
	}
	go(printer, print_commits, commit_chan, "print-commits");
	printf("listening %d\n", ntohs(addr.sin_port));
	while (getline(&line, &cap, stdin) >= 0 && handle_line(s, ready, n, line))
		;
	free(line);

	/* As harness_shutdown: disconnect, stop the server, close its channel. */
	server_disconnect_all(s);
	rc = server_shutdown(s, why, sizeof(why));
	if (rc < 0)
		fprintf(stderr, "raft_server: shutdown: %s\n", why);
	chan_close(commit_chan);
	if (go_group_wait(printer, SERVER_SHUTDOWN_TIMEOUT_MS, why, sizeof(why)) < 0) {
		fprintf(stderr, "raft_server: %s\n", why);
		return 3;
	}
	go_group_free(printer);
	if (rc < 0)
		return 3;
	server_free(s);
	chan_free(commit_chan);
	chan_free(ready);
	return 0;
}

int main(int argc, char **argv)
{
	struct storage *storage;
	char why[512];
	int id, n, rc;

	if (argc != 4 || !parse_int(argv[2], 1, MAX_SERVERS, &n) ||
	    !parse_int(argv[1], 0, n - 1, &id)) {
		fprintf(stderr, "usage: %s ID N DIR   (0 <= ID < N <= %d)\n", argv[0], MAX_SERVERS);
		return 1;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	rc = file_storage_open(argv[3], &storage, why, sizeof(why));
	if (rc < 0) {
		fprintf(stderr, "raft_server: %s\n", why);
		return 2;
	}
	rc = run(id, n, storage);
	if (rc == 0)
		storage_free(storage);
	return rc;
}
