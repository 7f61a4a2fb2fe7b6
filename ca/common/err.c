#include "ca/common/err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static _Thread_local char detail[512];

const char *
mca_strerror(enum mca_err e)
{
	switch (e) {
#define MCA_ERR_MSG(name, msg) case name: return msg;
	MCA_ERRORS(MCA_ERR_MSG)
#undef MCA_ERR_MSG
	case MCA_ERR_MAX:
		break;
	}
	return "unknown error";
}

const char *
mca_errname(enum mca_err e)
{
	switch (e) {
#define MCA_ERR_NAME_CASE(name, msg) case name: return #name;
	MCA_ERRORS(MCA_ERR_NAME_CASE)
#undef MCA_ERR_NAME_CASE
	case MCA_ERR_MAX:
		break;
	}
	return "MCA_ERR_UNKNOWN";
}

enum mca_err
mca_err_set(enum mca_err e, const char *fmt, ...)
{
	char next[sizeof(detail)];
	va_list ap;

	if (fmt == NULL) {
		snprintf(detail, sizeof(detail), "%s", mca_strerror(e));
		return e;
	}
	/* Format aside first: callers may wrap the previous detail, as in
	 * mca_err_set(rc, "field: %s", mca_err_detail()). */
	va_start(ap, fmt);
	vsnprintf(next, sizeof(next), fmt, ap);
	va_end(ap);
	memcpy(detail, next, sizeof(detail));
	return e;
}

const char *
mca_err_detail(void)
{
	return detail;
}

void
mca_err_clear(void)
{
	detail[0] = '\0';
}
