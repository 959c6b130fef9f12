/*
 * Storage: where a CM keeps its persistent state (currentTerm, votedFor and
 * the log). C twin of part3/raft/storage.go in eliben/raft: the Storage
 * interface (set, get, has_data) and MapStorage, in memory, for the tests;
 * plus a durable file storage in a directory (see storage.c for its format
 * and guarantees).
 *
 * Beyond Go's interface, which stores the whole log under the key "log"
 * (re-encoded by gob on every persist), the log has two operations of its
 * own, so that persisting one new entry costs the same however long the log
 * is: storage_log_write(from, entries, n) replaces everything from index
 * `from` on by the n entries (append: from = the old length; truncate on a
 * conflict: from = the first conflicting index), and storage_log_read reads
 * it back. storage_sync makes every set and log write since the last sync
 * durable, all of them or none (map storage: nothing to do).
 *
 * Values of the keys the CM uses ("currentTerm", "votedFor") are int64s,
 * 8 bytes big-endian (storage_encode_int): our own encoding, not gob.
 * Thread-safe: every storage has its own lock, taken after cm->mu.
 */
#ifndef STORAGE_H
#define STORAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct log_entry;
struct storage;

struct storage_ops {
	int (*set)(struct storage *s, const char *key, const void *value, size_t len);
	bool (*get)(struct storage *s, const char *key, uint8_t **value, size_t *len);
	bool (*has_data)(struct storage *s);
	int (*log_write)(struct storage *s, int from, const struct log_entry *entries, int n);
	int (*log_read)(struct storage *s, struct log_entry **entries, int *n);
	int (*sync)(struct storage *s);
	void (*free)(struct storage *s);
};

/* Every storage begins with this; storage.c's implementations embed it. */
struct storage {
	const struct storage_ops *ops;
};

/* Go: Set. 0, or a negative errno code (file storage: logged, and sticky). */
int storage_set(struct storage *s, const char *key, const void *value, size_t len);
/*
 * Go: Get. true and a copy of the value in *value (malloc'd, the caller
 * frees it; *len bytes), or false if the key was never set.
 */
bool storage_get(struct storage *s, const char *key, uint8_t **value, size_t *len);
/* Go: HasData: true iff any set (or log write) was made on this storage. */
bool storage_has_data(struct storage *s);
/* Replaces the log from index from (0 <= from <= its length) by n entries. */
int storage_log_write(struct storage *s, int from, const struct log_entry *entries, int n);
/* The whole log, malloc'd (NULL when empty). 0 or a negative errno code. */
int storage_log_read(struct storage *s, struct log_entry **entries, int *n);
/* Makes what was written since the last sync durable, atomically. 0 or -errno. */
int storage_sync(struct storage *s);
void storage_free(struct storage *s);

/* An int as storage holds it: int64, 8 bytes big-endian. */
#define STORAGE_INT_SIZE 8
void storage_encode_int(int v, uint8_t *buf);
/* false unless len is 8 and the value fits an int. */
bool storage_decode_int(const uint8_t *buf, size_t len, int *v);

/* Go: NewMapStorage, "a simple in-memory implementation of Storage for testing". */
struct storage *map_storage_new(void);

/*
 * Durable storage in directory dir (created if missing, mode 0700): the
 * write-ahead file dir/raft.wal, and dir/LOCK, which another open of dir
 * (by this process or another) finds locked and is refused. Returns 0 with
 * *out set, or a negative errno code with a message naming the file (and
 * offset) in why: a truncated or corrupt file is an error, never an empty
 * start; only a record cut off by a crash during its write (one that no
 * sync acknowledged) is dropped, with a log line.
 */
int file_storage_open(const char *dir, struct storage **out, char *why, size_t whylen);

/* For tests and benchmarks: fsyncs done, and bytes in the write-ahead file. */
long file_storage_fsyncs(struct storage *s);
long long file_storage_size(struct storage *s);
/* true if a write or fsync failed; its message (file, offset, reason) in why. */
bool file_storage_failure(struct storage *s, char *why, size_t whylen);
/* Rewrites the file as one record of the live state (also done automatically). */
int file_storage_compact(struct storage *s);

#endif
