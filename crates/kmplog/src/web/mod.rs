//! The web console: one page, `/`, with its assets under `/assets/`, served
//! by the API of `kmplog run` and `kmplog demo` (http://127.0.0.1:7064/ by
//! default). Plain HTML, CSS and JavaScript, no build step, every file
//! embedded in the binary, so the page works offline and is the same as
//! the binary that serves it. Plots use uPlot, vendored under
//! `assets/vendor/` with its licence.
//!
//! The page reads the API as any client does (`/api/buses`,
//! `/api/readings/stream`, `/api/history`). The page and its assets hold no
//! data and are served without the token, since a browser cannot add a
//! bearer header to the page it opens; every API call the page makes still
//! needs it.
//!
//! Every answer carries an ETag (the version of kmplog and a hash of the
//! file) and `Cache-Control: no-cache`: a browser asks again each time and
//! gets `304 Not Modified` while the file is unchanged, and a new binary's
//! files at once. The page's Content-Security-Policy allows nothing from
//! elsewhere: scripts, styles and connections come from the logger only.

use std::hash::{Hash, Hasher};
use std::sync::LazyLock;

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::api::{ApiError, ApiState};

/// An embedded file.
struct Asset {
    /// Its path under `/assets/`.
    path: &'static str,
    content_type: &'static str,
    body: &'static [u8],
}

/// The page itself.
const PAGE: &str = include_str!("assets/index.html");

/// What `/assets/` serves.
const ASSETS: &[Asset] = &[
    Asset {
        path: "app.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("assets/app.js"),
    },
    Asset {
        path: "editor.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("assets/editor.js"),
    },
    Asset {
        path: "app.css",
        content_type: "text/css; charset=utf-8",
        body: include_bytes!("assets/app.css"),
    },
    Asset {
        path: "icon.svg",
        content_type: "image/svg+xml",
        body: include_bytes!("assets/icon.svg"),
    },
    Asset {
        path: "vendor/uPlot.iife.min.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("assets/vendor/uPlot.iife.min.js"),
    },
    Asset {
        path: "vendor/uPlot.min.css",
        content_type: "text/css; charset=utf-8",
        body: include_bytes!("assets/vendor/uPlot.min.css"),
    },
    Asset {
        path: "vendor/uPlot.LICENSE",
        content_type: "text/plain; charset=utf-8",
        body: include_bytes!("assets/vendor/uPlot.LICENSE"),
    },
];

/// The page's policy: everything from this origin only, no frames, no
/// plugins, no forms elsewhere.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; img-src 'self' data:; \
     object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// The ETag of the page and of each asset, in the order of [`ASSETS`].
static ETAGS: LazyLock<(String, Vec<String>)> = LazyLock::new(|| {
    let tag = |body: &[u8]| {
        // A fixed-key hash: the same file in the same binary, the same tag.
        let mut hasher = std::hash::DefaultHasher::new();
        body.hash(&mut hasher);
        format!("\"{}-{:016x}\"", env!("CARGO_PKG_VERSION"), hasher.finish())
    };
    (
        tag(PAGE.as_bytes()),
        ASSETS.iter().map(|asset| tag(asset.body)).collect(),
    )
});

/// The page at `/` and its assets at `/assets/{path}`.
pub fn router() -> Router<ApiState> {
    Router::new()
        .route("/", get(page))
        .route("/assets/{*path}", get(asset))
}

async fn page(headers: HeaderMap) -> Response {
    let mut response = cached(
        &headers,
        &ETAGS.0,
        "text/html; charset=utf-8",
        PAGE.as_bytes(),
    );
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    response
}

async fn asset(Path(path): Path<String>, headers: HeaderMap) -> Response {
    match ASSETS
        .iter()
        .zip(&ETAGS.1)
        .find(|(asset, _)| asset.path == path)
    {
        Some((asset, etag)) => cached(&headers, etag, asset.content_type, asset.body),
        None => ApiError::new(
            StatusCode::NOT_FOUND,
            format!("no such file: /assets/{path}; the web console is at /"),
        )
        .into_response(),
    }
}

/// `body` with its type and ETag, or `304 Not Modified` when the request
/// already has this version.
fn cached(
    request: &HeaderMap,
    etag: &str,
    content_type: &'static str,
    body: &'static [u8],
) -> Response {
    let has_it = request
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|given| given.trim() == etag || given.trim() == "*");
    let mut response = if has_it {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        (
            [
                (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
                (
                    header::X_CONTENT_TYPE_OPTIONS,
                    HeaderValue::from_static("nosniff"),
                ),
            ],
            body,
        )
            .into_response()
    };
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    if let Ok(etag) = HeaderValue::from_str(etag) {
        headers.insert(header::ETAG, etag);
    }
    response
}

#[cfg(test)]
mod tests;
