//! The JSON messages of the CASTV2 namespaces the bridge speaks, and a parser for what a device
//! sends that never trusts its shape: a missing or mistyped field makes a message `Ignored` or
//! leaves an optional field empty, it never panics.

use serde_json::{json, Value};

use crate::frame::CastMessage;

pub const NS_CONNECTION: &str = "urn:x-cast:com.google.cast.tp.connection";
pub const NS_HEARTBEAT: &str = "urn:x-cast:com.google.cast.tp.heartbeat";
pub const NS_RECEIVER: &str = "urn:x-cast:com.google.cast.receiver";
/// The device platform's own endpoint.
pub const PLATFORM_ID: &str = "receiver-0";
/// Our endpoint. One connection per device, so one fixed id is enough.
pub const SENDER_ID: &str = "sender-pvm";

/// DashCast: a public web receiver that shows any URL.
pub const DASHCAST_APP_ID: &str = "84912283";
pub const DASHCAST_NAMESPACE: &str = "urn:x-cast:com.madmod.dashcast";

/// The namespace of the project's own receiver page (receiver/receiver.html).
pub const PVM_RECEIVER_NAMESPACE: &str = "urn:x-cast:org.pvm.display";

/// Longest string taken from a device into a status (names, reasons), so a hostile device
/// cannot make statuses and metrics grow without bound.
const MAX_TEXT: usize = 200;

/// An application the device reports as running.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunningApp {
    pub app_id: String,
    pub display_name: String,
    pub session_id: String,
    pub transport_id: String,
    pub namespaces: Vec<String>,
    /// The device's own backdrop/ambient screen: nobody is casting.
    pub is_idle_screen: bool,
}

/// What a device said, reduced to what the bridge acts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Incoming {
    Ping,
    Pong,
    /// The endpoint `from` closed its virtual connection with us.
    Close {
        from: String,
    },
    ReceiverStatus {
        request_id: Option<i64>,
        apps: Vec<RunningApp>,
    },
    /// `LAUNCH_ERROR` or `INVALID_REQUEST` answering one of our requests.
    RequestFailed {
        request_id: Option<i64>,
        reason: String,
    },
    /// Anything else, including malformed JSON and binary payloads.
    Ignored,
}

fn text(v: Option<&Value>) -> String {
    let s = v.and_then(Value::as_str).unwrap_or_default();
    truncate(s)
}

fn truncate(s: &str) -> String {
    match s.char_indices().nth(MAX_TEXT) {
        Some((i, _)) => s[..i].to_owned(),
        None => s.to_owned(),
    }
}

fn parse_app(v: &Value) -> Option<RunningApp> {
    let app_id = v.get("appId")?.as_str()?;
    let namespaces = v
        .get("namespaces")
        .and_then(Value::as_array)
        .map(|list| {
            list.iter()
                .filter_map(|n| n.get("name").and_then(Value::as_str))
                .map(truncate)
                .collect()
        })
        .unwrap_or_default();
    Some(RunningApp {
        app_id: truncate(app_id),
        display_name: text(v.get("displayName")),
        session_id: text(v.get("sessionId")),
        transport_id: text(v.get("transportId")),
        namespaces,
        is_idle_screen: v
            .get("isIdleScreen")
            .and_then(Value::as_bool)
            .unwrap_or(false),
    })
}

/// Reads one message from a device.
pub fn parse_incoming(msg: &CastMessage) -> Incoming {
    let Some(payload) = msg.payload_utf8.as_deref() else {
        return Incoming::Ignored;
    };
    let Ok(body) = serde_json::from_str::<Value>(payload) else {
        return Incoming::Ignored;
    };
    let kind = body.get("type").and_then(Value::as_str).unwrap_or_default();
    let request_id = body.get("requestId").and_then(Value::as_i64);
    match (msg.namespace.as_str(), kind) {
        (NS_HEARTBEAT, "PING") => Incoming::Ping,
        (NS_HEARTBEAT, "PONG") => Incoming::Pong,
        (NS_CONNECTION, "CLOSE") => Incoming::Close {
            from: truncate(&msg.source_id),
        },
        (NS_RECEIVER, "RECEIVER_STATUS") => {
            let apps = body
                .get("status")
                .and_then(|s| s.get("applications"))
                .and_then(Value::as_array)
                .map(|list| list.iter().filter_map(parse_app).collect())
                .unwrap_or_default();
            Incoming::ReceiverStatus { request_id, apps }
        }
        (NS_RECEIVER, "LAUNCH_ERROR" | "INVALID_REQUEST") => {
            let reason = text(body.get("reason"));
            Incoming::RequestFailed {
                request_id,
                reason: if reason.is_empty() {
                    kind.to_owned()
                } else {
                    format!("{kind}: {reason}")
                },
            }
        }
        _ => Incoming::Ignored,
    }
}

fn msg(destination: &str, namespace: &str, body: Value) -> CastMessage {
    CastMessage::text(SENDER_ID, destination, namespace, body.to_string())
}

pub fn connect(destination: &str) -> CastMessage {
    msg(destination, NS_CONNECTION, json!({ "type": "CONNECT" }))
}

pub fn close(destination: &str) -> CastMessage {
    msg(destination, NS_CONNECTION, json!({ "type": "CLOSE" }))
}

pub fn ping() -> CastMessage {
    msg(PLATFORM_ID, NS_HEARTBEAT, json!({ "type": "PING" }))
}

/// Answers a device's PING (sent to whoever pinged: the platform or an app).
pub fn pong(destination: &str) -> CastMessage {
    msg(destination, NS_HEARTBEAT, json!({ "type": "PONG" }))
}

pub fn get_status(request_id: i64) -> CastMessage {
    msg(
        PLATFORM_ID,
        NS_RECEIVER,
        json!({ "type": "GET_STATUS", "requestId": request_id }),
    )
}

pub fn launch(request_id: i64, app_id: &str) -> CastMessage {
    msg(
        PLATFORM_ID,
        NS_RECEIVER,
        json!({ "type": "LAUNCH", "appId": app_id, "requestId": request_id }),
    )
}

pub fn stop(request_id: i64, session_id: &str) -> CastMessage {
    msg(
        PLATFORM_ID,
        NS_RECEIVER,
        json!({ "type": "STOP", "sessionId": session_id, "requestId": request_id }),
    )
}

/// Tells the receiver app which page to show. DashCast's message; the project's own receiver
/// page (receiver/receiver.html) accepts the same one.
pub fn load_url(transport_id: &str, namespace: &str, url: &str) -> CastMessage {
    msg(
        transport_id,
        namespace,
        json!({ "url": url, "force": true, "reload": false, "reload_time": 0 }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn from_device(ns: &str, payload: &str) -> CastMessage {
        CastMessage::text(PLATFORM_ID, SENDER_ID, ns, payload.to_owned())
    }

    #[test]
    fn a_receiver_status_yields_the_running_apps() {
        let m = from_device(
            NS_RECEIVER,
            r#"{"type":"RECEIVER_STATUS","requestId":3,"status":{"applications":[
                {"appId":"84912283","displayName":"DashCast","sessionId":"s1","transportId":"t1",
                 "namespaces":[{"name":"urn:x-cast:com.madmod.dashcast"}]}]}}"#,
        );
        let Incoming::ReceiverStatus { request_id, apps } = parse_incoming(&m) else {
            panic!("not a status");
        };
        assert_eq!(request_id, Some(3));
        assert_eq!(apps[0].transport_id, "t1");
        assert_eq!(apps[0].namespaces, vec![DASHCAST_NAMESPACE.to_owned()]);
        assert!(!apps[0].is_idle_screen);
    }

    #[test]
    fn a_launch_error_carries_the_devices_reason() {
        let m = from_device(
            NS_RECEIVER,
            r#"{"type":"LAUNCH_ERROR","reason":"NOT_FOUND","requestId":9}"#,
        );
        assert_eq!(
            parse_incoming(&m),
            Incoming::RequestFailed {
                request_id: Some(9),
                reason: "LAUNCH_ERROR: NOT_FOUND".into()
            }
        );
    }

    #[test]
    fn mistyped_fields_are_ignored_rather_than_trusted() {
        let m = from_device(
            NS_RECEIVER,
            r#"{"type":"RECEIVER_STATUS","status":{"applications":[{"appId":7},{"appId":"a","namespaces":"x"}]}}"#,
        );
        let Incoming::ReceiverStatus { apps, .. } = parse_incoming(&m) else {
            panic!("not a status");
        };
        assert_eq!(apps.len(), 1);
        assert!(apps[0].namespaces.is_empty());
        assert_eq!(
            parse_incoming(&from_device(NS_HEARTBEAT, "not json")),
            Incoming::Ignored
        );
    }

    #[test]
    fn long_device_strings_are_cut_to_a_bounded_length() {
        let reason = "é".repeat(10_000);
        let m = from_device(
            NS_RECEIVER,
            &format!(r#"{{"type":"LAUNCH_ERROR","reason":"{reason}"}}"#),
        );
        let Incoming::RequestFailed { reason, .. } = parse_incoming(&m) else {
            panic!("not a failure");
        };
        assert!(reason.chars().count() <= MAX_TEXT + 20);
    }
}
