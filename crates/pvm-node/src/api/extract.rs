//! Extractors whose rejections speak the API's error shape instead of axum's plain text
//! (shared with the cloud, from `pvm-apierror`).

pub use pvm_apierror::{ApiJson, ApiPath, ApiQuery};
