/*
 * What the robustness tests of every part share (lib/robust.h).
 *
 * The log capture swaps fd 2 for an unlinked temporary file: what the
 * servers log (lib/log.c writes to fd 2) lands there, and the test reads it
 * back with pread while the servers go on writing. Sanitizer reports keep
 * the real stderr (the test programs point them at it), so that a report
 * that ends the process is never lost in the capture.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/clock.h"
#include "lib/go.h"
#include "lib/robust.h"

/* ---- the log -------------------------------------------------------------- */

static void write_all(int fd, const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, buf, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return; /* nowhere left to report it */
		buf += n;
		len -= (size_t)n;
	}
}

/* Sends fd 2 to a fresh temporary file. 0 or a negative errno. */
int capture_start(struct log_capture *c)
{
	char path[] = "/tmp/raft-c-log.XXXXXX";

	c->saved_fd = -1;
	c->fd = mkostemp(path, O_CLOEXEC);
	if (c->fd < 0)
		return -errno;
	if (unlink(path) < 0 || (c->saved_fd = fcntl(STDERR_FILENO, F_DUPFD_CLOEXEC, 0)) < 0 ||
	    dup2(c->fd, STDERR_FILENO) < 0) {
		int err = errno;

		if (c->saved_fd >= 0)
			close(c->saved_fd);
		close(c->fd);
		c->saved_fd = c->fd = -1;
		return -err;
	}
	return 0;
}

/* Everything logged since capture_start, NUL-terminated; NULL if out of memory. */
char *capture_text(const struct log_capture *c)
{
	struct stat st;
	char *text;
	size_t got = 0;

	if (fstat(c->fd, &st) < 0 || !(text = malloc((size_t)st.st_size + 1)))
		return NULL;
	while (got < (size_t)st.st_size) {
		ssize_t n = pread(c->fd, text + got, (size_t)st.st_size - got, (off_t)got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	text[got] = '\0';
	return text;
}

/* Restores fd 2 and replays the captured log to it. */
void capture_stop(struct log_capture *c)
{
	char *text;

	if (c->saved_fd < 0)
		return;
	text = capture_text(c);
	if (dup2(c->saved_fd, STDERR_FILENO) < 0)
		perror("capture_stop: restoring stderr");
	if (text)
		write_all(STDERR_FILENO, text, strlen(text));
	free(text);
	close(c->saved_fd);
	close(c->fd);
	c->saved_fd = c->fd = -1;
}

/* Lines of text that contain needle. */
int count_lines(const char *text, const char *needle)
{
	int n = 0;

	for (const char *line = text; *line;) {
		const char *end = strchr(line, '\n');
		const char *hit = strstr(line, needle);

		if (hit && (!end || hit < end))
			n++;
		if (!end)
			break;
		line = end + 1;
	}
	return n;
}

/* Logged lines that contain needle; -1 if the log cannot be read. */
int log_count(const struct log_capture *c, const char *needle)
{
	char *text = capture_text(c);
	int n;

	if (!text)
		return -1;
	n = count_lines(text, needle);
	free(text);
	return n;
}

/* Polls the log until a line contains needle, or timeout_ms pass. */
bool wait_for_log(const struct log_capture *c, const char *needle, int timeout_ms)
{
	struct timespec start = mono_now();

	for (;;) {
		if (log_count(c, needle) > 0)
			return true;
		if (elapsed_ms(start) >= timeout_ms)
			return false;
		sleep_ms(5);
	}
}

/* ---- threads -------------------------------------------------------------- */

/* By /proc/self/task/<tid>/comm; see lib/robust.h for the moment a count is high. */
int count_threads_named(const char *name)
{
	DIR *dir = opendir("/proc/self/task");
	struct dirent *e;
	int n = 0;

	if (!dir)
		return -1;
	while ((e = readdir(dir))) {
		char path[300], comm[32] = "";
		FILE *f;

		if (e->d_name[0] == '.')
			continue;
		/* A parked worker bears its last task's name; it runs no task. */
		if (go_pool_is_parked((pid_t)strtol(e->d_name, NULL, 10)))
			continue;
		snprintf(path, sizeof(path), "/proc/self/task/%s/comm", e->d_name);
		f = fopen(path, "r");
		if (!f)
			continue; /* the thread has just exited */
		if (fgets(comm, sizeof(comm), f))
			comm[strcspn(comm, "\n")] = '\0';
		fclose(f);
		n += strcmp(comm, name) == 0;
	}
	closedir(dir);
	return n;
}

/* Polls until exactly want threads are named name; false after timeout_ms. */
bool wait_threads_named(const char *name, int want, int timeout_ms)
{
	struct timespec start = mono_now();

	while (count_threads_named(name) != want) {
		if (elapsed_ms(start) >= timeout_ms)
			return false;
		sleep_ms(2);
	}
	return true;
}

/* ---- a peer's side of the wire -------------------------------------------- */

/* Opens a TCP connection to addr, as any peer could; the fd or -errno. */
int dial_addr(const struct sockaddr_in *addr)
{
	int rc, fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -errno;
	if (connect(fd, (const struct sockaddr *)addr, sizeof(*addr)) < 0) {
		rc = -errno;
		close(fd);
		return rc;
	}
	return fd;
}

/*
 * Sends all of buf. The server may cut a hostile peer off before it has
 * sent everything: that is an outcome the test checks later, not an error.
 */
int send_bytes(int fd, const void *buf, size_t len)
{
	const uint8_t *p = buf;

	while (len > 0) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return errno == EPIPE || errno == ECONNRESET ? 0 : -errno;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Reads exactly len bytes within timeout_ms; 0 or -1. */
int recv_exact(int fd, uint8_t *buf, size_t len, int timeout_ms)
{
	struct timespec start = mono_now();
	size_t got = 0;

	while (got < len) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		long left = timeout_ms - elapsed_ms(start);
		ssize_t n;

		if (left <= 0 || poll(&pfd, 1, (int)left) <= 0)
			return -1;
		n = read(fd, buf + got, len - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		got += (size_t)n;
	}
	return 0;
}

/*
 * Waits until the server closes fd (end of stream or reset), discarding
 * anything it sends. Returns the milliseconds it took, or -1 after timeout_ms.
 */
long wait_closed_by_server(int fd, int timeout_ms)
{
	struct timespec start = mono_now();

	for (;;) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		long left = timeout_ms - elapsed_ms(start);
		uint8_t scratch[256];
		ssize_t n;
		int rc;

		if (left <= 0)
			return -1;
		rc = poll(&pfd, 1, (int)left);
		if (rc < 0 && errno != EINTR)
			return -1;
		if (rc <= 0)
			continue; /* a blocking read now could wait for ever */
		n = read(fd, scratch, sizeof(scratch));
		if (n == 0 || (n < 0 && errno == ECONNRESET))
			return elapsed_ms(start);
		/* EAGAIN after a poll timeout or EINTR: look again. */
	}
}
