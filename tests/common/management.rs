//! A client of the management HTTP API: reqwest with the default user's basic credentials,
//! every request bounded by the harness's wait.

use reqwest::{Method, StatusCode};
use serde_json::Value;

use super::{Broker, eventually, within};

pub struct Api {
    client: reqwest::Client,
    base: String,
    credentials: Option<(String, String)>,
}

impl Api {
    /// As `guest`, the broker's default user.
    pub fn new(broker: &Broker) -> Api {
        Api::as_user(broker, Some(("guest", "guest")))
    }

    pub fn as_user(broker: &Broker, credentials: Option<(&str, &str)>) -> Api {
        Api {
            client: reqwest::Client::new(),
            base: format!("http://{}", broker.server.management_addr),
            credentials: credentials.map(|(u, p)| (u.to_owned(), p.to_owned())),
        }
    }

    /// Sends a request; answers the status, the headers and the body as JSON (`Null` when
    /// empty or not JSON).
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, reqwest::header::HeaderMap, Value) {
        let mut request = self.client.request(method, format!("{}{path}", self.base));
        if let Some((user, password)) = &self.credentials {
            request = request.basic_auth(user, Some(password));
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = within(request.send()).await.expect("HTTP request");
        let status = response.status();
        let headers = response.headers().clone();
        let text = within(response.text()).await.expect("HTTP body");
        let json = serde_json::from_str(&text).unwrap_or(Value::Null);
        (status, headers, json)
    }

    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        let (status, _, body) = self.send(Method::GET, path, None).await;
        (status, body)
    }

    /// GET that must succeed.
    pub async fn get_ok(&self, path: &str) -> Value {
        let (status, body) = self.get(path).await;
        assert_eq!(status, StatusCode::OK, "GET {path}: {body}");
        body
    }

    pub async fn put(&self, path: &str, body: Value) -> (StatusCode, Value) {
        let (status, _, body) = self.send(Method::PUT, path, Some(body)).await;
        (status, body)
    }

    pub async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        let (status, _, body) = self.send(Method::POST, path, Some(body)).await;
        (status, body)
    }

    pub async fn delete(&self, path: &str) -> (StatusCode, Value) {
        let (status, _, body) = self.send(Method::DELETE, path, None).await;
        (status, body)
    }

    /// A GET without credentials, as a browser fetches the console's files: the status, the
    /// headers and the body as text.
    pub async fn fetch(&self, path: &str) -> (StatusCode, reqwest::header::HeaderMap, String) {
        let response = within(self.client.get(format!("{}{path}", self.base)).send())
            .await
            .expect("HTTP request");
        let status = response.status();
        let headers = response.headers().clone();
        let text = within(response.text()).await.expect("HTTP body");
        (status, headers, text)
    }

    /// The Prometheus text at `path` (`/metrics`, `/metrics/detailed`), without credentials.
    pub async fn metrics(&self, path: &str) -> String {
        let response = within(self.client.get(format!("{}{path}", self.base)).send())
            .await
            .expect("HTTP request");
        assert_eq!(response.status(), StatusCode::OK);
        within(response.text()).await.expect("HTTP body")
    }
}

/// The value of the sample `name` (with its labels, if any, exactly as written) in Prometheus
/// text.
pub fn sample(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .find_map(|line| {
            let (key, value) = line.rsplit_once(' ')?;
            (key == name).then(|| value.parse().ok()).flatten()
        })
}

/// The listed connection whose `field` is `value`, once it is listed so.
pub async fn listed(api: &Api, field: &str, value: &str) -> Value {
    let find = || async {
        let (_, connections) = api.get("/api/connections").await;
        connections.as_array().and_then(|list| {
            list.iter()
                .find(|c| c["client_properties"][field] == value)
                .cloned()
        })
    };
    eventually(&format!("a connection with {field} {value}"), || async {
        find().await.is_some()
    })
    .await;
    find().await.expect("listed")
}

/// The API path of a listed connection (its name has spaces and `>`).
pub fn connection_path(entry: &Value) -> String {
    let name = entry["name"].as_str().expect("name");
    format!(
        "/api/connections/{}",
        name.replace(' ', "%20").replace('>', "%3E")
    )
}
