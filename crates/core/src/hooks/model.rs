//! The webhook values: hooks, their configuration, deliveries and attempts. Plain data; the
//! store fills them in, the service and the worker act on them.

pub use crate::ids::{DeliveryId, HookId};
use std::fmt;

use crate::access::{AccountId, RepoId};
use crate::ids::AppId;
use crate::ports::Millis;

/// What a hook is attached to: its events come from the packages of that account, or the
/// packages linked to that repository.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HookScope {
    /// A source repository (GitHub's repository hooks): packages linked to it.
    Repository(RepoId),
    /// An organization (GitHub's organization hooks): the organization's packages.
    Organization(AccountId),
    /// A user (Berth's; GitHub has none): the user's own packages.
    User(AccountId),
    /// A GitHub App's one webhook: the packages of the accounts the app is installed on,
    /// limited to those linked to the installation's selected repositories.
    App(AppId),
}

impl HookScope {
    /// GitHub's hook `type`.
    pub fn type_name(self) -> &'static str {
        match self {
            HookScope::Repository(_) => "Repository",
            HookScope::Organization(_) => "Organization",
            HookScope::User(_) => "User",
            HookScope::App(_) => "App",
        }
    }

    /// `X-GitHub-Hook-Installation-Target-Type`.
    pub fn target_type(self) -> &'static str {
        match self {
            HookScope::Repository(_) => "repository",
            HookScope::Organization(_) => "organization",
            HookScope::User(_) => "user",
            HookScope::App(_) => "integration",
        }
    }

    /// `X-GitHub-Hook-Installation-Target-ID`.
    pub fn target_id(self) -> i64 {
        match self {
            HookScope::Repository(id) => id.0,
            HookScope::Organization(id) | HookScope::User(id) => id.0,
            HookScope::App(id) => id.0,
        }
    }
}

/// How a payload is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContentType {
    /// `application/json`: the payload is the body.
    Json,
    /// `application/x-www-form-urlencoded`: the body is `payload=<the JSON, URL-encoded>`.
    Form,
}

impl ContentType {
    /// GitHub's spelling in `config.content_type`.
    pub fn as_str(self) -> &'static str {
        match self {
            ContentType::Json => "json",
            ContentType::Form => "form",
        }
    }

    /// Parses GitHub's spelling.
    pub fn parse(text: &str) -> Option<ContentType> {
        match text {
            "json" => Some(ContentType::Json),
            "form" => Some(ContentType::Form),
            _ => None,
        }
    }
}

/// Where and how a hook delivers (GitHub's `config`).
#[derive(Clone, PartialEq, Eq)]
pub struct HookConfig {
    /// The receiver's URL (`http` or `https`).
    pub url: String,
    /// Body encoding.
    pub content_type: ContentType,
    /// Key of the `X-Hub-Signature-256` HMAC; `None` sends no signature.
    pub secret: Option<String>,
    /// Skip TLS certificate verification (GitHub's `insecure_ssl: "1"`).
    pub insecure_ssl: bool,
}

impl fmt::Debug for HookConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HookConfig")
            .field("url", &self.url)
            .field("content_type", &self.content_type)
            .field("secret", &self.secret.as_ref().map(|_| "********"))
            .field("insecure_ssl", &self.insecure_ssl)
            .finish()
    }
}

/// The events Berth sends to a hook that subscribes to them (`*`: all of them).
pub const EVENTS: [&str; 3] = ["package", "registry_package", "*"];

/// Every event GitHub's webhooks know (`@octokit/openapi-webhooks`, the `ping` event aside,
/// which no hook subscribes to). A hook may subscribe to any of them, as on GitHub (whose
/// default is `push`): they are stored and shown as given, and Berth sends only [`EVENTS`].
/// A name not in this list is refused, as GitHub refuses it.
pub const GITHUB_EVENTS: [&str; 74] = [
    "branch_protection_configuration",
    "branch_protection_rule",
    "check_run",
    "check_suite",
    "code_scanning_alert",
    "commit_comment",
    "create",
    "custom_property",
    "custom_property_values",
    "delete",
    "dependabot_alert",
    "deploy_key",
    "deployment",
    "deployment_protection_rule",
    "deployment_review",
    "deployment_status",
    "discussion",
    "discussion_comment",
    "fork",
    "github_app_authorization",
    "gollum",
    "installation",
    "installation_repositories",
    "installation_target",
    "issue_comment",
    "issue_dependencies",
    "issues",
    "label",
    "marketplace_purchase",
    "member",
    "membership",
    "merge_group",
    "meta",
    "milestone",
    "org_block",
    "organization",
    "package",
    "page_build",
    "personal_access_token_request",
    "project",
    "project_card",
    "project_column",
    "projects_v2",
    "projects_v2_item",
    "projects_v2_status_update",
    "public",
    "pull_request",
    "pull_request_review",
    "pull_request_review_comment",
    "pull_request_review_thread",
    "push",
    "registry_package",
    "release",
    "repository",
    "repository_advisory",
    "repository_dispatch",
    "repository_import",
    "repository_ruleset",
    "repository_vulnerability_alert",
    "secret_scanning_alert",
    "secret_scanning_alert_location",
    "secret_scanning_scan",
    "security_advisory",
    "security_and_analysis",
    "sponsorship",
    "star",
    "status",
    "sub_issues",
    "team",
    "team_add",
    "watch",
    "workflow_dispatch",
    "workflow_job",
    "workflow_run",
];

/// The outcome of a hook's latest attempt (GitHub's `last_response`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LastResponse {
    /// HTTP status, `None` before the first attempt or when no response came.
    pub code: Option<u16>,
    /// `unused`, `active` (2xx), or a short failure such as `failed`.
    pub status: String,
    /// What happened, for a person.
    pub message: Option<String>,
}

impl Default for LastResponse {
    fn default() -> Self {
        LastResponse {
            code: None,
            status: "unused".into(),
            message: None,
        }
    }
}

/// A hook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hook {
    /// Row id.
    pub id: HookId,
    /// What it is attached to.
    pub scope: HookScope,
    /// Whether events are delivered (an inactive hook's queue waits).
    pub active: bool,
    /// Subscribed events (names of [`GITHUB_EVENTS`] or `*`; Berth sends [`EVENTS`]).
    pub events: Vec<String>,
    /// Delivery settings.
    pub config: HookConfig,
    /// Berth's opt-in: also deliver the `deleted` action when a package version is deleted.
    pub deleted_events: bool,
    /// Creation time.
    pub created_at: Millis,
    /// Last change of its settings.
    pub updated_at: Millis,
    /// The latest attempt's outcome.
    pub last_response: LastResponse,
}

impl Hook {
    /// Whether the hook subscribes to `event` (directly or with `*`).
    pub fn wants(&self, event: &str) -> bool {
        self.events.iter().any(|e| e == event || e == "*")
    }
}

/// A hook to create, or a hook's new settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HookSettings {
    /// Whether events are delivered.
    pub active: bool,
    /// Subscribed events.
    pub events: Vec<String>,
    /// Delivery settings.
    pub config: HookConfig,
    /// Deliver the `deleted` action too.
    pub deleted_events: bool,
}

/// Where a delivery is in the queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryState {
    /// Not delivered yet: waiting for its turn, its time, or a retry.
    Pending,
    /// A receiver answered 2xx.
    Delivered,
    /// Every attempt failed; the hook's next delivery went ahead.
    Failed,
}

impl DeliveryState {
    /// The state's name, as stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryState::Pending => "pending",
            DeliveryState::Delivered => "delivered",
            DeliveryState::Failed => "failed",
        }
    }
}

/// A delivery to queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewDelivery {
    /// The hook.
    pub hook: HookId,
    /// `X-GitHub-Delivery`: a UUID, shared by redeliveries of the same event.
    pub guid: String,
    /// `package`, `registry_package` or `ping`.
    pub event: String,
    /// The payload's `action`, if any.
    pub action: Option<String>,
    /// The payload, JSON.
    pub payload: String,
    /// Whether this re-sends an earlier delivery.
    pub redelivery: bool,
    /// The payload's repository, if any.
    pub repository_id: Option<RepoId>,
}

/// A queued or finished delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// Row id.
    pub id: DeliveryId,
    /// What was queued.
    pub queued: NewDelivery,
    /// Where it is.
    pub state: DeliveryState,
    /// Attempts made so far.
    pub attempts: u32,
    /// When the next attempt is due (pending deliveries).
    pub next_attempt_at: Millis,
    /// When it was queued.
    pub created_at: Millis,
    /// The latest attempt, if any.
    pub last_attempt: Option<Attempt>,
}

/// One attempt to deliver: the request sent and what came back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    /// 1 for the first attempt.
    pub number: u32,
    /// When it started.
    pub started_at: Millis,
    /// How long it took, in milliseconds.
    pub duration_ms: u64,
    /// The request's headers.
    pub request_headers: Vec<(String, String)>,
    /// The response's status, `None` when none came (refused, timed out).
    pub status_code: Option<u16>,
    /// The response's headers.
    pub response_headers: Vec<(String, String)>,
    /// The response's body, truncated to [`MAX_RECORDED_BODY`] bytes.
    pub response_body: String,
    /// Why no response came, when none did.
    pub error: Option<String>,
}

impl Attempt {
    /// Whether the receiver took the delivery (2xx).
    pub fn succeeded(&self) -> bool {
        self.status_code.is_some_and(|c| (200..300).contains(&c))
    }

    /// GitHub's delivery `status`: `OK`, `Invalid HTTP Response: 500`, or the error.
    pub fn status_text(&self) -> String {
        match (self.status_code, &self.error) {
            (Some(code), _) if (200..300).contains(&code) => "OK".into(),
            (Some(code), _) => format!("Invalid HTTP Response: {code}"),
            (None, Some(error)) => error.clone(),
            (None, None) => "failed".into(),
        }
    }
}

/// The most of a response body recorded per attempt, in bytes.
pub const MAX_RECORDED_BODY: usize = 16 * 1024;

/// What the worker decided after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptOutcome {
    /// Delivered: the hook's next delivery may go.
    Delivered,
    /// Try again at this time; the hook's later deliveries wait.
    RetryAt(Millis),
    /// Given up: the hook's next delivery may go.
    Failed,
}
