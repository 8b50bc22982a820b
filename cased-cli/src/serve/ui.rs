//! Mission Control's pages: one HTML page, one script and one stylesheet, embedded in the binary
//! (no CDN, works offline). The page shell holds no data; the script reads the API with the
//! read key the person enters (kept in the tab's `sessionStorage`), so the pages need no auth of
//! their own. A strict Content-Security-Policy allows only these files' script.

use axum::http::header;
use axum::response::{IntoResponse, Response};

const INDEX: &str = include_str!("ui/index.html");
const SCRIPT: &str = include_str!("ui/app.js");
const STYLE: &str = include_str!("ui/app.css");

/// Scripts only from this server, no inline script, no plugins, not framable; inline styles are
/// allowed for the report shown in a sandboxed frame.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
    img-src 'self' data:; connect-src 'self'; frame-src 'self'; base-uri 'none'; \
    form-action 'self'; frame-ancestors 'none'";

fn page(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CONTENT_SECURITY_POLICY, CSP),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::REFERRER_POLICY, "no-referrer"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

/// `/` and `/deployments/{id}`: the same page; the script shows the board or one deployment.
pub(super) async fn index() -> Response {
    page("text/html; charset=utf-8", INDEX)
}

pub(super) async fn script() -> Response {
    page("text/javascript; charset=utf-8", SCRIPT)
}

pub(super) async fn style() -> Response {
    page("text/css; charset=utf-8", STYLE)
}
