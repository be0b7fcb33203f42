use std::io;

/// Everything that can go wrong between the bridge and one device.
#[derive(Debug, thiserror::Error)]
pub enum CastError {
    #[error("frame of {0} bytes is over the 64 KiB limit")]
    FrameTooLarge(usize),
    #[error("malformed CastMessage: {0}")]
    Decode(#[from] prost::DecodeError),
    #[error("could not encode CastMessage: {0}")]
    Encode(#[from] prost::EncodeError),
    #[error("network: {0}")]
    Io(#[from] io::Error),
    #[error("TLS setup: {0}")]
    Tls(#[from] rustls::Error),
    #[error("no answer from {0} within the connect timeout")]
    ConnectTimeout(std::net::SocketAddr),
    #[error("the device closed the connection")]
    Closed,
    #[error("the bridge must be started inside a tokio runtime")]
    NoRuntime,
    #[error("mDNS: {0}")]
    Mdns(#[from] mdns_sd::Error),
}
