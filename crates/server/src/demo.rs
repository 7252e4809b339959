//! The browser demo: `GET /demo`, one static page (`demo.html`, embedded
//! with `include_str!`: no build step, no external script or CDN) where two
//! people chat in one conversation live, with typing and read state.
//!
//! It uses only the public API: `POST /v1/Tokens` for its access token,
//! `POST /v1/Conversations` and `…/Participants` to make and join the
//! conversation, then the WebSocket (`/v1/Realtime`) for everything live:
//! events, sending, typing, read horizons and history.
//!
//! Credentials: the page holds none. The user pastes an API key SID and
//! secret (printed on the server's first start) into its form, or passes
//! them in the URL fragment (`/demo#key=SK…&secret=…&identity=alice&
//! conversation=demo&join=1`; a fragment is never sent to any server). So
//! serving the page exposes nothing: it is static, and every request it
//! makes is authenticated like any other client's. The page sends the
//! secret only to this server (same origin), for the token and the two
//! REST calls.

use axum::http::header;
use axum::response::IntoResponse;

/// The demo page's path.
pub const DEMO_PATH: &str = "/demo";

/// The page, with a content security policy that allows only this origin
/// (scripts inline in the page itself, connections to this server).
pub async fn page() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self' ws: wss:; base-uri 'none'; form-action 'none'",
            ),
            (header::CACHE_CONTROL, "no-store"),
        ],
        include_str!("demo.html"),
    )
}
