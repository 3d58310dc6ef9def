// The storage conformance cases, one test each, shared by every runner of the suite
// (`conformance_sqlite.rs`, `conformance_postgres.rs`, `conformance_worker.rs`,
// `conformance_spin.rs`); each runner defines a `cases!` macro that runs one case on a store of
// its backend and then `include!`s this file, so every backend runs the same list.
cases!(
    migrations_idempotent,
    codes_insert_get_redeem_once,
    codes_expired_not_redeemable,
    codes_purge_expired,
    c6_only_hashes_stored,
    c1_concurrent_code_redemption,
    refresh_insert_get_consume,
    refresh_expired_not_consumable,
    f3_concurrent_refresh_consume,
    f5_wrong_client_consume_refused,
    grants_revoke_ends_family,
    access_revoke_and_is_revoked,
    auth_requests_bind_and_consume,
    h5_auth_request_consumed_once_concurrently,
    sessions_lifecycle,
    clients_crud_and_conflict,
    users_crud_and_conflict,
    resources_crud,
    audit_list_filters_and_paging,
    keys_published_and_retire,
    replay_reserved_once_until_expiry,
    replay_concurrent_reservation,
);
