//! The account: the credentials REST clients authenticate with, its API
//! keys, and the account-level Conversations configuration (Twilio's
//! `/v1/Configuration`: the default service and timers).
//!
//! The engine has no accounts: a server is one account. Its state is one
//! small JSON file, `account.json` in the data directory, written whole to a
//! temporary file, synced and renamed over the old one, so a crash leaves
//! either the old or the new file, never a torn one. It holds secrets (the
//! auth token and API key secrets, which also sign webhooks and access
//! tokens), so it is created readable by its owner only.
//!
//! On first start [`Account::load_or_create`] makes the account, an API
//! key and the default Conversations service, and returns the
//! [`Credentials`] so the binary can print them once.

use std::io::Write;
use std::path::{Path, PathBuf};

use engine_core::Engine;
use events::command::{CreateService, Keyed};
use events::ServiceSid;
use serde::{Deserialize, Serialize};

/// The account file's name inside the data directory.
pub const ACCOUNT_FILE_NAME: &str = "account.json";
/// The idempotency key of the default service's creation: a crash between
/// creating the service and writing the account file finds the same
/// service on the next start instead of making a second one.
const DEFAULT_SERVICE_KEY: &str = "colloquy-server/default-service";
/// Random bytes in an auth token or API key secret: 128 bits, as Twilio's
/// 32-hex-digit tokens.
const SECRET_BYTES: usize = 16;

/// An API key: a `SK…` SID and its secret (Twilio's Standard API key).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiKey {
    /// `SK…`.
    pub sid: String,
    /// The secret: HTTP Basic password, and the HMAC key of access tokens.
    pub secret: String,
    /// A name for people.
    pub friendly_name: String,
}

/// The account's state, as stored in `account.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Account {
    /// `AC…`.
    pub account_sid: String,
    /// The auth token: HTTP Basic password with the account SID, and the
    /// key of `X-Twilio-Signature` on webhooks.
    pub auth_token: String,
    /// API keys that may authenticate (and sign access tokens).
    pub api_keys: Vec<ApiKey>,
    /// The service the paths without `/Services/{ChatServiceSid}` address
    /// (Twilio's `default_chat_service_sid`).
    pub default_chat_service_sid: ServiceSid,
    /// Twilio's `default_messaging_service_sid`, stored and answered.
    pub default_messaging_service_sid: Option<String>,
    /// Twilio's `default_inactive_timer` (ISO 8601), stored and answered.
    pub default_inactive_timer: Option<String>,
    /// Twilio's `default_closed_timer` (ISO 8601), stored and answered.
    pub default_closed_timer: Option<String>,
}

/// What a first start prints once: everything a client needs to connect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    /// `AC…`.
    pub account_sid: String,
    /// The auth token.
    pub auth_token: String,
    /// The API key made with the account.
    pub api_key: ApiKey,
    /// The default Conversations service.
    pub default_chat_service_sid: ServiceSid,
}

/// Why the account could not be loaded or created.
#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    /// Reading or writing the account file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The account file is not what this server wrote.
    #[error("{path} is damaged or not an account file: {reason}")]
    Damaged {
        /// The file.
        path: PathBuf,
        /// The JSON error, naming line and column.
        reason: String,
    },
    /// Creating the default service failed.
    #[error("creating the default service: {0}")]
    Engine(#[from] engine_core::CommandError),
    /// The operating system's random source failed.
    #[error("the operating system's random source failed: {0}")]
    Random(String),
}

fn random_hex() -> Result<String, AccountError> {
    let mut bytes = [0u8; SECRET_BYTES];
    getrandom::fill(&mut bytes).map_err(|e| AccountError::Random(e.to_string()))?;
    Ok(hex::encode(bytes))
}

impl Account {
    /// Loads the account from `data_dir`, or on first start creates it:
    /// a fresh account SID, auth token and API key, and the default
    /// service in `engine`. Returns the account and, on first start only,
    /// the credentials to print.
    ///
    /// Errors: the file cannot be read or written, it is damaged (never
    /// replaced: that would change every credential), or the engine
    /// refuses the default service.
    pub fn load_or_create(
        data_dir: &Path,
        engine: &Engine,
    ) -> Result<(Account, Option<Credentials>), AccountError> {
        let path = data_dir.join(ACCOUNT_FILE_NAME);
        match std::fs::read(&path) {
            Ok(bytes) => {
                let account =
                    serde_json::from_slice(&bytes).map_err(|e| AccountError::Damaged {
                        path: path.clone(),
                        reason: e.to_string(),
                    })?;
                Ok((account, None))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let service = engine.execute(
                    CreateService::new("Default Conversations Service").keyed(DEFAULT_SERVICE_KEY),
                )?;
                let api_key = ApiKey {
                    sid: format!("SK{}", random_hex()?),
                    secret: random_hex()?,
                    friendly_name: "default".to_owned(),
                };
                let account = Account {
                    account_sid: format!("AC{}", random_hex()?),
                    auth_token: random_hex()?,
                    api_keys: vec![api_key.clone()],
                    default_chat_service_sid: service,
                    default_messaging_service_sid: None,
                    default_inactive_timer: None,
                    default_closed_timer: None,
                };
                account.store(data_dir)?;
                let credentials = Credentials {
                    account_sid: account.account_sid.clone(),
                    auth_token: account.auth_token.clone(),
                    api_key,
                    default_chat_service_sid: service,
                };
                Ok((account, Some(credentials)))
            }
            Err(source) => Err(AccountError::Io { path, source }),
        }
    }

    /// Writes the account file atomically (temporary file, sync, rename,
    /// sync the directory), readable by its owner only. Errors: any I/O
    /// failure, naming the file.
    pub fn store(&self, data_dir: &Path) -> Result<(), AccountError> {
        let path = data_dir.join(ACCOUNT_FILE_NAME);
        let tmp = data_dir.join(format!("{ACCOUNT_FILE_NAME}.tmp"));
        let io = |path: &Path| {
            let path = path.to_owned();
            move |source| AccountError::Io { path, source }
        };
        let bytes = serde_json::to_vec_pretty(self).expect("an account serialises");
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(&tmp).map_err(io(&tmp))?;
        file.write_all(&bytes).map_err(io(&tmp))?;
        file.sync_all().map_err(io(&tmp))?;
        std::fs::rename(&tmp, &path).map_err(io(&path))?;
        std::fs::File::open(data_dir)
            .and_then(|d| d.sync_all())
            .map_err(io(data_dir))?;
        Ok(())
    }

    /// Whether (`user`, `password`) are this account's SID and auth token
    /// or one of its API keys and secret. Compares blake3 hashes, whose
    /// equality is constant-time, so the answer's timing does not leak how
    /// much of a secret matched.
    pub fn authenticates(&self, user: &str, password: &str) -> bool {
        let given = blake3::hash(password.as_bytes());
        if user == self.account_sid {
            return given == blake3::hash(self.auth_token.as_bytes());
        }
        self.api_keys
            .iter()
            .find(|k| k.sid == user)
            .is_some_and(|k| given == blake3::hash(k.secret.as_bytes()))
    }
}
