#!/usr/bin/env bash
# Fills a meshca test database with N synthetic certificate records, for
# the scale figures in tests/bench/README.md (never for a real CA):
#
#   tests/bench/bulkload.sh DB_FILE N [SERVICES]
#
# DB_FILE is a database meshcad has created (schema current), with
# meshcad stopped.  Rows spread over the SERVICES first services (default
# all), created_at over the past 30 days in order, 24 h lifetimes (so
# most are expired, as in a real mesh), 1 % revoked, a 600-byte random
# DER, serials "b" + 31 hex digits (never a meshcad serial's shape
# collision in practice).  No audit entries: the audit chain is left as
# it was.  The loader itself runs with synchronous=OFF (a throw-away
# file); meshcad opens it afterwards with its usual synchronous=FULL.
set -euo pipefail

db=${1:?usage: bulkload.sh DB_FILE N [SERVICES]}
n=${2:?usage: bulkload.sh DB_FILE N [SERVICES]}
nsvc=${3:-0}
now=$(date +%s)
batch=1000000

# sqlite3 would create a missing file, and an empty one has no tables.
[ -s "$db" ] || { echo "bulkload: $db: no such database (start meshcad on it once first)" >&2; exit 2; }
services=$(sqlite3 "$db" "SELECT count(*) FROM services" 2>/dev/null) ||
	{ echo "bulkload: $db is not a meshca database (no services table)" >&2; exit 2; }
[ "$services" -gt 0 ] || { echo "bulkload: $db has no service: add some first" >&2; exit 2; }
[ "$nsvc" -gt 0 ] && [ "$nsvc" -lt "$services" ] && services=$nsvc
start=$(sqlite3 "$db" "SELECT count(*) FROM certificates")
for ((done = 0; done < n; done += batch)); do
	k=$(( n - done < batch ? n - done : batch ))
	sqlite3 "$db" <<EOF
PRAGMA synchronous = OFF;
PRAGMA cache_size = -262144;
BEGIN;
WITH RECURSIVE seq(i) AS (SELECT $((start + done + 1)) UNION ALL SELECT i + 1 FROM seq
    WHERE i < $((start + done + k))),
  svc(rn, id, spiffe_id) AS (SELECT row_number() OVER (ORDER BY id) - 1, id, spiffe_id FROM services)
INSERT INTO certificates (serial, service_id, kind, spiffe_id, dns_names, ip_addresses,
    not_before, not_after, der, status, revoked_at, revocation_reason, created_at)
SELECT printf('b%031x', i), svc.id, 'workload', svc.spiffe_id, '', '',
    c - 60, c + 86400, randomblob(600),
    CASE WHEN i % 100 = 0 THEN 'revoked' ELSE 'active' END,
    CASE WHEN i % 100 = 0 THEN c + 3600 END,
    CASE WHEN i % 100 = 0 THEN 1 END,
    c
FROM (SELECT i, $now - 30 * 86400 + (i * (30 * 86400)) / $((start + n + 1)) AS c FROM seq) AS t
JOIN svc ON svc.rn = t.i % $services;
COMMIT;
EOF
	echo "bulkload: $((done + k)) of $n rows" >&2
done
sqlite3 "$db" "PRAGMA wal_checkpoint(TRUNCATE);" >/dev/null
