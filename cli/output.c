/*
 * What meshca prints: diagnostics on stderr, results on stdout as text
 * for people (aligned fields, tables) or as JSON for programs.
 */
#include "cli/cli.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "ca/common/timefmt.h"

/* A server's message is not ours: no terminal escapes from it. */
static void
sanitize(char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			*s = '?';
}

int
cli_fail(const char *what, enum mca_err rc)
{
	char detail[512];

	snprintf(detail, sizeof(detail), "%s", mca_err_detail());
	sanitize(detail);

	if (rc == MCA_ERR_SERVER && *detail != '\0')
		fprintf(stderr, "%s: %s\n", CLI_PROG, detail);
	else if (*detail != '\0')
		fprintf(stderr, "%s: %s: %s\n", CLI_PROG, what, detail);
	else
		fprintf(stderr, "%s: %s: %s\n", CLI_PROG, what, mca_strerror(rc));
	mca_err_clear();
	return CLI_EXIT_FAIL;
}

int
cli_usage_error(const char *cmd, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", CLI_PROG);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	if (cmd != NULL)
		fprintf(stderr, "\nTry '%s %s --help'.\n", CLI_PROG, cmd);
	else
		fprintf(stderr, "\nTry '%s --help'.\n", CLI_PROG);
	return CLI_EXIT_USAGE;
}

void
cli_warn(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", CLI_PROG);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

enum mca_err
cli_print_json(const json_t *v)
{
	if (json_dumpf(v, stdout, JSON_INDENT(2)) != 0 || fputc('\n', stdout) == EOF)
		return mca_err_set(MCA_ERR_IO, "cannot write to standard output");
	return MCA_OK;
}

static char *
array_text(const json_t *v)
{
	struct mca_buf b = { 0 };
	const json_t *e;
	size_t i;
	char *s;

	if (json_array_size(v) == 0)
		return strdup("-");
	json_array_foreach(v, i, e) {
		if ((s = cli_value_text(e, false)) == NULL ||
		    (i > 0 && mca_buf_append_str(&b, ", ") != MCA_OK) ||
		    mca_buf_append_str(&b, s) != MCA_OK) {
			free(s);
			mca_buf_free(&b);
			return NULL;
		}
		free(s);
	}
	/* The buffer's terminated data becomes the caller's string. */
	return (char *)b.data;
}

char *
cli_value_text(const json_t *v, bool duration)
{
	char buf[MCA_TIME_LEN];

	switch (json_typeof(v)) {
	case JSON_STRING:
		return strndup(json_string_value(v), json_string_length(v));
	case JSON_INTEGER:
		if (duration)
			mca_duration_format((int64_t)json_integer_value(v), buf);
		else
			snprintf(buf, sizeof(buf), "%" JSON_INTEGER_FORMAT, json_integer_value(v));
		return strdup(buf);
	case JSON_REAL:
		snprintf(buf, sizeof(buf), "%g", json_real_value(v));
		return strdup(buf);
	case JSON_TRUE:
		return strdup("true");
	case JSON_FALSE:
		return strdup("false");
	case JSON_ARRAY:
		return array_text(v);
	case JSON_OBJECT:
		return strdup("{...}");
	case JSON_NULL:
		break;
	}
	return strdup("-");
}

static bool
is_duration_key(const char *key)
{
	size_t n = strlen(key);

	return n >= 4 && strcmp(key + n - 4, "_ttl") == 0;
}

enum mca_err
cli_print_fields(const json_t *obj, const char *const keys[])
{
	size_t width = 0;
	const json_t *v;
	char *s;

	for (size_t i = 0; keys[i] != NULL; i++)
		if (strlen(keys[i]) > width)
			width = strlen(keys[i]);
	for (size_t i = 0; keys[i] != NULL; i++) {
		if ((v = json_object_get(obj, keys[i])) == NULL)
			continue;
		if ((s = cli_value_text(v, is_duration_key(keys[i]))) == NULL)
			return MCA_ERR_NOMEM;
		printf("%s:%*s %s\n", keys[i], (int)(width - strlen(keys[i])), "", s);
		free(s);
	}
	return MCA_OK;
}

/* ---- tables --------------------------------------------------------- */

#define CLI_TABLE_MAX_ROWS	100000

struct cli_table {
	size_t	  ncols;
	size_t	  nrows;		/* header included */
	size_t	  cap;
	char	**cells;		/* nrows * ncols */
};

void
cli_table_free(struct cli_table *t)
{
	if (t == NULL)
		return;
	for (size_t i = 0; i < t->nrows * t->ncols; i++)
		free(t->cells[i]);
	free(t->cells);
	free(t);
}

enum mca_err
cli_table_add(struct cli_table *t, const char *const cells[])
{
	char **p;

	if (t->nrows >= CLI_TABLE_MAX_ROWS)
		return mca_err_set(MCA_ERR_TOOBIG, "more than %d rows", CLI_TABLE_MAX_ROWS);
	if (t->nrows == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 16;

		if ((p = reallocarray(t->cells, cap * t->ncols, sizeof(*p))) == NULL)
			return MCA_ERR_NOMEM;
		t->cells = p;
		t->cap = cap;
	}
	p = t->cells + t->nrows * t->ncols;
	for (size_t i = 0; i < t->ncols; i++) {
		if ((p[i] = strdup(cells[i] != NULL ? cells[i] : "-")) == NULL) {
			while (i > 0)
				free(p[--i]);
			return MCA_ERR_NOMEM;
		}
	}
	t->nrows++;
	return MCA_OK;
}

struct cli_table *
cli_table_new(size_t ncols, const char *const headers[])
{
	struct cli_table *t;

	if (ncols == 0 || (t = calloc(1, sizeof(*t))) == NULL)
		return NULL;
	t->ncols = ncols;
	if (cli_table_add(t, headers) != MCA_OK) {
		cli_table_free(t);
		return NULL;
	}
	return t;
}

void
cli_table_print(const struct cli_table *t, FILE *fp)
{
	size_t width[32] = { 0 };
	size_t ncols = t->ncols < 32 ? t->ncols : 32;

	for (size_t r = 0; r < t->nrows; r++)
		for (size_t c = 0; c < ncols; c++) {
			size_t n = strlen(t->cells[r * t->ncols + c]);

			if (n > width[c])
				width[c] = n;
		}
	for (size_t r = 0; r < t->nrows; r++) {
		for (size_t c = 0; c < ncols; c++) {
			const char *s = t->cells[r * t->ncols + c];

			if (c + 1 == ncols)
				fprintf(fp, "%s\n", s);
			else
				fprintf(fp, "%-*s  ", (int)width[c], s);
		}
	}
}

static enum mca_err
list_row(struct cli_table *t, const json_t *obj, size_t ncols, const char *const keys[])
{
	char *cells[16] = { 0 };
	enum mca_err rc = MCA_ERR_NOMEM;
	size_t i;

	if (ncols > 16)
		return MCA_ERR_INVALID;
	for (i = 0; i < ncols; i++) {
		const json_t *v = json_object_get(obj, keys[i]);

		if (v != NULL && (cells[i] = cli_value_text(v, strstr(keys[i], "_ttl") != NULL)) == NULL)
			goto out;
	}
	rc = cli_table_add(t, (const char *const *)cells);
out:
	for (i = 0; i < ncols; i++)
		free(cells[i]);
	return rc;
}

int
cli_print_list(const struct cli_ctx *ctx, const json_t *resp, const char *what,
    const char *array_key, size_t ncols, const char *const headers[], const char *const keys[])
{
	const json_t *list = json_object_get(resp, array_key), *obj;
	struct cli_table *t;
	enum mca_err rc = MCA_OK;
	size_t i;

	if (ctx->json)
		return cli_print_json(resp) == MCA_OK ? CLI_EXIT_OK : cli_fail("output", MCA_ERR_IO);
	if (!json_is_array(list))
		return cli_fail(what, mca_err_set(MCA_ERR_PARSE, "answer has no '%s' array", array_key));
	if ((t = cli_table_new(ncols, headers)) == NULL)
		return cli_fail(what, MCA_ERR_NOMEM);
	json_array_foreach(list, i, obj)
		if (rc == MCA_OK)
			rc = list_row(t, obj, ncols, keys);
	if (rc == MCA_OK)
		cli_table_print(t, stdout);
	cli_table_free(t);
	return rc == MCA_OK ? CLI_EXIT_OK : cli_fail(what, rc);
}
