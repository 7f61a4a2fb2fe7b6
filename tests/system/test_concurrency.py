"""A one-time token is one-time under concurrency: 20 simultaneous enrollments
with the same token, each with its own key, CSR and TLS session, give exactly
one certificate."""

import threading

import sysutil
from sysutil import make_csr, make_key

N = 20


def test_one_token_twenty_concurrent_enrollments(ca, api):
    svc = "race"
    api.create_service(svc, dns_names=["race.svc"])
    token = api.mint_token(svc)
    before_all = api.cert_count()
    before = api.cert_count(service=svc)
    assert before == 0

    csrs = [make_csr(make_key("ecdsa-p256")) for _ in range(N)]
    sessions = [api.session() for _ in range(N)]
    # Open every TLS connection first so that the requests themselves race.
    for s in sessions:
        assert s.get(api.url + "/v1/health", timeout=sysutil.HTTP_TIMEOUT).status_code == 200
    barrier = threading.Barrier(N)
    results = [None] * N

    def worker(i):
        barrier.wait()
        try:
            r = sessions[i].post(api.url + "/v1/enroll", json={"token": token, "csr": csrs[i]},
                                 timeout=60)
            results[i] = (r.status_code, r.json() if r.content else None)
        except Exception as e:  # reported below, never swallowed
            results[i] = ("exception", repr(e))

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(N)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=90)
    for s in sessions:
        s.close()
    assert not any(t.is_alive() for t in threads), "enrollment requests hung"

    created = [r for r in results if r[0] == 201]
    refused = [r for r in results if r[0] == 401]
    assert len(created) == 1, f"want exactly one 201, got {len(created)}: {results}"
    assert len(refused) == N - 1, f"want {N - 1} x 401, got {results}"
    for _, body in refused:
        assert body["error"]["code"] == "token_used", body

    certs = api.certificates(service=svc)
    assert len(certs) == 1, f"want one certificate for {svc}, got {certs}"
    assert certs[0]["serial"] == created[0][1]["serial"]
    assert api.cert_count() == before_all + 1
    api.health()
