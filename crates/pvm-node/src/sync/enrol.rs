//! Redeeming a one-time enrolment code at the cloud (`POST <cloud>/api/v1/enrol`).

use pvm_sync::{EnrolRequest, EnrolResponse};

/// Why the cloud did not pair the node, in words for the admin at the console.
#[derive(Debug, thiserror::Error)]
pub enum EnrolError {
    #[error("{0}")]
    BadUrl(String),
    #[error("the cloud at {url} cannot be reached: {detail}")]
    Unreachable { url: String, detail: String },
    #[error("the cloud refused the enrolment code: {message}")]
    Refused { message: String },
    #[error("the cloud answered with an error ({status}): {message}")]
    Cloud { status: u16, message: String },
}

pub(crate) async fn redeem(
    http: &reqwest::Client,
    cloud_url: &str,
    code: &str,
    hostname: &str,
) -> Result<EnrolResponse, EnrolError> {
    let base = cloud_url.trim().trim_end_matches('/');
    if !(base.starts_with("http://") || base.starts_with("https://"))
        || base.contains(char::is_whitespace)
    {
        return Err(EnrolError::BadUrl(format!(
            "`{cloud_url}` is not a cloud address: it must start with https:// (or http://)"
        )));
    }
    let code = code.trim();
    if code.is_empty() {
        return Err(EnrolError::Refused {
            message: "no enrolment code was given".into(),
        });
    }
    let url = format!("{base}/api/v1/enrol");
    let request = EnrolRequest {
        code: code.to_string(),
        hostname: hostname.to_string(),
        version: crate::node::VERSION.to_string(),
    };
    let response =
        http.post(&url)
            .json(&request)
            .send()
            .await
            .map_err(|e| EnrolError::Unreachable {
                url: base.to_string(),
                detail: describe(&e),
            })?;
    let status = response.status();
    let body = response
        .bytes()
        .await
        .map_err(|e| EnrolError::Unreachable {
            url: base.to_string(),
            detail: describe(&e),
        })?;
    if status.is_success() {
        return serde_json::from_slice(&body).map_err(|e| EnrolError::Cloud {
            status: status.as_u16(),
            message: format!("its answer is not an enrolment: {e}"),
        });
    }
    let message = cloud_message(&body).unwrap_or_else(|| {
        String::from_utf8_lossy(&body)
            .chars()
            .take(200)
            .collect::<String>()
    });
    if status.is_client_error() {
        Err(EnrolError::Refused { message })
    } else {
        Err(EnrolError::Cloud {
            status: status.as_u16(),
            message,
        })
    }
}

/// The message of the cloud's error shape (`{"error":{"code","message"}}`, as the node's).
fn cloud_message(body: &[u8]) -> Option<String> {
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    v.get("error")?
        .get("message")?
        .as_str()
        .map(ToString::to_string)
}

fn describe(e: &reqwest::Error) -> String {
    use std::error::Error;
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}
