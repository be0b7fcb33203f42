//! CASTV2 framing: a 4-byte big-endian length, then a protobuf `CastMessage`.
//!
//! The message struct is written by hand with prost's derive rather than generated from
//! `cast_channel.proto`, so the build needs no `protoc`. Field numbers and labels follow that file.

use bytes::{Buf, BytesMut};
use prost::Message;

use crate::error::CastError;

/// Frames larger than this are refused: real devices stay far below it, and a hostile one
/// must not make us allocate whatever length it claims.
pub const MAX_FRAME_LEN: usize = 64 * 1024;

/// `CastMessage` from the Chromium `cast_channel.proto` (proto2).
#[derive(Clone, PartialEq, Message)]
pub struct CastMessage {
    /// Always 0 (`CASTV2_1_0`).
    #[prost(int32, required, tag = "1")]
    pub protocol_version: i32,
    #[prost(string, required, tag = "2")]
    pub source_id: String,
    #[prost(string, required, tag = "3")]
    pub destination_id: String,
    #[prost(string, required, tag = "4")]
    pub namespace: String,
    /// 0 = STRING (`payload_utf8`), 1 = BINARY (`payload_binary`).
    #[prost(int32, required, tag = "5")]
    pub payload_type: i32,
    #[prost(string, optional, tag = "6")]
    pub payload_utf8: Option<String>,
    #[prost(bytes = "vec", optional, tag = "7")]
    pub payload_binary: Option<Vec<u8>>,
}

impl CastMessage {
    /// A JSON (string) message, the only kind this bridge sends.
    pub fn text(source: &str, destination: &str, namespace: &str, payload: String) -> Self {
        CastMessage {
            protocol_version: 0,
            source_id: source.to_owned(),
            destination_id: destination.to_owned(),
            namespace: namespace.to_owned(),
            payload_type: 0,
            payload_utf8: Some(payload),
            payload_binary: None,
        }
    }
}

/// Encodes one message with its length prefix.
pub fn encode_frame(message: &CastMessage) -> Result<Vec<u8>, CastError> {
    let len = message.encoded_len();
    if len > MAX_FRAME_LEN {
        return Err(CastError::FrameTooLarge(len));
    }
    let mut out = Vec::with_capacity(4 + len);
    // `len` fits in u32: it is at most MAX_FRAME_LEN.
    out.extend_from_slice(&(len as u32).to_be_bytes());
    message.encode(&mut out)?;
    Ok(out)
}

/// Takes frames out of a byte buffer that a reader keeps filling.
///
/// Returns `Ok(None)` until a whole frame is buffered. An oversized length or a body that is
/// not a `CastMessage` is an error: the stream cannot be resynchronised after either, so the
/// caller drops the connection.
pub fn decode_frame(buf: &mut BytesMut) -> Result<Option<CastMessage>, CastError> {
    let Some(header) = buf.get(..4) else {
        return Ok(None);
    };
    let len = u32::from_be_bytes([header[0], header[1], header[2], header[3]]) as usize;
    if len > MAX_FRAME_LEN {
        return Err(CastError::FrameTooLarge(len));
    }
    if buf.len() < 4 + len {
        // Reserve once for the whole frame rather than growing in small steps.
        buf.reserve(4 + len - buf.len());
        return Ok(None);
    }
    buf.advance(4);
    let body = buf.split_to(len);
    Ok(Some(CastMessage::decode(body.freeze())?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frame_round_trips_through_the_buffer_in_pieces() {
        let msg = CastMessage::text("sender-0", "receiver-0", "urn:x", "{\"a\":1}".into());
        let bytes = encode_frame(&msg).unwrap();
        let mut buf = BytesMut::new();
        for (i, b) in bytes.iter().enumerate() {
            assert!(decode_frame(&mut buf).unwrap().is_none(), "early at {i}");
            buf.extend_from_slice(&[*b]);
        }
        assert_eq!(decode_frame(&mut buf).unwrap(), Some(msg));
        assert!(buf.is_empty());
    }

    #[test]
    fn a_claimed_length_over_64_kib_is_refused_before_reading_it() {
        let mut buf = BytesMut::from(&((MAX_FRAME_LEN as u32 + 1).to_be_bytes())[..]);
        assert!(matches!(
            decode_frame(&mut buf),
            Err(CastError::FrameTooLarge(_))
        ));
    }

    #[test]
    fn a_body_that_is_not_protobuf_is_an_error_not_a_panic() {
        // Field 2 (a string) claims 5 bytes but the frame holds only 1.
        let mut buf = BytesMut::from(&[0u8, 0, 0, 3, 0x12, 0x05, b'a'][..]);
        assert!(matches!(decode_frame(&mut buf), Err(CastError::Decode(_))));
    }

    #[test]
    fn an_oversized_outgoing_message_is_refused() {
        let msg = CastMessage::text("a", "b", "c", "x".repeat(MAX_FRAME_LEN));
        assert!(matches!(
            encode_frame(&msg),
            Err(CastError::FrameTooLarge(_))
        ));
    }
}
