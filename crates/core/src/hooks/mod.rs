//! Package webhooks, GitHub-compatible: hooks on repositories, organizations and users
//! receive `package` and `registry_package` events (`published`, `updated`, and the opt-in
//! `deleted`) and `ping`, signed with `X-Hub-Signature-256`, so a receiver written for
//! GitHub's webhooks works against Berth.
//!
//! [`model`] holds the values, [`payload`] builds GitHub's JSON (pure), [`signing`] what goes
//! on the wire (pure), [`store`] is the port (hooks, the delivery queue, attempts),
//! [`service`] the management operations (checking the caller as `access::manage` does),
//! [`targets`] the port asking the binary's network policy whether a receiver URL is allowed,
//! [`events`] queues deliveries for a package event, and [`worker`] delivers them through
//! the binary's [`worker::Transport`]. A push never waits for a receiver: it only queues.

pub mod events;
pub mod model;
pub mod payload;
pub mod service;
pub mod signing;
pub mod store;
pub mod targets;
pub mod worker;

pub use events::PackageEvent;
pub use model::{
    Attempt, ContentType, Delivery, DeliveryId, DeliveryState, Hook, HookConfig, HookId, HookScope,
};
pub use payload::PackageAction;
pub use service::{HookOwner, HookParent, HookRequest, Hooks};
pub use store::HookStore;
pub use targets::TargetPolicy;
pub use worker::{DeliverySettings, OutgoingRequest, ReceivedResponse, Transport};
