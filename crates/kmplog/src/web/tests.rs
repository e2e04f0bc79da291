//! The page and its assets through the API's router.

use std::sync::Arc;

use axum::body::Body;
use axum::http::Request;
use tower::ServiceExt;

use super::*;
use crate::api::router;
use crate::bus::events::EventRouter;

fn state(token: Option<&str>) -> ApiState {
    let (live, _) = tokio::sync::broadcast::channel(1);
    let mut state = ApiState::new(
        EventRouter::from_routes([]),
        Vec::new(),
        Arc::default(),
        live,
    );
    state.token = token.map(Arc::from);
    state
}

async fn get(state: &ApiState, uri: &str, if_none_match: Option<&str>) -> Response {
    let mut request = Request::get(uri);
    if let Some(etag) = if_none_match {
        request = request.header(header::IF_NONE_MATCH, etag);
    }
    router(state.clone())
        .oneshot(request.body(Body::empty()).unwrap())
        .await
        .unwrap()
}

fn header_of(response: &Response, name: header::HeaderName) -> &str {
    response
        .headers()
        .get(name)
        .map_or("", |value| value.to_str().unwrap())
}

#[tokio::test]
async fn the_page_is_html_with_a_policy_that_allows_this_origin_only() {
    let response = get(&state(None), "/", None).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        header_of(&response, header::CONTENT_TYPE),
        "text/html; charset=utf-8"
    );
    let policy = header_of(&response, header::CONTENT_SECURITY_POLICY);
    assert!(policy.starts_with("default-src 'self'"), "{policy}");
    assert!(!policy.contains("unsafe-inline"), "{policy}");
    assert_eq!(header_of(&response, header::CACHE_CONTROL), "no-cache");
    let body = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    assert_eq!(body, PAGE.as_bytes());
}

#[tokio::test]
async fn every_file_the_page_names_is_served_with_its_type() {
    let state = state(None);
    // The page names its assets as src="/assets/..." or href="/assets/...".
    let named: Vec<&str> = PAGE
        .split("\"/assets/")
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .collect();
    assert!(named.len() >= 5, "{named:?}");
    for path in named {
        let response = get(&state, &format!("/assets/{path}"), None).await;
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        let expected = match path.rsplit('.').next() {
            Some("js") => "text/javascript; charset=utf-8",
            Some("css") => "text/css; charset=utf-8",
            Some("svg") => "image/svg+xml",
            _ => "text/plain; charset=utf-8",
        };
        assert_eq!(
            header_of(&response, header::CONTENT_TYPE),
            expected,
            "{path}"
        );
        assert_eq!(
            header_of(&response, header::X_CONTENT_TYPE_OPTIONS),
            "nosniff"
        );
    }
    let response = get(&state, "/assets/nothing.js", None).await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn an_unchanged_file_is_304_and_a_changed_one_is_sent() {
    let state = state(None);
    let first = get(&state, "/assets/app.js", None).await;
    let etag = header_of(&first, header::ETAG).to_owned();
    assert!(
        etag.starts_with(&format!("\"{}-", env!("CARGO_PKG_VERSION"))),
        "{etag}"
    );
    let again = get(&state, "/assets/app.js", Some(&etag)).await;
    assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
    assert_eq!(header_of(&again, header::ETAG), etag);
    let body = axum::body::to_bytes(again.into_body(), usize::MAX)
        .await
        .unwrap();
    assert!(body.is_empty());
    // Another file's tag (an older version, as far as this file knows).
    let css = get(&state, "/assets/app.css", None).await;
    let other = header_of(&css, header::ETAG).to_owned();
    assert_ne!(other, etag);
    let stale = get(&state, "/assets/app.js", Some(&other)).await;
    assert_eq!(stale.status(), StatusCode::OK);
}

#[tokio::test]
async fn the_page_opens_without_the_token_and_the_api_still_needs_it() {
    let state = state(Some("secret"));
    assert_eq!(get(&state, "/", None).await.status(), StatusCode::OK);
    assert_eq!(
        get(&state, "/assets/app.js", None).await.status(),
        StatusCode::OK
    );
    assert_eq!(
        get(&state, "/api/buses", None).await.status(),
        StatusCode::UNAUTHORIZED
    );
}

#[test]
fn the_vendored_plot_library_is_the_version_its_readme_names() {
    let readme = include_str!("assets/vendor/README.md");
    let script = std::str::from_utf8(
        ASSETS
            .iter()
            .find(|asset| asset.path == "vendor/uPlot.iife.min.js")
            .unwrap()
            .body,
    )
    .unwrap();
    let version = script
        .split("(v")
        .nth(1)
        .and_then(|rest| rest.split(')').next())
        .unwrap();
    assert!(
        readme.contains(&format!("uPlot {version}")),
        "uPlot {version}"
    );
    assert!(include_str!("assets/vendor/uPlot.LICENSE").contains("MIT License"));
}
