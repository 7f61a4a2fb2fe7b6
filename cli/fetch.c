/*
 * Binary fetches for the relying-party commands (`crl show`, `ocsp
 * check`): a DER object by GET, or an OCSP request by POST, over HTTPS
 * verified against our root, or over plain HTTP where RFC 6960 A.1 and
 * RFC 5280 4.2.1.13 put OCSP and CRLs (those objects are signed; the
 * channel adds nothing).  Bounded time and size, no redirects, no proxy.
 */
#include "cli/cli.h"

#include <string.h>
#include <strings.h>

#include <curl/curl.h>

#define FETCH_CONNECT_TIMEOUT	10L
#define FETCH_TOTAL_TIMEOUT	60L

struct fetch_xfer {
	struct mca_buf	*out;
	bool		 toobig;
};

static size_t
on_data(char *p, size_t size, size_t nmemb, void *arg)
{
	struct fetch_xfer *x = arg;
	size_t n = size * nmemb;

	if (mca_buf_append(x->out, p, n) != MCA_OK) {
		x->toobig = true;
		return 0;
	}
	return n;
}

static bool
fetch_setup(CURL *c, const struct cli_fetch *f, struct fetch_xfer *x, char *errbuf)
{
	bool https = strncasecmp(f->url, "https://", 8) == 0;

	if (curl_easy_setopt(c, CURLOPT_URL, f->url) != CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https") != CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L) != CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, FETCH_CONNECT_TIMEOUT) != CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_TIMEOUT, FETCH_TOTAL_TIMEOUT) != CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L) != CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_NOPROXY, "*") != CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_USERAGENT, CLI_PROG "/" MESHCA_VERSION) != CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf) != CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data) != CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_WRITEDATA, x) != CURLE_OK)
		return false;
	if (https && (curl_easy_setopt(c, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2) != CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L) != CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L) != CURLE_OK))
		return false;
	/* Our root alone when we have it; else the system's store. */
	if (https && f->cainfo != NULL && (curl_easy_setopt(c, CURLOPT_CAINFO, f->cainfo) != CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_CAPATH, NULL) != CURLE_OK))
		return false;
	if (f->body != NULL && (curl_easy_setopt(c, CURLOPT_POSTFIELDS, f->body) != CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)f->body_len) != CURLE_OK))
		return false;
	return true;
}

enum mca_err
cli_fetch(const struct cli_fetch *f, long *status, struct mca_buf *out)
{
	struct fetch_xfer x = { out, false };
	struct curl_slist *headers = NULL;
	char errbuf[CURL_ERROR_SIZE] = "", hdr[160];
	CURL *c = NULL;
	CURLcode cc;
	enum mca_err rc = mca_err_set(MCA_ERR_HTTP, "cannot set up the HTTP client");

	*status = 0;
	if (strncasecmp(f->url, "https://", 8) != 0 && strncasecmp(f->url, "http://", 7) != 0)
		return mca_err_set(MCA_ERR_INVALID, "'%.100s' is not an http:// or https:// URL", f->url);
	if (f->content_type != NULL) {
		snprintf(hdr, sizeof(hdr), "Content-Type: %s", f->content_type);
		if ((headers = curl_slist_append(NULL, hdr)) == NULL)
			return MCA_ERR_NOMEM;
	}
	if ((c = curl_easy_init()) == NULL || !fetch_setup(c, f, &x, errbuf) ||
	    (headers != NULL && curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers) != CURLE_OK))
		goto out;
	if ((cc = curl_easy_perform(c)) != CURLE_OK) {
		rc = x.toobig ? mca_err_set(MCA_ERR_TOOBIG, "%s: answer larger than %zu bytes", f->url, out->max) :
		    mca_err_set(MCA_ERR_HTTP, "%s: %s", f->url, errbuf[0] ? errbuf : curl_easy_strerror(cc));
		goto out;
	}
	if (curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, status) != CURLE_OK)
		goto out;
	rc = *status == 200 ? MCA_OK :
	    mca_err_set(MCA_ERR_SERVER, "%s: server answered HTTP %ld", f->url, *status);
out:
	curl_slist_free_all(headers);
	curl_easy_cleanup(c);
	return rc;
}
