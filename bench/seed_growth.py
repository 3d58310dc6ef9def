"""Grows a Portcullis SQLite database for the cost-growth benchmark (scripts/bench-growth):
REFRESH live refresh-token families (a grant, its live refresh token and its access-token
record each) and AUDIT audit events spread over the last 100 days (so about a tenth is past
the default 90-day retention and the purge has work while the load runs).

The rows are clones of real ones the running server wrote (one authorization-code flow and its
audit events must be in the database first): every column is copied from such a row except the
keys and times, which are new, so the rows have the shape, the sizes and the index entries the
server's own would have, whatever the schema version.

    python3 bench/seed_growth.py DB REFRESH AUDIT"""
import sqlite3, sys, time

path, refresh, audit = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
now = int(time.time())
db = sqlite3.connect(path, isolation_level=None)
db.execute("PRAGMA journal_mode=WAL")
db.execute("PRAGMA synchronous=OFF")
db.execute("PRAGMA cache_size=-262144")


def columns(table):
    return [r[1] for r in db.execute(f"PRAGMA table_info({table})")]


def clone(table, template_where, count, overrides):
    """INSERT count rows into table, copying the template row's columns but for overrides
    (column -> SQL expression over n, the row number from 1, and the template t)."""
    cols = columns(table)
    exprs = [overrides.get(c, f"t.{c}") for c in cols]
    template = f"(SELECT * FROM {table} WHERE {template_where} LIMIT 1)"
    if db.execute(f"SELECT count(*) FROM {template}").fetchone()[0] == 0:
        sys.exit(f"seed_growth: no template row in {table} ({template_where}): run one flow first")
    done, batch = 0, 200_000
    while done < count:
        n = min(batch, count - done)
        db.execute("BEGIN")
        db.execute(
            f"WITH RECURSIVE c(k) AS (SELECT 1 UNION ALL SELECT k + 1 FROM c WHERE k < {n}) "
            f"INSERT INTO {table} ({', '.join(cols)}) "
            f"SELECT {', '.join(e.replace('{n}', f'(k + {done})') for e in exprs)} FROM c, {template} t")
        db.execute("COMMIT")
        done += n
        print(f"  {table}: {done}/{count}", file=sys.stderr, flush=True)


t0 = time.time()
if refresh:
    # One family per row: a grant, its live refresh token, the access token record.
    clone("grants", "1", refresh, {
        "id": "'growth-g-' || {n}", "subject": "'growth-user-' || ({n} % 10000)",
        "created_at": f"{now} - {{n}} % 2592000", "revoked_at": "NULL"})
    clone("refresh_tokens", "consumed_at IS NULL", refresh, {
        "token_hash": "lower(hex(randomblob(32)))", "grant_id": "'growth-g-' || {n}",
        "subject": "'growth-user-' || ({n} % 10000)", "expires_at": f"{now} + 2592000",
        "consumed_at": "NULL", "created_at": f"{now} - {{n}} % 2592000"})
    clone("access_tokens", "grant_id IS NOT NULL", refresh, {
        "jti": "lower(hex(randomblob(16)))", "grant_id": "'growth-g-' || {n}",
        "expires_at": f"{now} + 3600", "revoked_at": "NULL"})
if audit:
    # Times rise with seq, as the server writes them: the oldest tenth is past retention.
    start, span = now - 8640000, 8640000 - 120
    clone("audit_events", "1", audit, {
        "seq": "NULL", "at": f"{start} + {{n}} * {span} / {audit}",
        "request_id": "lower(hex(randomblob(8)))", "trace_id": "lower(hex(randomblob(16)))"})
    # A server that has run for 100 days has folded its history into the metric counters
    # (at each scrape and purge); only rows written from now on are still to fold.
    db.execute("UPDATE metric_fold SET folded_seq = (SELECT MAX(seq) FROM audit_events) WHERE id = 1")
db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
db.close()
print(f"seed_growth: {refresh} refresh families and {audit} audit events in {time.time() - t0:.0f}s",
      file=sys.stderr)
