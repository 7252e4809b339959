//! Request parameters: Twilio's form-encoded bodies and query strings.
//!
//! Twilio's API takes `application/x-www-form-urlencoded` bodies with
//! dotted keys (`MessagingBinding.Address`, `Timers.Inactive`) and repeated
//! keys for arrays (`MediaSid=ME1&MediaSid=ME2`). [`Params`] holds the pairs
//! in order and is consumed by name: each handler takes exactly the
//! parameters its resource documents, then calls [`Params::finish`], which
//! refuses any parameter left over. So a misspelt or unsupported parameter
//! is a 400 naming it, never silently ignored, and the handler has refused
//! the request before anything is written.

use std::str::FromStr;

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};

use crate::error::{ApiError, CODE_INVALID_PARAMETER};

/// The largest request body read, in bytes. Twilio's largest documented
/// parameter values (a 32 KiB body plus 16 KiB attributes, ten media SIDs)
/// fit with room to spare; a bigger body is refused with 413 before it is
/// parsed.
pub const REQUEST_BODY_BYTES_MAX: usize = 256 * 1024;

/// The parameters of one request, consumed by name.
#[derive(Debug, Default)]
pub struct Params {
    pairs: Vec<(String, String)>,
    taken: Vec<bool>,
}

impl Params {
    /// Parses `application/x-www-form-urlencoded` bytes (a body or a query
    /// string). Percent-decoding never fails: invalid UTF-8 becomes U+FFFD,
    /// as browsers and Twilio do.
    pub fn parse(bytes: &[u8]) -> Params {
        let pairs: Vec<(String, String)> = form_urlencoded::parse(bytes).into_owned().collect();
        let taken = vec![false; pairs.len()];
        Params { pairs, taken }
    }

    /// Every (name, value) pair as received, taken or not: what a request
    /// signature (`X-Twilio-Signature`) is computed over.
    pub fn pairs(&self) -> &[(String, String)] {
        &self.pairs
    }

    /// The single value of `name`, if given. Errors (400): given twice.
    pub fn opt(&mut self, name: &str) -> Result<Option<String>, ApiError> {
        let mut found: Option<String> = None;
        for (i, (k, v)) in self.pairs.iter().enumerate() {
            if k == name {
                if found.is_some() {
                    return Err(ApiError::invalid(name, "given more than once"));
                }
                self.taken[i] = true;
                found = Some(v.clone());
            }
        }
        Ok(found)
    }

    /// The single value of `name`. Errors (400): missing or given twice.
    pub fn req(&mut self, name: &str) -> Result<String, ApiError> {
        self.opt(name)?.ok_or_else(|| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                CODE_INVALID_PARAMETER,
                format!("Missing required parameter {name} in the post body"),
            )
        })
    }

    /// Every value of the repeated key `name`, in order (empty if absent).
    pub fn all(&mut self, name: &str) -> Vec<String> {
        let mut out = Vec::new();
        for (i, (k, v)) in self.pairs.iter().enumerate() {
            if k == name {
                self.taken[i] = true;
                out.push(v.clone());
            }
        }
        out
    }

    /// The value of `name` parsed as `T` (a SID, a number, an enum).
    /// Errors (400): given twice, or not a valid `T`, naming the parameter.
    pub fn opt_parse<T>(&mut self, name: &str) -> Result<Option<T>, ApiError>
    where
        T: FromStr,
        T::Err: std::fmt::Display,
    {
        self.opt(name)?
            .map(|v| v.parse::<T>().map_err(|e| ApiError::invalid(name, e)))
            .transpose()
    }

    /// `true`/`false` (Twilio's booleans; case-insensitive). Errors (400):
    /// given twice or neither word.
    pub fn opt_bool(&mut self, name: &str) -> Result<Option<bool>, ApiError> {
        self.opt(name)?
            .map(|v| match v.to_ascii_lowercase().as_str() {
                "true" => Ok(true),
                "false" => Ok(false),
                _ => Err(ApiError::invalid(
                    name,
                    format!("{v:?} is not true or false"),
                )),
            })
            .transpose()
    }

    /// Refuses (400, naming it) the first of `names` that was given:
    /// parameters Twilio documents for an operation that this server does
    /// not support, answered instead of silently ignored. `why` says why.
    pub fn refuse(&mut self, names: &[&str], why: &str) -> Result<(), ApiError> {
        for name in names {
            if !self.all(name).is_empty() {
                return Err(ApiError::invalid(name, why));
            }
        }
        Ok(())
    }

    /// Ends parsing. Errors (400): a parameter no handler step took,
    /// named in the message.
    pub fn finish(self) -> Result<(), ApiError> {
        match self
            .pairs
            .iter()
            .zip(&self.taken)
            .find(|(_, taken)| !**taken)
        {
            None => Ok(()),
            Some(((k, _), _)) => Err(ApiError::invalid(k, "unknown parameter")),
        }
    }
}

/// A form-encoded request body as [`Params`]. An empty body is no
/// parameters. Errors: 415 for another content type with a body, 413 over
/// [`REQUEST_BODY_BYTES_MAX`].
pub struct Form(pub Params);

impl<S: Send + Sync> FromRequest<S> for Form {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let form_typed = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|v| {
                v.split(';')
                    .next()
                    .unwrap_or("")
                    .trim()
                    .eq_ignore_ascii_case("application/x-www-form-urlencoded")
            });
        let bytes = Bytes::from_request(req, state).await.map_err(|e| {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                CODE_INVALID_PARAMETER,
                format!("request body refused: {e} (at most {REQUEST_BODY_BYTES_MAX} bytes)"),
            )
        })?;
        if !bytes.is_empty() && form_typed == Some(false) {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                CODE_INVALID_PARAMETER,
                "send parameters as application/x-www-form-urlencoded",
            ));
        }
        Ok(Form(Params::parse(&bytes)))
    }
}

/// The query string as [`Params`].
pub struct Query(pub Params);

impl<S: Send + Sync> FromRequestParts<S> for Query {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        Ok(Query(Params::parse(
            parts.uri.query().unwrap_or("").as_bytes(),
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dotted_and_repeated_keys_are_read_and_leftovers_refused() {
        let mut p = Params::parse(b"MessagingBinding.Address=%2B1555&MediaSid=a&MediaSid=b&X=1");
        assert_eq!(
            p.opt("MessagingBinding.Address").unwrap().as_deref(),
            Some("+1555")
        );
        assert_eq!(p.all("MediaSid"), vec!["a", "b"]);
        let err = p.finish().unwrap_err();
        assert_eq!(err.status, StatusCode::BAD_REQUEST);
        assert!(err.message.contains('X'), "{}", err.message);
    }

    #[test]
    fn a_single_valued_parameter_given_twice_is_refused() {
        let mut p = Params::parse(b"FriendlyName=a&FriendlyName=b");
        assert_eq!(
            p.opt("FriendlyName").unwrap_err().code,
            CODE_INVALID_PARAMETER
        );
    }

    #[test]
    fn booleans_are_true_or_false_only() {
        let mut p = Params::parse(b"A=TRUE&B=yes");
        assert_eq!(p.opt_bool("A").unwrap(), Some(true));
        assert!(p.opt_bool("B").is_err());
    }
}
