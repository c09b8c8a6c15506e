//! SNS delivery to HTTP endpoints through the real broker with `aws-sdk-sns`: a small HTTP
//! server inside the test plays the subscriber. It covers the SubscriptionConfirmation POST
//! and both ways of confirming, Notification POSTs and their headers, the signature as a
//! subscriber checks it, retries by the delivery policy, the dead-letter queue, raw delivery,
//! a slow endpoint beside a queue subscriber, and the UnsubscribeURL.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use aws_lc_rs::signature::{
    RSA_PKCS1_2048_8192_SHA1_FOR_LEGACY_USE_ONLY, RSA_PKCS1_2048_8192_SHA256, UnparsedPublicKey,
    VerificationAlgorithm,
};
use aws_sdk_sns::Client;
use aws_sdk_sns::types::MessageAttributeValue;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use common::sns::{client, create_topic, queue_arn, receive_body, subscribe_queue};
use common::sqs::error_code;
use common::{Broker, WAIT, within};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

/// Where the test endpoint takes POSTs.
const ENDPOINT_PATH: &str = "/sns/endpoint";

// ---------------------------------------------------------------------------------------------
// The subscriber: an HTTP/1.1 server on loopback that records what it gets.

/// One request the endpoint received, and the status it answered (`None`: it never did).
#[derive(Debug, Clone)]
struct Received {
    method: String,
    path: String,
    /// Lower-cased names.
    headers: Vec<(String, String)>,
    body: String,
    status: Option<u16>,
}

impl Received {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn kind(&self) -> Option<&str> {
        self.header("x-amz-sns-message-type")
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("a JSON body ({e}): {:?}", self.body))
    }
}

/// How the endpoint answers a request: with a status, or not at all (it keeps the connection
/// open until the broker gives up).
type Answer = dyn Fn(&Received) -> Option<u16> + Send + Sync;

struct Endpoint {
    url: String,
    received: mpsc::UnboundedReceiver<Received>,
}

impl Endpoint {
    /// An endpoint that answers 200 to everything.
    async fn start() -> Endpoint {
        Endpoint::answering(|_| Some(200)).await
    }

    async fn answering(answer: impl Fn(&Received) -> Option<u16> + Send + Sync + 'static) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let address = listener.local_addr().expect("local address");
        let (sink, received) = mpsc::unbounded_channel();
        tokio::spawn(serve(listener, Arc::new(answer), sink));
        Endpoint {
            url: format!("http://{address}{ENDPOINT_PATH}"),
            received,
        }
    }

    /// The next request with `x-amz-sns-message-type: kind`, skipping others.
    async fn next(&mut self, kind: &str) -> Received {
        within(self.next_unbounded(kind)).await
    }

    async fn next_unbounded(&mut self, kind: &str) -> Received {
        loop {
            let received = self.received.recv().await.expect("the endpoint runs");
            if received.kind() == Some(kind) {
                return received;
            }
        }
    }

    /// Asserts that no request of `kind` arrives for `window`.
    async fn assert_none_within(&mut self, kind: &str, window: Duration) {
        if let Ok(received) = tokio::time::timeout(window, self.next_unbounded(kind)).await {
            panic!("unexpected {kind}: {received:?}");
        }
    }
}

async fn serve(listener: TcpListener, answer: Arc<Answer>, sink: mpsc::UnboundedSender<Received>) {
    while let Ok((stream, _)) = listener.accept().await {
        tokio::spawn(serve_connection(stream, Arc::clone(&answer), sink.clone()));
    }
}

/// One request per connection, as the broker's client sends them.
async fn serve_connection(
    mut stream: TcpStream,
    answer: Arc<Answer>,
    sink: mpsc::UnboundedSender<Received>,
) {
    let Some(mut request) = read_request(&mut stream).await else {
        return;
    };
    request.status = answer(&request);
    let status = request.status;
    let _ = sink.send(request);
    match status {
        Some(code) => {
            let response =
                format!("HTTP/1.1 {code} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
            let _ = stream.write_all(response.as_bytes()).await;
            let _ = stream.shutdown().await;
        }
        None => {
            // Hold the request until the broker closes the connection.
            let mut rest = [0u8; 64];
            while matches!(stream.read(&mut rest).await, Ok(n) if n > 0) {}
        }
    }
}

/// Reads one HTTP/1.1 request with a `Content-Length` body.
async fn read_request(stream: &mut TcpStream) -> Option<Received> {
    let mut data = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(at) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            break at;
        }
        let n = tokio::time::timeout(WAIT, stream.read(&mut chunk))
            .await
            .ok()?
            .ok()?;
        if n == 0 {
            return None;
        }
        data.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&data[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let mut request_line = lines.next()?.split(' ');
    let (method, path) = (
        request_line.next()?.to_owned(),
        request_line.next()?.to_owned(),
    );
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let length: usize = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .map_or(0, |(_, v)| v.parse().unwrap_or(0));
    let mut body = data[head_end + 4..].to_vec();
    while body.len() < length {
        let n = tokio::time::timeout(WAIT, stream.read(&mut chunk))
            .await
            .ok()?
            .ok()?;
        if n == 0 {
            return None;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    Some(Received {
        method,
        path,
        headers,
        body: String::from_utf8(body).expect("a UTF-8 body"),
        status: None,
    })
}

/// A plain, unsigned GET, as a subscriber visits the URLs it is handed; the status and body.
async fn get(url: &str) -> (u16, String) {
    let rest = url.strip_prefix("http://").expect("an http URL");
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let path = if path.is_empty() { "/" } else { path };
    let mut stream = within(TcpStream::connect(authority))
        .await
        .expect("connect");
    let request = format!("GET {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut answer = Vec::new();
    within(stream.read_to_end(&mut answer)).await.expect("read");
    let text = String::from_utf8(answer).expect("a UTF-8 answer");
    let (head, body) = text.split_once("\r\n\r\n").expect("a complete answer");
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("a status line");
    (status, body.to_owned())
}

/// The text of the first `<tag>` element of an XML answer.
fn xml_text<'a>(xml: &'a str, tag: &str) -> &'a str {
    let open = format!("<{tag}>");
    let start = xml.find(&open).expect("the element") + open.len();
    let end = start + xml[start..].find('<').expect("its end");
    &xml[start..end]
}

// ---------------------------------------------------------------------------------------------
// SNS steps.

/// Subscribes `endpoint` over http with `attributes`; the SubscriptionArn Subscribe answered.
async fn subscribe_http(
    sns: &Client,
    topic: &str,
    endpoint: &Endpoint,
    attributes: &[(&str, &str)],
) -> String {
    let mut request = sns
        .subscribe()
        .topic_arn(topic)
        .protocol("http")
        .endpoint(&endpoint.url);
    for (name, value) in attributes {
        request = request.attributes(*name, *value);
    }
    within(request.send())
        .await
        .expect("Subscribe")
        .subscription_arn
        .expect("a SubscriptionArn")
}

/// Waits for the SubscriptionConfirmation and visits its SubscribeURL; the confirmed
/// subscription's ARN.
async fn confirm_by_url(endpoint: &mut Endpoint) -> String {
    let confirmation = endpoint.next("SubscriptionConfirmation").await.json();
    let url = confirmation["SubscribeURL"]
        .as_str()
        .expect("a SubscribeURL");
    let (status, body) = get(url).await;
    assert_eq!(status, 200, "{body}");
    xml_text(&body, "SubscriptionArn").to_owned()
}

/// A topic with `endpoint` subscribed (with `attributes`) and confirmed through the
/// SubscribeURL; the subscription ARN.
async fn subscribed(
    sns: &Client,
    topic: &str,
    endpoint: &mut Endpoint,
    attributes: &[(&str, &str)],
) -> String {
    subscribe_http(sns, topic, endpoint, attributes).await;
    confirm_by_url(endpoint).await
}

/// The SubscriptionArn column of ListSubscriptionsByTopic.
async fn listed(sns: &Client, topic: &str) -> Vec<String> {
    within(sns.list_subscriptions_by_topic().topic_arn(topic).send())
        .await
        .expect("ListSubscriptionsByTopic")
        .subscriptions()
        .iter()
        .map(|s| s.subscription_arn().unwrap_or_default().to_owned())
        .collect()
}

/// Publishes `message`; its MessageId.
async fn publish(sns: &Client, topic: &str, message: &str) -> String {
    within(sns.publish().topic_arn(topic).message(message).send())
        .await
        .expect("Publish")
        .message_id
        .expect("a MessageId")
}

async fn set_subscription_attribute(sns: &Client, arn: &str, name: &str, value: &str) {
    within(
        sns.set_subscription_attributes()
            .subscription_arn(arn)
            .attribute_name(name)
            .attribute_value(value)
            .send(),
    )
    .await
    .expect("SetSubscriptionAttributes");
}

fn string_attribute(value: &str) -> MessageAttributeValue {
    MessageAttributeValue::builder()
        .data_type("String")
        .string_value(value)
        .build()
        .expect("an attribute")
}

// ---------------------------------------------------------------------------------------------
// The subscriber's signature check, by AWS's documented rules and nothing of the broker's.

/// The string a subscriber rebuilds from a received message: each signed field present, as
/// `Name\nvalue\n`, in the documented order.
fn canonical(message: &Value) -> String {
    let fields: &[&str] = match message["Type"].as_str() {
        Some("Notification") => &[
            "Message",
            "MessageId",
            "Subject",
            "Timestamp",
            "TopicArn",
            "Type",
        ],
        Some("SubscriptionConfirmation" | "UnsubscribeConfirmation") => &[
            "Message",
            "MessageId",
            "SubscribeURL",
            "Timestamp",
            "Token",
            "TopicArn",
            "Type",
        ],
        other => panic!("no signing rule for Type {other:?}"),
    };
    let mut out = String::new();
    for name in fields {
        match message.get(*name).and_then(Value::as_str) {
            Some(value) => out.push_str(&format!("{name}\n{value}\n")),
            None if *name == "Subject" => {}
            None => panic!("a signed message without {name}: {message}"),
        }
    }
    out
}

/// The RSA public key (PKCS#1 DER) of the certificate at `SigningCertURL`.
async fn signing_key(message: &Value) -> Vec<u8> {
    let url = message["SigningCertURL"]
        .as_str()
        .expect("a SigningCertURL");
    let (status, pem) = get(url).await;
    assert_eq!(status, 200, "{pem}");
    let (_, pem) = x509_parser::pem::parse_x509_pem(pem.as_bytes()).expect("a PEM certificate");
    let certificate = pem.parse_x509().expect("an X.509 certificate");
    certificate.public_key().subject_public_key.data.to_vec()
}

/// Whether `message`'s Signature verifies with `key` by its SignatureVersion.
fn verifies(key: &[u8], message: &Value) -> bool {
    let algorithm: &'static dyn VerificationAlgorithm = match message["SignatureVersion"].as_str() {
        Some("1") => &RSA_PKCS1_2048_8192_SHA1_FOR_LEGACY_USE_ONLY,
        Some("2") => &RSA_PKCS1_2048_8192_SHA256,
        other => panic!("unknown SignatureVersion {other:?}"),
    };
    let signature = BASE64
        .decode(message["Signature"].as_str().expect("a Signature"))
        .expect("a base64 Signature");
    UnparsedPublicKey::new(algorithm, key)
        .verify(canonical(message).as_bytes(), &signature)
        .is_ok()
}

/// Checks `message`'s signature the way a subscriber does, and that a changed field or the
/// other version fails it.
async fn assert_signed(message: &Value, version: &str) {
    assert_eq!(message["SignatureVersion"], version, "{message}");
    let key = signing_key(message).await;
    assert!(verifies(&key, message), "signature of {message}");
    let mut tampered = message.clone();
    tampered["Message"] = Value::String("something else".to_owned());
    assert!(!verifies(&key, &tampered), "tampered {message}");
    let mut other_version = message.clone();
    other_version["SignatureVersion"] = Value::from(if version == "1" { "2" } else { "1" });
    assert!(!verifies(&key, &other_version), "other version {message}");
}

// ---------------------------------------------------------------------------------------------
// Tests.

#[tokio::test]
async fn the_subscription_confirmation_post_carries_headers_token_and_urls() {
    let broker = Broker::start().await;
    let sns = client(&broker);
    let topic = create_topic(&sns, "confirm-me").await;
    let mut endpoint = Endpoint::start().await;
    let answered = subscribe_http(&sns, &topic, &endpoint, &[]).await;
    assert_eq!(answered, "pending confirmation");
    let request = endpoint.next("SubscriptionConfirmation").await;
    assert_eq!(
        (request.method.as_str(), request.path.as_str()),
        ("POST", ENDPOINT_PATH)
    );
    assert_eq!(request.header("x-amz-sns-topic-arn"), Some(topic.as_str()));
    let body = request.json();
    assert_eq!(body["Type"], "SubscriptionConfirmation");
    assert_eq!(
        request.header("x-amz-sns-message-id"),
        body["MessageId"].as_str()
    );
    assert_eq!(body["TopicArn"], topic.as_str());
    let token = body["Token"].as_str().expect("a Token");
    assert!(token.len() >= 64, "{token}");
    let host = broker.server.sqs_addr;
    let subscribe_url = body["SubscribeURL"].as_str().expect("a SubscribeURL");
    assert!(
        subscribe_url.starts_with(&format!("http://{host}/?Action=ConfirmSubscription&")),
        "{subscribe_url}"
    );
    assert!(
        subscribe_url.contains(&format!("Token={token}")),
        "{subscribe_url}"
    );
    assert!(body["Message"].as_str().unwrap().contains(&topic));
    assert!(body["Timestamp"].as_str().unwrap().ends_with('Z'));
    assert_eq!(body["SignatureVersion"], "1");
    assert!(!body["Signature"].as_str().unwrap().is_empty());
    assert_eq!(
        body["SigningCertURL"],
        format!("http://{host}/SimpleNotificationService-mqbridge.pem")
    );
    let subscriptions = within(sns.list_subscriptions_by_topic().topic_arn(&topic).send())
        .await
        .expect("ListSubscriptionsByTopic");
    let [subscription] = subscriptions.subscriptions() else {
        panic!("one subscription: {subscriptions:?}");
    };
    assert_eq!(subscription.subscription_arn(), Some("PendingConfirmation"));
    assert_eq!(subscription.protocol(), Some("http"));
    assert_eq!(subscription.endpoint(), Some(endpoint.url.as_str()));
}

#[tokio::test]
async fn confirm_subscription_with_the_token_activates_it_for_later_publishes_only() {
    let broker = Broker::start().await;
    let sns = client(&broker);
    let topic = create_topic(&sns, "confirm-by-sdk").await;
    let mut endpoint = Endpoint::start().await;
    subscribe_http(&sns, &topic, &endpoint, &[]).await;
    let confirmation = endpoint.next("SubscriptionConfirmation").await.json();
    // Nothing is delivered to a subscription that is still pending.
    publish(&sns, &topic, "too early").await;
    let confirmed = within(
        sns.confirm_subscription()
            .topic_arn(&topic)
            .token(confirmation["Token"].as_str().expect("a Token"))
            .send(),
    )
    .await
    .expect("ConfirmSubscription")
    .subscription_arn
    .expect("a SubscriptionArn");
    assert!(confirmed.starts_with(&format!("{topic}:")), "{confirmed}");
    assert_eq!(listed(&sns, &topic).await, [confirmed.as_str()]);
    let attributes = within(
        sns.get_subscription_attributes()
            .subscription_arn(&confirmed)
            .send(),
    )
    .await
    .expect("GetSubscriptionAttributes")
    .attributes
    .expect("attributes");
    assert_eq!(attributes["PendingConfirmation"], "false");
    let id = publish(&sns, &topic, "on time").await;
    let notification = endpoint.next("Notification").await;
    assert_eq!(
        notification.header("x-amz-sns-message-id"),
        Some(id.as_str())
    );
    assert_eq!(notification.json()["Message"], "on time");
}

#[tokio::test]
async fn visiting_the_subscribe_url_confirms_and_publishes_arrive_as_notifications() {
    let broker = Broker::start().await;
    let sns = client(&broker);
    let topic = create_topic(&sns, "confirm-by-url").await;
    let mut endpoint = Endpoint::start().await;
    let subscription = subscribed(&sns, &topic, &mut endpoint, &[]).await;
    assert!(
        subscription.starts_with(&format!("{topic}:")),
        "{subscription}"
    );
    assert_eq!(listed(&sns, &topic).await, [subscription.as_str()]);
    let published = within(
        sns.publish()
            .topic_arn(&topic)
            .subject("Greeting")
            .message("hello, endpoint")
            .message_attributes("color", string_attribute("red"))
            .send(),
    )
    .await
    .expect("Publish");
    let id = published.message_id.expect("a MessageId");
    let request = endpoint.next("Notification").await;
    assert_eq!(
        (request.method.as_str(), request.path.as_str()),
        ("POST", ENDPOINT_PATH)
    );
    assert_eq!(request.header("x-amz-sns-message-id"), Some(id.as_str()));
    assert_eq!(request.header("x-amz-sns-topic-arn"), Some(topic.as_str()));
    assert_eq!(
        request.header("x-amz-sns-subscription-arn"),
        Some(subscription.as_str())
    );
    assert_eq!(request.header("x-amz-sns-rawdelivery"), None);
    let body = request.json();
    assert_eq!(body["Type"], "Notification");
    assert_eq!(body["MessageId"], id.as_str());
    assert_eq!(body["TopicArn"], topic.as_str());
    assert_eq!(body["Subject"], "Greeting");
    assert_eq!(body["Message"], "hello, endpoint");
    assert_eq!(body["MessageAttributes"]["color"]["Type"], "String");
    assert_eq!(body["MessageAttributes"]["color"]["Value"], "red");
    let unsubscribe_url = body["UnsubscribeURL"].as_str().expect("an UnsubscribeURL");
    assert!(
        unsubscribe_url.contains(&subscription.replace(':', "%3A")),
        "{unsubscribe_url}"
    );
}

/// Subscribes an endpoint to a topic with SignatureVersion `version` (unset: the default),
/// and checks the signatures of the confirmation and of two notifications, with and without
/// a Subject.
async fn check_signatures(version: Option<&str>) {
    let broker = Broker::start().await;
    let sns = client(&broker);
    let topic = create_topic(&sns, "signed").await;
    if let Some(version) = version {
        within(
            sns.set_topic_attributes()
                .topic_arn(&topic)
                .attribute_name("SignatureVersion")
                .attribute_value(version)
                .send(),
        )
        .await
        .expect("SetTopicAttributes");
    }
    let expected = version.unwrap_or("1");
    let mut endpoint = Endpoint::start().await;
    subscribe_http(&sns, &topic, &endpoint, &[]).await;
    let confirmation = endpoint.next("SubscriptionConfirmation").await.json();
    assert_signed(&confirmation, expected).await;
    let (status, _) = get(confirmation["SubscribeURL"].as_str().unwrap()).await;
    assert_eq!(status, 200);
    within(
        sns.publish()
            .topic_arn(&topic)
            .subject("Signed subject")
            .message("first line\nsecond line \"quoted\", naïve ☃")
            .send(),
    )
    .await
    .expect("Publish");
    let with_subject = endpoint.next("Notification").await.json();
    assert_eq!(with_subject["Subject"], "Signed subject");
    assert_signed(&with_subject, expected).await;
    publish(&sns, &topic, "no subject here").await;
    let without_subject = endpoint.next("Notification").await.json();
    assert!(
        without_subject.get("Subject").is_none(),
        "{without_subject}"
    );
    assert_signed(&without_subject, expected).await;
}

#[tokio::test]
async fn signatures_verify_with_the_signing_certificate_by_default_version_1() {
    check_signatures(None).await;
}

#[tokio::test]
async fn signatures_verify_with_the_signing_certificate_in_version_2() {
    check_signatures(Some("2")).await;
}

#[tokio::test]
async fn a_refused_post_is_retried_by_the_delivery_policy_until_it_is_accepted() {
    let broker = Broker::start().await;
    let sns = client(&broker);
    let topic = create_topic(&sns, "retried").await;
    let notifications = AtomicUsize::new(0);
    let mut endpoint = Endpoint::answering(move |request| {
        if request.kind() != Some("Notification") {
            return Some(200);
        }
        let seen = notifications.fetch_add(1, Ordering::SeqCst);
        Some(if seen < 2 { 500 } else { 200 })
    })
    .await;
    let subscription = subscribed(&sns, &topic, &mut endpoint, &[]).await;
    let policy = r#"{"healthyRetryPolicy":{"numRetries":3,"minDelayTarget":1,"maxDelayTarget":1}}"#;
    set_subscription_attribute(&sns, &subscription, "DeliveryPolicy", policy).await;
    let id = publish(&sns, &topic, "persevere").await;
    let mut attempts = Vec::new();
    for _ in 0..3 {
        let attempt = endpoint.next("Notification").await;
        assert_eq!(attempt.header("x-amz-sns-message-id"), Some(id.as_str()));
        assert_eq!(attempt.json()["Message"], "persevere");
        attempts.push(attempt.status);
    }
    assert_eq!(attempts, [Some(500), Some(500), Some(200)]);
    // Deliveries are one at a time: had the accepted message been sent again, it would come
    // before the next one.
    let next = publish(&sns, &topic, "next").await;
    let after = endpoint.next("Notification").await;
    assert_eq!(after.header("x-amz-sns-message-id"), Some(next.as_str()));
    assert_eq!(after.status, Some(200));
}

#[tokio::test]
async fn a_message_no_retry_delivers_goes_to_the_dead_letter_queue() {
    let broker = Broker::start().await;
    let sns = client(&broker);
    let sqs = common::sqs::client(&broker);
    let topic = create_topic(&sns, "doomed").await;
    let dead_letters = common::sqs::create_queue(&sqs, "doomed-dlq").await;
    let mut endpoint = Endpoint::answering(|request| {
        Some(if request.kind() == Some("Notification") {
            500
        } else {
            200
        })
    })
    .await;
    let redrive = format!(r#"{{"deadLetterTargetArn":"{}"}}"#, queue_arn("doomed-dlq"));
    let policy = r#"{"healthyRetryPolicy":{"numRetries":1,"minDelayTarget":1,"maxDelayTarget":1}}"#;
    let attributes = [
        ("RedrivePolicy", redrive.as_str()),
        ("DeliveryPolicy", policy),
    ];
    subscribed(&sns, &topic, &mut endpoint, &attributes).await;
    let id = publish(&sns, &topic, "undeliverable").await;
    for _ in 0..2 {
        let attempt = endpoint.next("Notification").await;
        assert_eq!(attempt.header("x-amz-sns-message-id"), Some(id.as_str()));
        assert_eq!(attempt.status, Some(500));
    }
    let body = receive_body(&broker, &dead_letters)
        .await
        .expect("a dead letter");
    let envelope: Value = serde_json::from_str(&body).expect("an envelope");
    assert_eq!(envelope["Type"], "Notification");
    assert_eq!(envelope["MessageId"], id.as_str());
    assert_eq!(envelope["TopicArn"], topic.as_str());
    assert_eq!(envelope["Message"], "undeliverable");
    // Both attempts were made; there is no third.
    endpoint
        .assert_none_within("Notification", Duration::from_millis(500))
        .await;
}

#[tokio::test]
async fn a_slow_endpoint_does_not_hold_back_a_queue_subscriber() {
    let broker = Broker::start().await;
    let sns = client(&broker);
    let topic = create_topic(&sns, "mixed").await;
    // Confirmations are answered; notifications never are (the broker waits 15 s).
    let mut endpoint =
        Endpoint::answering(|request| (request.kind() != Some("Notification")).then_some(200))
            .await;
    subscribed(&sns, &topic, &mut endpoint, &[]).await;
    let (queue, _) = subscribe_queue(&broker, &topic, "mixed-reader", &[]).await;
    publish(&sns, &topic, "first").await;
    let stuck = endpoint.next("Notification").await;
    assert_eq!(stuck.status, None);
    // With the first POST still open, a second publish reaches the queue at once.
    publish(&sns, &topic, "second").await;
    let bodies = tokio::time::timeout(Duration::from_secs(3), async {
        let mut bodies = Vec::new();
        while bodies.len() < 2 {
            if let Some(body) = receive_body(&broker, &queue).await {
                let envelope: Value = serde_json::from_str(&body).expect("an envelope");
                bodies.push(envelope["Message"].as_str().unwrap().to_owned());
            }
        }
        bodies
    })
    .await
    .expect("the queue subscriber got both within 3 s");
    assert_eq!(bodies, ["first", "second"]);
}

#[tokio::test]
async fn raw_delivery_posts_the_bare_message_with_the_raw_header() {
    let broker = Broker::start().await;
    let sns = client(&broker);
    let topic = create_topic(&sns, "raw-http").await;
    let mut endpoint = Endpoint::start().await;
    let subscription = subscribed(
        &sns,
        &topic,
        &mut endpoint,
        &[("RawMessageDelivery", "true")],
    )
    .await;
    let id = within(
        sns.publish()
            .topic_arn(&topic)
            .subject("ignored in raw")
            .message(r#"{"just":"this"}"#)
            .message_attributes("color", string_attribute("blue"))
            .send(),
    )
    .await
    .expect("Publish")
    .message_id
    .expect("a MessageId");
    let request = endpoint.next("Notification").await;
    assert_eq!(request.body, r#"{"just":"this"}"#);
    assert_eq!(request.header("x-amz-sns-rawdelivery"), Some("true"));
    assert_eq!(request.header("x-amz-sns-message-id"), Some(id.as_str()));
    assert_eq!(request.header("x-amz-sns-topic-arn"), Some(topic.as_str()));
    assert_eq!(
        request.header("x-amz-sns-subscription-arn"),
        Some(subscription.as_str())
    );
}

#[tokio::test]
async fn the_unsubscribe_url_ends_the_subscription_and_its_deliveries() {
    let broker = Broker::start().await;
    let sns = client(&broker);
    let topic = create_topic(&sns, "leaving").await;
    let mut endpoint = Endpoint::start().await;
    let subscription = subscribed(&sns, &topic, &mut endpoint, &[]).await;
    // A queue subscriber tells when a publish has been handed out.
    let (queue, witness) = subscribe_queue(&broker, &topic, "leaving-witness", &[]).await;
    publish(&sns, &topic, "before").await;
    let notification = endpoint.next("Notification").await.json();
    assert_eq!(notification["Message"], "before");
    assert!(receive_body(&broker, &queue).await.is_some());
    let url = notification["UnsubscribeURL"]
        .as_str()
        .expect("an UnsubscribeURL");
    let (status, body) = get(url).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(listed(&sns, &topic).await, [witness]);
    let gone = within(
        sns.get_subscription_attributes()
            .subscription_arn(&subscription)
            .send(),
    )
    .await;
    assert_eq!(error_code(gone), "NotFound");
    publish(&sns, &topic, "after").await;
    let body = receive_body(&broker, &queue).await.expect("the witness");
    assert!(body.contains("after"), "{body}");
    endpoint
        .assert_none_within("Notification", Duration::from_millis(500))
        .await;
}
