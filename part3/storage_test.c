/*
 * Tests of part3/storage.c: map storage, and the file storage's round trip,
 * torn records (a file cut at every byte offset), flipped bits (every byte
 * of a file), the lock against a second open (in this process and in
 * another), a full disk (RLIMIT_FSIZE in a child process: a clear error,
 * nothing acknowledged lost), kill -9 of a writer process at random
 * moments (nothing acknowledged lost, term/vote/log always from one
 * batch), and the cost of one append not growing with the log.
 *
 * Usage: storage_test [-run REGEX] [-count N]
 * Children: the program runs itself (/proc/self/exe) as
 *   storage_test -child-writer DIR   appends forever, printing each ack
 *   storage_test -child-fill DIR     the same under RLIMIT_FSIZE, until error
 *   storage_test -child-open DIR     opens DIR: exit 0, or 3 if locked
 * P3_KILL9_ROUNDS=N sets the kill -9 rounds (default 20).
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "lib/clock.h"
#include "lib/testing.h"
#include "raft.h"
#include "storage.h"

extern char **environ;

/* ---- helpers ------------------------------------------------------------------ */

static void make_tmpdir(char *buf, size_t size)
{
	snprintf(buf, size, "/tmp/raft-p3-storage-XXXXXX");
	assert_non_null(mkdtemp(buf));
}

static void rm_rf(const char *dir)
{
	char path[512];
	const char *names[] = { "raft.wal", "raft.wal.tmp", "LOCK" };

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		unlink(path);
	}
	rmdir(dir);
}

static struct log_entry entry(int cmd, int term)
{
	struct log_entry e = { .term = term };

	e.command.len = (uint16_t)snprintf((char *)e.command.bytes, CM_COMMAND_MAX, "%d", cmd);
	return e;
}

/* A decimal int at the start of s (0 if none), as atoi but checked by the linter. */
static int to_int(const char *s)
{
	return (int)strtol(s, NULL, 10);
}

static int entry_cmd(const struct log_entry *e)
{
	char text[CM_COMMAND_MAX + 1];

	memcpy(text, e->command.bytes, e->command.len);
	text[e->command.len] = '\0';
	return to_int(text);
}

static void set_int(struct storage *s, const char *key, int v)
{
	uint8_t buf[STORAGE_INT_SIZE];

	storage_encode_int(v, buf);
	assert_int_equal(storage_set(s, key, buf, sizeof(buf)), 0);
}

/* The int at key, or def if absent. */
static int get_int(struct storage *s, const char *key, int def)
{
	uint8_t *data;
	size_t len;
	int v;

	if (!storage_get(s, key, &data, &len))
		return def;
	assert_true(storage_decode_int(data, len, &v));
	free(data);
	return v;
}

static struct storage *open_ok(const char *dir)
{
	char why[512];
	struct storage *s;
	int rc = file_storage_open(dir, &s, why, sizeof(why));

	if (rc)
		fail_msg("open %s: %s", dir, why);
	return s;
}

static void read_file(const char *path, uint8_t **buf, size_t *len)
{
	struct stat st;
	int fd = open(path, O_RDONLY);

	assert_true(fd >= 0);
	assert_int_equal(fstat(fd, &st), 0);
	*len = (size_t)st.st_size;
	*buf = malloc(*len + 1);
	assert_non_null(*buf);
	assert_int_equal(read(fd, *buf, *len), (ssize_t)*len);
	close(fd);
}

static void write_file(const char *path, const uint8_t *buf, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, buf, len), (ssize_t)len);
	close(fd);
}

/* Runs this program as a child with args; its stdout in *out_fd (if not NULL). */
static pid_t spawn_self(const char *mode, const char *dir, int *out_fd)
{
	posix_spawn_file_actions_t fa;
	char *argv[] = { "storage_test", (char *)mode, (char *)dir, NULL };
	int p[2];
	pid_t pid;

	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, p[1], 1);
	assert_int_equal(posix_spawn(&pid, "/proc/self/exe", &fa, NULL, argv, environ), 0);
	posix_spawn_file_actions_destroy(&fa);
	close(p[1]);
	if (out_fd)
		*out_fd = p[0];
	else
		close(p[0]);
	return pid;
}

static int wait_exit(pid_t pid)
{
	int status;

	assert_int_equal(waitpid(pid, &status, 0), pid);
	return status;
}

/* ---- map storage --------------------------------------------------------------- */

static void TestMapStorageRoundTrip(void **state)
{
	struct storage *s = map_storage_new();
	struct log_entry e[3] = { entry(1, 1), entry(2, 1), entry(3, 2) }, *got;
	int n;

	(void)state;
	assert_false(storage_has_data(s));
	assert_int_equal(get_int(s, "currentTerm", -7), -7);
	set_int(s, "currentTerm", 5);
	assert_true(storage_has_data(s));
	assert_int_equal(get_int(s, "currentTerm", -7), 5);
	assert_int_equal(storage_log_write(s, 0, e, 3), 0);
	assert_int_equal(storage_log_write(s, 1, &e[2], 1), 0); /* truncate and append */
	assert_int_equal(storage_log_write(s, 5, e, 1), -EINVAL);
	assert_int_equal(storage_log_read(s, &got, &n), 0);
	assert_int_equal(n, 2);
	assert_int_equal(entry_cmd(&got[1]), 3);
	assert_int_equal(got[1].term, 2);
	free(got);
	storage_free(s);
}

/* ---- file storage ---------------------------------------------------------------- */

static void TestFileStorageRoundTrip(void **state)
{
	char dir[64];
	struct log_entry e[3] = { entry(10, 1), entry(11, 1), entry(12, 2) }, *got;
	struct storage *s;
	int n;

	(void)state;
	make_tmpdir(dir, sizeof(dir));
	s = open_ok(dir);
	assert_false(storage_has_data(s));
	set_int(s, "currentTerm", 2);
	set_int(s, "votedFor", 1);
	assert_int_equal(storage_log_write(s, 0, e, 3), 0);
	assert_int_equal(storage_sync(s), 0);
	/* Unchanged values and no log change: nothing to write, no fsync. */
	long fsyncs = file_storage_fsyncs(s);
	set_int(s, "currentTerm", 2);
	assert_int_equal(storage_log_write(s, 3, NULL, 0), 0);
	assert_int_equal(storage_sync(s), 0);
	assert_int_equal(file_storage_fsyncs(s), fsyncs);
	/* A conflict: the log from index 1 on is replaced. */
	assert_int_equal(storage_log_write(s, 1, &e[2], 1), 0);
	set_int(s, "currentTerm", 3);
	assert_int_equal(storage_sync(s), 0);
	storage_free(s);

	s = open_ok(dir);
	assert_true(storage_has_data(s));
	assert_int_equal(get_int(s, "currentTerm", -1), 3);
	assert_int_equal(get_int(s, "votedFor", -9), 1);
	assert_int_equal(storage_log_read(s, &got, &n), 0);
	assert_int_equal(n, 2);
	assert_int_equal(entry_cmd(&got[0]), 10);
	assert_int_equal(entry_cmd(&got[1]), 12);
	assert_int_equal(got[1].term, 2);
	free(got);
	/* Compaction keeps the state. */
	assert_int_equal(file_storage_compact(s), 0);
	storage_free(s);
	s = open_ok(dir);
	assert_int_equal(get_int(s, "currentTerm", -1), 3);
	assert_int_equal(storage_log_read(s, &got, &n), 0);
	assert_int_equal(n, 2);
	free(got);
	storage_free(s);
	rm_rf(dir);
}

/* Writes batch k (1-based): term k, vote k % 3, entry k-1 = (k, k). */
static void write_batch(struct storage *s, int k)
{
	struct log_entry e = entry(k, k);

	set_int(s, "currentTerm", k);
	set_int(s, "votedFor", k % 3);
	assert_int_equal(storage_log_write(s, k - 1, &e, 1), 0);
	assert_int_equal(storage_sync(s), 0);
}

/* The state is that of batch k (0: empty). */
static void assert_batch_state(struct storage *s, int k)
{
	struct log_entry *got;
	int n;

	assert_int_equal(get_int(s, "currentTerm", 0), k);
	assert_int_equal(get_int(s, "votedFor", 0), k % 3);
	assert_int_equal(storage_log_read(s, &got, &n), 0);
	assert_int_equal(n, k);
	for (int i = 0; i < n; i++) {
		assert_int_equal(entry_cmd(&got[i]), i + 1);
		assert_int_equal(got[i].term, i + 1);
	}
	free(got);
}

#define CUT_BATCHES 4

/*
 * A file cut at every byte offset: shorter than its header is an error
 * naming the file; otherwise the state is that of the last whole batch
 * (the cut one was never acknowledged), never a misread.
 */
static void TestFileStorageCutAtEveryOffset(void **state)
{
	char dir[64], cut[64], path[128], cut_path[128];
	long long ends[CUT_BATCHES + 1];
	struct storage *s;
	uint8_t *buf;
	size_t len;

	(void)state;
	make_tmpdir(dir, sizeof(dir));
	s = open_ok(dir);
	ends[0] = file_storage_size(s);
	for (int k = 1; k <= CUT_BATCHES; k++) {
		write_batch(s, k);
		ends[k] = file_storage_size(s);
	}
	storage_free(s);
	snprintf(path, sizeof(path), "%s/raft.wal", dir);
	read_file(path, &buf, &len);
	assert_int_equal((long long)len, ends[CUT_BATCHES]);

	make_tmpdir(cut, sizeof(cut));
	snprintf(cut_path, sizeof(cut_path), "%s/raft.wal", cut);
	for (size_t c = 0; c <= len; c++) {
		char why[512];
		int rc, k = 0;

		write_file(cut_path, buf, c);
		rc = file_storage_open(cut, &s, why, sizeof(why));
		if ((long long)c < ends[0]) {
			if (rc == 0)
				fail_msg("cut at %zu: opened a file shorter than its header", c);
			assert_non_null(strstr(why, cut_path));
			continue;
		}
		if (rc)
			fail_msg("cut at %zu: %s", c, why);
		while (k < CUT_BATCHES && ends[k + 1] <= (long long)c)
			k++;
		assert_batch_state(s, k);
		/* The torn record is gone: the next batch follows the last whole one. */
		assert_int_equal(file_storage_size(s), ends[k]);
		storage_free(s);
	}
	free(buf);
	rm_rf(cut);
	rm_rf(dir);
}

/* A flipped bit anywhere is an error naming the file and an offset. */
static void TestFileStorageFlippedBit(void **state)
{
	char dir[64], bad[64], path[128], bad_path[128];
	struct storage *s;
	uint8_t *buf;
	size_t len;

	(void)state;
	make_tmpdir(dir, sizeof(dir));
	s = open_ok(dir);
	for (int k = 1; k <= CUT_BATCHES; k++)
		write_batch(s, k);
	storage_free(s);
	snprintf(path, sizeof(path), "%s/raft.wal", dir);
	read_file(path, &buf, &len);

	make_tmpdir(bad, sizeof(bad));
	snprintf(bad_path, sizeof(bad_path), "%s/raft.wal", bad);
	for (size_t i = 0; i < len; i++) {
		char why[512];
		uint8_t bit = (uint8_t)(1u << (i % 8));

		buf[i] ^= bit;
		write_file(bad_path, buf, len);
		buf[i] ^= bit;
		if (file_storage_open(bad, &s, why, sizeof(why)) == 0) {
			storage_free(s);
			fail_msg("bit %zu of byte %zu flipped: not detected", i % 8, i);
		}
		assert_non_null(strstr(why, bad_path));
		assert_non_null(strstr(why, "offset"));
	}
	free(buf);
	rm_rf(bad);
	rm_rf(dir);
}

/* A second open of a directory in use is refused, in this process and another. */
static void TestFileStorageLockRefusesSecondOpen(void **state)
{
	char dir[64], why[512];
	struct storage *s, *s2;
	int status;

	(void)state;
	make_tmpdir(dir, sizeof(dir));
	s = open_ok(dir);
	assert_int_equal(file_storage_open(dir, &s2, why, sizeof(why)), -EBUSY);
	assert_non_null(strstr(why, "locked"));
	status = wait_exit(spawn_self("-child-open", dir, NULL));
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 3);
	storage_free(s);
	status = wait_exit(spawn_self("-child-open", dir, NULL));
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	rm_rf(dir);
}

/*
 * Reads the child's lines; returns the last "ack N" and the error line, if
 * any. With kill_after_ms >= 0, SIGKILLs the child that long after its
 * first ack.
 */
static int read_acks(int fd, char *error, size_t errlen, int kill_after_ms, pid_t pid)
{
	char buf[4096], line[512];
	size_t ll = 0;
	int last = -1;
	struct timespec start = mono_now();
	bool killed = false;

	error[0] = '\0';
	if (kill_after_ms >= 0)
		fcntl(fd, F_SETFL, O_NONBLOCK);
	for (;;) {
		ssize_t r = read(fd, buf, sizeof(buf));

		if (r == 0)
			break;
		if (r < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN)
				break;
			if (!killed && last >= 0 && elapsed_ms(start) >= kill_after_ms) {
				kill(pid, SIGKILL);
				killed = true;
			}
			sleep_ms(1);
			continue;
		}
		for (ssize_t i = 0; i < r; i++) {
			if (buf[i] != '\n') {
				if (ll < sizeof(line) - 1)
					line[ll++] = buf[i];
				continue;
			}
			line[ll] = '\0';
			ll = 0;
			if (strncmp(line, "ack ", 4) == 0) {
				if (last < 0)
					start = mono_now(); /* the kill's moment counts from here */
				last = to_int(line + 4);
			} else if (strncmp(line, "error: ", 7) == 0)
				snprintf(error, errlen, "%s", line + 7);
		}
	}
	close(fd);
	return last;
}

/*
 * A full disk (RLIMIT_FSIZE in a child: writes past it fail with EFBIG):
 * the error is clear (file, offset, reason), later syncs fail too, and
 * every batch acknowledged before it is there after a reopen.
 */
static void TestFileStorageFullDiskIsClearError(void **state)
{
	char dir[64], error[512];
	struct storage *s;
	int fd, status, acked;
	pid_t pid;

	(void)state;
	make_tmpdir(dir, sizeof(dir));
	pid = spawn_self("-child-fill", dir, &fd);
	acked = read_acks(fd, error, sizeof(error), -1, pid);
	status = wait_exit(pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 2);
	if (!strstr(error, "raft.wal") || !strstr(error, "offset") ||
	    !strstr(error, strerror(EFBIG)))
		fail_msg("unclear error: \"%s\"", error);
	assert_true(acked > 10);
	s = open_ok(dir);
	struct log_entry *got;
	int n;
	assert_int_equal(storage_log_read(s, &got, &n), 0);
	assert_true(n >= acked);
	for (int i = 0; i < n; i++)
		assert_int_equal(entry_cmd(&got[i]), i + 1);
	free(got);
	storage_free(s);
	rm_rf(dir);
}

/*
 * kill -9 of a writer at random moments, many times: after each, every
 * batch it acknowledged is there, the term never went down, and term, vote
 * and log are always those of one batch (never a mix).
 */
static void TestFileStorageSurvivesKill9(void **state)
{
	const char *env = getenv("P3_KILL9_ROUNDS");
	int rounds = env && to_int(env) > 0 ? to_int(env) : 20;
	int last_term = 0, total_acked = 0;
	char dir[64], error[512];

	(void)state;
	make_tmpdir(dir, sizeof(dir));
	for (int r = 0; r < rounds; r++) {
		struct storage *s;
		struct log_entry *got;
		int fd, n, acked, term;
		pid_t pid = spawn_self("-child-writer", dir, &fd);

		acked = read_acks(fd, error, sizeof(error), 5 + (int)arc4random_uniform(40), pid);
		(void)wait_exit(pid);
		s = open_ok(dir);
		term = get_int(s, "currentTerm", 0);
		assert_int_equal(storage_log_read(s, &got, &n), 0);
		if (n < acked)
			fail_msg("round %d: %d batches acknowledged, %d on disk", r, acked, n);
		if (term < last_term)
			fail_msg("round %d: term went down from %d to %d", r, last_term, term);
		/* One batch: term k, vote k % 3, and entries 1..k. */
		assert_int_equal(term, n);
		assert_int_equal(get_int(s, "votedFor", 0), n % 3);
		for (int i = 0; i < n; i++)
			if (entry_cmd(&got[i]) != i + 1 || got[i].term != i + 1)
				fail_msg("round %d: entry %d is {%d %d}", r, i, entry_cmd(&got[i]),
					 got[i].term);
		free(got);
		storage_free(s);
		if (acked > total_acked)
			total_acked = acked;
		last_term = term;
	}
	printf("    storage_test.c: %d kill -9 rounds, %d batches acknowledged by the last, none "
	       "lost\n",
	       rounds, total_acked);
	rm_rf(dir);
}

/* Persisting one entry writes the same number of bytes with 10 or 10,000 before it. */
static void TestFileStorageAppendCostIndependentOfLogLength(void **state)
{
	char dir[64];
	struct storage *s;
	long long small, large, before;

	(void)state;
	make_tmpdir(dir, sizeof(dir));
	s = open_ok(dir);
	for (int k = 1; k <= 10; k++)
		write_batch(s, k);
	before = file_storage_size(s);
	write_batch(s, 11);
	small = file_storage_size(s) - before;
	for (int k = 12; k <= 10000; k++) {
		struct log_entry e = entry(k, k);

		set_int(s, "currentTerm", k);
		set_int(s, "votedFor", k % 3);
		assert_int_equal(storage_log_write(s, k - 1, &e, 1), 0);
		if (k % 100 == 0) /* fewer fsyncs, for speed */
			assert_int_equal(storage_sync(s), 0);
	}
	assert_int_equal(storage_sync(s), 0);
	before = file_storage_size(s);
	write_batch(s, 10001);
	large = file_storage_size(s) - before;
	/* The command "10001" has 3 digits more than "11"; nothing else grows. */
	assert_int_equal(large, small + 3);
	storage_free(s);
	s = open_ok(dir);
	assert_batch_state(s, 10001);
	storage_free(s);
	rm_rf(dir);
}

/* ---- children ------------------------------------------------------------------- */

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void say(const char *fmt, ...)
{
	char buf[640];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf) - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if (n > (int)sizeof(buf) - 2)
		n = (int)sizeof(buf) - 2;
	buf[n++] = '\n';
	if (write(1, buf, (size_t)n) < 0)
		_exit(4);
}

/* Appends batch after batch, printing "ack N" once batch N is synced. */
static int child_writer(const char *dir, bool fill)
{
	char why[512];
	struct storage *s;
	struct log_entry *got;
	int n, rc;

	if (fill) {
		struct rlimit rl = { .rlim_cur = (rlim_t)64 * 1024, .rlim_max = (rlim_t)64 * 1024 };

		signal(SIGXFSZ, SIG_IGN);
		if (setrlimit(RLIMIT_FSIZE, &rl) < 0)
			return 5;
	}
	if (file_storage_open(dir, &s, why, sizeof(why))) {
		say("error: %s", why);
		return 1;
	}
	storage_log_read(s, &got, &n);
	free(got);
	for (int k = n + 1;; k++) {
		struct log_entry e = entry(k, k);
		uint8_t t[STORAGE_INT_SIZE], v[STORAGE_INT_SIZE];

		storage_encode_int(k, t);
		storage_encode_int(k % 3, v);
		rc = storage_set(s, "currentTerm", t, sizeof(t));
		if (!rc)
			rc = storage_set(s, "votedFor", v, sizeof(v));
		if (!rc)
			rc = storage_log_write(s, k - 1, &e, 1);
		if (!rc)
			rc = storage_sync(s);
		if (rc) {
			/* The error, as the storage logged it, and it stays. */
			if (!file_storage_failure(s, why, sizeof(why)))
				snprintf(why, sizeof(why), "no failure recorded: %s",
					 strerror(-rc));
			say("error: %s", why);
			if (storage_sync(s) == 0)
				say("error: a sync after the error succeeded");
			storage_free(s);
			return 2;
		}
		say("ack %d", k);
	}
}

static int child_open(const char *dir)
{
	char why[512];
	struct storage *s;
	int rc = file_storage_open(dir, &s, why, sizeof(why));

	if (rc == -EBUSY)
		return 3;
	if (rc)
		return 1;
	storage_free(s);
	return 0;
}

#define TEST(fn) cmocka_unit_test(fn)

static const struct CMUnitTest all_tests[] = {
	TEST(TestMapStorageRoundTrip),
	TEST(TestFileStorageRoundTrip),
	TEST(TestFileStorageCutAtEveryOffset),
	TEST(TestFileStorageFlippedBit),
	TEST(TestFileStorageLockRefusesSecondOpen),
	TEST(TestFileStorageFullDiskIsClearError),
	TEST(TestFileStorageSurvivesKill9),
	TEST(TestFileStorageAppendCostIndependentOfLogLength),
};

int main(int argc, char **argv)
{
	if (argc == 3 && strcmp(argv[1], "-child-writer") == 0)
		return child_writer(argv[2], false);
	if (argc == 3 && strcmp(argv[1], "-child-fill") == 0)
		return child_writer(argv[2], true);
	if (argc == 3 && strcmp(argv[1], "-child-open") == 0)
		return child_open(argv[2]);
	return go_test_main("storage_test", all_tests, sizeof(all_tests) / sizeof(all_tests[0]),
			    argc, argv);
}
