//! Access tokens: how real-time clients authenticate.
//!
//! The format is Twilio's Access Token: a JWT signed with HS256 (HMAC-SHA256)
//! under an API key's secret, with the header
//! `{"alg":"HS256","typ":"JWT","cty":"twilio-fpa;v=1"}` and the claims
//!
//! ```json
//! { "jti": "SK…-1700000000", "iss": "SK…", "sub": "AC…",
//!   "nbf": 1700000000, "exp": 1700003600,
//!   "grants": { "identity": "alice", "chat": { "service_sid": "IS…" } } }
//! ```
//!
//! (Twilio's Conversations grant is the `chat` grant.) So a host that
//! already mints tokens with a Twilio helper library (`AccessToken` with a
//! `ChatGrant`) keeps doing so, with this server's account SID and API
//! key. A host mints one in process with [`mint`], or over HTTP with
//! `POST /v1/Tokens` ([`create`], Basic-authenticated: `Identity`, optional
//! `Ttl` in seconds up to [`TOKEN_TTL_SECS_MAX`], optional
//! `ChatServiceSid`), which answers `{ "token": … }`.
//!
//! [`verify`] checks, in this order: the size and shape, the header
//! (`alg` HS256 only: no algorithm is taken from the token), the issuer is
//! one of the account's API keys, the signature under that key's secret
//! (constant-time), `sub` is the account, `nbf`/`exp` against the clock
//! with [`CLOCK_SKEW_SECS`] of allowance, and that the grant names an
//! identity and a service.
//!
//! Why hand-written over `hmac` and `sha2` rather than a JWT crate: the
//! format is three base64url parts and one MAC; the server must pick the
//! key by the (unverified) `iss` claim before it can verify anything, which
//! JWT crates only offer through their "insecure decode" escape hatch; and
//! the RustCrypto `hmac` crate (already in the tree for webhook
//! signatures) gives the constant-time comparison. Fixing the algorithm
//! here closes the classic `alg: none` / algorithm-confusion holes by
//! construction.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use base64::Engine as _;
use events::ServiceSid;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sha2::Sha256;

use crate::account::{Account, ApiKey};
use crate::app::AppState;
use crate::error::ApiError;
use crate::params::Form;

/// Twilio's content type for access tokens, in the JWT header's `cty`.
pub const TOKEN_CONTENT_TYPE: &str = "twilio-fpa;v=1";
/// The longest lifetime a token may have: 24 hours, Twilio's maximum for
/// access tokens (a longer-lived credential belongs in a server, not a
/// browser).
pub const TOKEN_TTL_SECS_MAX: u64 = 24 * 3600;
/// The lifetime `POST /v1/Tokens` gives when `Ttl` is absent: one hour,
/// Twilio's default.
pub const TOKEN_TTL_SECS_DEFAULT: u64 = 3600;
/// How far the client's and the server's clocks may disagree when `nbf`
/// and `exp` are checked: 60 seconds absorbs ordinary NTP drift between the
/// host that minted the token and this server without noticeably extending
/// a token's life.
pub const CLOCK_SKEW_SECS: u64 = 60;
/// The largest token accepted, in bytes: a real one is under 1 KiB (an
/// identity is at most 256 characters); bigger input is refused before it
/// is decoded.
pub const TOKEN_BYTES_MAX: usize = 4 * 1024;

type HmacSha256 = Hmac<Sha256>;

/// What a valid token grants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatGrant {
    /// The user's identity.
    pub identity: String,
    /// The Conversations service.
    pub service: ServiceSid,
}

/// A verified token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// Its grant.
    pub grant: ChatGrant,
    /// Its `exp`: seconds since the Unix epoch.
    pub expires_at: u64,
    /// The API key that signed it (`SK…`).
    pub issuer: String,
}

/// Why a token was refused or could not be minted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Not three base64url parts of JSON, or over [`TOKEN_BYTES_MAX`].
    #[error("the access token is malformed: {0}")]
    Malformed(&'static str),
    /// The header names another algorithm or content type.
    #[error("the access token's header must be alg HS256, cty {TOKEN_CONTENT_TYPE}")]
    Header,
    /// `iss` is none of the account's API keys.
    #[error("the access token's issuer {0} is not an API key of this account")]
    UnknownIssuer(String),
    /// The signature does not match the issuer's secret.
    #[error("the access token's signature is invalid")]
    Signature,
    /// `sub` is not this account.
    #[error("the access token's subject {0} is not this account")]
    WrongAccount(String),
    /// `nbf` is in the future (beyond the clock-skew allowance).
    #[error("the access token is not valid before {nbf} (Unix seconds)")]
    NotYetValid {
        /// The token's `nbf`.
        nbf: u64,
    },
    /// `exp` has passed (beyond the clock-skew allowance).
    #[error("the access token expired at {exp} (Unix seconds)")]
    Expired {
        /// The token's `exp`.
        exp: u64,
    },
    /// The grants lack an identity or a chat service.
    #[error("the access token grants no {0}")]
    MissingGrant(&'static str),
    /// [`mint`] was asked for a lifetime of 0 or over [`TOKEN_TTL_SECS_MAX`].
    #[error("a token lives 1 to {TOKEN_TTL_SECS_MAX} seconds, not {0}")]
    Ttl(u64),
    /// [`mint`] was given an empty identity or one over
    /// [`events::limits::IDENTITY_CHARS_MAX`] characters.
    #[error(
        "an identity is 1 to {} characters",
        events::limits::IDENTITY_CHARS_MAX
    )]
    Identity,
}

impl TokenError {
    /// Twilio's error code: 20104 for an expired (or not yet valid) token,
    /// 20101 for every other invalid one; 20001 for a bad mint request.
    pub fn code(&self) -> u32 {
        match self {
            TokenError::Expired { .. } | TokenError::NotYetValid { .. } => {
                crate::error::CODE_ACCESS_TOKEN_EXPIRED
            }
            TokenError::Ttl(_) | TokenError::Identity => crate::error::CODE_INVALID_PARAMETER,
            _ => crate::error::CODE_ACCESS_TOKEN_INVALID,
        }
    }
}

#[derive(Serialize, Deserialize)]
struct Header {
    alg: String,
    typ: Option<String>,
    cty: Option<String>,
}

#[derive(Serialize, Deserialize)]
struct Claims {
    jti: Option<String>,
    iss: String,
    sub: String,
    nbf: Option<u64>,
    exp: u64,
    grants: Grants,
}

#[derive(Serialize, Deserialize)]
struct Grants {
    identity: Option<String>,
    chat: Option<Chat>,
}

#[derive(Serialize, Deserialize)]
struct Chat {
    service_sid: Option<String>,
}

fn b64() -> base64::engine::GeneralPurpose {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
}

fn unix_secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

fn mac(secret: &str) -> HmacSha256 {
    HmacSha256::new_from_slice(secret.as_bytes()).expect("HMAC takes a key of any length")
}

/// Mints an access token for `grant`, signed with `key` of the account
/// `account_sid`, valid from `now` for `ttl` (whole seconds). This is
/// what a host calls to hand a client its token (what Twilio's helper
/// libraries' `AccessToken(account_sid, key_sid, key_secret,
/// identity=…)` with a `ChatGrant(service_sid=…)` produce).
///
/// Errors: [`TokenError::Ttl`] for a lifetime under a second or over
/// [`TOKEN_TTL_SECS_MAX`]; [`TokenError::Identity`] for an empty or
/// over-long identity.
pub fn mint(
    account_sid: &str,
    key: &ApiKey,
    grant: &ChatGrant,
    ttl: Duration,
    now: SystemTime,
) -> Result<String, TokenError> {
    let ttl_secs = ttl.as_secs();
    if ttl_secs == 0 || ttl_secs > TOKEN_TTL_SECS_MAX {
        return Err(TokenError::Ttl(ttl_secs));
    }
    let chars = grant.identity.chars().count();
    if chars == 0 || chars > events::limits::IDENTITY_CHARS_MAX {
        return Err(TokenError::Identity);
    }
    let nbf = unix_secs(now);
    let header = Header {
        alg: "HS256".into(),
        typ: Some("JWT".into()),
        cty: Some(TOKEN_CONTENT_TYPE.into()),
    };
    let claims = Claims {
        jti: Some(format!("{}-{nbf}", key.sid)),
        iss: key.sid.clone(),
        sub: account_sid.to_owned(),
        nbf: Some(nbf),
        exp: nbf + ttl_secs,
        grants: Grants {
            identity: Some(grant.identity.clone()),
            chat: Some(Chat {
                service_sid: Some(grant.service.to_string()),
            }),
        },
    };
    let signing_input = format!("{}.{}", encode_json(&header), encode_json(&claims));
    let mut m = mac(&key.secret);
    m.update(signing_input.as_bytes());
    let signature = b64().encode(m.finalize().into_bytes());
    Ok(format!("{signing_input}.{signature}"))
}

/// A token part: base64url of its JSON.
fn encode_json<T: Serialize>(part: &T) -> String {
    b64().encode(serde_json::to_vec(part).expect("token parts serialise"))
}

/// Verifies `token` for `account` at `now` (see the module docs for the
/// checks) and returns what it grants.
///
/// Errors: the first [`TokenError`] found; nothing about the account's
/// secrets is revealed beyond "unknown issuer" or "bad signature".
pub fn verify(account: &Account, token: &str, now: SystemTime) -> Result<Verified, TokenError> {
    if token.len() > TOKEN_BYTES_MAX {
        return Err(TokenError::Malformed("too long"));
    }
    let mut parts = token.split('.');
    let (Some(h), Some(c), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(TokenError::Malformed("not three dot-separated parts"));
    };
    let decode = |part: &str| {
        b64()
            .decode(part)
            .map_err(|_| TokenError::Malformed("a part is not base64url"))
    };
    let header: Header = serde_json::from_slice(&decode(h)?)
        .map_err(|_| TokenError::Malformed("the header is not JSON"))?;
    if header.alg != "HS256"
        || header
            .cty
            .as_deref()
            .is_some_and(|c| c != TOKEN_CONTENT_TYPE)
    {
        return Err(TokenError::Header);
    }
    let claims: Claims = serde_json::from_slice(&decode(c)?)
        .map_err(|_| TokenError::Malformed("the claims are not the expected JSON"))?;
    let key = account
        .api_keys
        .iter()
        .find(|k| k.sid == claims.iss)
        .ok_or_else(|| TokenError::UnknownIssuer(claims.iss.clone()))?;
    let signature = decode(s)?;
    let mut m = mac(&key.secret);
    m.update(h.as_bytes());
    m.update(b".");
    m.update(c.as_bytes());
    m.verify_slice(&signature)
        .map_err(|_| TokenError::Signature)?;
    if claims.sub != account.account_sid {
        return Err(TokenError::WrongAccount(claims.sub));
    }
    let now = unix_secs(now);
    if let Some(nbf) = claims.nbf {
        if nbf > now.saturating_add(CLOCK_SKEW_SECS) {
            return Err(TokenError::NotYetValid { nbf });
        }
    }
    if claims.exp.saturating_add(CLOCK_SKEW_SECS) <= now {
        return Err(TokenError::Expired { exp: claims.exp });
    }
    let identity = claims
        .grants
        .identity
        .filter(|i| !i.is_empty())
        .ok_or(TokenError::MissingGrant("identity"))?;
    let service = claims
        .grants
        .chat
        .and_then(|c| c.service_sid)
        .and_then(|s| s.parse::<ServiceSid>().ok())
        .ok_or(TokenError::MissingGrant("chat service"))?;
    Ok(Verified {
        grant: ChatGrant { identity, service },
        expires_at: claims.exp,
        issuer: claims.iss,
    })
}

/// `POST /v1/Tokens` (Basic-authenticated; Colloquy's own, Twilio mints
/// tokens in the host's code): `Identity` (required), `Ttl` (seconds,
/// 1..=[`TOKEN_TTL_SECS_MAX`], default [`TOKEN_TTL_SECS_DEFAULT`]),
/// `ChatServiceSid` (default: the account's default service). Signed with
/// the account's first API key. 201 with `{ "token", "identity",
/// "chat_service_sid", "ttl" }`.
///
/// Errors: 400 (20001) for a missing identity, a bad TTL or SID, or an
/// unknown parameter; 404 for an unknown service; 500 if the account has
/// no API key.
pub async fn create(
    State(state): State<AppState>,
    Form(mut p): Form,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let identity = p.req("Identity")?;
    let ttl = p.opt_parse::<u64>("Ttl")?.unwrap_or(TOKEN_TTL_SECS_DEFAULT);
    let service = p.opt_parse::<ServiceSid>("ChatServiceSid")?;
    p.finish()?;
    let (account_sid, key, default_service) = {
        let account = state.account.read();
        (
            account.account_sid.clone(),
            account.api_keys.first().cloned(),
            account.default_chat_service_sid,
        )
    };
    let key = key.ok_or_else(|| ApiError::internal("the account has no API key to sign with"))?;
    let service = service.unwrap_or(default_service);
    let exists = state.read(move |q| q.get_service(&service).is_ok()).await?;
    if !exists {
        return Err(ApiError::not_found(format!("service {service}")));
    }
    let grant = ChatGrant {
        identity: identity.clone(),
        service,
    };
    let token = mint(
        &account_sid,
        &key,
        &grant,
        Duration::from_secs(ttl),
        SystemTime::now(),
    )
    .map_err(|e| match e {
        TokenError::Ttl(_) => ApiError::invalid("Ttl", e),
        _ => ApiError::invalid("Identity", e),
    })?;
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "token": token,
            "identity": identity,
            "chat_service_sid": service.to_string(),
            "ttl": ttl,
        })),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn account() -> Account {
        Account {
            account_sid: format!("AC{}", "1".repeat(32)),
            auth_token: "t".repeat(32),
            api_keys: vec![ApiKey {
                sid: format!("SK{}", "2".repeat(32)),
                secret: "s".repeat(32),
                friendly_name: "k".into(),
            }],
            default_chat_service_sid: ServiceSid([3; 16]),
            default_messaging_service_sid: None,
            default_inactive_timer: None,
            default_closed_timer: None,
        }
    }

    fn grant() -> ChatGrant {
        ChatGrant {
            identity: "alice".into(),
            service: ServiceSid([3; 16]),
        }
    }

    const HOUR: Duration = Duration::from_secs(3600);

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn a_minted_token_verifies_and_carries_its_grant() {
        let a = account();
        let t = mint(&a.account_sid, &a.api_keys[0], &grant(), HOUR, at(1_000)).unwrap();
        let v = verify(&a, &t, at(1_100)).unwrap();
        assert_eq!(v.grant, grant());
        assert_eq!(v.expires_at, 1_000 + 3600);
        assert_eq!(v.issuer, a.api_keys[0].sid);
        // Twilio's header and claim names.
        let mut parts = t.split('.');
        let header: Value =
            serde_json::from_slice(&b64().decode(parts.next().unwrap()).unwrap()).unwrap();
        assert_eq!(header["cty"], TOKEN_CONTENT_TYPE);
        assert_eq!(header["alg"], "HS256");
        let claims: Value =
            serde_json::from_slice(&b64().decode(parts.next().unwrap()).unwrap()).unwrap();
        assert_eq!(claims["jti"], format!("{}-1000", a.api_keys[0].sid));
        assert_eq!(
            claims["grants"]["chat"]["service_sid"],
            grant().service.to_string()
        );
    }

    #[test]
    fn expiry_and_not_before_allow_the_clock_skew_and_no_more() {
        let a = account();
        let t = mint(&a.account_sid, &a.api_keys[0], &grant(), HOUR, at(10_000)).unwrap();
        let exp = 10_000 + 3600;
        assert!(verify(&a, &t, at(exp + CLOCK_SKEW_SECS - 1)).is_ok());
        assert_eq!(
            verify(&a, &t, at(exp + CLOCK_SKEW_SECS)),
            Err(TokenError::Expired { exp })
        );
        assert!(verify(&a, &t, at(10_000 - CLOCK_SKEW_SECS)).is_ok());
        assert_eq!(
            verify(&a, &t, at(10_000 - CLOCK_SKEW_SECS - 1)),
            Err(TokenError::NotYetValid { nbf: 10_000 })
        );
    }

    #[test]
    fn tampered_foreign_and_malformed_tokens_are_refused() {
        let a = account();
        let t = mint(&a.account_sid, &a.api_keys[0], &grant(), HOUR, at(1_000)).unwrap();
        // Another identity spliced into the claims: the signature fails.
        let mut other = grant();
        other.identity = "mallory".into();
        let forged = mint(&a.account_sid, &a.api_keys[0], &other, HOUR, at(1_000)).unwrap();
        let parts: Vec<&str> = t.split('.').collect();
        let forged_parts: Vec<&str> = forged.split('.').collect();
        let spliced = format!("{}.{}.{}", parts[0], forged_parts[1], parts[2]);
        assert_eq!(verify(&a, &spliced, at(1_000)), Err(TokenError::Signature));
        // Signed with a secret the account does not hold.
        let stranger = ApiKey {
            secret: "x".repeat(32),
            ..a.api_keys[0].clone()
        };
        let t2 = mint(&a.account_sid, &stranger, &grant(), HOUR, at(1_000)).unwrap();
        assert_eq!(verify(&a, &t2, at(1_000)), Err(TokenError::Signature));
        // An issuer that is not a key of the account.
        let unknown = ApiKey {
            sid: format!("SK{}", "9".repeat(32)),
            ..a.api_keys[0].clone()
        };
        let t3 = mint(&a.account_sid, &unknown, &grant(), HOUR, at(1_000)).unwrap();
        assert!(matches!(
            verify(&a, &t3, at(1_000)),
            Err(TokenError::UnknownIssuer(_))
        ));
        // Another account.
        let t4 = mint("ACother", &a.api_keys[0], &grant(), HOUR, at(1_000)).unwrap();
        assert!(matches!(
            verify(&a, &t4, at(1_000)),
            Err(TokenError::WrongAccount(_))
        ));
        // alg: none.
        let none = format!(
            "{}.{}.",
            b64().encode(br#"{"alg":"none","typ":"JWT"}"#),
            parts[1]
        );
        assert_eq!(verify(&a, &none, at(1_000)), Err(TokenError::Header));
        for bad in [
            "",
            "a.b",
            "a.b.c.d",
            "!!.??.**",
            &"a".repeat(TOKEN_BYTES_MAX + 1),
        ] {
            assert!(
                matches!(verify(&a, bad, at(1_000)), Err(TokenError::Malformed(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn mint_refuses_bad_lifetimes_and_identities() {
        let a = account();
        let k = &a.api_keys[0];
        let long = Duration::from_secs(TOKEN_TTL_SECS_MAX + 1);
        assert_eq!(
            mint(&a.account_sid, k, &grant(), long, at(0)),
            Err(TokenError::Ttl(TOKEN_TTL_SECS_MAX + 1))
        );
        assert_eq!(
            mint(&a.account_sid, k, &grant(), Duration::ZERO, at(0)),
            Err(TokenError::Ttl(0))
        );
        let mut g = grant();
        g.identity.clear();
        assert_eq!(
            mint(&a.account_sid, k, &g, HOUR, at(0)),
            Err(TokenError::Identity)
        );
    }
}
