//! The `connect_uri` of an `interaction_required` vend answer: `/connect/{provider}` with a
//! short-lived binding to the subject (`for`, HMAC-SHA256 under a key derived from the master
//! key), so the person who opens it must be the user whose token the MCP server presented
//! (the check MCP asks of URL-mode elicitations).

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::crypto::kek::derive_key;
use crate::crypto::{b64, b64_decode};

/// How long a connect link stays valid.
pub const LINK_TTL_SECS: i64 = 600;

/// Why a connect link was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LinkRefusal {
    /// Not a link this server made (or altered).
    #[error("the connect link is not valid")]
    Invalid,
    /// Older than [`LINK_TTL_SECS`].
    #[error("the connect link has expired; ask the application for a new one")]
    Expired,
    /// Made for another user than the one signed in.
    #[error("this connect link was made for another user; sign in as that user")]
    OtherUser,
}

fn mac(master: &[u8], provider: &str, owner: &str, exp: i64) -> Hmac<Sha256> {
    let key = derive_key(master, "vault-connect-link v1");
    // HMAC takes keys of any length: new_from_slice cannot fail.
    let mut m = <Hmac<Sha256> as Mac>::new_from_slice(&key).expect("HMAC accepts any key length");
    m.update(format!("{provider}\0{owner}\0{exp}").as_bytes());
    m
}

/// The `for` value binding a connect link to `owner`, valid until `now + LINK_TTL_SECS`.
pub fn binding(master: &[u8], provider: &str, owner: &str, now: i64) -> String {
    let exp = now + LINK_TTL_SECS;
    let tag = mac(master, provider, owner, exp).finalize().into_bytes();
    format!("{exp}.{}.{}", b64(owner.as_bytes()), b64(tag))
}

/// Checks a `for` value against the signed-in user.
pub fn check(
    master: &[u8],
    provider: &str,
    value: &str,
    signed_in: &str,
    now: i64,
) -> Result<(), LinkRefusal> {
    let mut parts = value.split('.');
    let (Some(exp), Some(owner), Some(tag), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(LinkRefusal::Invalid);
    };
    let exp: i64 = exp.parse().map_err(|_| LinkRefusal::Invalid)?;
    let owner = b64_decode(owner)
        .and_then(|o| String::from_utf8(o).ok())
        .ok_or(LinkRefusal::Invalid)?;
    let tag = b64_decode(tag).ok_or(LinkRefusal::Invalid)?;
    mac(master, provider, &owner, exp)
        .verify_slice(&tag)
        .map_err(|_| LinkRefusal::Invalid)?;
    if now >= exp {
        return Err(LinkRefusal::Expired);
    }
    if owner != signed_in {
        return Err(LinkRefusal::OtherUser);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const M: &[u8] = &[5; 32];

    #[test]
    fn the_user_it_names_may_open_it_until_it_expires() {
        let v = binding(M, "github", "alice", 1_000);
        assert_eq!(check(M, "github", &v, "alice", 1_000), Ok(()));
        assert_eq!(
            check(M, "github", &v, "alice", 1_000 + LINK_TTL_SECS),
            Err(LinkRefusal::Expired)
        );
        assert_eq!(
            check(M, "github", &v, "mallory", 1_001),
            Err(LinkRefusal::OtherUser)
        );
    }

    #[test]
    fn altered_or_foreign_links_are_invalid() {
        let v = binding(M, "github", "alice", 1_000);
        assert_eq!(
            check(M, "slack", &v, "alice", 1_001),
            Err(LinkRefusal::Invalid)
        );
        assert_eq!(
            check(&[6; 32], "github", &v, "alice", 1_001),
            Err(LinkRefusal::Invalid)
        );
        let forged = v.replacen(&b64(b"alice"), &b64(b"mallory"), 1);
        assert_eq!(
            check(M, "github", &forged, "mallory", 1_001),
            Err(LinkRefusal::Invalid)
        );
        let later = v.replacen("1600", "9600", 1);
        assert_eq!(
            check(M, "github", &later, "alice", 1_001),
            Err(LinkRefusal::Invalid)
        );
        assert_eq!(
            check(M, "github", "x", "alice", 0),
            Err(LinkRefusal::Invalid)
        );
    }
}
