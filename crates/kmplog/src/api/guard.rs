//! What every request passes before a handler sees it, each refusal a JSON
//! error like the handlers' own:
//!
//! - a request head within bounds (414 for a long URI, 431 for large
//!   headers) and a path and query that are UTF-8 once percent-decoded;
//! - a `Host` the API answers to (421 otherwise): its bound address, the
//!   loopback names for a loopback bind, any IP address for a wildcard
//!   bind, and the names given with `--api-name`. A web page that points a
//!   name of its own at 127.0.0.1 (DNS rebinding) sends that name, so it
//!   is refused though the browser thinks it talks to its own site;
//! - for a request that changes state (anything but GET, HEAD, OPTIONS), no
//!   `Origin` or the API's own (403 otherwise): a foreign page may make the
//!   browser send a POST, and `Origin` says whose page it was. `kmplog
//!   trigger`, curl and scripts send none.

use std::net::IpAddr;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use percent_encoding::percent_decode_str;

use super::{ApiError, ApiState};

/// The longest URI answered; longer ones get 414.
pub const MAX_URI_BYTES: usize = 8 * 1024;
/// The most header bytes (names, values) answered; more get 431.
pub const MAX_HEADER_BYTES: usize = 16 * 1024;

/// Refuses what [the module](self) says, or runs the request.
pub async fn screen(State(state): State<ApiState>, request: Request, next: Next) -> Response {
    match check(&state, request.method(), request.uri(), request.headers()) {
        Ok(()) => next.run(request).await,
        Err(error) => error.into_response(),
    }
}

fn check(
    state: &ApiState,
    method: &Method,
    uri: &axum::http::Uri,
    headers: &HeaderMap,
) -> Result<(), ApiError> {
    let uri_length = uri.path_and_query().map_or(0, |path| path.as_str().len());
    if uri_length > MAX_URI_BYTES {
        return Err(ApiError::new(
            StatusCode::URI_TOO_LONG,
            format!(
                "the URI is {uri_length} bytes, more than the {MAX_URI_BYTES} this API reads; narrow the query with fewer or shorter filters"
            ),
        ));
    }
    let header_bytes: usize = headers
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len() + 4)
        .sum();
    if header_bytes > MAX_HEADER_BYTES {
        return Err(ApiError::new(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            format!(
                "the headers are {header_bytes} bytes, more than the {MAX_HEADER_BYTES} this API reads; send fewer or shorter headers"
            ),
        ));
    }
    for (part, text) in [("path", uri.path()), ("query", uri.query().unwrap_or(""))] {
        if percent_decode_str(text).decode_utf8().is_err() {
            return Err(ApiError::bad_request(format!(
                "the {part} '{text}' is not UTF-8 once percent-decoded; encode text as UTF-8, such as %C3%A9 for é"
            )));
        }
    }
    let host = headers
        .get(header::HOST)
        .map(|host| host.to_str().unwrap_or("?"));
    // HTTP/1.0 clients may send no Host; a browser always sends one, so
    // its absence is no rebinding.
    if let Some(host) = host
        && !host_allowed(host_name(host), state)
    {
        return Err(ApiError::new(
            StatusCode::MISDIRECTED_REQUEST,
            format!(
                "this API does not answer to the host '{host}': it answers to {}; if it is reached by that name on purpose, \
                 start it with --api-name {}",
                answers_to(state),
                host_name(host)
            ),
        ));
    }
    if ![Method::GET, Method::HEAD, Method::OPTIONS].contains(method)
        && let Some(origin) = headers.get(header::ORIGIN)
    {
        let origin = origin.to_str().unwrap_or("?");
        if !own_origin(origin, host, state) {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                format!(
                    "refusing {method} from a page of {origin}: only the API's own pages may change state \
                     (kmplog trigger, curl and scripts send no Origin header and are let through)"
                ),
            ));
        }
    }
    Ok(())
}

/// The name or address of a `Host` value, without port or brackets,
/// lowercase: `[::1]:7064` is `::1`, `LocalHost.:80` is `localhost`.
fn host_name(host: &str) -> &str {
    let name = match host.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or(rest),
        None => host.rsplit_once(':').map_or(host, |(name, _)| name),
    };
    name.strip_suffix('.').unwrap_or(name)
}

/// Whether the API answers to `name` (a host without port).
fn host_allowed(name: &str, state: &ApiState) -> bool {
    let bind = state.bind.ip().to_canonical();
    if state
        .host_names
        .iter()
        .any(|allowed| allowed.eq_ignore_ascii_case(name))
    {
        return true;
    }
    if let Ok(ip) = name.parse::<IpAddr>() {
        let ip = ip.to_canonical();
        // An address cannot be rebound, and on a wildcard bind every
        // address of the machine reaches the API.
        return bind.is_unspecified() || ip == bind || (bind.is_loopback() && ip.is_loopback());
    }
    name.eq_ignore_ascii_case("localhost") && (bind.is_loopback() || bind.is_unspecified())
}

/// What the API answers to, for the 421 message.
fn answers_to(state: &ApiState) -> String {
    let bind = state.bind.ip().to_canonical();
    let mut names: Vec<String> = if bind.is_unspecified() {
        vec![
            "any IP address of this machine".to_owned(),
            "localhost".to_owned(),
        ]
    } else if bind.is_loopback() {
        vec![
            "localhost".to_owned(),
            "127.0.0.1".to_owned(),
            "[::1]".to_owned(),
        ]
    } else {
        vec![state.bind.ip().to_string()]
    };
    names.extend(state.host_names.iter().cloned());
    names.join(", ")
}

/// Whether `origin` (`http://host:port`) is the API's own: the host the
/// request was sent to, over http or https (behind a TLS proxy).
fn own_origin(origin: &str, host: Option<&str>, state: &ApiState) -> bool {
    let Some(authority) = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"))
    else {
        return false; // "null" (a sandboxed or file: page) and other schemes
    };
    match host {
        Some(host) => authority.eq_ignore_ascii_case(host),
        None => host_allowed(host_name(authority), state),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_names_lose_port_brackets_and_the_final_dot() {
        for (host, name) in [
            ("127.0.0.1:7064", "127.0.0.1"),
            ("[::1]:7064", "::1"),
            ("[::ffff:127.0.0.1]", "::ffff:127.0.0.1"),
            ("localhost.", "localhost"),
            ("kmplog.example.net:80", "kmplog.example.net"),
            ("kmplog", "kmplog"),
        ] {
            assert_eq!(host_name(host), name, "{host}");
        }
    }
}
