//! Conformance of the [`SqlStore`](portcullis_core::store::SqlStore) contract itself, below
//! the repo queries: values round trip, unique violations are conflicts, a batch is all or
//! nothing, `RETURNING` rows and changed-row counts, the raw conditional-update race (C1 at
//! the storage layer), and one reading of REAL and BLOB columns on every backend
//! ([`Value::from_real`], [`Value::from_blob`]). Each case works in scratch tables of its
//! own (the schema has no REAL or BLOB column) and drops them when it passes.

use portcullis_core::store::{Dialect, Row, StoreError, Value};

use super::{assert_exactly_one_winner, race, uid, Store, RACERS};

/// A table name no other case (or run) uses.
fn scratch(tag: &str) -> String {
    format!("scratch_{}", uid(tag).replace('-', "_")).to_ascii_lowercase()
}

async fn drop_table(store: &Store, table: &str) {
    store
        .execute(&format!("DROP TABLE {table}"), &[])
        .await
        .expect("drop the scratch table");
}

/// The largest integer every backend binds and reads exactly (D1 numbers are doubles).
const MAX_EXACT: i64 = (1 << 53) - 1;

/// Text (empty and non-ASCII included), integers (up to +/-(2^53 - 1)) and NULL survive a
/// write and a read, and so do aggregates over them.
pub async fn values_roundtrip(store: Store) {
    let t = scratch("values");
    store
        .execute(
            &format!("CREATE TABLE {t} (id TEXT PRIMARY KEY, n BIGINT, s TEXT)"),
            &[],
        )
        .await
        .expect("create a scratch table");
    let rows = [
        ("a", Value::Int(7), Value::Null),
        ("b", Value::Null, Value::from("x")),
        ("c", Value::Int(MAX_EXACT), Value::from("")),
        ("d", Value::Int(-MAX_EXACT), Value::from("ü€ 😀 \"'?")),
    ];
    let params: Vec<Value> = rows
        .iter()
        .flat_map(|(id, n, s)| [Value::from(*id), n.clone(), s.clone()])
        .collect();
    let n = store
        .execute(
            &format!(
                "INSERT INTO {t} (id, n, s) VALUES (?, ?, ?), (?, ?, ?), (?, ?, ?), (?, ?, ?)"
            ),
            &params,
        )
        .await
        .unwrap();
    assert_eq!(n, 4, "execute reports the rows it inserted");
    let read = store
        .query(&format!("SELECT id, n, s FROM {t} ORDER BY id"), &[])
        .await
        .unwrap();
    let expected: Vec<Row> = rows
        .iter()
        .map(|(id, n, s)| Row(vec![Value::from(*id), n.clone(), s.clone()]))
        .collect();
    assert_eq!(read, expected);
    let agg = store
        .query(
            &format!("SELECT COUNT(*), COUNT(s), MAX(n), MIN(n) FROM {t}"),
            &[],
        )
        .await
        .unwrap();
    assert_eq!(
        agg,
        vec![Row(vec![
            Value::Int(4),
            Value::Int(3),
            Value::Int(MAX_EXACT),
            Value::Int(-MAX_EXACT),
        ])]
    );
    let max_text = store
        .query(
            &format!("SELECT MAX(s) FROM {t} WHERE id IN (?, ?)"),
            &["a".into(), "b".into()],
        )
        .await
        .unwrap();
    assert_eq!(max_text, vec![Row(vec!["x".into()])]);
    let none = store
        .query(
            &format!("SELECT MAX(n) FROM {t} WHERE id = ?"),
            &["zzz".into()],
        )
        .await
        .unwrap();
    assert_eq!(
        none,
        vec![Row(vec![Value::Null])],
        "MAX over no rows is NULL"
    );
    let matched = store
        .query(
            &format!("SELECT id FROM {t} WHERE s = ? AND n IS NULL"),
            &["x".into()],
        )
        .await
        .unwrap();
    assert_eq!(
        matched,
        vec![Row(vec!["b".into()])],
        "parameters bind as text"
    );
    drop_table(&store, &t).await;
}

/// Primary-key and unique violations are conflicts; a broken statement is "unavailable"; a
/// batch with a conflict changes nothing, a good batch everything.
pub async fn conflicts_and_atomic_batches(store: Store) {
    let t = scratch("conflicts");
    store
        .execute(
            &format!("CREATE TABLE {t} (k TEXT PRIMARY KEY, v TEXT UNIQUE)"),
            &[],
        )
        .await
        .expect("create a scratch table");
    let insert = format!("INSERT INTO {t} (k, v) VALUES (?, ?)");
    store
        .execute(&insert, &["a".into(), "x".into()])
        .await
        .unwrap();
    for (k, v) in [("a", "y"), ("b", "x")] {
        let err = store
            .execute(&insert, &[k.into(), v.into()])
            .await
            .unwrap_err();
        assert!(
            matches!(err, StoreError::Conflict(_)),
            "({k}, {v}): {err:?}"
        );
    }
    let missing = format!("SELECT * FROM {t}_missing");
    let err = store.query(&missing, &[]).await.unwrap_err();
    assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
    let err = store.execute(&missing, &[]).await.unwrap_err();
    assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
    let one = format!("INSERT INTO {t} (k) VALUES (?)");
    let failing = vec![
        (one.clone(), vec!["c".into()]),
        (one.clone(), vec!["c".into()]),
    ];
    let err = store.batch(&failing).await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    let count = format!("SELECT COUNT(*) FROM {t}");
    let rows = store.query(&count, &[]).await.unwrap();
    assert_eq!(rows[0].int(0).unwrap(), 1, "a failed batch leaves nothing");
    let ok = vec![
        (one.clone(), vec!["c".into()]),
        (one, vec!["d".into()]),
        // Changes nothing: "zz" does not exist. Its count is 0.
        (
            format!("UPDATE {t} SET k = ? WHERE k = ?"),
            vec!["y".into(), "zz".into()],
        ),
        (format!("UPDATE {t} SET k = k"), vec![]),
    ];
    let changed = store.batch(&ok).await.unwrap();
    assert_eq!(changed, vec![1, 1, 0, 3], "rows changed by each statement");
    let rows = store.query(&count, &[]).await.unwrap();
    assert_eq!(
        rows[0].int(0).unwrap(),
        3,
        "a good batch commits every statement"
    );
    drop_table(&store, &t).await;
}

/// `query` of a writing statement with `RETURNING` returns the rows it changed (and only
/// those), `execute` counts changed rows, with or without `RETURNING`.
pub async fn returning_rows_and_changed_counts(store: Store) {
    let t = scratch("returning");
    store
        .execute(
            &format!("CREATE TABLE {t} (k TEXT PRIMARY KEY, used BIGINT)"),
            &[],
        )
        .await
        .expect("create a scratch table");
    let n = store
        .execute(
            &format!("INSERT INTO {t} (k) VALUES (?), (?), (?)"),
            &["a".into(), "b".into(), "c".into()],
        )
        .await
        .unwrap();
    assert_eq!(n, 3);
    let claim = format!("UPDATE {t} SET used = 1 WHERE k = ? AND used IS NULL RETURNING k");
    let won = store.query(&claim, &["a".into()]).await.unwrap();
    assert_eq!(won, vec![Row(vec!["a".into()])]);
    let again = store.query(&claim, &["a".into()]).await.unwrap();
    assert_eq!(
        again,
        Vec::<Row>::new(),
        "a claimed row is not claimed twice"
    );
    let seen = store
        .query(&format!("SELECT used FROM {t} WHERE k = ?"), &["a".into()])
        .await
        .unwrap();
    assert_eq!(seen, vec![Row(vec![Value::Int(1)])], "the claim is visible");
    let n = store
        .execute(
            &format!("UPDATE {t} SET used = 2 WHERE used IS NULL RETURNING k"),
            &[],
        )
        .await
        .unwrap();
    assert_eq!(
        n, 2,
        "execute of a RETURNING statement counts the changed rows"
    );
    let n = store
        .execute(
            &format!("UPDATE {t} SET used = 3 WHERE k = ?"),
            &["zzz".into()],
        )
        .await
        .unwrap();
    assert_eq!(n, 0);
    let n = store
        .execute(&format!("DELETE FROM {t} WHERE used = ?"), &[Value::Int(2)])
        .await
        .unwrap();
    assert_eq!(n, 2);
    let gone = store
        .query(&format!("DELETE FROM {t} RETURNING k, used"), &[])
        .await
        .unwrap();
    assert_eq!(gone, vec![Row(vec!["a".into(), Value::Int(1)])]);
    drop_table(&store, &t).await;
}

/// C1 at the storage layer: 32 racing conditional updates of one row, one winner, no
/// storage error ("database is locked") for the losers, the row used once.
pub async fn c1_conditional_update_one_winner(store: Store) {
    let t = scratch("race");
    store
        .execute(
            &format!("CREATE TABLE {t} (h TEXT PRIMARY KEY, used_at BIGINT)"),
            &[],
        )
        .await
        .expect("create a scratch table");
    store
        .execute(&format!("INSERT INTO {t} (h) VALUES (?)"), &["code".into()])
        .await
        .unwrap();
    let claim = format!("UPDATE {t} SET used_at = ? WHERE h = ? AND used_at IS NULL RETURNING h");
    let results = race(RACERS, |i| {
        let store = store.clone();
        let claim = claim.clone();
        async move {
            let rows = store
                .query(&claim, &[Value::Int(i as i64), "code".into()])
                .await?;
            Ok(rows.len() == 1)
        }
    })
    .await;
    assert_exactly_one_winner("conditional update", &results);
    let used = store
        .query(
            &format!("SELECT COUNT(*) FROM {t} WHERE used_at IS NOT NULL"),
            &[],
        )
        .await
        .unwrap();
    assert_eq!(used[0].int(0).unwrap(), 1);
    drop_table(&store, &t).await;
}

/// REAL and BLOB columns read the same on every backend: a whole REAL is an integer, a
/// fraction its decimal text, a REAL no backend reads exactly is corrupt, and so is a BLOB
/// (the server never writes one), while NULL in either column stays NULL and a BLOB's
/// length is an ordinary integer.
pub async fn real_and_blob_columns_read_alike(store: Store) {
    let t = scratch("real_blob");
    let (real, blob, bytes) = match store.dialect() {
        Dialect::Sqlite => ("REAL", "BLOB", "X'00FF'"),
        Dialect::Postgres => ("DOUBLE PRECISION", "BYTEA", "decode('00ff', 'hex')"),
    };
    store
        .execute(
            &format!("CREATE TABLE {t} (id TEXT PRIMARY KEY, r {real}, b {blob})"),
            &[],
        )
        .await
        .expect("create a scratch table");
    store
        .execute(
            &format!(
                "INSERT INTO {t} (id, r, b) VALUES ('whole', 2.0, {bytes}), \
                 ('fraction', -1.25, NULL), ('huge', 1e300, NULL)"
            ),
            &[],
        )
        .await
        .expect("insert REAL and BLOB values");
    store
        .execute(
            &format!("INSERT INTO {t} (id, r) VALUES (?, ?)"),
            &["bound".into(), Value::Int(3)],
        )
        .await
        .expect("an integer parameter into a REAL column");
    let read = |sql: String, id: &'static str| {
        let store = store.clone();
        async move {
            store
                .query(&sql, &[id.into()])
                .await
                .map(|rows| rows.into_iter().map(|Row(r)| r).collect::<Vec<_>>())
        }
    };
    let r = format!("SELECT r FROM {t} WHERE id = ?");
    assert_eq!(
        read(r.clone(), "whole").await,
        Ok(vec![vec![Value::Int(2)]])
    );
    assert_eq!(
        read(r.clone(), "bound").await,
        Ok(vec![vec![Value::Int(3)]])
    );
    assert_eq!(
        read(r.clone(), "fraction").await,
        Ok(vec![vec![Value::from("-1.25")]])
    );
    let half = format!("SELECT r / 4 FROM {t} WHERE id = ?");
    assert_eq!(
        read(half, "whole").await,
        Ok(vec![vec![Value::from("0.5")]])
    );
    let huge = read(r, "huge").await;
    assert!(matches!(huge, Err(StoreError::Corrupt(_))), "{huge:?}");
    let b = format!("SELECT b FROM {t} WHERE id = ?");
    let bytes = read(b.clone(), "whole").await;
    assert!(matches!(bytes, Err(StoreError::Corrupt(_))), "{bytes:?}");
    assert_eq!(read(b, "fraction").await, Ok(vec![vec![Value::Null]]));
    let len = format!("SELECT length(b) FROM {t} WHERE id = ?");
    assert_eq!(read(len, "whole").await, Ok(vec![vec![Value::Int(2)]]));
    drop_table(&store, &t).await;
}
