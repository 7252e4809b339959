//! Twilio's list paging: `PageSize`, `Page` and `PageToken` in, a `meta`
//! object with absolute `first_page_url` / `url` / `next_page_url` out.
//!
//! Pages are cursor-based underneath (a projections page token names the
//! last item served), so walking a list while it grows skips nothing and
//! serves nothing twice. `Page` is only a counter carried along for the
//! helper libraries; a request with `Page` > 0 and no `PageToken` is
//! refused, since there is no cursor to resume from. `previous_page_url` is
//! always null: the cursors only go forward, and Twilio's helper libraries
//! never follow it when iterating.

use events::limits::{PAGE_SIZE_DEFAULT, PAGE_SIZE_MAX};
use projections::{Page, PageRequest};
use serde_json::{json, Value};

use crate::error::ApiError;
use crate::params::Params;

/// The paging parameters of one list request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paging {
    /// `PageSize`, 1..=[`PAGE_SIZE_MAX`]; [`PAGE_SIZE_DEFAULT`] when absent.
    pub page_size: usize,
    /// `Page`, the page number (0 first).
    pub page: u64,
    /// `PageToken`, the cursor from the previous page's `next_page_url`.
    pub token: Option<String>,
}

impl Paging {
    /// Takes `PageSize`, `Page` and `PageToken` from `params`. Errors
    /// (400): a size outside 1..=[`PAGE_SIZE_MAX`], a non-number, or
    /// `Page` > 0 without a `PageToken`.
    pub fn take(params: &mut Params) -> Result<Paging, ApiError> {
        let page_size = params
            .opt_parse::<usize>("PageSize")?
            .unwrap_or(PAGE_SIZE_DEFAULT);
        if page_size == 0 || page_size > PAGE_SIZE_MAX {
            return Err(ApiError::invalid(
                "PageSize",
                format!("{page_size} is outside 1..={PAGE_SIZE_MAX}"),
            ));
        }
        let page = params.opt_parse::<u64>("Page")?.unwrap_or(0);
        let token = params.opt("PageToken")?;
        if page > 0 && token.is_none() {
            return Err(ApiError::invalid(
                "Page",
                "pages after the first are reached by the PageToken of next_page_url",
            ));
        }
        Ok(Paging {
            page_size,
            page,
            token,
        })
    }

    /// The projections request for this page.
    pub fn request(&self) -> PageRequest {
        PageRequest {
            page_size: Some(self.page_size),
            page_token: self.token.clone(),
        }
    }

    /// This page of a list the projections do not page (small lists the
    /// server gathers itself, such as a conversation's webhooks or the
    /// account's address configurations across services): `items` in
    /// ascending key order, the page token being the key of the last item
    /// served, so a walk stays exact while items are added. Errors (400):
    /// a `PageToken` that is not a key of this list's kind.
    pub fn page_by_key<K, T>(&self, items: Vec<(K, T)>) -> Result<Page<T>, ApiError>
    where
        K: Ord + std::str::FromStr + std::fmt::Display,
        K::Err: std::fmt::Display,
    {
        let after: Option<K> = self
            .token
            .as_deref()
            .map(|t| t.parse().map_err(|e| ApiError::invalid("PageToken", e)))
            .transpose()?;
        debug_assert!(
            items.windows(2).all(|w| w[0].0 < w[1].0),
            "items in key order"
        );
        let mut rest = items
            .into_iter()
            .filter(|(k, _)| after.as_ref().is_none_or(|a| k > a))
            .peekable();
        let mut page = Vec::new();
        let mut last = None;
        while page.len() < self.page_size {
            let Some((k, item)) = rest.next() else { break };
            page.push(item);
            last = Some(k);
        }
        let next_page_token = match (rest.peek(), last) {
            (Some(_), Some(last)) => Some(last.to_string()),
            _ => None,
        };
        Ok(Page {
            items: page,
            next_page_token,
        })
    }

    /// The list answer: `{ key: items, "meta": … }`. `list_url` is the
    /// absolute URL of the list without a query; `filters` are the
    /// request's other query parameters, kept in every page URL.
    pub fn answer<T>(
        &self,
        key: &str,
        list_url: &str,
        filters: &[(&str, String)],
        page: &Page<T>,
        render: impl Fn(&T) -> Value,
    ) -> Value {
        let url = |page_no: u64, token: Option<&str>| {
            let mut q = form_urlencoded::Serializer::new(String::new());
            for (k, v) in filters {
                q.append_pair(k, v);
            }
            q.append_pair("PageSize", &self.page_size.to_string());
            q.append_pair("Page", &page_no.to_string());
            if let Some(t) = token {
                q.append_pair("PageToken", t);
            }
            format!("{list_url}?{}", q.finish())
        };
        let items: Vec<Value> = page.items.iter().map(render).collect();
        json!({
            key: items,
            "meta": {
                "page": self.page,
                "page_size": self.page_size,
                "first_page_url": url(0, None),
                "previous_page_url": Value::Null,
                "url": url(self.page, self.token.as_deref()),
                "next_page_url": page
                    .next_page_token
                    .as_deref()
                    .map(|t| url(self.page + 1, Some(t))),
                "key": key,
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paging(page_size: usize, token: Option<&str>) -> Paging {
        Paging {
            page_size,
            page: 0,
            token: token.map(str::to_owned),
        }
    }

    #[test]
    fn pages_by_key_walk_every_item_once_and_end_without_a_token() {
        let items = || (1..=5u32).map(|k| (k, k * 10)).collect::<Vec<_>>();
        let first = paging(2, None).page_by_key(items()).unwrap();
        assert_eq!(first.items, vec![10, 20]);
        assert_eq!(first.next_page_token.as_deref(), Some("2"));
        let second = paging(2, Some("2")).page_by_key(items()).unwrap();
        assert_eq!(second.items, vec![30, 40]);
        let last = paging(2, Some("4")).page_by_key(items()).unwrap();
        assert_eq!(last.items, vec![50]);
        assert_eq!(last.next_page_token, None);
        // A page that ends exactly at the last item has no next page.
        let exact = paging(5, None).page_by_key(items()).unwrap();
        assert_eq!(exact.items.len(), 5);
        assert_eq!(exact.next_page_token, None);
    }

    #[test]
    fn a_page_token_that_is_not_a_key_is_refused() {
        let err = paging(2, Some("garbage"))
            .page_by_key(vec![(1u32, ())])
            .unwrap_err();
        assert_eq!(err.code, crate::error::CODE_INVALID_PARAMETER);
        assert!(err.message.contains("PageToken"), "{}", err.message);
    }
}
