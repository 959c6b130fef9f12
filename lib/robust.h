/*
 * What the robustness tests of every part share (robust_test.c,
 * part2/robust_test.c): a capture of the process's log that a test can read
 * back, threads counted by name, and the raw wire a hostile peer speaks.
 * Go's tests get the like from the testing and net packages.
 *
 * Not thread-safe across callers of one log_capture: the test thread owns
 * it. Every wait polls with a timeout and never blocks for ever.
 */
#ifndef LIB_ROBUST_H
#define LIB_ROBUST_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- the log -------------------------------------------------------------- */

struct log_capture {
	int saved_fd; /* the real stderr while captured; -1 when not */
	int fd;	      /* the capture file, already unlinked */
};

/* Sends fd 2 to a fresh temporary file. 0 or a negative errno. */
int capture_start(struct log_capture *c);

/* Everything logged since capture_start, NUL-terminated; NULL if out of memory. */
char *capture_text(const struct log_capture *c);

/* Restores fd 2 and replays the captured log to it. */
void capture_stop(struct log_capture *c);

/* Lines of text that contain needle. */
int count_lines(const char *text, const char *needle);

/* Logged lines that contain needle; -1 if the log cannot be read. */
int log_count(const struct log_capture *c, const char *needle);

/* Polls the log until a line contains needle, or timeout_ms pass. */
bool wait_for_log(const struct log_capture *c, const char *needle, int timeout_ms);

/* ---- threads -------------------------------------------------------------- */

/*
 * Threads of this process named name, by /proc/self/task/<tid>/comm; -1 if
 * it cannot be read. Parked pool workers (which bear their last task's
 * name) are not counted. A new thread bears its creator's name until its
 * trampoline names it, so a count can be one too high for a moment, never
 * too low: callers wait for a count that only the end of the thread they
 * watch can give.
 */
int count_threads_named(const char *name);

/* Polls until exactly want threads are named name; false after timeout_ms. */
bool wait_threads_named(const char *name, int want, int timeout_ms);

/* ---- a peer's side of the wire -------------------------------------------- */

/* Opens a TCP connection to addr, as any peer could; the fd or -errno. */
int dial_addr(const struct sockaddr_in *addr);

/*
 * Sends all of buf; 0 or -errno. The server may cut a hostile peer off
 * before it has sent everything: that is an outcome the test checks later,
 * not an error.
 */
int send_bytes(int fd, const void *buf, size_t len);

/* Reads exactly len bytes within timeout_ms; 0 or -1. */
int recv_exact(int fd, uint8_t *buf, size_t len, int timeout_ms);

/*
 * Waits until the server closes fd (end of stream or reset), discarding
 * anything it sends. Returns the milliseconds it took, or -1 after timeout_ms.
 */
long wait_closed_by_server(int fd, int timeout_ms);

#endif
