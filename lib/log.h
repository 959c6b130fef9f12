/*
 * Go's log package with log.SetFlags(log.Ltime | log.Lmicroseconds), and
 * the environment switches the Go code reads with os.Getenv.
 */
#ifndef LIB_LOG_H
#define LIB_LOG_H

#include <stdarg.h>
#include <stdbool.h>

/* log.Printf: "HH:MM:SS.uuuuuu msg\n" to stderr, in one write. */
void log_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* The same with a prefix before the message ("[2] "). */
void log_vprintf_prefixed(const char *prefix, const char *fmt, va_list ap)
	__attribute__((format(printf, 2, 0)));
/* The longest line either writes; longer ones are cut. */
#define LOG_LINE_MAX 4096

/* Read once. RAFT_DEBUG=0 turns the CM's dlog off (Go's DebugCM). */
bool raft_debug_enabled(void);
/* RAFT_DEBUG alone, whatever raft_debug_pause says: fixed for the process. */
bool raft_debug_configured(void);
/*
 * The size to declare a buffer for part of a log line with: LOG_LINE_MAX, or
 * 1 when RAFT_DEBUG is off (a variable-length array, on purpose). Every stack
 * page a thread touches stays in its resident memory for good, and a frame
 * with three 4 KiB buffers in it pushes its callees three pages down the
 * stack, buffers used or not: with the log off, that was about 150 kB of
 * part2-bench idle5's 3 MB.
 */
#define LOG_BUF_SIZE (raft_debug_configured() ? LOG_LINE_MAX : 1)

/*
 * TEST HOOK: pauses the CM's dlog (true) or gives it back to RAFT_DEBUG
 * (false), for a test whose steps the log would slow down too much.
 */
void raft_debug_pause(bool paused);
bool raft_unreliable_rpc(void);	       /* RAFT_UNRELIABLE_RPC set and not empty */
bool raft_force_more_reelection(void); /* RAFT_FORCE_MORE_REELECTION */

#endif
