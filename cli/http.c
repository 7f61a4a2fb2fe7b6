/*
 * The HTTPS client of meshca (libcurl easy interface).
 *
 * HTTPS only, TLS 1.2 or newer, the server verified against our own root
 * alone (never the system store), redirects not followed, bounded time
 * and a bounded answer.  Only the trust bootstrap (`enroll --fingerprint`)
 * turns verification off, for one GET of the public roots, whose answer
 * it then checks against the pinned fingerprint.
 */
#include "cli/cli.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>

#define CLI_URL_MAX		2048
#define CLI_CONNECT_TIMEOUT	10L
#define CLI_TOTAL_TIMEOUT	60L

struct http_xfer {
	CURL			*curl;
	struct curl_slist	*headers;
	struct mca_buf		 body;		/* answer, capped */
	char			*req;		/* serialized request, wiped */
	size_t			 req_len;
	bool			 toobig;
	char			 errbuf[CURL_ERROR_SIZE];
};

char *
cli_http_escape(const char *s)
{
	char *e, *copy;

	/* Since curl 7.82 the handle may be NULL. */
	if ((e = curl_easy_escape(NULL, s, 0)) == NULL)
		return NULL;
	copy = strdup(e);
	curl_free(e);
	return copy;
}

static size_t
on_data(char *p, size_t size, size_t nmemb, void *arg)
{
	struct http_xfer *x = arg;
	size_t n = size * nmemb;

	if (mca_buf_append(&x->body, p, n) != MCA_OK) {
		x->toobig = true;
		return 0;		/* curl aborts the transfer */
	}
	return n;
}

static enum mca_err
build_url(const char *base, const char *path, char *out, size_t n)
{
	size_t blen;
	int w;

	if (strncasecmp(base, "https://", 8) != 0)
		return mca_err_set(MCA_ERR_INVALID,
		    "'%.100s' is not an https:// URL (meshca talks to meshcad over HTTPS only)", base);
	blen = strlen(base);
	while (blen > 8 && base[blen - 1] == '/')
		blen--;
	if (blen >= n)
		return mca_err_set(MCA_ERR_TOOBIG, "URL too long");
	w = snprintf(out, n, "%.*s%s", (int)blen, base, path);
	if (w < 0 || (size_t)w >= n)
		return mca_err_set(MCA_ERR_TOOBIG, "URL too long");
	return MCA_OK;
}

/* Options that hold for every request. */
static bool
set_common(struct http_xfer *x, const char *url)
{
	CURL *c = x->curl;

	return curl_easy_setopt(c, CURLOPT_URL, url) == CURLE_OK &&
	    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "https") == CURLE_OK &&
	    curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "https") == CURLE_OK &&
	    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L) == CURLE_OK &&
	    curl_easy_setopt(c, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2) == CURLE_OK &&
	    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, CLI_CONNECT_TIMEOUT) == CURLE_OK &&
	    curl_easy_setopt(c, CURLOPT_TIMEOUT, CLI_TOTAL_TIMEOUT) == CURLE_OK &&
	    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L) == CURLE_OK &&
	    curl_easy_setopt(c, CURLOPT_NOPROXY, "*") == CURLE_OK &&
	    curl_easy_setopt(c, CURLOPT_USERAGENT, CLI_PROG "/" MESHCA_VERSION) == CURLE_OK &&
	    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, x->errbuf) == CURLE_OK &&
	    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data) == CURLE_OK &&
	    curl_easy_setopt(c, CURLOPT_WRITEDATA, x) == CURLE_OK;
}

static bool
set_tls(struct http_xfer *x, const struct cli_conn *conn)
{
	CURL *c = x->curl;

	if (conn->insecure) {
		if (curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 0L) != CURLE_OK ||
		    curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 0L) != CURLE_OK)
			return false;
	} else {
		/* Our root only: no CA directory, no system bundle. */
		if (curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L) != CURLE_OK ||
		    curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L) != CURLE_OK ||
		    curl_easy_setopt(c, CURLOPT_CAINFO, conn->cainfo) != CURLE_OK ||
		    curl_easy_setopt(c, CURLOPT_CAPATH, NULL) != CURLE_OK)
			return false;
	}
	if (conn->cert != NULL &&
	    (curl_easy_setopt(c, CURLOPT_SSLCERT, conn->cert) != CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_SSLCERTTYPE, "PEM") != CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_SSLKEY, conn->key) != CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_SSLKEYTYPE, "PEM") != CURLE_OK))
		return false;
	return true;
}

static bool
set_method(struct http_xfer *x, const char *method, const json_t *req)
{
	CURL *c = x->curl;

	if (req != NULL) {
		/* The body may carry a token: it is wiped once sent. */
		if ((x->req = json_dumps(req, JSON_COMPACT)) == NULL)
			return false;
		x->req_len = strlen(x->req);
		if ((x->headers = curl_slist_append(NULL, "Content-Type: application/json")) == NULL)
			return false;
		if (curl_easy_setopt(c, CURLOPT_POSTFIELDS, x->req) != CURLE_OK ||
		    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)x->req_len) != CURLE_OK)
			return false;
	}
	if (x->headers == NULL && (x->headers = curl_slist_append(NULL, "Accept: application/json")) == NULL)
		return false;
	if (curl_easy_setopt(c, CURLOPT_HTTPHEADER, x->headers) != CURLE_OK)
		return false;
	if (strcmp(method, "GET") == 0)
		return curl_easy_setopt(c, CURLOPT_HTTPGET, 1L) == CURLE_OK;
	if (strcmp(method, "POST") == 0)
		return req != NULL || (curl_easy_setopt(c, CURLOPT_POSTFIELDS, "") == CURLE_OK &&
		    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, 0L) == CURLE_OK);
	return curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method) == CURLE_OK;
}

static void
xfer_clear(struct http_xfer *x)
{
	if (x->req != NULL) {
		mca_wipe(x->req, x->req_len);
		free(x->req);
	}
	curl_slist_free_all(x->headers);
	curl_easy_cleanup(x->curl);
	mca_buf_free(&x->body);
}

static enum mca_err
transport_error(const struct http_xfer *x, CURLcode cc, const char *url)
{
	if (x->toobig)
		return mca_err_set(MCA_ERR_TOOBIG, "%s: answer larger than %d bytes", url,
		    CLI_HTTP_MAX_BODY);
	return mca_err_set(MCA_ERR_HTTP, "%s: %s", url,
	    x->errbuf[0] != '\0' ? x->errbuf : curl_easy_strerror(cc));
}

enum mca_err
cli_http_call(const struct cli_conn *conn, const char *method, const char *path,
    const json_t *req, long *status, json_t **resp)
{
	struct http_xfer x;
	char url[CLI_URL_MAX];
	enum mca_err rc;
	CURLcode cc;

	mca_err_clear();
	memset(&x, 0, sizeof(x));
	mca_buf_init(&x.body, CLI_HTTP_MAX_BODY, true);
	*resp = NULL;
	*status = 0;
	if ((rc = build_url(conn->url, path, url, sizeof(url))) != MCA_OK)
		goto out;
	rc = mca_err_set(MCA_ERR_HTTP, "cannot set up the HTTP client");
	if ((x.curl = curl_easy_init()) == NULL || !set_common(&x, url) ||
	    !set_tls(&x, conn) || !set_method(&x, method, req))
		goto out;
	if ((cc = curl_easy_perform(x.curl)) != CURLE_OK) {
		rc = transport_error(&x, cc, url);
		goto out;
	}
	if (curl_easy_getinfo(x.curl, CURLINFO_RESPONSE_CODE, status) != CURLE_OK)
		goto out;
	rc = cli_answer_parse(x.body.data, x.body.len, *status, url, resp);
out:
	xfer_clear(&x);
	return rc;
}
