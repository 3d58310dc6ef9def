//! What the operator says about one client, whatever its kind (static, RFC 7591 dynamic, or a
//! client ID metadata document URL): whether it may use the `client_credentials` grant, its
//! rate limit and daily token quota, and whether it is suspended. A client without a row has
//! the defaults ([`ClientPolicy::default`]).

use crate::store::{SqlStore, StoreError};

/// A client's policy.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientPolicy {
    /// The client id.
    pub client_id: String,
    /// The operator allows the `client_credentials` grant (static clients need not say so).
    pub client_credentials: bool,
    /// Token requests per minute (`None`: the server default).
    pub rate_limit_per_minute: Option<i64>,
    /// Access tokens per UTC day (`None`: the server default).
    pub daily_token_quota: Option<i64>,
    /// When the client was suspended (`None`: active).
    pub suspended_at: Option<i64>,
    /// Last change.
    pub updated_at: i64,
}

const COLS: &str =
    "client_id, client_credentials, rate_limit_per_minute, daily_token_quota, suspended_at, updated_at";

fn from_row(r: &crate::store::Row) -> Result<ClientPolicy, StoreError> {
    Ok(ClientPolicy {
        client_id: r.text(0)?,
        client_credentials: r.int(1)? != 0,
        rate_limit_per_minute: r.opt_int(2)?,
        daily_token_quota: r.opt_int(3)?,
        suspended_at: r.opt_int(4)?,
        updated_at: r.int(5)?,
    })
}

/// The policy of `client_id`, if the operator set one.
pub async fn get(db: &dyn SqlStore, client_id: &str) -> Result<Option<ClientPolicy>, StoreError> {
    let rows = db
        .query(
            &format!("SELECT {COLS} FROM client_policies WHERE client_id = ?"),
            &[client_id.into()],
        )
        .await?;
    rows.first().map(from_row).transpose()
}

/// Creates or replaces a policy's grant and limits (the suspension is left as it is).
pub async fn put(db: &dyn SqlStore, p: &ClientPolicy) -> Result<(), StoreError> {
    db.execute(
        "INSERT INTO client_policies (client_id, client_credentials, rate_limit_per_minute, daily_token_quota, suspended_at, updated_at) \
         VALUES (?, ?, ?, ?, NULL, ?) ON CONFLICT (client_id) DO UPDATE SET \
         client_credentials = excluded.client_credentials, rate_limit_per_minute = excluded.rate_limit_per_minute, \
         daily_token_quota = excluded.daily_token_quota, updated_at = excluded.updated_at",
        &[
            p.client_id.as_str().into(),
            i64::from(p.client_credentials).into(),
            p.rate_limit_per_minute.into(),
            p.daily_token_quota.into(),
            p.updated_at.into(),
        ],
    )
    .await
    .map(|_| ())
}

/// Suspends (`Some(at)`) or resumes (`None`) a client, creating its policy row if needed.
pub async fn set_suspended(
    db: &dyn SqlStore,
    client_id: &str,
    suspended_at: Option<i64>,
    now: i64,
) -> Result<(), StoreError> {
    db.execute(
        "INSERT INTO client_policies (client_id, client_credentials, suspended_at, updated_at) VALUES (?, 0, ?, ?) \
         ON CONFLICT (client_id) DO UPDATE SET suspended_at = excluded.suspended_at, updated_at = excluded.updated_at",
        &[client_id.into(), suspended_at.into(), now.into()],
    )
    .await
    .map(|_| ())
}

/// Removes a client's policy (with the client itself).
pub async fn delete(db: &dyn SqlStore, client_id: &str) -> Result<(), StoreError> {
    db.execute(
        "DELETE FROM client_policies WHERE client_id = ?",
        &[client_id.into()],
    )
    .await
    .map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::test_store::TestSql;

    #[test]
    fn put_keeps_suspension_and_suspension_keeps_limits() {
        futures::executor::block_on(async {
            let db = TestSql::memory();
            crate::store::migrations::migrate(&db, 0).await.unwrap();
            assert_eq!(get(&db, "c").await.unwrap(), None);
            set_suspended(&db, "c", Some(5), 5).await.unwrap();
            let p = ClientPolicy {
                client_id: "c".into(),
                client_credentials: true,
                rate_limit_per_minute: Some(10),
                daily_token_quota: None,
                suspended_at: None,
                updated_at: 6,
            };
            put(&db, &p).await.unwrap();
            let got = get(&db, "c").await.unwrap().unwrap();
            assert_eq!(got.suspended_at, Some(5), "put does not resume");
            assert!(got.client_credentials);
            set_suspended(&db, "c", None, 7).await.unwrap();
            let got = get(&db, "c").await.unwrap().unwrap();
            assert_eq!(got.suspended_at, None);
            assert_eq!(got.rate_limit_per_minute, Some(10));
            delete(&db, "c").await.unwrap();
            assert_eq!(get(&db, "c").await.unwrap(), None);
        });
    }
}
