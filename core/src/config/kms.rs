//! The `kms` settings: where access-token signing keys and the data keys that seal secrets at
//! rest are kept. `local` (the default) is the master key, as before; `vault_transit` is
//! HashiCorp Vault's Transit secrets engine ([`crate::kms::vault_transit`]). A
//! half-configured `kms` table refuses to start, naming the setting.

use serde::{Deserialize, Serialize};
use url::Url;

use super::{cfg_err, ConfigError};
use crate::secret::Secret;

/// Which key custody is in force.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum KmsKind {
    /// Signing keys generated here and sealed under the master key; secrets sealed under
    /// keys derived from the master key.
    #[default]
    Local,
    /// Signing in Vault Transit (`ecdsa-p256` key); secrets sealed under a data key that
    /// Vault Transit wraps.
    VaultTransit,
}

/// Key custody settings.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct KmsConfig {
    /// `local` (default) or `vault_transit`.
    pub kind: KmsKind,
    /// Vault's address (`https://vault.internal:8200`); plain http only on loopback.
    pub vault_address: Option<String>,
    /// The Vault token sent as `X-Vault-Token` (a secret: set it in the environment).
    pub vault_token: Option<Secret>,
    /// Where the Transit engine is mounted (default `transit`).
    pub vault_mount: String,
    /// Vault Enterprise namespace (`X-Vault-Namespace`), if any.
    pub vault_namespace: Option<String>,
    /// The Transit key (type `ecdsa-p256`) that signs access tokens.
    pub signing_key: Option<String>,
    /// The Transit key (type `aes256-gcm96`) that wraps the data keys sealing secrets.
    pub sealing_key: Option<String>,
}

impl Default for KmsConfig {
    fn default() -> Self {
        Self {
            kind: KmsKind::Local,
            vault_address: None,
            vault_token: None,
            vault_mount: "transit".into(),
            vault_namespace: None,
            signing_key: None,
            sealing_key: None,
        }
    }
}

/// A Transit key name or mount path segment: what Vault accepts in a URL path, and nothing
/// that could change the path (`..`, `/` in a key name, `?`, `#`).
fn valid_name(s: &str, slashes: bool) -> bool {
    !s.is_empty()
        && s.len() <= 128
        && s.split('/')
            .all(|seg| !seg.is_empty() && seg != "." && seg != "..")
        && s.bytes().all(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.') || (slashes && b == b'/')
        })
}

impl KmsConfig {
    /// The Vault address parsed, once [`Self::validate`] accepted it, ending in `/` (so that
    /// API paths join below a path prefix of a Vault behind a proxy).
    pub fn vault_url(&self) -> Option<Url> {
        self.vault_address
            .as_deref()
            .and_then(|a| Url::parse(&format!("{}/", a.trim_end_matches('/'))).ok())
    }

    /// Refuses a half-configured or unsafe `kms` table.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let vault_settings = [
            ("kms.vault_address", self.vault_address.is_some()),
            ("kms.vault_token", self.vault_token.is_some()),
            ("kms.vault_namespace", self.vault_namespace.is_some()),
            ("kms.signing_key", self.signing_key.is_some()),
            ("kms.sealing_key", self.sealing_key.is_some()),
        ];
        match self.kind {
            KmsKind::Local => {
                if let Some((name, _)) = vault_settings.iter().find(|(_, set)| *set) {
                    return Err(cfg_err(
                        *name,
                        "is set but kms.kind is \"local\": set kms.kind = \"vault_transit\" or \
                         remove it",
                    ));
                }
                Ok(())
            }
            KmsKind::VaultTransit => self.validate_vault(),
        }
    }

    fn validate_vault(&self) -> Result<(), ConfigError> {
        let needed = "is required with kms.kind = \"vault_transit\"";
        let address = self
            .vault_address
            .as_deref()
            .ok_or_else(|| cfg_err("kms.vault_address", needed))?;
        let url = Url::parse(address.trim_end_matches('/'))
            .map_err(|e| cfg_err("kms.vault_address", format!("not a URL: {e}")))?;
        if url.query().is_some() || url.fragment().is_some() || !url.username().is_empty() {
            return Err(cfg_err(
                "kms.vault_address",
                "must not have a query, fragment or user name",
            ));
        }
        let loopback = match url.host() {
            Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            None => false,
        };
        match url.scheme() {
            "https" => {}
            "http" if loopback => {}
            _ => {
                return Err(cfg_err(
                    "kms.vault_address",
                    "must be an https URL (plain http only to a loopback Vault): the Vault \
                     token travels with every request",
                ))
            }
        }
        match &self.vault_token {
            None => return Err(cfg_err("kms.vault_token", needed)),
            Some(t) if t.expose().trim().is_empty() || t.expose().len() > 1024 => {
                return Err(cfg_err("kms.vault_token", "must be a Vault token"))
            }
            Some(t) if t.expose().bytes().any(|b| !(0x21..0x7f).contains(&b)) => {
                return Err(cfg_err(
                    "kms.vault_token",
                    "must be printable ASCII without spaces",
                ))
            }
            Some(_) => {}
        }
        if !valid_name(&self.vault_mount, true) {
            return Err(cfg_err(
                "kms.vault_mount",
                "must be a mount path (letters, digits, '-', '_', '.', '/' between segments)",
            ));
        }
        if let Some(ns) = &self.vault_namespace {
            if !valid_name(ns.trim_end_matches('/'), true) {
                return Err(cfg_err("kms.vault_namespace", "must be a namespace path"));
            }
        }
        for (name, value) in [
            ("kms.signing_key", &self.signing_key),
            ("kms.sealing_key", &self.sealing_key),
        ] {
            match value {
                None => return Err(cfg_err(name, needed)),
                Some(v) if !valid_name(v, false) => {
                    return Err(cfg_err(
                        name,
                        "must be a Transit key name (letters, digits, '-', '_', '.')",
                    ))
                }
                Some(_) => {}
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vault() -> KmsConfig {
        KmsConfig {
            kind: KmsKind::VaultTransit,
            vault_address: Some("https://vault.internal:8200".into()),
            vault_token: Some(Secret::new("hvs.CAESIJ0123456789")),
            signing_key: Some("portcullis-signing".into()),
            sealing_key: Some("portcullis-sealing".into()),
            ..KmsConfig::default()
        }
    }

    #[test]
    fn local_is_the_default_and_refuses_vault_settings() {
        assert_eq!(KmsConfig::default().validate(), Ok(()));
        let stray = KmsConfig {
            signing_key: Some("k".into()),
            ..KmsConfig::default()
        };
        assert_eq!(stray.validate().unwrap_err().setting, "kms.signing_key");
    }

    #[test]
    fn vault_transit_needs_every_setting() {
        assert_eq!(vault().validate(), Ok(()));
        type Unset = fn(&mut KmsConfig);
        let cases: [(&str, Unset); 4] = [
            ("kms.vault_address", |c| c.vault_address = None),
            ("kms.vault_token", |c| c.vault_token = None),
            ("kms.signing_key", |c| c.signing_key = None),
            ("kms.sealing_key", |c| c.sealing_key = None),
        ];
        for (setting, unset) in cases {
            let mut c = vault();
            unset(&mut c);
            let err = c.validate().unwrap_err();
            assert_eq!(err.setting, setting);
            assert!(err.message.contains("required"), "{err}");
        }
    }

    #[test]
    fn unsafe_addresses_names_and_tokens_are_refused() {
        for (setting, change) in [
            ("kms.vault_address", "http://vault.internal:8200"),
            ("kms.vault_address", "ftp://vault.internal"),
            ("kms.vault_address", "https://vault.internal/?x=1"),
            ("kms.vault_address", "not a url"),
            ("kms.signing_key", "../sys/seal"),
            ("kms.sealing_key", "a/b"),
            ("kms.vault_mount", "transit/../sys"),
            ("kms.vault_mount", "/transit"),
            ("kms.vault_token", "two words"),
        ] {
            let mut c = vault();
            match setting {
                "kms.vault_address" => c.vault_address = Some(change.into()),
                "kms.signing_key" => c.signing_key = Some(change.into()),
                "kms.sealing_key" => c.sealing_key = Some(change.into()),
                "kms.vault_mount" => c.vault_mount = change.into(),
                _ => c.vault_token = Some(Secret::new(change)),
            }
            assert_eq!(c.validate().unwrap_err().setting, setting, "{change}");
        }
        let mut loopback = vault();
        loopback.vault_address = Some("http://127.0.0.1:8200/".into());
        loopback.vault_mount = "teams/transit".into();
        assert_eq!(loopback.validate(), Ok(()));
        assert_eq!(
            loopback.vault_url().unwrap().as_str(),
            "http://127.0.0.1:8200/"
        );
        loopback.vault_address = Some("https://proxy.internal/vault".into());
        let joined = loopback
            .vault_url()
            .unwrap()
            .join("v1/transit/keys/k")
            .unwrap();
        assert_eq!(
            joined.as_str(),
            "https://proxy.internal/vault/v1/transit/keys/k"
        );
    }
}
