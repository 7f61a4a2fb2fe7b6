/*
 * TLS session resumption.  libmicrohttpd 0.9.75 creates each connection's
 * GnuTLS session but neither enables session tickets nor installs a
 * session cache, and has no option for either (measured: gnutls-cli
 * --resume got a full handshake each time).  Its connection-start
 * notification comes after gnutls_init and before the first handshake
 * byte, so tickets are enabled there (RFC 8446 4.6.1; RFC 5077 for TLS
 * 1.2) with one master key per process: GnuTLS derives the ticket
 * encryption keys from it and rotates them itself.  A restart forgets
 * the key, which only costs clients one full handshake.
 *
 * A resumed session carries the client's certificate chain from the
 * original handshake (gnutls_certificate_get_peers), so authentication
 * (auth.c) works unchanged, including the per-request record check.
 */
#include "api/api.h"


static gnutls_datum_t ticket_key = { NULL, 0 };

enum mca_err
api_resume_init(void)
{
	if (ticket_key.data != NULL)
		return MCA_OK;
	if (gnutls_session_ticket_key_generate(&ticket_key) < 0)
		return mca_err_set(MCA_ERR_CRYPTO, "cannot generate the TLS session ticket key");
	return MCA_OK;
}

void
api_resume_free(void)
{
	if (ticket_key.data == NULL)
		return;
	gnutls_memset(ticket_key.data, 0, ticket_key.size);
	gnutls_free(ticket_key.data);
	ticket_key.data = NULL;
	ticket_key.size = 0;
}

void
api_resume_enable(struct MHD_Connection *conn)
{
	const union MHD_ConnectionInfo *ci;

	if (ticket_key.data == NULL)
		return;
	ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_GNUTLS_SESSION);
	/* On failure the connection simply does full handshakes. */
	if (ci != NULL && ci->tls_session != NULL)
		(void)gnutls_session_ticket_enable_server(ci->tls_session, &ticket_key);
}
