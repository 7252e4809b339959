//! A [`ChannelAdapter`] that POSTs each outbound message as JSON to a URL
//! (the host's own SMS gateway, a provider's bridge, …).

use std::time::Duration;

use super::{ChannelAdapter, OutboundMessage, SendError, SendReceipt};

/// The default time limit for one webhook call, connect to last byte of
/// the response: 10 seconds.
pub const WEBHOOK_TIMEOUT_DEFAULT: Duration = Duration::from_secs(10);

/// The most bytes of a webhook's response body that are read.
pub const WEBHOOK_RESPONSE_BYTES_MAX: u64 = 64 * 1024;

/// POSTs each [`OutboundMessage`] as a JSON object (its fields, SIDs as
/// strings) to a configured URL, with headers `Content-Type:
/// application/json` and `Idempotency-Key: <message_sid>/<participant_sid>`
/// (plus any added with [`WebhookAdapter::header`]).
///
/// Outcomes:
/// - a 2xx response is a success; if its body is a JSON object with a
///   string `channel_message_sid` (or `sid`), that becomes the receipt's
///   channel message id;
/// - 408, 429 and 5xx responses, timeouts and connection errors are
///   transient failures (retried with backoff);
/// - any other status is a permanent failure whose error code is the
///   status.
///
/// HTTPS needs the crate feature `webhook-tls`; plain `http://` URLs work
/// without it.
pub struct WebhookAdapter {
    url: String,
    headers: Vec<(String, String)>,
    agent: ureq::Agent,
}

impl std::fmt::Debug for WebhookAdapter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookAdapter")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

impl WebhookAdapter {
    /// An adapter posting to `url` with [`WEBHOOK_TIMEOUT_DEFAULT`].
    pub fn new(url: impl Into<String>) -> Self {
        Self::with_timeout(url, WEBHOOK_TIMEOUT_DEFAULT)
    }

    /// An adapter posting to `url`, giving each call at most `timeout`.
    pub fn with_timeout(url: impl Into<String>, timeout: Duration) -> Self {
        let config = ureq::Agent::config_builder()
            .timeout_global(Some(timeout))
            .http_status_as_error(false)
            .build();
        WebhookAdapter {
            url: url.into(),
            headers: Vec::new(),
            agent: ureq::Agent::new_with_config(config),
        }
    }

    /// Adds a header sent with every call (e.g. `Authorization`).
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// The URL posted to.
    pub fn url(&self) -> &str {
        &self.url
    }
}

impl ChannelAdapter for WebhookAdapter {
    fn send(&self, message: &OutboundMessage) -> Result<SendReceipt, SendError> {
        let body = serde_json::to_string(message)
            .map_err(|e| SendError::permanent(format!("encoding the webhook body: {e}"), None))?;
        let mut request = self
            .agent
            .post(&self.url)
            .header("Content-Type", "application/json")
            .header("Idempotency-Key", message.delivery_id.to_string());
        for (name, value) in &self.headers {
            request = request.header(name, value);
        }
        let mut response = match request.send(body) {
            Ok(r) => r,
            Err(ureq::Error::BadUri(e)) => {
                return Err(SendError::permanent(format!("bad webhook URL: {e}"), None))
            }
            Err(e) => return Err(SendError::transient(format!("webhook call failed: {e}"))),
        };
        let status = response.status().as_u16();
        let text = response
            .body_mut()
            .with_config()
            .limit(WEBHOOK_RESPONSE_BYTES_MAX)
            .read_to_string()
            .unwrap_or_default();
        match status {
            200..=299 => {
                let id = serde_json::from_str::<serde_json::Value>(&text)
                    .ok()
                    .and_then(|v| {
                        v.get("channel_message_sid")
                            .or_else(|| v.get("sid"))
                            .and_then(|s| s.as_str())
                            .map(str::to_string)
                    });
                Ok(SendReceipt {
                    channel_message_sid: id,
                })
            }
            408 | 429 | 500..=599 => Err(SendError {
                message: format!("webhook answered {status}: {}", snippet(&text)),
                error_code: Some(u32::from(status)),
                permanent: false,
            }),
            _ => Err(SendError::permanent(
                format!("webhook answered {status}: {}", snippet(&text)),
                Some(u32::from(status)),
            )),
        }
    }
}

/// The start of a response body, for error messages.
fn snippet(text: &str) -> &str {
    const SNIPPET_CHARS_MAX: usize = 200;
    match text.char_indices().nth(SNIPPET_CHARS_MAX) {
        Some((i, _)) => &text[..i],
        None => text,
    }
}
