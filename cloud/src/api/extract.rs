//! Extractors whose rejections speak the API's error shape instead of axum's plain text
//! (shared with the node, from `pvm-apierror`).

pub use pvm_apierror::{ApiJson, ApiPath, ApiQuery};
