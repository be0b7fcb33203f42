//! Property tests: whatever a broken or hostile device sends, the frame parser and the bridge's
//! message handling never panic and never hang.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Once, OnceLock};
use std::time::Duration;

use bytes::BytesMut;
use proptest::prelude::*;
use pvm_cast::frame::{decode_frame, encode_frame, CastMessage, MAX_FRAME_LEN};
use pvm_cast::protocol::{parse_incoming, NS_CONNECTION, NS_HEARTBEAT, NS_RECEIVER};
use pvm_cast::{Bridge, BridgeConfig, ManualDevice, Timings, Wanted, WantedMap};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_rustls::TlsAcceptor;

/// Panics anywhere in this test binary, including inside the bridge's spawned tasks, where
/// tokio would otherwise swallow them.
static PANICS: AtomicUsize = AtomicUsize::new(0);

fn count_panics() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            PANICS.fetch_add(1, Ordering::SeqCst);
            default(info);
        }));
    });
}

/// Feeds chunks to the parser the way the channel does, stopping at the first error (where the
/// channel drops the connection). Returns the messages and whether it ended in an error.
fn parse_chunks(chunks: &[&[u8]]) -> (Vec<CastMessage>, bool) {
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    for chunk in chunks {
        buf.extend_from_slice(chunk);
        loop {
            match decode_frame(&mut buf) {
                Ok(Some(m)) => out.push(m),
                Ok(None) => break,
                Err(_) => return (out, true),
            }
        }
    }
    (out, false)
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        (-1e9f64..1e9).prop_map(Value::from),
        ".{0,12}".prop_map(Value::from),
        prop_oneof![
            Just("84912283"),
            Just("urn:x-cast:com.madmod.dashcast"),
            Just("receiver-0"),
            Just("web-1")
        ]
        .prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(".{0,8}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Payloads shaped like what devices send, with any field possibly wrong.
fn device_payload() -> impl Strategy<Value = String> {
    let kind = prop_oneof![
        Just(json!("PING")),
        Just(json!("PONG")),
        Just(json!("CLOSE")),
        Just(json!("RECEIVER_STATUS")),
        Just(json!("LAUNCH_ERROR")),
        Just(json!("INVALID_REQUEST")),
        json_value(),
    ];
    let app = (
        prop_oneof![Just(json!("84912283")), json_value()],
        prop_oneof![
            Just(json!([{"name": "urn:x-cast:com.madmod.dashcast"}])),
            json_value()
        ],
        prop_oneof![Just(json!("web-1")), json_value()],
        json_value(),
        json_value(),
    )
        .prop_map(|(app_id, namespaces, transport, session, idle)| {
            json!({"appId": app_id, "namespaces": namespaces, "transportId": transport,
                   "sessionId": session, "isIdleScreen": idle, "displayName": "x"})
        });
    let structured = (
        kind,
        json_value(),
        prop::collection::vec(app, 0..3),
        json_value(),
    )
        .prop_map(|(kind, request_id, apps, reason)| {
            json!({"type": kind, "requestId": request_id,
                   "status": {"applications": apps}, "reason": reason})
            .to_string()
        });
    prop_oneof![
        4 => structured,
        1 => json_value().prop_map(|v| v.to_string()),
        1 => ".{0,40}",
    ]
}

fn device_message() -> impl Strategy<Value = CastMessage> {
    let namespace = prop_oneof![
        Just(NS_HEARTBEAT.to_owned()),
        Just(NS_RECEIVER.to_owned()),
        Just(NS_CONNECTION.to_owned()),
        Just("urn:x-cast:com.madmod.dashcast".to_owned()),
        ".{0,20}",
    ];
    let source = prop_oneof![
        Just("receiver-0".to_owned()),
        Just("web-1".to_owned()),
        ".{0,10}"
    ];
    (
        namespace,
        source,
        device_payload(),
        any::<bool>(),
        -3i32..3,
        prop::option::of(prop::collection::vec(any::<u8>(), 0..16)),
    )
        .prop_map(|(namespace, source, payload, as_text, version, binary)| {
            let mut m = CastMessage::text(&source, "sender-pvm", &namespace, payload);
            m.protocol_version = version;
            if !as_text {
                m.payload_type = 1;
                m.payload_utf8 = None;
                m.payload_binary = binary;
            }
            m
        })
}

/// One write on the wire: a well-formed frame, or bytes that may be anything.
fn device_write() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        6 => device_message().prop_map(|m| encode_frame(&m).unwrap()),
        1 => prop::collection::vec(any::<u8>(), 0..64),
        1 => (any::<u32>(), prop::collection::vec(any::<u8>(), 0..32)).prop_map(|(len, body)| {
            let mut v = len.to_be_bytes().to_vec();
            v.extend(body);
            v
        }),
    ]
}

proptest! {
    #[test]
    fn the_frame_parser_never_panics_and_is_indifferent_to_chunking(
        bytes in prop::collection::vec(any::<u8>(), 0..512),
        cut in any::<prop::sample::Index>(),
    ) {
        count_panics();
        let split = cut.index(bytes.len() + 1);
        let whole = parse_chunks(&[&bytes[..]]);
        let chunked = parse_chunks(&[&bytes[..split], &bytes[split..]]);
        prop_assert_eq!(whole, chunked);
    }

    #[test]
    fn well_formed_frames_round_trip(messages in prop::collection::vec(device_message(), 0..6)) {
        let mut buf = BytesMut::new();
        for m in &messages {
            buf.extend_from_slice(&encode_frame(m).unwrap());
        }
        let mut back = Vec::new();
        while let Some(m) = decode_frame(&mut buf).unwrap() {
            back.push(m);
        }
        prop_assert_eq!(back, messages);
    }

    #[test]
    fn lengths_over_the_limit_are_refused_whatever_follows(
        len in (MAX_FRAME_LEN as u32 + 1)..=u32::MAX,
        tail in prop::collection::vec(any::<u8>(), 0..64),
    ) {
        let mut buf = BytesMut::from(&len.to_be_bytes()[..]);
        buf.extend_from_slice(&tail);
        prop_assert!(decode_frame(&mut buf).is_err());
    }

    #[test]
    fn any_device_message_parses_without_panicking(m in device_message()) {
        count_panics();
        let before = PANICS.load(Ordering::SeqCst);
        let _ = parse_incoming(&m);
        prop_assert_eq!(PANICS.load(Ordering::SeqCst), before);
    }
}

fn acceptor() -> TlsAcceptor {
    static ACCEPTOR: OnceLock<TlsAcceptor> = OnceLock::new();
    ACCEPTOR
        .get_or_init(|| {
            let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fake-chromecast");
            let cert = CertificateDer::from_pem_file(dir.join("device-cert.pem")).unwrap();
            let key = PrivateKeyDer::from_pem_file(dir.join("device-key.pem")).unwrap();
            let config = rustls::ServerConfig::builder_with_provider(Arc::new(
                rustls::crypto::ring::default_provider(),
            ))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![cert], key)
            .unwrap();
            TlsAcceptor::from(Arc::new(config))
        })
        .clone()
}

/// Plays a hostile device: accepts the bridge's connection and sends `writes`.
async fn hostile_device(writes: Vec<Vec<u8>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    let bridge = Bridge::start(BridgeConfig {
        timings: Timings {
            heartbeat: Duration::from_millis(20),
            silent_after: Duration::from_millis(500),
            connect_timeout: Duration::from_secs(2),
            launch_timeout: Duration::from_millis(50),
            retry_min: Duration::from_millis(10),
            retry_max: Duration::from_millis(50),
        },
        discovery: None,
        manual_devices: vec![ManualDevice {
            id: "evil".into(),
            name: "evil".into(),
            addr,
        }],
        ..BridgeConfig::default()
    })
    .unwrap();
    bridge.set_wanted(WantedMap::from([(
        "evil".to_owned(),
        Wanted {
            url: "http://192.0.2.1/display/x".into(),
            always: true,
        },
    )]));
    let (tcp, _) = tokio::time::timeout(Duration::from_secs(5), listener.accept())
        .await
        .expect("the bridge connects")
        .unwrap();
    if let Ok(mut tls) = acceptor().accept(tcp).await {
        for w in writes {
            if tls.write_all(&w).await.is_err() {
                break;
            }
        }
        let _ = tls.flush().await;
        // Let the bridge act on it all (it answers, polls, launches) while we drain its side.
        let mut sink = vec![0u8; 4096];
        let _ = tokio::time::timeout(Duration::from_millis(60), async {
            while matches!(tls.read(&mut sink).await, Ok(n) if n > 0) {}
        })
        .await;
    }
    tokio::time::timeout(Duration::from_secs(5), bridge.stop())
        .await
        .expect("the bridge stops promptly whatever the device sent");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn a_hostile_device_never_panics_or_hangs_the_bridge(
        writes in prop::collection::vec(device_write(), 0..24),
    ) {
        count_panics();
        let before = PANICS.load(Ordering::SeqCst);
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(hostile_device(writes));
        prop_assert_eq!(PANICS.load(Ordering::SeqCst), before);
    }
}
