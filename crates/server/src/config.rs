//! The server's configuration: built-in defaults, overridden by a TOML
//! file, overridden by environment variables, overridden by flags.
//!
//! | flag            | environment           | file key     | default          |
//! |-----------------|-----------------------|--------------|------------------|
//! | `--config`      | `COLLOQUY_CONFIG`     | –            | none             |
//! | `--data-dir`    | `COLLOQUY_DATA_DIR`   | `data_dir`   | `./data`         |
//! | `--listen`      | `COLLOQUY_LISTEN`     | `listen`     | `127.0.0.1:8080` |
//! | `--public-url`  | `COLLOQUY_PUBLIC_URL` | `public_url` | `http://LISTEN`  |
//! | `--log`         | `COLLOQUY_LOG`        | `log`        | `info`           |
//!
//! `public_url` is the base of every `url`, `links` and `next_page_url`
//! the API answers with; set it when clients reach the server through a
//! proxy or another name.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// Where the server keeps its data when nothing else is configured.
pub const DATA_DIR_DEFAULT: &str = "./data";
/// Where the server listens when nothing else is configured: loopback
/// only, so a first start exposes nothing to the network.
pub const LISTEN_DEFAULT: &str = "127.0.0.1:8080";
/// The `tracing` filter when nothing else is configured.
pub const LOG_FILTER_DEFAULT: &str = "info";

/// The server's settings, resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerConfig {
    /// The data directory: the engine's store, the account file and media.
    pub data_dir: PathBuf,
    /// The socket address to listen on (port 0 picks a free port).
    pub listen: SocketAddr,
    /// The base URL clients use; `None` means `http://` plus the bound
    /// address.
    pub public_url: Option<String>,
    /// A `tracing` filter directive, e.g. `info,server=debug`.
    pub log: String,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            data_dir: PathBuf::from(DATA_DIR_DEFAULT),
            listen: LISTEN_DEFAULT
                .parse()
                .expect("the default listen address parses"),
            public_url: None,
            log: LOG_FILTER_DEFAULT.to_owned(),
        }
    }
}

/// The command line (and, through clap, the environment).
#[derive(Debug, Clone, Default, clap::Parser)]
#[command(
    name = "colloquy-server",
    version,
    about = "Colloquy's server: the Twilio Conversations v1 REST API and a real-time WebSocket over an embedded engine"
)]
pub struct Cli {
    /// A TOML file with any of the keys data_dir, listen, public_url, log.
    #[arg(long, env = "COLLOQUY_CONFIG")]
    pub config: Option<PathBuf>,
    /// The data directory [default: ./data].
    #[arg(long, env = "COLLOQUY_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// The address to listen on [default: 127.0.0.1:8080].
    #[arg(long, env = "COLLOQUY_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// The base URL clients reach the server at [default: http://LISTEN].
    #[arg(long, env = "COLLOQUY_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// The tracing filter [default: info].
    #[arg(long, env = "COLLOQUY_LOG")]
    pub log: Option<String>,
}

/// The configuration file's shape; every key optional, unknown keys
/// refused (a misspelt key must not be silently ignored).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    data_dir: Option<PathBuf>,
    listen: Option<SocketAddr>,
    public_url: Option<String>,
    log: Option<String>,
}

/// Why the configuration could not be resolved.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The configuration file could not be read.
    #[error("reading the configuration file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The configuration file is not valid TOML of the expected shape.
    #[error("the configuration file {path} is invalid: {reason}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's message (it names the key and line).
        reason: String,
    },
    /// `public_url` is not an `http://` or `https://` URL.
    #[error("public_url {0:?} must start with http:// or https://")]
    PublicUrl(String),
}

impl ServerConfig {
    /// Resolves `cli` (flags and environment, as clap read them) over the
    /// file it names over the defaults. Errors: the file cannot be read or
    /// parsed, or `public_url` is not an HTTP(S) URL.
    pub fn resolve(cli: Cli) -> Result<ServerConfig, ConfigError> {
        let file = match &cli.config {
            Some(path) => read_file(path)?,
            None => FileConfig::default(),
        };
        let defaults = ServerConfig::default();
        let public_url = cli
            .public_url
            .or(file.public_url)
            .map(|u| u.trim_end_matches('/').to_owned());
        if let Some(u) = &public_url {
            if !(u.starts_with("http://") || u.starts_with("https://")) {
                return Err(ConfigError::PublicUrl(u.clone()));
            }
        }
        Ok(ServerConfig {
            data_dir: cli.data_dir.or(file.data_dir).unwrap_or(defaults.data_dir),
            listen: cli.listen.or(file.listen).unwrap_or(defaults.listen),
            public_url,
            log: cli.log.or(file.log).unwrap_or(defaults.log),
        })
    }
}

fn read_file(path: &Path) -> Result<FileConfig, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })?;
    toml::from_str(&text).map_err(|e| ConfigError::Parse {
        path: path.to_owned(),
        reason: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_override_the_file_which_overrides_the_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("c.toml");
        std::fs::write(&file, "listen = \"127.0.0.1:9000\"\nlog = \"debug\"\n").unwrap();
        let cli = Cli {
            config: Some(file),
            log: Some("warn".into()),
            ..Cli::default()
        };
        let c = ServerConfig::resolve(cli).unwrap();
        assert_eq!(c.listen, "127.0.0.1:9000".parse().unwrap());
        assert_eq!(c.log, "warn");
        assert_eq!(c.data_dir, PathBuf::from(DATA_DIR_DEFAULT));
    }

    #[test]
    fn a_misspelt_file_key_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("c.toml");
        std::fs::write(&file, "listn = \"127.0.0.1:9000\"\n").unwrap();
        let cli = Cli {
            config: Some(file),
            ..Cli::default()
        };
        assert!(matches!(
            ServerConfig::resolve(cli),
            Err(ConfigError::Parse { .. })
        ));
    }
}
