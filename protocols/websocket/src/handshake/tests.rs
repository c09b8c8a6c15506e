use super::*;

const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";

fn request(path: &str, extra: &str) -> String {
    format!(
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n\
         Connection: keep-alive, Upgrade\r\nSec-WebSocket-Version: 13\r\n\
         Sec-WebSocket-Key: {KEY}\r\n{extra}\r\n"
    )
}

fn outcome(text: &str, origins: &OriginPolicy) -> Result<Upgrade, Refusal> {
    match parse(text.as_bytes(), origins) {
        Parsed::Request { length, outcome } => {
            assert_eq!(length, text.len());
            outcome
        }
        Parsed::Incomplete => panic!("incomplete: {text}"),
    }
}

fn refused(text: &str) -> Refusal {
    outcome(text, &OriginPolicy::default()).expect_err("refused")
}

#[test]
fn mqtt_upgrade_answers_with_rfc_6455_accept_key() {
    let upgrade = outcome(
        &request("/mqtt", "Sec-WebSocket-Protocol: mqtt\r\n"),
        &OriginPolicy::default(),
    )
    .expect("upgrade");
    assert_eq!(upgrade.subprotocol, Subprotocol::Mqtt);
    // The example key and accept value of RFC 6455 section 1.3.
    let response = String::from_utf8(upgrade.response()).expect("utf-8");
    assert!(response.starts_with("HTTP/1.1 101 Switching Protocols\r\n"));
    assert!(response.contains("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"));
    assert!(response.contains("Sec-WebSocket-Protocol: mqtt\r\n"));
    assert!(response.ends_with("\r\n\r\n"));
}

#[test]
fn stomp_is_chosen_from_a_list_split_over_header_lines() {
    let text = request(
        "/ws?x=1",
        "Sec-WebSocket-Protocol: v10.stomp\r\nSec-WebSocket-Protocol: v11.stomp, v12.stomp\r\n",
    );
    let upgrade = outcome(&text, &OriginPolicy::default()).expect("upgrade");
    assert_eq!(
        (upgrade.subprotocol, upgrade.token),
        (Subprotocol::Stomp, "v12.stomp")
    );
}

#[test]
fn mqtt_3_1_subprotocol_is_mqtt() {
    let upgrade = outcome(
        &request("/ws", "Sec-WebSocket-Protocol: MQTTv3.1\r\n"),
        &OriginPolicy::default(),
    )
    .expect("upgrade");
    assert_eq!(
        (upgrade.subprotocol, upgrade.token),
        (Subprotocol::Mqtt, "mqttv3.1")
    );
}

#[test]
fn missing_or_unknown_subprotocol_is_a_400_saying_which_to_offer() {
    let missing = refused(&request("/ws", ""));
    assert_eq!(missing.status, 400);
    assert!(missing.detail.contains("no WebSocket subprotocol offered"));
    let unknown = refused(&request("/ws", "Sec-WebSocket-Protocol: wamp, soap\r\n"));
    assert_eq!(unknown.status, 400);
    assert!(unknown.detail.contains("wamp, soap"), "{}", unknown.detail);
    let response = String::from_utf8(unknown.response()).expect("utf-8");
    assert!(response.starts_with("HTTP/1.1 400 Bad Request\r\n"));
    let body = format!("{}\n", unknown.detail);
    assert!(response.contains(&format!("Content-Length: {}\r\n", body.len())));
    assert!(response.ends_with(&body));
}

#[test]
fn other_paths_are_404() {
    let refusal = refused(&request("/stomp", "Sec-WebSocket-Protocol: mqtt\r\n"));
    assert_eq!(refusal.status, 404);
    assert!(refusal.detail.contains("/ws or /mqtt"));
}

#[test]
fn a_plain_http_get_is_told_to_upgrade() {
    let refusal = refused("GET /ws HTTP/1.1\r\nHost: localhost\r\n\r\n");
    assert_eq!(refusal.status, 426);
    let response = String::from_utf8(refusal.response()).expect("utf-8");
    assert!(response.contains("Upgrade: websocket\r\n"));
}

#[test]
fn wrong_method_version_and_key_are_refused() {
    assert_eq!(refused("POST /ws HTTP/1.1\r\n\r\n").status, 405);
    assert_eq!(refused("GET /ws HTTP/1.0\r\n\r\n").status, 505);
    let old =
        request("/ws", "Sec-WebSocket-Protocol: mqtt\r\n").replace("Version: 13", "Version: 8");
    let refusal = refused(&old);
    assert_eq!(refusal.status, 426);
    assert!(
        String::from_utf8(refusal.response())
            .expect("utf-8")
            .contains("Sec-WebSocket-Version: 13")
    );
    let bad_key = request("/ws", "Sec-WebSocket-Protocol: mqtt\r\n").replace(KEY, "short");
    assert_eq!(refused(&bad_key).status, 400);
}

#[test]
fn origin_outside_the_allow_list_is_403_and_no_origin_is_not_a_browser() {
    let origins = OriginPolicy {
        allowed: vec!["https://app.example".to_owned()],
    };
    let from = |origin: &str| {
        outcome(
            &request("/ws", &format!("Sec-WebSocket-Protocol: mqtt\r\n{origin}")),
            &origins,
        )
    };
    assert!(from("Origin: https://APP.example\r\n").is_ok());
    assert!(from("").is_ok());
    let refusal = from("Origin: https://evil.example\r\n").expect_err("refused");
    assert_eq!(refusal.status, 403);
    assert!(refusal.detail.contains("https://evil.example"));
    let everyone = OriginPolicy {
        allowed: vec!["*".to_owned()],
    };
    let text = request(
        "/ws",
        "Sec-WebSocket-Protocol: mqtt\r\nOrigin: https://x.example\r\n",
    );
    assert!(outcome(&text, &everyone).is_ok());
}

#[test]
fn a_partial_head_waits_and_an_endless_one_is_431() {
    let text = request("/ws", "Sec-WebSocket-Protocol: mqtt\r\n");
    for cut in 0..text.len() {
        assert_eq!(
            parse(&text.as_bytes()[..cut], &OriginPolicy::default()),
            Parsed::Incomplete,
            "cut at {cut}"
        );
    }
    let endless = format!("GET /ws HTTP/1.1\r\nX: {}", "a".repeat(REQUEST_HEAD_MAX));
    match parse(endless.as_bytes(), &OriginPolicy::default()) {
        Parsed::Request { outcome, .. } => assert_eq!(outcome.expect_err("431").status, 431),
        Parsed::Incomplete => panic!("must not wait forever"),
    }
}

#[test]
fn garbage_is_a_400() {
    let hello = b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03";
    match parse(hello, &OriginPolicy::default()) {
        Parsed::Request { outcome, .. } => assert_eq!(outcome.expect_err("400").status, 400),
        Parsed::Incomplete => panic!("a TLS hello is not an HTTP request"),
    }
}

#[test]
fn data_after_the_head_is_not_part_of_it() {
    let mut text = request("/ws", "Sec-WebSocket-Protocol: mqtt\r\n");
    let head = text.len();
    text.push_str("\u{82}\u{80}");
    match parse(text.as_bytes(), &OriginPolicy::default()) {
        Parsed::Request { length, outcome } => {
            assert_eq!(length, head);
            assert!(outcome.is_ok());
        }
        Parsed::Incomplete => panic!("complete"),
    }
}
