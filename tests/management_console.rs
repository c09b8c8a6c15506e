//! The web console's static files on the management port, fetched as a browser does (no
//! credentials): their content types and caching, that the page loads nothing from another
//! origin, and that the API and unknown paths are answered as before. What the page does in a
//! browser is checked by conformance/browser/test_console.py (headless Chromium).

mod common;

use common::Broker;
use common::management::Api;
use reqwest::StatusCode;
use reqwest::header::HeaderMap;

/// The console's files and the content type each must have.
const FILES: [(&str, &str); 4] = [
    ("/", "text/html; charset=utf-8"),
    ("/index.html", "text/html; charset=utf-8"),
    ("/console.js", "text/javascript; charset=utf-8"),
    ("/console.css", "text/css; charset=utf-8"),
];

fn header<'a>(headers: &'a HeaderMap, name: &str) -> &'a str {
    headers
        .get(name)
        .unwrap_or_else(|| panic!("no {name} header"))
        .to_str()
        .expect("header is text")
}

#[tokio::test]
async fn console_files_are_served_without_credentials_with_their_types() {
    let broker = Broker::start().await;
    let browser = Api::as_user(&broker, None);
    for (path, content_type) in FILES {
        let (status, headers, body) = browser.fetch(path).await;
        assert_eq!(status, StatusCode::OK, "GET {path}");
        assert_eq!(header(&headers, "content-type"), content_type, "GET {path}");
        assert_eq!(header(&headers, "cache-control"), "no-cache", "GET {path}");
        assert_eq!(header(&headers, "x-content-type-options"), "nosniff");
        assert!(
            header(&headers, "content-security-policy").starts_with("default-src 'self'"),
            "GET {path}: the browser is told to load from this origin only"
        );
        assert!(!body.is_empty(), "GET {path}");
    }
    let (_, _, root) = browser.fetch("/").await;
    let (_, _, index) = browser.fetch("/index.html").await;
    assert_eq!(root, index, "/ and /index.html are the same page");
    assert!(
        root.contains(r#"id="login-user""#),
        "the page has its login form"
    );
    broker.shutdown().await;
}

/// The values of every `attribute="..."` in `html`.
fn attribute_values<'a>(html: &'a str, attribute: &str) -> Vec<&'a str> {
    let opening = format!(" {attribute}=\"");
    html.match_indices(&opening)
        .filter_map(|(at, _)| {
            let rest = html.get(at + opening.len()..)?;
            rest.split_once('"').map(|(value, _)| value)
        })
        .collect()
}

#[tokio::test]
async fn the_page_loads_only_its_own_files_and_calls_only_this_api() {
    let broker = Broker::start().await;
    let browser = Api::as_user(&broker, None);
    let mut sources = Vec::new();
    for (path, _) in FILES {
        let (_, _, body) = browser.fetch(path).await;
        for scheme in ["http://", "https://", "ws://", "wss://"] {
            assert!(
                !body.contains(scheme),
                "{path} names an address by {scheme}"
            );
        }
        assert!(!body.contains("@import"), "{path} imports a stylesheet");
        sources.push(body);
    }
    let page = &sources[0];
    let mut referenced = attribute_values(page, "src");
    referenced.extend(attribute_values(page, "href"));
    assert!(referenced.contains(&"/console.js"), "{referenced:?}");
    assert!(referenced.contains(&"/console.css"), "{referenced:?}");
    for reference in referenced {
        let same_origin = reference.starts_with('#')
            || (reference.starts_with('/') && !reference.starts_with("//"));
        assert!(same_origin, "the page references {reference}");
        if !reference.starts_with('#') {
            let (status, _, _) = browser.fetch(reference).await;
            assert_eq!(status, StatusCode::OK, "the page's {reference} is served");
        }
    }
    let script = &sources[2];
    assert!(
        script.contains("\"/api/overview\""),
        "the console reads the API"
    );
    assert!(
        !script.contains("innerHTML"),
        "pages are built as DOM nodes, never from HTML"
    );
    broker.shutdown().await;
}

#[tokio::test]
async fn unknown_paths_stay_404_and_the_api_still_wants_credentials() {
    let broker = Broker::start().await;
    let browser = Api::as_user(&broker, None);
    for path in [
        "/favicon.ico",
        "/console/index.html",
        "/index.htm",
        "/console.js/x",
    ] {
        let (status, _, _) = browser.fetch(path).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "GET {path}");
    }
    let (status, _) = browser.get("/api/overview").await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "the page is open, the API is not"
    );
    let (status, _) = Api::new(&broker).get("/api/overview").await;
    assert_eq!(status, StatusCode::OK);
    let (status, _, _) = browser
        .send(reqwest::Method::POST, "/", Some(serde_json::json!({})))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "only GET serves the page");
    assert!(
        browser
            .metrics("/metrics")
            .await
            .contains("rabbitmq_queues")
    );
    broker.shutdown().await;
}
