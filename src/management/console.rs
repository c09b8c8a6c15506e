//! The web console: three static files built into the binary (`console/index.html`,
//! `console.js`, `console.css`), served on the management port at `/` (and `/index.html`),
//! `/console.js` and `/console.css`. No external assets, no build step.
//!
//! The files need no credentials: the page asks for a user and password and sends them, as
//! HTTP basic auth, with every `/api` request it makes; the API checks them as for any client.
//! This module owns only the files and their headers; what the page does is in `console.js`.

use bytes::Bytes;
use http_body_util::Full;
use hyper::Response;
use hyper::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, HeaderValue, X_CONTENT_TYPE_OPTIONS,
};

use super::http::HttpResponse;

const INDEX_HTML: &str = include_str!("console/index.html");
const CONSOLE_JS: &str = include_str!("console/console.js");
const CONSOLE_CSS: &str = include_str!("console/console.css");

/// The page may load scripts, styles and data from its own origin only, so nothing it shows
/// can come from elsewhere; no framing, against clickjacking of its forms.
const SOURCES_ALLOWED: &str = "default-src 'self'; frame-ancestors 'none'";

/// The asset at `path` (the request's percent-decoded segments), if it is one.
pub fn asset(path: &[String]) -> Option<HttpResponse> {
    let segments: Vec<&str> = path.iter().map(String::as_str).collect();
    let (content_type, body) = match segments.as_slice() {
        [] | ["index.html"] => ("text/html; charset=utf-8", INDEX_HTML),
        ["console.js"] => ("text/javascript; charset=utf-8", CONSOLE_JS),
        ["console.css"] => ("text/css; charset=utf-8", CONSOLE_CSS),
        _ => return None,
    };
    Some(response(content_type, body))
}

fn response(content_type: &'static str, body: &'static str) -> HttpResponse {
    let mut response = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    // The files change with the binary; a browser revalidates rather than keep an old console.
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(
        CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(SOURCES_ALLOWED),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(segments: &[&str]) -> Vec<String> {
        segments.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn only_the_console_files_are_assets() {
        assert!(asset(&path(&[])).is_some());
        assert!(asset(&path(&["index.html"])).is_some());
        assert!(asset(&path(&["console.js"])).is_some());
        assert!(asset(&path(&["console.css"])).is_some());
        assert!(asset(&path(&["console", "index.html"])).is_none());
        assert!(asset(&path(&["favicon.ico"])).is_none());
    }
}
