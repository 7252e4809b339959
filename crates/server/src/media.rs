//! The media store: what messages attach by `MediaSid`.
//!
//! Twilio keeps media in its Media Content Service beside Conversations: a
//! client uploads the raw bytes (`POST /v1/Services/{ChatServiceSid}/Media`
//! with the file's `Content-Type`), gets an `ME…` SID back, and posts a
//! message with `MediaSid=ME…`. This module is that service, on disk in
//! the data directory:
//! - `<data>/media/blobs/<blake3 hex>`: the bytes, content-addressed, so an
//!   item uploaded twice (or to two services) is stored once;
//! - `<data>/media/<IS…>/<ME…>.json`: one item's metadata (service, content
//!   type, filename, size, blake3, upload time). The directory per service
//!   scopes every SID to its service: another service's SID is not found.
//!
//! The metadata lives beside the log, not in it: an upload is not a change
//! to any conversation (there is no engine command for it, and bytes do not
//! belong in the log), and nothing in the read models refers to an upload
//! until a message does. When one does, `PostMessage` copies the
//! descriptor (SID, content type, filename, size) into the log, so the
//! message's `media` array survives even a lost media directory.
//!
//! Uploads are durable before they are acknowledged: the bytes are written
//! to a temporary file, synced and renamed into place (directory synced),
//! then the metadata likewise. A crash leaves either no item or a whole one
//! (at worst an unreferenced blob). A SID is derived from the service, the
//! bytes' hash, the content type and the filename, so the same upload
//! repeated (a client's retry) is the same item, stored once. Reads check
//! the bytes against their blake3: damage is an error, never served, and
//! uploading the same bytes again rewrites a damaged or missing copy.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path as UrlPath, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use events::limits::MEDIA_FIELD_BYTES_MAX;
use events::{Media, MediaSid, ServiceSid};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::app::{AppState, Scope};
use crate::error::ApiError;
use crate::params::Query;
use crate::render::iso8601;

/// The largest media item accepted, in bytes: Twilio's limit for one media
/// item in Conversations (5 MB), so whatever Twilio's clients upload fits
/// and nothing Twilio would refuse is accepted.
pub const MEDIA_BYTES_MAX: usize = 5 * 1024 * 1024;

/// The request body limit of the upload route, in bytes: one media item
/// plus nothing (the body is the raw bytes). Bigger bodies are refused with
/// 413 while they stream in, before they are buffered whole.
pub const MEDIA_REQUEST_BYTES_MAX: usize = MEDIA_BYTES_MAX;

/// The content types an upload may have (compared without parameters,
/// case-insensitively): the image, audio, video and document types
/// Twilio's channels deliver as MMS or WhatsApp media. Types a browser
/// would run as active content when served from this origin (`text/html`,
/// `image/svg+xml`, scripts) are left out, because the content route serves
/// the bytes back with their stored type.
pub const MEDIA_CONTENT_TYPES_ALLOWED: &[&str] = &[
    "image/jpeg",
    "image/png",
    "image/gif",
    "image/webp",
    "audio/mpeg",
    "audio/ogg",
    "audio/mp4",
    "audio/amr",
    "video/mp4",
    "video/3gpp",
    "application/pdf",
    "text/plain",
    "text/vcard",
    "text/x-vcard",
];

/// The directory, inside the data directory, that holds the media store.
pub const MEDIA_DIR_NAME: &str = "media";

const BLOBS_DIR_NAME: &str = "blobs";

/// Why a media operation failed.
#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    /// The upload is larger than [`MEDIA_BYTES_MAX`].
    #[error("the media item is {size} bytes, over the limit of {MEDIA_BYTES_MAX} bytes")]
    TooLarge {
        /// Its size.
        size: usize,
    },
    /// The upload has no bytes.
    #[error("the media item is empty")]
    Empty,
    /// The content type is missing or not in [`MEDIA_CONTENT_TYPES_ALLOWED`].
    #[error("content type {0:?} is not accepted (allowed: {allowed})", allowed = MEDIA_CONTENT_TYPES_ALLOWED.join(", "))]
    ContentType(String),
    /// The filename is over [`MEDIA_FIELD_BYTES_MAX`] bytes or holds a
    /// control character or a path separator.
    #[error("filename {0:?} is not accepted (at most {MEDIA_FIELD_BYTES_MAX} bytes, no control characters or slashes)")]
    Filename(String),
    /// No item with this SID in this service.
    #[error("media {0}")]
    NotFound(MediaSid),
    /// The store could not be read or written.
    #[error("media store I/O on {path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A metadata file does not parse.
    #[error("media metadata {path} is damaged: {reason}")]
    Damaged {
        /// The file.
        path: PathBuf,
        /// The parse error.
        reason: String,
    },
    /// The stored bytes no longer match their blake3 hash (or size).
    #[error("the bytes of media {0} are damaged (hash mismatch)")]
    Corrupt(MediaSid),
    /// The operating system's random source failed (temporary file names).
    #[error("the operating system's random source failed: {0}")]
    Random(String),
}

/// One stored media item's metadata, as persisted in its JSON file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MediaRecord {
    /// `ME…`.
    pub sid: MediaSid,
    /// The service it was uploaded to.
    pub service_sid: ServiceSid,
    /// Its content type, as uploaded (parameters kept).
    pub content_type: String,
    /// Its filename, if the upload named one.
    pub filename: Option<String>,
    /// Its size in bytes.
    pub size: u64,
    /// The blake3 hash of the bytes, lowercase hex: the blob's name.
    pub blake3: String,
    /// Upload time, µs since the Unix epoch.
    pub date_created: u64,
}

impl MediaRecord {
    /// The descriptor a message carries in the log (Twilio's `media[]`).
    pub fn descriptor(&self) -> Media {
        Media {
            sid: self.sid,
            content_type: self.content_type.clone(),
            filename: self.filename.clone(),
            size: self.size,
        }
    }
}

/// The media store under one data directory. Cheap to make: it is a path.
/// Its methods do blocking file I/O; call them off the async workers.
#[derive(Debug, Clone)]
pub struct MediaStore {
    root: PathBuf,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> MediaError + '_ {
    move |source| MediaError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Checks an upload's content type and filename against the limits.
/// Errors: [`MediaError::ContentType`], [`MediaError::Filename`].
pub fn check_fields(content_type: &str, filename: Option<&str>) -> Result<(), MediaError> {
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if content_type.len() > MEDIA_FIELD_BYTES_MAX
        || !MEDIA_CONTENT_TYPES_ALLOWED.contains(&essence.as_str())
    {
        return Err(MediaError::ContentType(content_type.to_owned()));
    }
    if let Some(f) = filename {
        if f.is_empty()
            || f.len() > MEDIA_FIELD_BYTES_MAX
            || f.chars().any(|c| c.is_control() || c == '/' || c == '\\')
        {
            return Err(MediaError::Filename(f.to_owned()));
        }
    }
    Ok(())
}

impl MediaStore {
    /// The store of the data directory `data_dir` (`<data_dir>/media`).
    pub fn new(data_dir: &Path) -> MediaStore {
        MediaStore {
            root: data_dir.join(MEDIA_DIR_NAME),
        }
    }

    fn meta_path(&self, service: &ServiceSid, sid: &MediaSid) -> PathBuf {
        self.root
            .join(service.to_string())
            .join(format!("{sid}.json"))
    }

    fn blob_path(&self, blake3_hex: &str) -> PathBuf {
        self.root.join(BLOBS_DIR_NAME).join(blake3_hex)
    }

    /// Stores `bytes` as a media item of `service`, durably (bytes synced,
    /// then metadata synced) before it returns. The same bytes, content
    /// type and filename uploaded again to the same service are the same
    /// item: its first record is returned and nothing is written.
    ///
    /// Errors: over [`MEDIA_BYTES_MAX`], empty, a content type or filename
    /// [`check_fields`] refuses, or any I/O failure (naming the file).
    pub fn put(
        &self,
        service: ServiceSid,
        content_type: &str,
        filename: Option<&str>,
        bytes: &[u8],
        now_micros: u64,
    ) -> Result<MediaRecord, MediaError> {
        if bytes.len() > MEDIA_BYTES_MAX {
            return Err(MediaError::TooLarge { size: bytes.len() });
        }
        if bytes.is_empty() {
            return Err(MediaError::Empty);
        }
        check_fields(content_type, filename)?;
        let hash = blake3::hash(bytes);
        let mut seed = Vec::with_capacity(128);
        seed.extend_from_slice(service.as_bytes());
        seed.extend_from_slice(hash.as_bytes());
        seed.extend_from_slice(content_type.as_bytes());
        seed.push(0);
        if let Some(f) = filename {
            seed.push(1);
            seed.extend_from_slice(f.as_bytes());
        }
        let sid = MediaSid::derive(&seed);
        let existing = match self.get(&service, &sid) {
            Ok(existing) => Some(existing),
            Err(MediaError::NotFound(_)) => None,
            Err(e) => return Err(e),
        };
        let record = existing.clone().unwrap_or_else(|| MediaRecord {
            sid,
            service_sid: service,
            content_type: content_type.to_owned(),
            filename: filename.map(str::to_owned),
            size: bytes.len() as u64,
            blake3: hash.to_hex().to_string(),
            date_created: now_micros,
        });
        // The blob may be shared, missing or damaged: (re)write it unless
        // it holds exactly these bytes. An upload thus also heals a
        // damaged copy.
        match self.content(&record) {
            Ok(_) => {}
            Err(MediaError::Corrupt(_)) | Err(MediaError::Io { .. }) => {
                write_durably(&self.blob_path(&record.blake3), bytes)?
            }
            Err(e) => return Err(e),
        }
        if existing.is_none() {
            let meta = serde_json::to_vec_pretty(&record).expect("a media record serialises");
            write_durably(&self.meta_path(&service, &sid), &meta)?;
        }
        Ok(record)
    }

    /// The metadata of `sid` in `service`. Errors: [`MediaError::NotFound`]
    /// when `service` has no such item (another service's is not found
    /// either), [`MediaError::Damaged`] or I/O failures.
    pub fn get(&self, service: &ServiceSid, sid: &MediaSid) -> Result<MediaRecord, MediaError> {
        let path = self.meta_path(service, sid);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(MediaError::NotFound(*sid))
            }
            Err(source) => return Err(MediaError::Io { path, source }),
        };
        let record: MediaRecord =
            serde_json::from_slice(&bytes).map_err(|e| MediaError::Damaged {
                path: path.clone(),
                reason: e.to_string(),
            })?;
        if record.sid != *sid || record.service_sid != *service {
            return Err(MediaError::Damaged {
                path,
                reason: "the record names another SID or service".to_owned(),
            });
        }
        Ok(record)
    }

    /// The bytes of `record`, checked against its size and blake3.
    /// Errors: [`MediaError::Corrupt`] on a mismatch, I/O failures.
    pub fn content(&self, record: &MediaRecord) -> Result<Vec<u8>, MediaError> {
        let path = self.blob_path(&record.blake3);
        let bytes = std::fs::read(&path).map_err(io(&path))?;
        if bytes.len() as u64 != record.size
            || blake3::hash(&bytes).to_hex().as_str() != record.blake3
        {
            return Err(MediaError::Corrupt(record.sid));
        }
        Ok(bytes)
    }
}

/// Writes `bytes` to `path` so that after return they survive a crash:
/// a temporary file beside it, synced, renamed over `path`, and the
/// directory synced. Creates the directory if needed.
fn write_durably(path: &Path, bytes: &[u8]) -> Result<(), MediaError> {
    let dir = path.parent().expect("store paths have a parent");
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let mut nonce = [0u8; 8];
    getrandom::fill(&mut nonce).map_err(|e| MediaError::Random(e.to_string()))?;
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("item");
    let tmp = dir.join(format!(".{name}.{}.tmp", hex::encode(nonce)));
    let write = || -> std::io::Result<()> {
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()
    };
    if let Err(source) = write() {
        let _ = std::fs::remove_file(&tmp);
        return Err(MediaError::Io { path: tmp, source });
    }
    std::fs::rename(&tmp, path).map_err(io(path))?;
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io(dir))
}

/// Every media descriptor named by `sids` (Twilio's repeated `MediaSid`),
/// looked up in `service`'s store, in order. Errors (400 `MediaSid`): a SID
/// that does not parse or that `service` has no media for; store failures.
pub async fn descriptors(
    state: &AppState,
    service: ServiceSid,
    sids: Vec<String>,
) -> Result<Vec<Media>, ApiError> {
    if sids.is_empty() {
        return Ok(Vec::new());
    }
    let parsed = sids
        .iter()
        .map(|s| {
            s.parse::<MediaSid>()
                .map_err(|e| ApiError::invalid("MediaSid", e))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let store = MediaStore::new(&state.data_dir);
    blocking(move || {
        parsed
            .iter()
            .map(|sid| match store.get(&service, sid) {
                Ok(r) => Ok(r.descriptor()),
                Err(MediaError::NotFound(sid)) => Err(ApiError::invalid(
                    "MediaSid",
                    format!("{sid} is not a media item uploaded to this service"),
                )),
                Err(e) => Err(e.into()),
            })
            .collect()
    })
    .await
}

async fn blocking<R: Send + 'static>(
    f: impl FnOnce() -> Result<R, ApiError> + Send + 'static,
) -> Result<R, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(ApiError::internal)?
}

fn now_micros() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

/// Twilio's Media resource (as the Media Content Service answers it).
/// `author`, `message_sid` and `channel_sid` are `null`: the store does not
/// record who uploaded an item or which messages attach it.
pub fn render(state: &AppState, record: &MediaRecord) -> Value {
    let url = format!(
        "{}/v1/Services/{}/Media/{}",
        state.base_url, record.service_sid, record.sid
    );
    json!({
        "sid": record.sid.to_string(),
        "account_sid": state.account.read().account_sid,
        "service_sid": record.service_sid.to_string(),
        "date_created": iso8601(record.date_created),
        "date_upload_updated": iso8601(record.date_created),
        "date_updated": iso8601(record.date_created),
        "size": record.size,
        "content_type": record.content_type,
        "filename": record.filename,
        "author": Value::Null,
        "category": "media",
        "message_sid": Value::Null,
        "channel_sid": Value::Null,
        "url": url,
        "links": {
            "content": format!("{url}/Content"),
            "content_direct_temporary": Value::Null,
        },
    })
}

/// The media routes (mounted under `/v1`, behind authentication): upload
/// with its own body limit, fetch, and the content.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/Services/{ChatServiceSid}/Media",
            post(upload).layer(DefaultBodyLimit::max(MEDIA_REQUEST_BYTES_MAX)),
        )
        .route("/Services/{ChatServiceSid}/Media/{Sid}", get(fetch))
        .route(
            "/Services/{ChatServiceSid}/Media/{Sid}/Content",
            get(content),
        )
}

/// `POST /v1/Services/{ChatServiceSid}/Media`: the body is the raw bytes,
/// `Content-Type` their type; the query may carry `Filename`. 201 with the
/// Media resource, once the item is durable. Errors: 400 for an empty body,
/// a refused content type or filename, or another query parameter; 413
/// over [`MEDIA_BYTES_MAX`].
pub async fn upload(
    State(state): State<AppState>,
    scope: Scope,
    headers: HeaderMap,
    Query(mut p): Query,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let filename = p.opt("Filename")?;
    p.finish()?;
    let bytes = body.map_err(|e| {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            crate::error::CODE_INVALID_PARAMETER,
            format!("media refused: {e} (at most {MEDIA_BYTES_MAX} bytes)"),
        )
    })?;
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let store = MediaStore::new(&state.data_dir);
    let service = scope.service;
    let record = blocking(move || {
        Ok(store.put(
            service,
            &content_type,
            filename.as_deref(),
            &bytes,
            now_micros(),
        )?)
    })
    .await?;
    Ok((StatusCode::CREATED, Json(render(&state, &record))))
}

async fn load(
    state: &AppState,
    scope: &Scope,
    path: &[(String, String)],
) -> Result<(MediaStore, MediaRecord), ApiError> {
    let sid: MediaSid = crate::rest::participants::sid_param(path, "Sid")?;
    let store = MediaStore::new(&state.data_dir);
    let service = scope.service;
    blocking(move || {
        let record = store.get(&service, &sid)?;
        Ok((store, record))
    })
    .await
}

/// `GET /v1/Services/{ChatServiceSid}/Media/{Sid}`: the Media resource.
/// Errors: 404 when the service has no such item.
pub async fn fetch(
    State(state): State<AppState>,
    scope: Scope,
    UrlPath(path): UrlPath<Vec<(String, String)>>,
    Query(p): Query,
) -> Result<Json<Value>, ApiError> {
    p.finish()?;
    let (_, record) = load(&state, &scope, &path).await?;
    Ok(Json(render(&state, &record)))
}

/// `GET /v1/Services/{ChatServiceSid}/Media/{Sid}/Content`: the bytes,
/// with their content type (and `nosniff`, so a browser never guesses
/// another). Errors: 404 when the service has no such item; 500 when the
/// stored bytes fail their hash check.
pub async fn content(
    State(state): State<AppState>,
    scope: Scope,
    UrlPath(path): UrlPath<Vec<(String, String)>>,
    Query(p): Query,
) -> Result<Response, ApiError> {
    p.finish()?;
    let (store, record) = load(&state, &scope, &path).await?;
    let content_type = HeaderValue::from_str(&record.content_type).map_err(ApiError::internal)?;
    let bytes = blocking(move || Ok(store.content(&record)?)).await?;
    Ok((
        [
            (header::CONTENT_TYPE, content_type),
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
        ],
        bytes,
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service() -> ServiceSid {
        ServiceSid::derive(b"media test")
    }

    #[test]
    fn an_item_round_trips_and_the_same_upload_is_the_same_item() {
        let dir = tempfile::tempdir().unwrap();
        let store = MediaStore::new(dir.path());
        let a = store
            .put(service(), "image/png", Some("a.png"), b"png bytes", 1)
            .unwrap();
        let again = store
            .put(service(), "image/png", Some("a.png"), b"png bytes", 2)
            .unwrap();
        assert_eq!(a, again, "a repeated upload is the first item");
        assert_eq!(store.get(&service(), &a.sid).unwrap(), a);
        assert_eq!(store.content(&a).unwrap(), b"png bytes");
        let other = ServiceSid::derive(b"other");
        assert!(matches!(
            store.get(&other, &a.sid),
            Err(MediaError::NotFound(_))
        ));
    }

    #[test]
    fn damaged_bytes_are_an_error_not_served() {
        let dir = tempfile::tempdir().unwrap();
        let store = MediaStore::new(dir.path());
        let a = store
            .put(service(), "text/plain", None, b"hello", 1)
            .unwrap();
        std::fs::write(store.blob_path(&a.blake3), b"hellO").unwrap();
        assert!(matches!(store.content(&a), Err(MediaError::Corrupt(_))));
        // Uploading the same bytes again heals the copy.
        assert_eq!(
            store
                .put(service(), "text/plain", None, b"hello", 2)
                .unwrap(),
            a
        );
        assert_eq!(store.content(&a).unwrap(), b"hello");
    }

    #[test]
    fn limits_and_content_types_are_checked() {
        let dir = tempfile::tempdir().unwrap();
        let store = MediaStore::new(dir.path());
        let big = vec![0u8; MEDIA_BYTES_MAX + 1];
        assert!(matches!(
            store.put(service(), "image/png", None, &big, 1),
            Err(MediaError::TooLarge { .. })
        ));
        assert!(matches!(
            store.put(service(), "image/png", None, b"", 1),
            Err(MediaError::Empty)
        ));
        assert!(matches!(
            store.put(service(), "text/html", None, b"<script>", 1),
            Err(MediaError::ContentType(_))
        ));
        assert!(matches!(
            store.put(service(), "image/png", Some("../x"), b"x", 1),
            Err(MediaError::Filename(_))
        ));
        assert!(
            store
                .put(service(), "Image/PNG; q=1", None, b"x", 1)
                .is_ok(),
            "types compare without parameters, case-insensitively"
        );
    }
}
