//! Re-encryption after a master key rotation: every value sealed under a previous master key
//! (signing keys, the vault's upstream tokens, providers' client secrets) is opened with the
//! key that sealed it and sealed again under the current one. Values already under the
//! current key are left alone, so running it again does nothing; a value no held key opens is
//! counted, never changed. Run by `portcullis rekey` and `POST /admin/rekey`; afterwards the
//! previous key can be removed from `previous_master_keys`.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::context::Context;
use crate::crypto::kek::Kek;
use crate::crypto::master::{key_label, MasterKeyRing};
use crate::store::repo::sealed::{self, SealedColumn, SealedValue};
use crate::vault::seal::{self as vault_seal, Binding};

/// What a re-encryption did, per sealed column.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RekeyReport {
    /// The id of the master key everything is now sealed under.
    pub current_key: String,
    /// Values sealed again under the current key.
    pub resealed: BTreeMap<&'static str, u64>,
    /// Values already under the current key.
    pub current: BTreeMap<&'static str, u64>,
    /// Values no held master key opens (sealed under a key that is no longer configured, or
    /// damaged): left as they are.
    pub unreadable: BTreeMap<&'static str, u64>,
}

impl RekeyReport {
    /// Values re-sealed in all.
    pub fn total_resealed(&self) -> u64 {
        self.resealed.values().sum()
    }

    /// Values left unreadable in all.
    pub fn total_unreadable(&self) -> u64 {
        self.unreadable.values().sum()
    }
}

/// What happened to one value.
enum Outcome {
    Current,
    Resealed(String),
    Unreadable,
}

/// The vault's binding of a sealed value.
fn vault_binding(column: SealedColumn, v: &SealedValue) -> Binding<'_> {
    match column {
        SealedColumn::ProviderSecret => Binding::provider_secret(&v.id),
        SealedColumn::ConnectorSecret => Binding::connector_secret(&v.id),
        SealedColumn::ConnectionRefreshToken => Binding {
            owner: &v.owner,
            provider: &v.provider,
            connection: &v.id,
            field: "refresh_token",
        },
        _ => Binding {
            owner: &v.owner,
            provider: &v.provider,
            connection: &v.id,
            field: "access_token",
        },
    }
}

/// The value re-sealed under the current key, if it needs it and can be opened: signing keys
/// under the master key ring (`master`, with `kek` derived from it), everything else under
/// the sealing ring (`sealing`: the same ring with the local KMS, the KMS-wrapped data keys
/// first otherwise).
async fn reseal(
    ctx: &Context,
    (master, sealing): (&MasterKeyRing, &MasterKeyRing),
    kek: &Kek,
    column: SealedColumn,
    v: &SealedValue,
) -> Outcome {
    let ring = match column {
        SealedColumn::SigningKey => master,
        _ => sealing,
    };
    if ring.is_current(&v.value) {
        return Outcome::Current;
    }
    let env = ctx.env();
    match column {
        SealedColumn::SigningKey => {
            let aad = v.id.as_bytes();
            let Ok(plain) = kek.open(env.crypto.as_ref(), &v.value, aad).await else {
                return Outcome::Unreadable;
            };
            match kek
                .seal(env.crypto.as_ref(), env.rng.as_ref(), &plain, aad)
                .await
            {
                Ok(new) => Outcome::Resealed(new),
                Err(_) => Outcome::Unreadable,
            }
        }
        _ => {
            let binding = vault_binding(column, v);
            match vault_seal::open(ring, binding, &v.value) {
                Ok(plain) => {
                    Outcome::Resealed(vault_seal::seal(ring, env.rng.as_ref(), binding, &plain))
                }
                Err(_) => Outcome::Unreadable,
            }
        }
    }
}

/// Re-seals every sealed value under the current master key (signing keys) or the current
/// sealing key (secrets; the KMS-wrapped data key when a KMS holds the keys).
pub async fn run(ctx: &Context) -> Result<RekeyReport, crate::error::Error> {
    let master = ctx.master_keys();
    let sealing = ctx.sealing_keys().await?;
    let kek = Kek::derive(master, crate::keys::KEK_PURPOSE);
    let db = ctx.env().sql.as_ref();
    let mut report = RekeyReport {
        current_key: key_label(sealing.current().0),
        ..RekeyReport::default()
    };
    for column in SealedColumn::ALL {
        let (mut resealed, mut current, mut unreadable) = (0, 0, 0);
        for v in sealed::values(db, column).await? {
            match reseal(ctx, (master, &sealing), &kek, column, &v).await {
                Outcome::Current => current += 1,
                Outcome::Unreadable => unreadable += 1,
                Outcome::Resealed(new) => {
                    // Changed meanwhile (a refresh stored new tokens, sealed under the
                    // current key): nothing left to do for it.
                    if sealed::replace(db, column, &v.id, &v.value, &new).await? {
                        resealed += 1;
                    } else {
                        current += 1;
                    }
                }
            }
        }
        report.resealed.insert(column.name(), resealed);
        report.current.insert(column.name(), current);
        report.unreadable.insert(column.name(), unreadable);
    }
    Ok(report)
}
