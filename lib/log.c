/*
 * DESIGN: stands in for Go's log package (the standard logger, flags
 * Ltime|Lmicroseconds, writing to stderr) and the os.Getenv switches.
 * No threads. log_mu is held from the timestamp to the write, so that the
 * log's times never go backwards and lines never interleave; nothing else
 * is taken under it.
 */
#include "lib/log.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

struct raft_env {
	bool debug;
	bool unreliable_rpc;
	bool force_more_reelection;
};

static struct raft_env env;
static atomic_bool debug_paused;
static pthread_once_t env_once = PTHREAD_ONCE_INIT;
static pthread_mutex_t log_mu = PTHREAD_MUTEX_INITIALIZER;

/* As Go's len(os.Getenv(name)) > 0. */
static bool env_set(const char *name)
{
	const char *v = getenv(name);

	return v && *v;
}

static void read_env(void)
{
	const char *debug = getenv("RAFT_DEBUG");

	/* Go's DebugCM = 1: on unless RAFT_DEBUG=0. */
	env.debug = !(debug && strcmp(debug, "0") == 0);
	env.unreliable_rpc = env_set("RAFT_UNRELIABLE_RPC");
	env.force_more_reelection = env_set("RAFT_FORCE_MORE_REELECTION");
}

static const struct raft_env *get_env(void)
{
	pthread_once(&env_once, read_env);
	return &env;
}

bool raft_debug_enabled(void)
{
	return get_env()->debug && !atomic_load(&debug_paused);
}

bool raft_debug_configured(void)
{
	return get_env()->debug;
}

void raft_debug_pause(bool paused)
{
	atomic_store(&debug_paused, paused);
}

bool raft_unreliable_rpc(void)
{
	return get_env()->unreliable_rpc;
}

bool raft_force_more_reelection(void)
{
	return get_env()->force_more_reelection;
}

static void write_all_stderr(const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = write(STDERR_FILENO, buf, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return; /* nowhere left to report a logging failure */
		buf += n;
		len -= (size_t)n;
	}
}

/* "HH:MM:SS.uuuuuu " into line; returns its length. */
static size_t format_time(char *line, size_t size)
{
	struct timeval tv;
	struct tm tm;
	size_t len;

	gettimeofday(&tv, NULL);
	localtime_r(&tv.tv_sec, &tm);
	len = strftime(line, size, "%H:%M:%S", &tm);
	return len + (size_t)snprintf(line + len, size - len, ".%06ld ", (long)tv.tv_usec);
}

void log_vprintf_prefixed(const char *prefix, const char *fmt, va_list ap)
{
	char line[LOG_LINE_MAX];
	size_t len;
	int n;

	pthread_mutex_lock(&log_mu);
	len = format_time(line, sizeof(line));
	len += strlcpy(line + len, prefix, sizeof(line) - len);
	n = vsnprintf(line + len, sizeof(line) - len, fmt, ap);
	if (n < 0)
		n = 0;
	if ((size_t)n >= sizeof(line) - len) {
		/* Truncated: say so, and keep the line a line. */
		len = sizeof(line) - 5;
		/* NOLINTNEXTLINE(bugprone-not-null-terminated-result): a line, not a string */
		memcpy(line + len, "...", 3);
		len += 3;
	} else {
		len += (size_t)n;
	}
	line[len++] = '\n';
	write_all_stderr(line, len);
	pthread_mutex_unlock(&log_mu);
}

void log_printf(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vprintf_prefixed("", fmt, ap);
	va_end(ap);
}
