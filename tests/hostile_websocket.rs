//! Hostile WebSocket input on raw TCP: upgrade requests the broker must refuse with an HTTP
//! status, and frames that break RFC 6455 after a good upgrade, which must end in a Close
//! frame with the code section 7.4.1 prescribes. After each case an MQTT-over-WebSocket
//! witness and the AMQP bystander (tests/common/hostile.rs) must still work, with no stored
//! message lost.
//!
//! Not covered: a request head that trickles in forever (slow loris). The broker cuts it off
//! after its fixed 10 s handshake timeout, which a test could only wait out.

mod common;

use common::hostile::{Bystander, promptly};
use common::mqtt::{Client, assert_alive, subscribed};
use common::websocket::upgrade_request;
use common::{Broker, within};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// RFC 6455 7.4.1 close codes.
const PROTOCOL_ERROR: u16 = 1002;
const UNSUPPORTED_DATA: u16 = 1003;
const INVALID_PAYLOAD: u16 = 1007;
const MESSAGE_TOO_BIG: u16 = 1009;

/// Opcodes (RFC 6455 5.2).
const CONTINUATION: u8 = 0x0;
const TEXT: u8 = 0x1;
const BINARY: u8 = 0x2;
const CLOSE: u8 = 0x8;
const PING: u8 = 0x9;
const FIN: u8 = 0x80;

struct Scene {
    broker: Broker,
    bystander: Bystander,
    witness: Client,
}

impl Scene {
    async fn start() -> Scene {
        Scene::with(Broker::start().await).await
    }

    async fn with(broker: Broker) -> Scene {
        let bystander = Bystander::start(&broker).await;
        let mut witness = broker.mqtt(broker.mqtt_ws_options("witness", "/ws")).await;
        witness
            .client
            .subscribe("alive/witness", rumqttc::QoS::AtLeastOnce)
            .await
            .expect("subscribe");
        subscribed(&mut witness.events).await;
        Scene {
            broker,
            bystander,
            witness,
        }
    }

    async fn check(mut self, case: &str) {
        assert_alive(&mut self.witness, "witness", case).await;
        self.bystander.check().await;
    }

    /// Sends a raw request head; returns the status line and the body of the refusal.
    async fn refusal(&self, request: &[u8]) -> (String, String) {
        let mut stream = within(TcpStream::connect(self.broker.server.ws_addr))
            .await
            .expect("tcp connect");
        within(stream.write_all(request)).await.expect("write");
        let mut response = Vec::new();
        promptly("an HTTP refusal", stream.read_to_end(&mut response))
            .await
            .expect("read");
        let response = String::from_utf8_lossy(&response).into_owned();
        let (head, body) = response.split_once("\r\n\r\n").expect("a whole response");
        let status = head.lines().next().unwrap_or_default().to_owned();
        (status, body.to_owned())
    }

    /// Upgrades on `/ws` with `subprotocol`, sends `octets` as WebSocket data, and returns the
    /// code of the Close frame the broker answers with.
    async fn close_code_after(&self, subprotocol: &str, octets: &[u8]) -> u16 {
        let mut stream = within(TcpStream::connect(self.broker.server.ws_addr))
            .await
            .expect("tcp connect");
        let extra = format!("Sec-WebSocket-Protocol: {subprotocol}\r\n");
        let mut request = upgrade_request("/ws", &extra).into_bytes();
        request.extend_from_slice(octets);
        within(stream.write_all(&request)).await.expect("write");
        promptly("a Close frame", server_close_code(&mut stream)).await
    }
}

/// Reads the 101 response and then the broker's frames up to its Close; returns its code.
async fn server_close_code(stream: &mut TcpStream) -> u16 {
    let mut input = Vec::new();
    loop {
        if let Some(code) = close_code_in(&input) {
            return code;
        }
        let read = stream.read_buf(&mut input).await.expect("read");
        assert!(read > 0, "closed without a Close frame: {input:?}");
    }
}

/// The code of the first Close frame after the 101 head in `input`, once it is all there.
fn close_code_in(input: &[u8]) -> Option<u16> {
    let head_end = input.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let head = String::from_utf8_lossy(&input[..head_end]);
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    let mut frames = &input[head_end..];
    // Server frames are unmasked and, here, short: opcode octet, 7-bit length, payload.
    while let [first, length, rest @ ..] = frames {
        let length = usize::from(*length);
        let payload = rest.get(..length)?;
        if first & 0x0F == CLOSE {
            let code = payload.get(..2).expect("a Close frame with a code");
            return Some(u16::from_be_bytes([code[0], code[1]]));
        }
        frames = &rest[length..];
    }
    None
}

/// A masked client frame: first octet (FIN, RSV, opcode) as given, then the length in the
/// shortest form RFC 6455 5.2 allows, the mask key and the masked payload.
fn frame(first: u8, payload: &[u8]) -> Vec<u8> {
    let mut octets = vec![first];
    header_length(payload.len() as u64, true, &mut octets);
    let key = [0x37, 0xFA, 0x21, 0x3D];
    octets.extend_from_slice(&key);
    octets.extend(payload.iter().zip(key.iter().cycle()).map(|(b, k)| b ^ k));
    octets
}

fn header_length(length: u64, masked: bool, out: &mut Vec<u8>) {
    let mask = if masked { 0x80 } else { 0 };
    match length {
        0..=125 => out.push(mask | u8::try_from(length).expect("small")),
        126..=0xFFFF => {
            out.push(mask | 126);
            out.extend_from_slice(&u16::try_from(length).expect("16 bits").to_be_bytes());
        }
        _ => {
            out.push(mask | 127);
            out.extend_from_slice(&length.to_be_bytes());
        }
    }
}

#[tokio::test]
async fn a_post_upgrade_is_405() {
    let scene = Scene::start().await;
    let request =
        upgrade_request("/ws", "Sec-WebSocket-Protocol: mqtt\r\n").replacen("GET", "POST", 1);
    let (status, body) = scene.refusal(request.as_bytes()).await;
    assert_eq!(status, "HTTP/1.1 405 Method Not Allowed");
    assert!(body.contains("GET"), "{body}");
    scene.check("after POST").await;
}

#[tokio::test]
async fn an_http_1_0_upgrade_is_505() {
    let scene = Scene::start().await;
    // RFC 6455 4.1: "The method of the request MUST be GET, and the HTTP version MUST be at
    // least 1.1."
    let request = upgrade_request("/ws", "Sec-WebSocket-Protocol: mqtt\r\n")
        .replacen("HTTP/1.1", "HTTP/1.0", 1);
    let (status, _) = scene.refusal(request.as_bytes()).await;
    assert!(status.starts_with("HTTP/1.1 505"), "{status}");
    scene.check("after HTTP/1.0").await;
}

#[tokio::test]
async fn a_missing_or_malformed_key_is_400() {
    let scene = Scene::start().await;
    // RFC 6455 4.2.1: the key is 16 octets, base64-encoded; without a valid one, 400.
    let valid = "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n";
    let base = upgrade_request("/ws", "Sec-WebSocket-Protocol: mqtt\r\n");
    for key in [
        "",
        "Sec-WebSocket-Key: c2hvcnQ=\r\n",
        "Sec-WebSocket-Key: !!!!\r\n",
    ] {
        let request = base.replacen(valid, key, 1);
        let (status, body) = scene.refusal(request.as_bytes()).await;
        assert_eq!(status, "HTTP/1.1 400 Bad Request", "{key}");
        assert!(body.contains("Sec-WebSocket-Key"), "{body}");
    }
    scene.check("after bad keys").await;
}

#[tokio::test]
async fn a_request_head_over_16_kib_is_431_without_its_end() {
    let scene = Scene::start().await;
    // One 32 KB header and no blank line: refused on size, not after a timeout.
    let mut request = b"GET /ws HTTP/1.1\r\nHost: localhost\r\nX-Padding: ".to_vec();
    request.resize(32 * 1024, b'a');
    let (status, _) = scene.refusal(&request).await;
    assert_eq!(status, "HTTP/1.1 431 Request Header Fields Too Large");
    scene.check("after a 32 KB head").await;
}

#[tokio::test]
async fn a_hundred_headers_are_400() {
    let scene = Scene::start().await;
    let mut extra = "Sec-WebSocket-Protocol: mqtt\r\n".to_owned();
    for n in 0..100 {
        extra.push_str(&format!("X-Header-{n}: v\r\n"));
    }
    let (status, body) = scene
        .refusal(upgrade_request("/ws", &extra).as_bytes())
        .await;
    assert_eq!(status, "HTTP/1.1 400 Bad Request");
    assert!(body.contains("malformed HTTP request"), "{body}");
    scene.check("after 100 headers").await;
}

#[tokio::test]
async fn binary_in_a_header_name_is_400() {
    let scene = Scene::start().await;
    let request = b"GET /ws HTTP/1.1\r\nHost: localhost\r\nX-\x00\xFF: v\r\n\r\n";
    let (status, _) = scene.refusal(request).await;
    assert_eq!(status, "HTTP/1.1 400 Bad Request");
    scene.check("after a binary header name").await;
}

#[tokio::test]
async fn an_unmasked_client_frame_is_1002() {
    let scene = Scene::start().await;
    // RFC 6455 5.1: "a server MUST close the connection upon receiving a frame that is not
    // masked", with 1002.
    let code = scene
        .close_code_after("mqtt", &[BINARY | FIN, 0x01, 0x10])
        .await;
    assert_eq!(code, PROTOCOL_ERROR);
    scene.check("after an unmasked frame").await;
}

#[tokio::test]
async fn a_text_frame_that_is_not_utf8_is_1007() {
    let scene = Scene::start().await;
    // RFC 6455 8.1: invalid UTF-8 in a text message fails the connection; 7.4.1: 1007.
    let code = scene
        .close_code_after("v12.stomp", &frame(TEXT | FIN, b"CONNECT\n\xC3\x28\n\n\0"))
        .await;
    assert_eq!(code, INVALID_PAYLOAD);
    scene.check("after bad UTF-8").await;
}

#[tokio::test]
async fn a_text_frame_on_mqtt_is_1003() {
    let scene = Scene::start().await;
    // [MQTT-6.0.0-1] MQTT rides binary frames only: 1003 (cannot accept this data type).
    let code = scene
        .close_code_after("mqtt", &frame(TEXT | FIN, b"hi"))
        .await;
    assert_eq!(code, UNSUPPORTED_DATA);
    scene.check("after a text frame on mqtt").await;
}

#[tokio::test]
async fn an_oversized_message_is_1009() {
    let broker = Broker::start_with(|config| config.ws_max_message_size = 1024).await;
    let scene = Scene::with(broker).await;
    let code = scene
        .close_code_after("mqtt", &frame(BINARY | FIN, &[0x30; 2000]))
        .await;
    assert_eq!(code, MESSAGE_TOO_BIG);
    scene.check("after 2,000 octets").await;
}

#[tokio::test]
async fn a_declared_exabyte_frame_is_1009_on_its_header() {
    let scene = Scene::start().await;
    // Only the header of a 2^62-octet frame, masked, no payload: refused from the length.
    let mut octets = vec![BINARY | FIN];
    header_length(1 << 62, true, &mut octets);
    octets.extend_from_slice(&[1, 2, 3, 4]);
    let code = scene.close_code_after("mqtt", &octets).await;
    assert_eq!(code, MESSAGE_TOO_BIG);
    scene.check("after an exabyte header").await;
}

#[tokio::test]
async fn a_fragmented_control_frame_is_1002() {
    let scene = Scene::start().await;
    // RFC 6455 5.5: "Control frames MUST NOT be fragmented."
    let code = scene.close_code_after("mqtt", &frame(PING, b"part")).await;
    assert_eq!(code, PROTOCOL_ERROR);
    scene.check("after a fragmented ping").await;
}

#[tokio::test]
async fn a_control_frame_over_125_octets_is_1002() {
    let scene = Scene::start().await;
    // RFC 6455 5.5: "All control frames MUST have a payload length of 125 bytes or less."
    let code = scene
        .close_code_after("mqtt", &frame(PING | FIN, &[0; 200]))
        .await;
    assert_eq!(code, PROTOCOL_ERROR);
    scene.check("after a 200-octet ping").await;
}

#[tokio::test]
async fn a_reserved_opcode_is_1002() {
    let scene = Scene::start().await;
    // RFC 6455 5.2: opcodes 0x3-0x7 and 0xB-0xF are reserved; an unknown one fails the
    // connection.
    for opcode in [0x3, 0xB] {
        let code = scene
            .close_code_after("mqtt", &frame(opcode | FIN, b"x"))
            .await;
        assert_eq!(code, PROTOCOL_ERROR, "opcode {opcode:#x}");
    }
    scene.check("after reserved opcodes").await;
}

#[tokio::test]
async fn rsv_bits_without_an_extension_are_1002() {
    let scene = Scene::start().await;
    // RFC 6455 5.2: RSV1-3 "MUST be 0 unless an extension is negotiated".
    for rsv in [0x40, 0x20, 0x10] {
        let code = scene
            .close_code_after("mqtt", &frame(rsv | BINARY | FIN, b"x"))
            .await;
        assert_eq!(code, PROTOCOL_ERROR, "rsv {rsv:#x}");
    }
    scene.check("after RSV bits").await;
}

#[tokio::test]
async fn a_continuation_without_a_start_is_1002() {
    let scene = Scene::start().await;
    let code = scene
        .close_code_after("mqtt", &frame(CONTINUATION | FIN, b"x"))
        .await;
    assert_eq!(code, PROTOCOL_ERROR);
    scene.check("after a stray continuation").await;
}

#[tokio::test]
async fn a_new_message_inside_a_fragmented_one_is_1002() {
    let scene = Scene::start().await;
    // RFC 6455 5.4: fragments of one message are not interleaved with another data frame.
    let mut octets = frame(BINARY, b"first half");
    octets.extend_from_slice(&frame(BINARY | FIN, b"another message"));
    let code = scene.close_code_after("mqtt", &octets).await;
    assert_eq!(code, PROTOCOL_ERROR);
    scene.check("after interleaved messages").await;
}

#[tokio::test]
async fn a_close_with_a_reserved_code_is_1002() {
    let scene = Scene::start().await;
    // RFC 6455 7.4.1: 1005 and 1006 "MUST NOT be set as a status code in a Close control
    // frame by an endpoint"; codes below 1000 are never used.
    for code in [1005u16, 999] {
        let answer = scene
            .close_code_after("mqtt", &frame(CLOSE | FIN, &code.to_be_bytes()))
            .await;
        assert_eq!(answer, PROTOCOL_ERROR, "close code {code}");
    }
    scene.check("after reserved close codes").await;
}

#[tokio::test]
async fn a_close_from_the_client_is_answered_with_its_code() {
    let scene = Scene::start().await;
    // RFC 6455 5.5.1: "If an endpoint receives a Close frame and did not previously send a
    // Close frame, the endpoint MUST send a Close frame in response", usually echoing the
    // code. Also the regression test for a broker that answered with nothing.
    for (subprotocol, code) in [("mqtt", 1000u16), ("v12.stomp", 4000)] {
        let answer = scene
            .close_code_after(subprotocol, &frame(CLOSE | FIN, &code.to_be_bytes()))
            .await;
        assert_eq!(answer, code, "{subprotocol}");
    }
    scene.check("after client closes").await;
}
