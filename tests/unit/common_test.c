/*
 * ca/common unit tests: buffers (caps, secret wiping), durations and
 * RFC 3339 times, the configuration parser, bounded reads and atomic
 * writes, and the per-thread error detail.  Hostile inputs throughout.
 */
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "ca/common/buf.h"
#include "ca/common/config.h"
#include "ca/common/err.h"
#include "ca/common/fileio.h"
#include "ca/common/timefmt.h"

/* ---- temporary directory ----------------------------------------------- */

static int
dir_setup(void **state)
{
	char *dir = malloc(PATH_MAX / 2);

	if (dir == NULL)
		return -1;
	snprintf(dir, PATH_MAX / 2, "%s/meshca-common-test.XXXXXX",
	    getenv("TMPDIR") != NULL ? getenv("TMPDIR") : "/tmp");
	if (mkdtemp(dir) == NULL) {
		free(dir);
		return -1;
	}
	*state = dir;
	return 0;
}

static int
dir_teardown(void **state)
{
	char *dir = *state, p[PATH_MAX];
	struct dirent *e;
	DIR *d;

	if ((d = opendir(dir)) != NULL) {
		while ((e = readdir(d)) != NULL) {
			if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
				continue;
			snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
			if (unlink(p) != 0)
				(void)rmdir(p);
		}
		closedir(d);
	}
	(void)rmdir(dir);
	free(dir);
	return 0;
}

static int
dir_entries(const char *dir)
{
	struct dirent *e;
	int n = 0;
	DIR *d = opendir(dir);

	assert_non_null(d);
	while ((e = readdir(d)) != NULL)
		if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
			n++;
	closedir(d);
	return n;
}

static void
path_in(char *out, size_t n, const char *dir, const char *name)
{
	assert_int_equal(mca_path_join(out, n, dir, name), MCA_OK);
}

static void
write_file(const char *path, const void *p, size_t n)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, p, n), (ssize_t)n);
	close(fd);
}

/* ---- buffers -------------------------------------------------------------- */

static void
test_buf_cap(void **state)
{
	struct mca_buf b;

	(void)state;
	mca_buf_init(&b, 8, false);
	assert_int_equal(mca_buf_append(&b, "12345", 5), MCA_OK);
	assert_int_equal(mca_buf_append(&b, "678", 3), MCA_OK);	/* exactly the cap */
	assert_int_equal(b.len, 8);
	assert_int_equal(b.data[8], '\0');
	assert_int_equal(mca_buf_append(&b, "9", 1), MCA_ERR_TOOBIG);
	assert_int_equal(b.len, 8);				/* unchanged */
	assert_memory_equal(b.data, "12345678", 8);
	assert_int_equal(mca_buf_append_str(&b, "x"), MCA_ERR_TOOBIG);
	/* A length that wraps size_t is refused, not wrapped. */
	assert_int_equal(mca_buf_append(&b, "x", SIZE_MAX), MCA_ERR_TOOBIG);
	assert_int_equal(mca_buf_reserve(&b, SIZE_MAX), MCA_ERR_TOOBIG);
	assert_int_equal(mca_buf_reserve(&b, 1), MCA_ERR_TOOBIG);	/* past the cap */
	assert_int_equal(mca_buf_reserve(&b, 0), MCA_OK);
	assert_int_equal(b.len, 8);
	assert_int_equal(mca_buf_set(&b, "abcdefghi", 9), MCA_ERR_TOOBIG);
	assert_int_equal(mca_buf_set(&b, "ab", 2), MCA_OK);
	assert_int_equal(b.len, 2);
	assert_string_equal((char *)b.data, "ab");
	mca_buf_free(&b);
	assert_null(b.data);
	assert_int_equal(b.len, 0);
	mca_buf_free(&b);	/* freeing an empty buffer is a no-op */
	mca_buf_free(NULL);
}

static void
test_buf_zero_value_and_growth(void **state)
{
	struct mca_buf b = { 0 };
	char chunk[1000];

	(void)state;
	memset(chunk, 'q', sizeof(chunk));
	assert_int_equal(mca_buf_terminate(&b), MCA_OK);
	assert_non_null(b.data);
	assert_int_equal(b.data[0], '\0');
	assert_int_equal(mca_buf_reserve(&b, 5000), MCA_OK);	/* room, no contents */
	assert_true(b.cap > 5000);
	assert_int_equal(b.len, 0);
	for (int i = 0; i < 100; i++)
		assert_int_equal(mca_buf_append(&b, chunk, sizeof(chunk)), MCA_OK);
	assert_int_equal(b.len, 100000);
	assert_true(b.cap > b.len);
	assert_int_equal(b.data[b.len], '\0');
	assert_int_equal(b.data[99999], 'q');
	assert_int_equal(mca_buf_append(&b, NULL, 0), MCA_OK);	/* empty append */
	assert_int_equal(b.len, 100000);
	/* Past any real allocation: refused, not attempted. */
	assert_int_not_equal(mca_buf_append(&b, chunk, SIZE_MAX / 2 + 1), MCA_OK);
	assert_int_equal(b.len, 100000);
	mca_buf_free(&b);
	/* Reusable after free. */
	assert_int_equal(mca_buf_append_str(&b, "again"), MCA_OK);
	assert_string_equal((char *)b.data, "again");
	mca_buf_free(&b);
}

static void
test_buf_secret_wiped(void **state)
{
	struct mca_buf s, p;
	size_t cap;

	(void)state;
	mca_buf_init(&s, 0, true);
	assert_int_equal(mca_buf_append_str(&s, "hunter2-passphrase"), MCA_OK);
	cap = s.cap;
	mca_buf_reset(&s);
	assert_int_equal(s.len, 0);
	assert_int_equal(s.cap, cap);		/* memory kept ... */
	for (size_t i = 0; i < cap; i++)	/* ... and wiped */
		assert_int_equal(s.data[i], 0);
	/* Growth of a secret buffer keeps the contents. */
	assert_int_equal(mca_buf_append_str(&s, "k"), MCA_OK);
	for (int i = 0; i < 2000; i++)
		assert_int_equal(mca_buf_append(&s, "ey", 2), MCA_OK);
	assert_int_equal(s.len, 4001);
	assert_memory_equal(s.data, "keyey", 5);
	mca_buf_free(&s);
	assert_null(s.data);
	assert_true(s.secret);
	/* A plain buffer is not wiped on reset (only emptied). */
	mca_buf_init(&p, 0, false);
	assert_int_equal(mca_buf_append_str(&p, "public"), MCA_OK);
	mca_buf_reset(&p);
	assert_int_equal(p.len, 0);
	assert_memory_equal(p.data, "public", 6);
	mca_buf_free(&p);
}

static void
test_buf_helpers(void **state)
{
	unsigned char bytes[] = { 0x00, 0x0f, 0xa5, 0xff };
	char hex[2 * sizeof(bytes) + 1], x[8] = "secret!";

	(void)state;
	mca_hex_encode(bytes, sizeof(bytes), hex);
	assert_string_equal(hex, "000fa5ff");
	mca_hex_encode(bytes, 0, hex);
	assert_string_equal(hex, "");
	assert_int_equal(mca_memeq_ct("abcd", "abcd", 4), 0);
	assert_int_not_equal(mca_memeq_ct("abcd", "abce", 4), 0);
	assert_int_not_equal(mca_memeq_ct("\x80" "bcd", "abcd", 4), 0);
	assert_int_equal(mca_memeq_ct("a", "b", 0), 0);
	mca_wipe(x, sizeof(x));
	for (size_t i = 0; i < sizeof(x); i++)
		assert_int_equal(x[i], 0);
	mca_wipe(NULL, 10);
}

/* Uncapped buffer, len 0, n = SIZE_MAX: need + 1 wraps to 0 in buf_reserve,
 * which then reports room and memcpy runs off with SIZE_MAX bytes. */
static void
buf_append_size_max_refused(void **state)
{
	struct mca_buf b = { 0 };

	(void)state;
	assert_int_equal(mca_buf_append(&b, "x", SIZE_MAX), MCA_ERR_TOOBIG);
	mca_buf_free(&b);
}

/* ---- durations -------------------------------------------------------------- */

static void
test_duration_parse(void **state)
{
	static const struct { const char *s; int64_t v; } ok[] = {
		{ "90s", 90 }, { "5m", 300 }, { "24h", 86400 }, { "1h30m", 5400 },
		{ "30d", 2592000 }, { "300", 300 }, { "0", 0 }, { "1d1s", 86401 },
		{ "36600d", 36600LL * 86400 },	/* 100 years of 366 days: the limit */
	};
	int64_t v;

	(void)state;
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		v = -1;
		assert_int_equal(mca_duration_parse(ok[i].s, &v), MCA_OK);
		assert_int_equal(v, ok[i].v);
	}
}

static void
test_duration_hostile(void **state)
{
	static const char *bad[] = {
		"", "-5m", "1h30", "99999999999999999999d", "5x", "h", "m5", " 5m", "5m ",
		"5 m", "1.5h", "+5m", "0x10", "5M", "36601d", "3162240001",
		"9223372036854775807s", "18446744073709551617", "1h\n", "5m\x01",
	};
	int64_t v;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		v = 12345;
		mca_err_clear();
		assert_int_equal(mca_duration_parse(bad[i], &v), MCA_ERR_PARSE);
		assert_int_equal(v, 12345);			/* untouched */
		assert_string_not_equal(mca_err_detail(), "");
	}
	assert_int_equal(mca_duration_parse(NULL, &v), MCA_ERR_PARSE);
	assert_int_equal(mca_duration_parse("99999999999999999999d", &v), MCA_ERR_PARSE);
	assert_non_null(strstr(mca_err_detail(), "100 years"));
}

static void
test_duration_format(void **state)
{
	static const struct { int64_t v; const char *s; } cases[] = {
		{ 0, "0s" }, { -5, "0s" }, { 1, "1s" }, { 90, "1m30s" }, { 3600, "1h" },
		{ 5400, "1h30m" }, { 86400, "1d" }, { 90061, "1d1h1m1s" },
	};
	static const int64_t trip[] = {
		1, 59, 60, 61, 3599, 3600, 5400, 86399, 86400, 90061, 30 * 86400,
		36600LL * 86400,
	};
	char out[MCA_TIME_LEN];
	int64_t v;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		mca_duration_format(cases[i].v, out);
		assert_string_equal(out, cases[i].s);
	}
	for (size_t i = 0; i < sizeof(trip) / sizeof(trip[0]); i++) {
		mca_duration_format(trip[i], out);
		assert_int_equal(mca_duration_parse(out, &v), MCA_OK);
		assert_int_equal(v, trip[i]);
	}
	mca_duration_format(INT64_MAX, out);	/* fits, terminated */
	assert_true(strlen(out) < MCA_TIME_LEN);
}

/* ---- RFC 3339 times ----------------------------------------------------------- */

static void
test_time_roundtrip(void **state)
{
	static const int64_t trip[] = {
		0, 1, 951782400 /* 2000-02-29 */, 1795361479, 4102444800 /* 2100-01-01 */,
		253402300799 /* 9999-12-31T23:59:59Z */,
	};
	char out[MCA_TIME_LEN];
	int64_t v;

	(void)state;
	mca_time_format(1795361479, out);
	assert_string_equal(out, "2026-11-22T15:31:19Z");
	assert_int_equal(mca_time_parse("2026-11-22T15:31:19Z", &v), MCA_OK);
	assert_int_equal(v, 1795361479);
	mca_time_format(0, out);
	assert_string_equal(out, "1970-01-01T00:00:00Z");
	for (size_t i = 0; i < sizeof(trip) / sizeof(trip[0]); i++) {
		mca_time_format(trip[i], out);
		assert_int_equal(mca_time_parse(out, &v), MCA_OK);
		assert_int_equal(v, trip[i]);
	}
	mca_time_format(INT64_MAX, out);	/* no year for it: still a string */
	assert_true(strlen(out) < MCA_TIME_LEN);
	assert_true(mca_now() > 1700000000);
	assert_true(mca_monotonic_us() > 0);
}

static void
test_time_hostile(void **state)
{
	static const char *bad[] = {
		"", "2026-11-22", "2026-11-22T15:31:19", "2026-11-22T15:31:19+01:00",
		"2026-11-22T15:31:19Zjunk", "2026-13-01T00:00:00Z", "2026-11-22T25:00:00Z",
		"2026-11-22T15:61:00Z", "2026-00-10T00:00:00Z", "not a time", "+2026-11-22T15:31:19Z",
		"2026-11-22t15:31:19z", "2026-11-22T15:31:19.5Z",
	};
	int64_t v;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		v = 777;
		assert_int_equal(mca_time_parse(bad[i], &v), MCA_ERR_PARSE);
		assert_int_equal(v, 777);
	}
}

/* strptime accepts these and timegm normalises them into other instants. */
static void
time_parse_canonical_only(void **state)
{
	static const char *bad[] = {
		"2026-02-30T00:00:00Z", " 2026-01-01T00:00:00Z", "2026-1-1T0:0:0Z",
	};
	int64_t v;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(mca_time_parse(bad[i], &v), MCA_ERR_PARSE);
}

/* ---- configuration -------------------------------------------------------------- */

static enum mca_err
parse_str(const char *text, struct mca_config **cfg)
{
	return mca_config_parse(text, strlen(text), "test.conf", cfg);
}

static void
test_config_parse_ok(void **state)
{
	static const char text[] =
	    "# meshca configuration\n"
	    "\n"
	    "   \t\n"
	    "trust_domain = mesh.internal\n"
	    "  listen=127.0.0.1:8443   \n"
	    "\t# indented comment\n"
	    "database = /var/lib/meshca/db.sqlite # not a comment\r\n"
	    "default_ttl = 90m";		/* no final newline */
	struct mca_config *cfg = NULL;

	(void)state;
	assert_int_equal(parse_str(text, &cfg), MCA_OK);
	assert_non_null(cfg);
	assert_string_equal(mca_config_get(cfg, "trust_domain"), "mesh.internal");
	assert_string_equal(mca_config_get(cfg, "listen"), "127.0.0.1:8443");
	assert_string_equal(mca_config_get(cfg, "database"), "/var/lib/meshca/db.sqlite # not a comment");
	assert_null(mca_config_get(cfg, "url"));		/* known, unset */
	assert_null(mca_config_get(cfg, "no_such_key"));	/* unknown */
	assert_null(mca_config_get(NULL, "listen"));
	assert_string_equal(mca_config_dir(cfg), ".");
	assert_true(mca_config_key_known("intermediate_key"));
	assert_false(mca_config_key_known("Trust_Domain"));
	assert_false(mca_config_key_known(""));
	mca_config_free(cfg);
	mca_config_free(NULL);
	/* Empty and comment-only files are valid and set nothing. */
	assert_int_equal(mca_config_parse("", 0, "empty", &cfg), MCA_OK);
	assert_null(mca_config_get(cfg, "listen"));
	mca_config_free(cfg);
	assert_int_equal(parse_str("# only\n\n#comments\n", &cfg), MCA_OK);
	mca_config_free(cfg);
}

static void
expect_config_error(const char *text, size_t len, enum mca_err want, const char *in_detail)
{
	struct mca_config *cfg = (struct mca_config *)&cfg;	/* must be reset */

	mca_err_clear();
	assert_int_equal(mca_config_parse(text, len, "test.conf", &cfg), want);
	assert_null(cfg);
	if (in_detail != NULL && strstr(mca_err_detail(), in_detail) == NULL)
		fail_msg("detail '%s' lacks '%s'", mca_err_detail(), in_detail);
}

static void
test_config_hostile(void **state)
{
	static const char nul[] = "listen = a\0url = b\n";
	static const char dup[] = "# c\nlisten = a\nlisten = b\n";

	(void)state;
	expect_config_error("bogus = 1\n", strlen("bogus = 1\n"), MCA_ERR_CONFIG, "bogus");
	expect_config_error(dup, strlen(dup), MCA_ERR_CONFIG, "test.conf:3:");
	expect_config_error("listen a\n", strlen("listen a\n"), MCA_ERR_CONFIG, "key = value");
	expect_config_error("listen =\n", strlen("listen =\n"), MCA_ERR_CONFIG, "empty value");
	expect_config_error("listen =   \t \n", strlen("listen =   \t \n"), MCA_ERR_CONFIG, "empty value");
	expect_config_error("= value\n", strlen("= value\n"), MCA_ERR_CONFIG, "unknown key");
	expect_config_error("LISTEN = a\n", strlen("LISTEN = a\n"), MCA_ERR_CONFIG, "LISTEN");
	expect_config_error("list en = a\n", strlen("list en = a\n"), MCA_ERR_CONFIG, "unknown key");
	expect_config_error(nul, sizeof(nul) - 1, MCA_ERR_CONFIG, "NUL");
	expect_config_error("\0", 1, MCA_ERR_CONFIG, "NUL");
}

static void
test_config_size_limit(void **state)
{
	char *text = malloc(MCA_CONFIG_MAX_BYTES + 1);
	struct mca_config *cfg = NULL;

	(void)state;
	assert_non_null(text);
	/* Exactly 64 KiB of comment lines is fine ... */
	memset(text, '#', MCA_CONFIG_MAX_BYTES + 1);
	for (size_t i = 63; i < MCA_CONFIG_MAX_BYTES; i += 64)
		text[i] = '\n';
	assert_int_equal(mca_config_parse(text, MCA_CONFIG_MAX_BYTES, "big", &cfg), MCA_OK);
	mca_config_free(cfg);
	/* ... one byte more is refused before any parsing. */
	expect_config_error(text, MCA_CONFIG_MAX_BYTES + 1, MCA_ERR_TOOBIG, "larger than");
	/* A single huge line within the limit is just a long value. */
	memcpy(text, "url = ", 6);
	memset(text + 6, 'u', MCA_CONFIG_MAX_BYTES - 6);
	assert_int_equal(mca_config_parse(text, MCA_CONFIG_MAX_BYTES, "long", &cfg), MCA_OK);
	assert_int_equal(strlen(mca_config_get(cfg, "url")), MCA_CONFIG_MAX_BYTES - 6);
	mca_config_free(cfg);
	free(text);
}

static void
test_config_duration(void **state)
{
	struct mca_config *cfg = NULL;
	int64_t v = 0;

	(void)state;
	assert_int_equal(parse_str("default_ttl = 1h30m\nmin_ttl = 5x\ntoken_ttl = -5m\n", &cfg),
	    MCA_OK);
	assert_int_equal(mca_config_duration(cfg, "default_ttl", 7, &v), MCA_OK);
	assert_int_equal(v, 5400);
	assert_int_equal(mca_config_duration(cfg, "log_level", 7, &v), MCA_OK);	/* unset */
	assert_int_equal(v, 7);
	mca_err_clear();
	assert_int_equal(mca_config_duration(cfg, "min_ttl", 7, &v), MCA_ERR_CONFIG);
	assert_non_null(strstr(mca_err_detail(), "min_ttl"));
	assert_int_equal(mca_config_duration(cfg, "token_ttl", 7, &v), MCA_ERR_CONFIG);
	mca_config_free(cfg);
}

/* config.c passes mca_err_detail() to mca_err_set(): the detail buffer is
 * both vsnprintf's source and target, and the bad value is lost. */
static void
config_duration_detail_keeps_value(void **state)
{
	struct mca_config *cfg = NULL;
	int64_t v = 0;

	(void)state;
	assert_int_equal(parse_str("min_ttl = 5x\n", &cfg), MCA_OK);
	assert_int_equal(mca_config_duration(cfg, "min_ttl", 7, &v), MCA_ERR_CONFIG);
	assert_non_null(strstr(mca_err_detail(), "'5x'"));
	mca_config_free(cfg);
}

static void
test_config_load(void **state)
{
	const char *dir = *state;
	char path[PATH_MAX], *big;
	struct mca_config *cfg = NULL;

	path_in(path, sizeof(path), dir, MCA_CONFIG_FILE);
	write_file(path, "database = meshca.db\n", 21);
	assert_int_equal(mca_config_load(path, &cfg), MCA_OK);
	assert_string_equal(mca_config_get(cfg, "database"), "meshca.db");
	assert_string_equal(mca_config_dir(cfg), dir);	/* for relative paths */
	mca_config_free(cfg);
	big = malloc(MCA_CONFIG_MAX_BYTES + 1);
	assert_non_null(big);
	memset(big, '\n', MCA_CONFIG_MAX_BYTES + 1);
	write_file(path, big, MCA_CONFIG_MAX_BYTES + 1);
	free(big);
	cfg = NULL;
	assert_int_equal(mca_config_load(path, &cfg), MCA_ERR_TOOBIG);
	assert_null(cfg);
	path_in(path, sizeof(path), dir, "missing.conf");
	assert_int_equal(mca_config_load(path, &cfg), MCA_ERR_NOT_FOUND);
}

/* ---- files -------------------------------------------------------------------- */

static void
test_file_read_limit(void **state)
{
	const char *dir = *state;
	char path[PATH_MAX];
	struct mca_buf b;

	path_in(path, sizeof(path), dir, "ten");
	write_file(path, "0123456789", 10);
	mca_buf_init(&b, 0, false);
	assert_int_equal(mca_file_read(path, 10, &b), MCA_OK);	/* exactly the limit */
	assert_int_equal(b.len, 10);
	assert_string_equal((char *)b.data, "0123456789");	/* NUL-terminated */
	assert_int_equal(mca_file_read(path, 9, &b), MCA_ERR_TOOBIG);
	assert_non_null(strstr(mca_err_detail(), "9 bytes"));
	path_in(path, sizeof(path), dir, "empty");
	write_file(path, "", 0);
	assert_int_equal(mca_file_read(path, 10, &b), MCA_OK);
	assert_int_equal(b.len, 0);
	assert_non_null(b.data);
	assert_int_equal(b.data[0], '\0');
	path_in(path, sizeof(path), dir, "absent");
	assert_int_equal(mca_file_read(path, 10, &b), MCA_ERR_NOT_FOUND);
	assert_int_equal(mca_file_read(dir, 10, &b), MCA_ERR_IO);	/* a directory */
	mca_buf_free(&b);
}

static void
test_file_write_atomic(void **state)
{
	const char *dir = *state;
	char path[PATH_MAX];
	struct mca_buf b;
	struct stat st;
	mode_t old = umask(0);	/* the requested mode must win, not the umask */

	path_in(path, sizeof(path), dir, "key.pem");
	assert_int_equal(mca_file_write_atomic(path, "secret", 6, 0600), MCA_OK);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	/* Replacing a world-readable file also gives the new mode. */
	assert_int_equal(chmod(path, 0644), 0);
	assert_int_equal(mca_file_write_atomic(path, "rotated", 7, 0600), MCA_OK);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(mca_file_write_atomic(path, "public", 6, 0644), MCA_OK);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0644);
	umask(old);
	mca_buf_init(&b, 0, false);
	assert_int_equal(mca_file_read(path, 100, &b), MCA_OK);
	assert_string_equal((char *)b.data, "public");
	mca_buf_free(&b);
	assert_int_equal(dir_entries(dir), 1);		/* no temporary left */
}

static void
test_file_write_atomic_failures(void **state)
{
	const char *dir = *state;
	char path[PATH_MAX];

	path_in(path, sizeof(path), dir, "no/such/dir/file");
	assert_int_equal(mca_file_write_atomic(path, "x", 1, 0600), MCA_ERR_IO);
	/* Renaming over a non-empty directory fails: the temporary must go. */
	path_in(path, sizeof(path), dir, "sub");
	assert_int_equal(mkdir(path, 0700), 0);
	path_in(path, sizeof(path), dir, "sub/keep");
	write_file(path, "k", 1);
	path_in(path, sizeof(path), dir, "sub");
	assert_int_equal(mca_file_write_atomic(path, "x", 1, 0600), MCA_ERR_IO);
	assert_int_equal(dir_entries(dir), 1);
	assert_int_equal(dir_entries(path), 1);
	path_in(path, sizeof(path), dir, "sub/keep");
	assert_int_equal(unlink(path), 0);
}

static void
test_file_create_excl(void **state)
{
	const char *dir = *state;
	char path[PATH_MAX], deep[PATH_MAX];
	struct mca_buf b;
	struct stat st;

	path_in(path, sizeof(path), dir, "root.pem");
	assert_false(mca_file_exists(path));
	assert_int_equal(mca_file_create_excl(path, "one", 3, 0600), MCA_OK);
	assert_true(mca_file_exists(path));
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(mca_file_create_excl(path, "two", 3, 0600), MCA_ERR_EXISTS);
	mca_buf_init(&b, 0, false);
	assert_int_equal(mca_file_read(path, 10, &b), MCA_OK);
	assert_string_equal((char *)b.data, "one");		/* not overwritten */
	mca_buf_free(&b);
	assert_int_equal(unlink(path), 0);
	path_in(deep, sizeof(deep), dir, "a");
	assert_int_equal(mca_mkdir_p(deep, 0700), MCA_OK);
	path_in(deep, sizeof(deep), dir, "a/b/c");
	assert_int_equal(mca_mkdir_p(deep, 0700), MCA_OK);
	assert_int_equal(mca_mkdir_p(deep, 0700), MCA_OK);	/* idempotent */
	assert_int_equal(stat(deep, &st), 0);
	assert_true(S_ISDIR(st.st_mode));
	assert_int_equal(mca_mkdir_p("", 0700), MCA_ERR_INVALID);
	assert_int_equal(rmdir(deep), 0);
	path_in(deep, sizeof(deep), dir, "a/b");
	assert_int_equal(rmdir(deep), 0);
}

static void
test_path_join(void **state)
{
	char out[16], *longname;

	(void)state;
	assert_int_equal(mca_path_join(out, sizeof(out), "/etc", "meshca"), MCA_OK);
	assert_string_equal(out, "/etc/meshca");
	assert_int_equal(mca_path_join(out, sizeof(out), "/etc", "0123456789"), MCA_OK);	/* 15 */
	assert_int_equal(mca_path_join(out, sizeof(out), "/etc", "0123456789a"), MCA_ERR_TOOBIG);
	longname = malloc(PATH_MAX + 1);
	assert_non_null(longname);
	memset(longname, 'n', PATH_MAX);
	longname[PATH_MAX] = '\0';
	assert_int_equal(mca_file_write_atomic(longname, "x", 1, 0600), MCA_ERR_TOOBIG);
	free(longname);
}

/* ---- errors --------------------------------------------------------------------- */

static void
test_err_detail(void **state)
{
	char longarg[2000];

	(void)state;
	mca_err_clear();
	assert_string_equal(mca_err_detail(), "");
	assert_int_equal(mca_err_set(MCA_ERR_NAME, "RFC 1035: label too long: %s", "x"), MCA_ERR_NAME);
	assert_string_equal(mca_err_detail(), "RFC 1035: label too long: x");
	assert_int_equal(mca_err_set(MCA_ERR_TTL, NULL), MCA_ERR_TTL);
	assert_string_equal(mca_err_detail(), mca_strerror(MCA_ERR_TTL));
	/* Hostile length: truncated, terminated. */
	memset(longarg, 'z', sizeof(longarg) - 1);
	longarg[sizeof(longarg) - 1] = '\0';
	(void)mca_err_set(MCA_ERR_PARSE, "%s", longarg);
	assert_true(strlen(mca_err_detail()) > 100);
	assert_true(strlen(mca_err_detail()) < sizeof(longarg) - 1);
	/* A '%' in data passed as an argument stays data. */
	(void)mca_err_set(MCA_ERR_PARSE, "%s", "%s%n%x");
	assert_string_equal(mca_err_detail(), "%s%n%x");
	mca_err_clear();
	assert_string_equal(mca_err_detail(), "");
}

static void *
detail_thread(void *arg)
{
	char *seen = arg;

	snprintf(seen, 64, "%s", mca_err_detail());	/* another thread's */
	(void)mca_err_set(MCA_ERR_IO, "from the thread");
	return NULL;
}

static void
test_err_detail_per_thread(void **state)
{
	char seen[64] = "unset";
	pthread_t t;

	(void)state;
	(void)mca_err_set(MCA_ERR_DB, "main thread detail");
	assert_int_equal(pthread_create(&t, NULL, detail_thread, seen), 0);
	assert_int_equal(pthread_join(t, NULL), 0);
	assert_string_equal(seen, "");
	assert_string_equal(mca_err_detail(), "main thread detail");
}

static void
test_err_names(void **state)
{
	(void)state;
	assert_int_equal(MCA_OK, 0);
	assert_string_equal(mca_errname(MCA_OK), "MCA_OK");
	assert_string_equal(mca_errname(MCA_ERR_WEAK_KEY), "MCA_ERR_WEAK_KEY");
	for (int i = 0; i < MCA_ERR_MAX; i++) {
		assert_non_null(mca_strerror((enum mca_err)i));
		assert_true(strncmp(mca_errname((enum mca_err)i), "MCA_", 4) == 0);
		for (int j = 0; j < i; j++)
			assert_string_not_equal(mca_errname((enum mca_err)i),
			    mca_errname((enum mca_err)j));
	}
	assert_string_equal(mca_strerror(MCA_ERR_MAX), "unknown error");
	assert_string_equal(mca_strerror((enum mca_err)-1), "unknown error");
	assert_string_equal(mca_errname((enum mca_err)9999), "MCA_ERR_UNKNOWN");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_buf_cap),
		cmocka_unit_test(test_buf_zero_value_and_growth),
		cmocka_unit_test(test_buf_secret_wiped),
		cmocka_unit_test(test_buf_helpers),
		cmocka_unit_test(buf_append_size_max_refused),
		cmocka_unit_test(test_duration_parse),
		cmocka_unit_test(test_duration_hostile),
		cmocka_unit_test(test_duration_format),
		cmocka_unit_test(test_time_roundtrip),
		cmocka_unit_test(test_time_hostile),
		cmocka_unit_test(time_parse_canonical_only),
		cmocka_unit_test(test_config_parse_ok),
		cmocka_unit_test(test_config_hostile),
		cmocka_unit_test(test_config_size_limit),
		cmocka_unit_test(test_config_duration),
		cmocka_unit_test(config_duration_detail_keeps_value),
		cmocka_unit_test_setup_teardown(test_config_load, dir_setup, dir_teardown),
		cmocka_unit_test_setup_teardown(test_file_read_limit, dir_setup, dir_teardown),
		cmocka_unit_test_setup_teardown(test_file_write_atomic, dir_setup, dir_teardown),
		cmocka_unit_test_setup_teardown(test_file_write_atomic_failures, dir_setup, dir_teardown),
		cmocka_unit_test_setup_teardown(test_file_create_excl, dir_setup, dir_teardown),
		cmocka_unit_test(test_path_join),
		cmocka_unit_test(test_err_detail),
		cmocka_unit_test(test_err_detail_per_thread),
		cmocka_unit_test(test_err_names),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
