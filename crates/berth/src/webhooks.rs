//! The webhook worker's HTTP client: POSTs deliveries with reqwest (rustls, the platform's
//! trust store), follows no redirects (as GitHub does not), uses no proxy, connects only to
//! addresses the [`NetworkPolicy`] allows (names through [`CheckedResolver`], IP-literal URLs
//! checked here), and reads at most [`MAX_RECORDED_BODY`] bytes of a response.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use berth_core::hooks::model::MAX_RECORDED_BODY;
use berth_core::hooks::{OutgoingRequest, ReceivedResponse, Transport};
use reqwest::Url;

use crate::egress::{CheckedResolver, NetworkPolicy, Refused};

/// Sends deliveries; one client verifies TLS certificates, the other (for hooks with
/// `insecure_ssl`) does not.
pub struct HttpTransport {
    verified: reqwest::Client,
    insecure: reqwest::Client,
    policy: Arc<NetworkPolicy>,
}

impl HttpTransport {
    /// Both clients, reaching only what `policy` allows.
    pub fn new(policy: Arc<NetworkPolicy>) -> anyhow::Result<Self> {
        let builder = || {
            reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                // A proxy would resolve and connect for us, past the policy.
                .no_proxy()
                .dns_resolver(CheckedResolver(policy.clone()))
                .connect_timeout(Duration::from_secs(10))
                .pool_idle_timeout(Duration::from_secs(30))
        };
        Ok(HttpTransport {
            verified: builder().build()?,
            insecure: builder().tls_danger_accept_invalid_certs(true).build()?,
            policy,
        })
    }
}

/// Why a request got no response, for the delivery's `status`.
fn describe(error: &reqwest::Error, timeout: Duration) -> String {
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        if let Some(refused) = cause.downcast_ref::<Refused>() {
            return refused.to_string();
        }
        source = cause.source();
    }
    if error.is_timeout() {
        return format!("timed out after {} s", timeout.as_secs_f64());
    }
    let mut text = if error.is_connect() {
        "could not connect".to_owned()
    } else {
        "request failed".to_owned()
    };
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[async_trait]
impl Transport for HttpTransport {
    async fn post(&self, request: OutgoingRequest) -> Result<ReceivedResponse, String> {
        let url = Url::parse(&request.url).map_err(|e| format!("invalid URL: {e}"))?;
        self.policy.check_literal(&url).map_err(|r| r.to_string())?;
        let client = if request.insecure_ssl {
            &self.insecure
        } else {
            &self.verified
        };
        let mut builder = client.post(url).timeout(request.timeout).body(request.body);
        for (name, value) in &request.headers {
            builder = builder.header(name, value);
        }
        let mut response = builder
            .send()
            .await
            .map_err(|e| describe(&e, request.timeout))?;
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .map(|(name, value)| {
                (
                    name.as_str().to_owned(),
                    String::from_utf8_lossy(value.as_bytes()).into_owned(),
                )
            })
            .collect();
        let mut body = Vec::new();
        while body.len() < MAX_RECORDED_BODY {
            match response.chunk().await {
                Ok(Some(chunk)) => body.extend_from_slice(&chunk),
                Ok(None) => break,
                // The status is what counts; a body cut short is recorded as far as it came.
                Err(_) => break,
            }
        }
        body.truncate(MAX_RECORDED_BODY);
        Ok(ReceivedResponse {
            status,
            headers,
            body,
        })
    }
}
