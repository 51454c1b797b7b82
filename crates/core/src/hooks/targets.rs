//! Which receivers a hook may deliver to: the binary's network policy, asked when a hook's
//! URL is set (creation or change). The same policy refuses again when a delivery connects,
//! against the addresses it resolved then (the binary's transport), so a name that resolves
//! elsewhere later (DNS rebinding) gains nothing.

use async_trait::async_trait;

/// Decides whether hooks may deliver to a URL.
#[async_trait]
pub trait TargetPolicy: Send + Sync + 'static {
    /// `Err(why)`, for a person, when `url`'s host is, or resolves to, an address hooks may
    /// not reach (loopback, private, link-local, reserved, or this server's own).
    async fn check(&self, url: &str) -> Result<(), String>;
}
