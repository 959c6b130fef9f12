/*
 * Storage: C twin of part3/raft/storage.go (Storage, MapStorage), and a
 * durable file storage.
 *
 * FILE STORAGE: FORMAT
 * dir/raft.wal is a write-ahead file; all integers big-endian.
 *   file header, 16 bytes:   "RAFTWAL1" | u32 format version (1) | u32 crc
 *                            (CRC-32C of the 12 bytes before it)
 *   then records, each:      u32 magic "RWAL" | u8 version (1) | u8 type
 *                            (1: batch) | u16 0 | u32 payload length |
 *                            u32 payload crc | u32 header crc (of the 16
 *                            bytes before it) | payload
 *   a batch's payload is a sequence of operations:
 *     set:  u8 1 | u16 key length | key | u32 value length | value
 *     log:  u8 2 | u32 from | u32 n | n times (i64 term | u16 length | bytes)
 *           (the log from index `from` on is replaced by the n entries)
 * Every storage_sync writes what was set since the last one as one batch,
 * with one pwrite, then fdatasync: the batch is the unit of atomicity, so
 * persist_to_storage's term, vote and log changes land together or not at
 * all. A set of the value a key already has, and a log write that changes
 * nothing, write nothing: a heartbeat that changes no state costs no fsync.
 *
 * FILE STORAGE: GUARANTEES
 * - storage_sync returns 0 only once the batch is on disk (fdatasync; the
 *   directory is fsynced after the file is created and after every rename).
 * - A crash at any instant leaves the state of the last batch synced, or of
 *   the one being written: a record cut off at the end of the file (header
 *   or payload incomplete, which is what a crash during its write leaves)
 *   is dropped with a log line naming the file and offset, and the file is
 *   truncated there. Nothing else is ever skipped: a bad checksum, magic or
 *   version, a file shorter than its header, or an operation that does not
 *   parse is an error naming the file and the offset, and the storage does
 *   not open (a server must not start empty and vote twice).
 * - A write or fsync error (ENOSPC, EIO, EFBIG, ...) is returned, logged
 *   with file and offset, and sticky: every later sync fails, so that the
 *   CM stops instead of acknowledging what is not on disk.
 * - The file grows by what changed; when it is over 1 MiB and over four
 *   times the live state, it is rewritten as one batch (a new file, fsync,
 *   rename over the old one, fsync of the directory).
 * - dir/LOCK is held with flock(LOCK_EX | LOCK_NB) while open: a second
 *   open of dir, from this process or another, is refused.
 */
#include "storage.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/log.h"
#include "raft.h"

/* ---- helpers ------------------------------------------------------------------ */

static void *xrealloc(void *p, size_t n)
{
	void *q = realloc(p, n ? n : 1);

	if (!q) {
		fprintf(stderr, "storage: out of memory for %zu bytes\n", n);
		abort(); /* as Go's runtime does */
	}
	return q;
}

static void put_u16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static void put_u32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (24 - 8 * i));
}

static void put_u64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (56 - 8 * i));
}

static uint16_t get_u16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t get_u32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint64_t get_u64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return v;
}

void storage_encode_int(int v, uint8_t *buf)
{
	put_u64(buf, (uint64_t)(int64_t)v);
}

bool storage_decode_int(const uint8_t *buf, size_t len, int *v)
{
	int64_t x;

	if (len != STORAGE_INT_SIZE)
		return false;
	x = (int64_t)get_u64(buf);
	if (x < INT32_MIN || x > INT32_MAX)
		return false;
	*v = (int)x;
	return true;
}

/* CRC-32C (Castagnoli), bitwise-table. */
static uint32_t crc_table[256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

static void crc_init(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;

		for (int k = 0; k < 8; k++)
			c = c & 1 ? 0x82F63B78u ^ (c >> 1) : c >> 1;
		crc_table[i] = c;
	}
}

static uint32_t crc32c(const uint8_t *p, size_t n)
{
	uint32_t c = 0xFFFFFFFFu;

	pthread_once(&crc_once, crc_init);
	for (size_t i = 0; i < n; i++)
		c = crc_table[(c ^ p[i]) & 0xFF] ^ (c >> 8);
	return c ^ 0xFFFFFFFFu;
}

/* ---- the in-memory image: keys and the log --------------------------------------- */

struct kv {
	char *key;
	uint8_t *value;
	size_t len;
};

struct image {
	struct kv *kv;
	int nkv;
	struct log_entry *log;
	int log_len;
	int log_cap;
	bool has_data;
};

static struct kv *image_find(struct image *im, const char *key)
{
	for (int i = 0; i < im->nkv; i++)
		if (strcmp(im->kv[i].key, key) == 0)
			return &im->kv[i];
	return NULL;
}

/* true if the value changed. */
static bool image_set(struct image *im, const char *key, const void *value, size_t len)
{
	struct kv *kv = image_find(im, key);

	im->has_data = true;
	if (kv && kv->len == len && (len == 0 || memcmp(kv->value, value, len) == 0))
		return false;
	if (!kv) {
		im->kv = xrealloc(im->kv, (size_t)(im->nkv + 1) * sizeof(*im->kv));
		kv = &im->kv[im->nkv++];
		kv->key = strdup(key);
		if (!kv->key)
			abort();
		kv->value = NULL;
	}
	kv->value = xrealloc(kv->value, len);
	if (len)
		memcpy(kv->value, value, len);
	kv->len = len;
	return true;
}

static bool image_get(struct image *im, const char *key, uint8_t **value, size_t *len)
{
	struct kv *kv = image_find(im, key);

	if (!kv)
		return false;
	*value = xrealloc(NULL, kv->len);
	if (kv->len)
		memcpy(*value, kv->value, kv->len);
	*len = kv->len;
	return true;
}

/* -EINVAL if from is past the end. true in *changed if the log changed. */
static int image_log_write(struct image *im, int from, const struct log_entry *e, int n,
			   bool *changed)
{
	*changed = false;
	if (from < 0 || from > im->log_len || n < 0 || n > INT32_MAX - from)
		return -EINVAL;
	im->has_data = true;
	if (n == 0 && from == im->log_len)
		return 0;
	if (from + n > im->log_cap) {
		int cap = im->log_cap ? im->log_cap : 16;

		while (cap < from + n)
			cap = cap <= INT32_MAX / 2 ? cap * 2 : from + n;
		im->log = xrealloc(im->log, (size_t)cap * sizeof(*im->log));
		im->log_cap = cap;
	}
	if (n)
		memcpy(&im->log[from], e, (size_t)n * sizeof(*e));
	im->log_len = from + n;
	*changed = true;
	return 0;
}

static int image_log_read(struct image *im, struct log_entry **entries, int *n)
{
	*entries = NULL;
	*n = im->log_len;
	if (im->log_len == 0)
		return 0;
	*entries = xrealloc(NULL, (size_t)im->log_len * sizeof(**entries));
	memcpy(*entries, im->log, (size_t)im->log_len * sizeof(**entries));
	return 0;
}

static void image_free(struct image *im)
{
	for (int i = 0; i < im->nkv; i++) {
		free(im->kv[i].key);
		free(im->kv[i].value);
	}
	free(im->kv);
	free(im->log);
	memset(im, 0, sizeof(*im));
}

/* ---- the interface -------------------------------------------------------------- */

int storage_set(struct storage *s, const char *key, const void *value, size_t len)
{
	return s->ops->set(s, key, value, len);
}

bool storage_get(struct storage *s, const char *key, uint8_t **value, size_t *len)
{
	return s->ops->get(s, key, value, len);
}

bool storage_has_data(struct storage *s)
{
	return s->ops->has_data(s);
}

int storage_log_write(struct storage *s, int from, const struct log_entry *entries, int n)
{
	return s->ops->log_write(s, from, entries, n);
}

int storage_log_read(struct storage *s, struct log_entry **entries, int *n)
{
	return s->ops->log_read(s, entries, n);
}

int storage_sync(struct storage *s)
{
	return s->ops->sync(s);
}

void storage_free(struct storage *s)
{
	if (s)
		s->ops->free(s);
}

/* ---- MapStorage ---------------------------------------------------------------- */

struct map_storage {
	struct storage base;
	pthread_mutex_t mu;
	struct image im;
};

static int ms_set(struct storage *s, const char *key, const void *value, size_t len)
{
	struct map_storage *ms = (struct map_storage *)s;

	pthread_mutex_lock(&ms->mu);
	image_set(&ms->im, key, value, len);
	pthread_mutex_unlock(&ms->mu);
	return 0;
}

static bool ms_get(struct storage *s, const char *key, uint8_t **value, size_t *len)
{
	struct map_storage *ms = (struct map_storage *)s;
	bool found;

	pthread_mutex_lock(&ms->mu);
	found = image_get(&ms->im, key, value, len);
	pthread_mutex_unlock(&ms->mu);
	return found;
}

static bool ms_has_data(struct storage *s)
{
	struct map_storage *ms = (struct map_storage *)s;
	bool has;

	pthread_mutex_lock(&ms->mu);
	has = ms->im.has_data;
	pthread_mutex_unlock(&ms->mu);
	return has;
}

static int ms_log_write(struct storage *s, int from, const struct log_entry *e, int n)
{
	struct map_storage *ms = (struct map_storage *)s;
	bool changed;
	int rc;

	pthread_mutex_lock(&ms->mu);
	rc = image_log_write(&ms->im, from, e, n, &changed);
	pthread_mutex_unlock(&ms->mu);
	return rc;
}

static int ms_log_read(struct storage *s, struct log_entry **e, int *n)
{
	struct map_storage *ms = (struct map_storage *)s;
	int rc;

	pthread_mutex_lock(&ms->mu);
	rc = image_log_read(&ms->im, e, n);
	pthread_mutex_unlock(&ms->mu);
	return rc;
}

static int ms_sync(struct storage *s)
{
	(void)s;
	return 0;
}

static void ms_free(struct storage *s)
{
	struct map_storage *ms = (struct map_storage *)s;

	image_free(&ms->im);
	pthread_mutex_destroy(&ms->mu);
	free(ms);
}

static const struct storage_ops map_storage_ops = {
	.set = ms_set,
	.get = ms_get,
	.has_data = ms_has_data,
	.log_write = ms_log_write,
	.log_read = ms_log_read,
	.sync = ms_sync,
	.free = ms_free,
};

struct storage *map_storage_new(void)
{
	struct map_storage *ms = calloc(1, sizeof(*ms));

	if (!ms)
		return NULL;
	ms->base.ops = &map_storage_ops;
	pthread_mutex_init(&ms->mu, NULL);
	return &ms->base;
}

/* ---- file storage ---------------------------------------------------------------- */

#define FILE_MAGIC	  "RAFTWAL1"
#define FILE_VERSION	  1
#define FILE_HEADER_SIZE  16
#define REC_MAGIC	  0x5257414Cu /* "RWAL" */
#define REC_VERSION	  1
#define REC_BATCH	  1
#define REC_HEADER_SIZE	  20
#define OP_SET		  1
#define OP_LOG		  2
#define COMPACT_MIN_BYTES (1LL << 20)
#define MAX_PAYLOAD	  (1u << 30)
#define WAL_NAME	  "raft.wal"
#define WAL_TMP_NAME	  "raft.wal.tmp"
#define LOCK_NAME	  "LOCK"

struct file_storage {
	struct storage base;
	pthread_mutex_t mu;
	char *dir;
	char *path; /* dir/raft.wal */
	int fd;
	int lock_fd;
	long long size;		 /* end of the valid records */
	long long compact_above; /* compact once size passes this */
	struct image im;
	/* The batch being built: REC_HEADER_SIZE bytes of room, then operations. */
	uint8_t *pend;
	size_t pend_len;
	size_t pend_cap;
	int failed;	   /* errno of the first write or fsync error: sticky */
	char failure[512]; /* its message */
	long fsyncs;
};

static void pend_reserve(struct file_storage *fs, size_t more)
{
	if (fs->pend_len + more <= fs->pend_cap)
		return;
	while (fs->pend_len + more > fs->pend_cap)
		fs->pend_cap = fs->pend_cap ? fs->pend_cap * 2 : 4096;
	fs->pend = xrealloc(fs->pend, fs->pend_cap);
}

static void pend_reset(struct file_storage *fs)
{
	pend_reserve(fs, REC_HEADER_SIZE);
	fs->pend_len = REC_HEADER_SIZE;
}

static void pend_set(struct file_storage *fs, const char *key, const void *value, size_t len)
{
	size_t klen = strlen(key);
	uint8_t *p;

	pend_reserve(fs, 1 + 2 + klen + 4 + len);
	p = fs->pend + fs->pend_len;
	*p++ = OP_SET;
	put_u16(p, (uint16_t)klen);
	/* A length-prefixed key, not a string: no NUL on disk. */
	/* NOLINTNEXTLINE(bugprone-not-null-terminated-result) */
	memcpy(p + 2, key, klen);
	p += 2 + klen;
	put_u32(p, (uint32_t)len);
	if (len)
		memcpy(p + 4, value, len);
	fs->pend_len += 1 + 2 + klen + 4 + len;
}

static void pend_log(struct file_storage *fs, int from, const struct log_entry *e, int n)
{
	uint8_t *p;

	pend_reserve(fs, 9);
	p = fs->pend + fs->pend_len;
	*p = OP_LOG;
	put_u32(p + 1, (uint32_t)from);
	put_u32(p + 5, (uint32_t)n);
	fs->pend_len += 9;
	for (int i = 0; i < n; i++) {
		uint16_t len = e[i].command.len;

		pend_reserve(fs, 10 + len);
		p = fs->pend + fs->pend_len;
		put_u64(p, (uint64_t)(int64_t)e[i].term);
		put_u16(p + 8, len);
		memcpy(p + 10, e[i].command.bytes, len);
		fs->pend_len += 10 + len;
	}
}

/* Fills in the record header of the pending batch. */
static void pend_seal(struct file_storage *fs)
{
	uint8_t *h = fs->pend;
	uint32_t len = (uint32_t)(fs->pend_len - REC_HEADER_SIZE);

	put_u32(h, REC_MAGIC);
	h[4] = REC_VERSION;
	h[5] = REC_BATCH;
	put_u16(h + 6, 0);
	put_u32(h + 8, len);
	put_u32(h + 12, crc32c(h + REC_HEADER_SIZE, len));
	put_u32(h + 16, crc32c(h, 16));
}

static int pwrite_all(int fd, const uint8_t *p, size_t n, long long off)
{
	while (n > 0) {
		ssize_t w = pwrite(fd, p, n, (off_t)off);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += w;
		n -= (size_t)w;
		off += w;
	}
	return 0;
}

static int fsync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int rc = 0;

	if (fd < 0)
		return -errno;
	if (fsync(fd) < 0)
		rc = -errno;
	close(fd);
	return rc;
}

static char *path_join(const char *dir, const char *name)
{
	size_t n = strlen(dir) + 1 + strlen(name) + 1;
	char *p = xrealloc(NULL, n);

	snprintf(p, n, "%s/%s", dir, name);
	return p;
}

/* Records the first failure (sticky) and logs it. Expects fs->mu held. */
static int fs_fail(struct file_storage *fs, int rc, const char *what, long long off)
{
	if (!fs->failed) {
		fs->failed = -rc;
		snprintf(fs->failure, sizeof(fs->failure), "storage: %s: %s at offset %lld: %s",
			 fs->path, what, off, strerror(-rc));
		log_printf("%s; the storage takes no more writes", fs->failure);
	}
	return rc;
}

static int fs_set(struct storage *s, const char *key, const void *value, size_t len)
{
	struct file_storage *fs = (struct file_storage *)s;
	int rc = 0;

	if (strlen(key) > UINT16_MAX || len > MAX_PAYLOAD / 2)
		return -EINVAL;
	pthread_mutex_lock(&fs->mu);
	if (fs->failed)
		rc = -fs->failed;
	else if (image_set(&fs->im, key, value, len))
		pend_set(fs, key, value, len);
	pthread_mutex_unlock(&fs->mu);
	return rc;
}

static bool fs_get(struct storage *s, const char *key, uint8_t **value, size_t *len)
{
	struct file_storage *fs = (struct file_storage *)s;
	bool found;

	pthread_mutex_lock(&fs->mu);
	found = image_get(&fs->im, key, value, len);
	pthread_mutex_unlock(&fs->mu);
	return found;
}

static bool fs_has_data(struct storage *s)
{
	struct file_storage *fs = (struct file_storage *)s;
	bool has;

	pthread_mutex_lock(&fs->mu);
	has = fs->im.has_data;
	pthread_mutex_unlock(&fs->mu);
	return has;
}

static int fs_log_write(struct storage *s, int from, const struct log_entry *e, int n)
{
	struct file_storage *fs = (struct file_storage *)s;
	bool changed = false;
	int rc;

	pthread_mutex_lock(&fs->mu);
	if (fs->failed) {
		rc = -fs->failed;
	} else {
		rc = image_log_write(&fs->im, from, e, n, &changed);
		if (rc == 0 && changed)
			pend_log(fs, from, e, n);
	}
	pthread_mutex_unlock(&fs->mu);
	return rc;
}

static int fs_log_read(struct storage *s, struct log_entry **e, int *n)
{
	struct file_storage *fs = (struct file_storage *)s;
	int rc;

	pthread_mutex_lock(&fs->mu);
	rc = image_log_read(&fs->im, e, n);
	pthread_mutex_unlock(&fs->mu);
	return rc;
}

/* Encoded size of the live state, as one batch. Expects fs->mu held. */
static long long live_size(struct file_storage *fs)
{
	long long n = FILE_HEADER_SIZE + REC_HEADER_SIZE + 9;

	for (int i = 0; i < fs->im.nkv; i++)
		n += 7 + (long long)strlen(fs->im.kv[i].key) + (long long)fs->im.kv[i].len;
	for (int i = 0; i < fs->im.log_len; i++)
		n += 10 + fs->im.log[i].command.len;
	return n;
}

static void file_header(uint8_t *h)
{
	/* 8 magic bytes, not a string: no NUL on disk. */
	/* NOLINTNEXTLINE(bugprone-not-null-terminated-result) */
	memcpy(h, FILE_MAGIC, 8);
	put_u32(h + 8, FILE_VERSION);
	put_u32(h + 12, crc32c(h, 12));
}

/*
 * Writes dir/raft.wal.tmp with the header and `body` (a sealed batch, or
 * nothing), fsyncs it, renames it to dir/raft.wal and fsyncs dir. Returns
 * the new file's descriptor, or a negative errno code (what failed in *what).
 */
static int write_new_file(const char *dir, const uint8_t *body, size_t len, const char **what)
{
	char *tmp = path_join(dir, WAL_TMP_NAME), *path = path_join(dir, WAL_NAME);
	uint8_t h[FILE_HEADER_SIZE];
	int fd, rc;

	file_header(h);
	*what = "create";
	fd = open(tmp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		rc = -errno;
		goto out;
	}
	*what = "write";
	rc = pwrite_all(fd, h, sizeof(h), 0);
	if (!rc && len)
		rc = pwrite_all(fd, body, len, FILE_HEADER_SIZE);
	*what = "fsync";
	if (!rc && fsync(fd) < 0)
		rc = -errno;
	*what = "rename";
	if (!rc && rename(tmp, path) < 0)
		rc = -errno;
	*what = "fsync of the directory";
	if (!rc)
		rc = fsync_dir(dir);
	if (rc) {
		close(fd);
		unlink(tmp);
	} else {
		rc = fd;
	}
out:
	free(tmp);
	free(path);
	return rc;
}

/* Expects fs->mu held; nothing pending. */
static int fs_compact_locked(struct file_storage *fs)
{
	const char *what;
	int fd;

	pend_reset(fs);
	for (int i = 0; i < fs->im.nkv; i++)
		pend_set(fs, fs->im.kv[i].key, fs->im.kv[i].value, fs->im.kv[i].len);
	pend_log(fs, 0, fs->im.log, fs->im.log_len);
	pend_seal(fs);
	fd = write_new_file(fs->dir, fs->pend, fs->pend_len, &what);
	if (fd < 0) {
		pend_reset(fs);
		return fs_fail(fs, fd, what, 0);
	}
	fs->fsyncs += 2;
	close(fs->fd);
	fs->fd = fd;
	fs->size = FILE_HEADER_SIZE + (long long)fs->pend_len;
	fs->compact_above = fs->size * 4 > COMPACT_MIN_BYTES ? fs->size * 4 : COMPACT_MIN_BYTES;
	pend_reset(fs);
	return 0;
}

static int fs_sync(struct storage *s)
{
	struct file_storage *fs = (struct file_storage *)s;
	int rc = 0;

	pthread_mutex_lock(&fs->mu);
	if (fs->failed) {
		rc = -fs->failed;
		goto out;
	}
	if (fs->pend_len == REC_HEADER_SIZE)
		goto out; /* nothing changed: already on disk */
	pend_seal(fs);
	rc = pwrite_all(fs->fd, fs->pend, fs->pend_len, fs->size);
	if (rc) {
		/* Leave no partial record behind if we can; a torn tail is dropped anyway. */
		if (ftruncate(fs->fd, (off_t)fs->size) == 0)
			(void)fdatasync(fs->fd);
		rc = fs_fail(fs, rc, "write", fs->size);
		goto out;
	}
	if (fdatasync(fs->fd) < 0) {
		rc = fs_fail(fs, -errno, "fdatasync", fs->size);
		goto out;
	}
	fs->fsyncs++;
	fs->size += (long long)fs->pend_len;
	pend_reset(fs);
	if (fs->size > fs->compact_above && fs->size > 4 * live_size(fs))
		rc = fs_compact_locked(fs);
out:
	pthread_mutex_unlock(&fs->mu);
	return rc;
}

static void fs_free(struct storage *s)
{
	struct file_storage *fs = (struct file_storage *)s;

	if (fs->fd >= 0)
		close(fs->fd);
	if (fs->lock_fd >= 0)
		close(fs->lock_fd); /* releases the flock */
	image_free(&fs->im);
	pthread_mutex_destroy(&fs->mu);
	free(fs->pend);
	free(fs->dir);
	free(fs->path);
	free(fs);
}

static const struct storage_ops file_storage_ops = {
	.set = fs_set,
	.get = fs_get,
	.has_data = fs_has_data,
	.log_write = fs_log_write,
	.log_read = fs_log_read,
	.sync = fs_sync,
	.free = fs_free,
};

/*
 * Applies one batch's operations to the image. 0, or -1 with the offset in
 * the file of the operation that does not parse in *bad.
 */
static int apply_batch(struct image *im, const uint8_t *p, uint32_t len, long long base,
		       long long *bad)
{
	uint32_t off = 0;

	while (off < len) {
		long long at = base + off;
		uint8_t op = p[off++];

		*bad = at;
		if (op == OP_SET) {
			char key[UINT16_MAX + 1];
			uint32_t klen, vlen;

			if (len - off < 2)
				return -1;
			klen = get_u16(p + off);
			off += 2;
			if (len - off < klen + 4)
				return -1;
			memcpy(key, p + off, klen);
			key[klen] = '\0';
			off += klen;
			vlen = get_u32(p + off);
			off += 4;
			if (len - off < vlen)
				return -1;
			image_set(im, key, p + off, vlen);
			off += vlen;
		} else if (op == OP_LOG) {
			uint32_t from, n;
			bool changed;

			if (len - off < 8)
				return -1;
			from = get_u32(p + off);
			n = get_u32(p + off + 4);
			off += 8;
			if (from > (uint32_t)im->log_len || n > (len - off) / 10)
				return -1;
			if (image_log_write(im, (int)from, NULL, 0, &changed) < 0)
				return -1;
			im->log_len = (int)from; /* truncate */
			for (uint32_t i = 0; i < n; i++) {
				struct log_entry e = { 0 };
				int64_t term;
				uint16_t clen;

				if (len - off < 10)
					return -1;
				term = (int64_t)get_u64(p + off);
				clen = get_u16(p + off + 8);
				off += 10;
				if (term < 0 || term > INT32_MAX || clen > CM_COMMAND_MAX ||
				    len - off < clen)
					return -1;
				e.term = (int)term;
				e.command.len = clen;
				memcpy(e.command.bytes, p + off, clen);
				off += clen;
				if (image_log_write(im, im->log_len, &e, 1, &changed) < 0)
					return -1;
			}
		} else {
			return -1;
		}
	}
	return 0;
}

static int read_all(int fd, uint8_t **buf, long long *size)
{
	struct stat st;
	long long got = 0;

	if (fstat(fd, &st) < 0)
		return -errno;
	*size = st.st_size;
	*buf = xrealloc(NULL, (size_t)st.st_size);
	while (got < st.st_size) {
		ssize_t r = pread(fd, *buf + got, (size_t)(st.st_size - got), (off_t)got);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			int rc = r < 0 ? -errno : -EIO;

			free(*buf);
			*buf = NULL;
			return rc;
		}
		got += r;
	}
	return 0;
}

/* Replays the file into fs->im. 0, or -EBADMSG / -errno with a message in why. */
static int replay(struct file_storage *fs, char *why, size_t whylen)
{
	uint8_t *buf = NULL;
	long long size = 0, off = FILE_HEADER_SIZE, bad;
	int rc = read_all(fs->fd, &buf, &size);

	if (rc) {
		snprintf(why, whylen, "storage: %s: read: %s", fs->path, strerror(-rc));
		return rc;
	}
	rc = -EBADMSG;
	if (size < FILE_HEADER_SIZE || !buf) {
		snprintf(why, whylen, "storage: %s: truncated file header: %lld bytes, want %d",
			 fs->path, size, FILE_HEADER_SIZE);
		goto out;
	}
	if (memcmp(buf, FILE_MAGIC, 8) != 0 || get_u32(buf + 12) != crc32c(buf, 12)) {
		snprintf(why, whylen, "storage: %s: offset 0: bad file header (magic or checksum)",
			 fs->path);
		goto out;
	}
	if (get_u32(buf + 8) != FILE_VERSION) {
		snprintf(why, whylen, "storage: %s: offset 8: unsupported format version %u",
			 fs->path, get_u32(buf + 8));
		goto out;
	}
	while (off < size) {
		const uint8_t *h = buf + off;
		long long left = size - off;
		uint32_t len;

		if (left < REC_HEADER_SIZE)
			break; /* torn: the header was being written */
		if (get_u32(h + 16) != crc32c(h, 16)) {
			snprintf(why, whylen,
				 "storage: %s: offset %lld: record header checksum mismatch",
				 fs->path, off);
			goto out;
		}
		if (get_u32(h) != REC_MAGIC || h[4] != REC_VERSION || h[5] != REC_BATCH) {
			snprintf(
				why, whylen,
				"storage: %s: offset %lld: unknown record (magic %08x, version %u, "
				"type %u)",
				fs->path, off, get_u32(h), h[4], h[5]);
			goto out;
		}
		len = get_u32(h + 8);
		if ((long long)len > left - REC_HEADER_SIZE)
			break; /* torn: the payload was being written */
		if (get_u32(h + 12) != crc32c(h + REC_HEADER_SIZE, len)) {
			snprintf(why, whylen, "storage: %s: offset %lld: record checksum mismatch",
				 fs->path, off);
			goto out;
		}
		if (apply_batch(&fs->im, h + REC_HEADER_SIZE, len, off + REC_HEADER_SIZE, &bad)) {
			snprintf(why, whylen, "storage: %s: offset %lld: malformed operation",
				 fs->path, bad);
			goto out;
		}
		off += REC_HEADER_SIZE + len;
	}
	if (off < size) {
		log_printf("storage: %s: record at offset %lld cut off at %lld (a crash during its "
			   "write): dropped",
			   fs->path, off, size);
		if (ftruncate(fs->fd, (off_t)off) < 0 || fsync(fs->fd) < 0) {
			rc = -errno;
			snprintf(why, whylen, "storage: %s: truncate at offset %lld: %s", fs->path,
				 off, strerror(errno));
			goto out;
		}
	}
	fs->size = off;
	rc = 0;
out:
	free(buf);
	return rc;
}

int file_storage_open(const char *dir, struct storage **out, char *why, size_t whylen)
{
	struct file_storage *fs = calloc(1, sizeof(*fs));
	char *lock_path;
	int rc;

	*out = NULL;
	if (!fs) {
		snprintf(why, whylen, "storage: %s: %s", dir, strerror(ENOMEM));
		return -ENOMEM;
	}
	fs->base.ops = &file_storage_ops;
	pthread_mutex_init(&fs->mu, NULL);
	fs->fd = fs->lock_fd = -1;
	fs->dir = strdup(dir);
	if (!fs->dir)
		abort();
	fs->path = path_join(dir, WAL_NAME);
	pend_reset(fs);

	if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
		rc = -errno;
		snprintf(why, whylen, "storage: %s: mkdir: %s", dir, strerror(errno));
		goto fail;
	}
	lock_path = path_join(dir, LOCK_NAME);
	fs->lock_fd = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fs->lock_fd < 0) {
		rc = -errno;
		snprintf(why, whylen, "storage: %s: open: %s", lock_path, strerror(errno));
		free(lock_path);
		goto fail;
	}
	if (flock(fs->lock_fd, LOCK_EX | LOCK_NB) < 0) {
		rc = errno == EWOULDBLOCK ? -EBUSY : -errno;
		snprintf(why, whylen, "storage: %s: %s", lock_path,
			 errno == EWOULDBLOCK ? "locked: the directory is in use by another "
						"process (or another open storage)"
					      : strerror(errno));
		free(lock_path);
		goto fail;
	}
	free(lock_path);

	fs->fd = open(fs->path, O_RDWR | O_CLOEXEC);
	if (fs->fd < 0 && errno == ENOENT) {
		const char *what;

		rc = write_new_file(dir, NULL, 0, &what);
		if (rc < 0) {
			snprintf(why, whylen, "storage: %s: %s: %s", fs->path, what, strerror(-rc));
			goto fail;
		}
		fs->fd = rc;
	}
	if (fs->fd < 0) {
		rc = -errno;
		snprintf(why, whylen, "storage: %s: open: %s", fs->path, strerror(errno));
		goto fail;
	}
	rc = replay(fs, why, whylen);
	if (rc)
		goto fail;
	fs->compact_above = fs->size * 4 > COMPACT_MIN_BYTES ? fs->size * 4 : COMPACT_MIN_BYTES;
	*out = &fs->base;
	return 0;
fail:
	fs_free(&fs->base);
	return rc;
}

long file_storage_fsyncs(struct storage *s)
{
	struct file_storage *fs = (struct file_storage *)s;
	long n;

	pthread_mutex_lock(&fs->mu);
	n = fs->fsyncs;
	pthread_mutex_unlock(&fs->mu);
	return n;
}

long long file_storage_size(struct storage *s)
{
	struct file_storage *fs = (struct file_storage *)s;
	long long n;

	pthread_mutex_lock(&fs->mu);
	n = fs->size;
	pthread_mutex_unlock(&fs->mu);
	return n;
}

int file_storage_compact(struct storage *s)
{
	struct file_storage *fs = (struct file_storage *)s;
	int rc;

	pthread_mutex_lock(&fs->mu);
	if (fs->failed)
		rc = -fs->failed;
	else if (fs->pend_len != REC_HEADER_SIZE)
		rc = -EBUSY; /* sync first */
	else
		rc = fs_compact_locked(fs);
	pthread_mutex_unlock(&fs->mu);
	return rc;
}

bool file_storage_failure(struct storage *s, char *why, size_t whylen)
{
	struct file_storage *fs = (struct file_storage *)s;
	bool failed;

	pthread_mutex_lock(&fs->mu);
	failed = fs->failed != 0;
	snprintf(why, whylen, "%s", fs->failure);
	pthread_mutex_unlock(&fs->mu);
	return failed;
}
