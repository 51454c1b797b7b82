//! Webhooks, the user's (`/settings/hooks`) and an organization's
//! (`/organizations/{org}/settings/hooks`): the list, a new hook's form, each hook's page
//! (its settings, Ping, Delete, and its recent deliveries with the request sent and the
//! response received, each with Redeliver). Who manages which hooks is the hooks service's
//! decision; an organization's hooks are a 404 page to those who do not manage it.

use askama::Template;
use axum::Form;
use axum::extract::{Path, State};
use axum::http::{StatusCode, Uri};
use axum::response::Response;
use berth_core::access::ManageError;
use berth_core::hooks::{Delivery, DeliveryState, Hook, HookOwner, HookRequest};
use berth_core::ids::{DeliveryId, HookId};
use serde::Deserialize;

use super::error::{PageError, PageResult};
use super::org_settings::hidden;
use super::settings::{Fields, Nav, back_with_error, respond};
use super::{check_csrf, see_other_with, signed_in};
use crate::Web;
use crate::session::Viewer;
use crate::view::{Layout, ago, render, timestamp};

/// Deliveries a hook's page shows.
const DELIVERIES_SHOWN: usize = 30;

/// A hook page's path: the organization (none: the user's hooks), the hook, the delivery.
#[derive(Debug, Default, Deserialize)]
pub struct HookPath {
    org: Option<String>,
    id: Option<i64>,
    delivery: Option<i64>,
}

/// Whose hooks a page shows.
struct At {
    org: Option<String>,
}

impl At {
    fn of(path: &HookPath) -> At {
        At {
            org: path.org.clone(),
        }
    }

    fn owner(&self) -> HookOwner<'_> {
        match &self.org {
            Some(org) => HookOwner::Organization(org),
            None => HookOwner::User,
        }
    }

    /// The hooks' list URL.
    fn base(&self) -> String {
        match &self.org {
            Some(org) => format!("/organizations/{org}/settings/hooks"),
            None => "/settings/hooks".into(),
        }
    }

    fn nav(&self) -> Nav {
        match &self.org {
            Some(org) => Nav::org(org, "hooks"),
            None => Nav::user("/settings/hooks"),
        }
    }

    /// A refusal as a page: an organization's hooks are not shown to exist to those who
    /// may not manage them.
    fn error(&self, err: ManageError) -> PageError {
        if self.org.is_some() {
            hidden(err)
        } else {
            err.into()
        }
    }

    /// A form action's refusal: bad input back to `back` with why; the rest as pages.
    fn refused(&self, viewer: &Viewer, back: &str, err: ManageError) -> PageResult {
        match err {
            ManageError::Invalid { .. } | ManageError::Conflict(_) => {
                back_with_error(viewer, back, err.into())
            }
            other => Err(self.error(other)),
        }
    }
}

fn hook_id(path: &HookPath) -> Result<HookId, PageError> {
    path.id.map(HookId).ok_or(PageError::NotFound)
}

/// A hook as its list row.
pub struct HookRow {
    id: i64,
    url: String,
    events: String,
    active: bool,
    /// `unused`, `active`, `failed`…
    last_status: String,
    last_ok: bool,
    last_message: Option<String>,
}

fn hook_row(hook: &Hook) -> HookRow {
    HookRow {
        id: hook.id.0,
        url: hook.config.url.clone(),
        events: if hook.events.iter().any(|e| e == "*") {
            "everything".into()
        } else {
            hook.events.join(", ")
        },
        active: hook.active,
        last_status: hook.last_response.status.clone(),
        last_ok: hook
            .last_response
            .code
            .is_some_and(|c| (200..300).contains(&c)),
        last_message: hook.last_response.message.clone(),
    }
}

#[derive(Template)]
#[template(path = "hooks.html")]
struct ListPage {
    layout: Layout,
    nav: Nav,
    base: String,
    owner: String,
    rows: Vec<HookRow>,
}

/// `GET …/settings/hooks`.
pub async fn list(
    viewer: Viewer,
    State(web): State<Web>,
    uri: Uri,
    path: Option<Path<HookPath>>,
) -> Response {
    let path = path.map(|Path(path)| path).unwrap_or_default();
    let at = At::of(&path);
    let result = async {
        signed_in(&viewer, &uri)?;
        let (parent, hooks) = web
            .services
            .hooks
            .list_as(&viewer.principal, at.owner())
            .await
            .map_err(|e| at.error(e))?;
        let page = ListPage {
            layout: Layout::new(&viewer, "Webhooks"),
            nav: at.nav(),
            base: at.base(),
            owner: parent.account.login,
            rows: hooks.iter().map(hook_row).collect(),
        };
        Ok(render(&viewer, StatusCode::OK, &page))
    }
    .await;
    respond(&viewer, result)
}

/// The event choices of the forms.
pub struct EventBox {
    value: &'static str,
    label: &'static str,
    help: &'static str,
    checked: bool,
}

fn event_boxes(events: &[String]) -> Vec<EventBox> {
    [
        (
            "package",
            "Packages",
            "A package version was published or updated.",
        ),
        (
            "registry_package",
            "Registry packages",
            "The same events, as GitHub's registry_package event.",
        ),
        (
            "*",
            "Send me everything",
            "Every event Berth sends, including those it may send in the future.",
        ),
    ]
    .into_iter()
    .map(|(value, label, help)| EventBox {
        value,
        label,
        help,
        checked: events.iter().any(|e| e == value),
    })
    .collect()
}

/// The settings a hook form holds, for its fields.
pub struct HookForm {
    url: String,
    json: bool,
    has_secret: bool,
    active: bool,
    deleted_events: bool,
    events: Vec<EventBox>,
}

#[derive(Template)]
#[template(path = "hook_new.html")]
struct NewPage {
    layout: Layout,
    nav: Nav,
    base: String,
    owner: String,
    form: HookForm,
}

/// `GET …/settings/hooks/new`.
pub async fn new(
    viewer: Viewer,
    State(web): State<Web>,
    uri: Uri,
    path: Option<Path<HookPath>>,
) -> Response {
    let path = path.map(|Path(path)| path).unwrap_or_default();
    let at = At::of(&path);
    let result = async {
        signed_in(&viewer, &uri)?;
        let (parent, _) = web
            .services
            .hooks
            .parent_as(&viewer.principal, at.owner())
            .await
            .map_err(|e| at.error(e))?;
        let page = NewPage {
            layout: Layout::new(&viewer, "Add webhook"),
            nav: at.nav(),
            base: at.base(),
            owner: parent.account.login,
            form: HookForm {
                url: String::new(),
                json: true,
                has_secret: false,
                active: true,
                deleted_events: false,
                events: event_boxes(&["package".into()]),
            },
        };
        Ok(render(&viewer, StatusCode::OK, &page))
    }
    .await;
    respond(&viewer, result)
}

/// A hook form's fields as the service's request: `url`, `content_type`, `secret` (empty:
/// none on create, unchanged on update), checkboxes `events`, `active`, `deleted_events`.
fn request(form: &Fields, creating: bool) -> HookRequest {
    let mut events: Vec<String> = form.all("events").map(str::to_owned).collect();
    if events.iter().any(|e| e == "*") {
        events = vec!["*".into()];
    }
    let secret = form.get("secret");
    HookRequest {
        name: None,
        active: Some(form.checked("active")),
        events: Some(events),
        add_events: Vec::new(),
        remove_events: Vec::new(),
        url: Some(form.get("url").trim().to_owned()),
        content_type: Some(form.get("content_type").to_owned()).filter(|c| !c.is_empty()),
        secret: if secret.is_empty() && !creating {
            None
        } else {
            Some(secret.to_owned())
        },
        insecure_ssl: None,
        deleted_events: Some(form.checked("deleted_events")),
    }
}

/// `POST …/settings/hooks`: creates a hook (and queues its ping); to its page.
pub async fn create(
    viewer: Viewer,
    State(web): State<Web>,
    uri: Uri,
    path: Option<Path<HookPath>>,
    Form(form): Form<Fields>,
) -> Response {
    let path = path.map(|Path(path)| path).unwrap_or_default();
    let at = At::of(&path);
    let result = async {
        check_csrf(&viewer, form.csrf())?;
        signed_in(&viewer, &uri)?;
        let back = format!("{}/new", at.base());
        match web
            .services
            .hooks
            .create_as(
                &viewer.principal,
                at.owner(),
                request(&form, true),
                &viewer.base,
            )
            .await
        {
            Ok((_, hook)) => Ok(see_other_with(
                &viewer,
                &format!("{}/{}", at.base(), hook.id.0),
                "success",
                "Okay, that hook was created. We sent a ping payload to test it out!",
            )),
            Err(err) => at.refused(&viewer, &back, err),
        }
    }
    .await;
    respond(&viewer, result)
}

/// A delivery as the log shows it.
pub struct DeliveryRow {
    id: i64,
    guid: String,
    event: String,
    action: Option<String>,
    redelivery: bool,
    state: &'static str,
    ok: bool,
    queued_ago: String,
    queued_at: String,
    payload: String,
    attempts: u32,
    /// The latest attempt's: when, duration, request headers, status, response.
    attempt: Option<AttemptView>,
}

/// One attempt, for the log.
pub struct AttemptView {
    at_ago: String,
    at: String,
    duration_ms: u64,
    request_headers: Vec<(String, String)>,
    status: String,
    status_code: Option<u16>,
    response_headers: Vec<(String, String)>,
    response_body: String,
}

fn delivery_row(delivery: &Delivery) -> DeliveryRow {
    let payload = serde_json::from_str::<serde_json::Value>(&delivery.queued.payload)
        .ok()
        .and_then(|value| serde_json::to_string_pretty(&value).ok())
        .unwrap_or_else(|| delivery.queued.payload.clone());
    DeliveryRow {
        id: delivery.id.0,
        guid: delivery.queued.guid.clone(),
        event: delivery.queued.event.clone(),
        action: delivery.queued.action.clone(),
        redelivery: delivery.queued.redelivery,
        state: delivery.state.as_str(),
        ok: delivery.state == DeliveryState::Delivered,
        queued_ago: ago(delivery.created_at),
        queued_at: timestamp(delivery.created_at),
        payload,
        attempts: delivery.attempts,
        attempt: delivery.last_attempt.as_ref().map(|a| AttemptView {
            at_ago: ago(a.started_at),
            at: timestamp(a.started_at),
            duration_ms: a.duration_ms,
            request_headers: a.request_headers.clone(),
            status: a.status_text(),
            status_code: a.status_code,
            response_headers: a.response_headers.clone(),
            response_body: a.response_body.clone(),
        }),
    }
}

#[derive(Template)]
#[template(path = "hook.html")]
struct HookPage {
    layout: Layout,
    nav: Nav,
    base: String,
    owner: String,
    id: i64,
    form: HookForm,
    row: HookRow,
    deliveries: Vec<DeliveryRow>,
}

/// `GET …/settings/hooks/{id}`: the hook's settings and its recent deliveries.
pub async fn show(
    viewer: Viewer,
    State(web): State<Web>,
    uri: Uri,
    path: Option<Path<HookPath>>,
) -> Response {
    let path = path.map(|Path(path)| path).unwrap_or_default();
    let at = At::of(&path);
    let result = async {
        signed_in(&viewer, &uri)?;
        let id = hook_id(&path)?;
        let hooks = &web.services.hooks;
        let (parent, hook) = hooks
            .get_as(&viewer.principal, at.owner(), id)
            .await
            .map_err(|e| at.error(e))?;
        let deliveries = hooks
            .deliveries_as(&viewer.principal, at.owner(), id, None, DELIVERIES_SHOWN)
            .await
            .map_err(|e| at.error(e))?;
        let page = HookPage {
            layout: Layout::new(&viewer, format!("Webhook · {}", hook.config.url)),
            nav: at.nav(),
            base: at.base(),
            owner: parent.account.login,
            id: hook.id.0,
            form: HookForm {
                url: hook.config.url.clone(),
                json: hook.config.content_type.as_str() == "json",
                has_secret: hook.config.secret.is_some(),
                active: hook.active,
                deleted_events: hook.deleted_events,
                events: event_boxes(&hook.events),
            },
            row: hook_row(&hook),
            deliveries: deliveries.iter().map(delivery_row).collect(),
        };
        Ok(render(&viewer, StatusCode::OK, &page))
    }
    .await;
    respond(&viewer, result)
}

/// `POST …/settings/hooks/{id}`: new settings.
pub async fn update(
    viewer: Viewer,
    State(web): State<Web>,
    uri: Uri,
    path: Option<Path<HookPath>>,
    Form(form): Form<Fields>,
) -> Response {
    let path = path.map(|Path(path)| path).unwrap_or_default();
    let at = At::of(&path);
    let result = async {
        check_csrf(&viewer, form.csrf())?;
        signed_in(&viewer, &uri)?;
        let id = hook_id(&path)?;
        let back = format!("{}/{}", at.base(), id.0);
        match web
            .services
            .hooks
            .update_as(&viewer.principal, at.owner(), id, request(&form, false))
            .await
        {
            Ok(_) => Ok(see_other_with(
                &viewer,
                &back,
                "success",
                "Okay, the hook was successfully updated.",
            )),
            Err(err) => at.refused(&viewer, &back, err),
        }
    }
    .await;
    respond(&viewer, result)
}

/// `POST …/settings/hooks/{id}/delete`.
pub async fn delete(
    viewer: Viewer,
    State(web): State<Web>,
    uri: Uri,
    path: Option<Path<HookPath>>,
    Form(form): Form<Fields>,
) -> Response {
    let path = path.map(|Path(path)| path).unwrap_or_default();
    let at = At::of(&path);
    let result = async {
        check_csrf(&viewer, form.csrf())?;
        signed_in(&viewer, &uri)?;
        let id = hook_id(&path)?;
        web.services
            .hooks
            .delete_as(&viewer.principal, at.owner(), id)
            .await
            .map_err(|e| at.error(e))?;
        Ok(see_other_with(
            &viewer,
            &at.base(),
            "success",
            "The webhook was deleted, with its deliveries.",
        ))
    }
    .await;
    respond(&viewer, result)
}

/// `POST …/settings/hooks/{id}/pings`: queues a ping.
pub async fn ping(
    viewer: Viewer,
    State(web): State<Web>,
    uri: Uri,
    path: Option<Path<HookPath>>,
    Form(form): Form<Fields>,
) -> Response {
    let path = path.map(|Path(path)| path).unwrap_or_default();
    let at = At::of(&path);
    let result = async {
        check_csrf(&viewer, form.csrf())?;
        signed_in(&viewer, &uri)?;
        let id = hook_id(&path)?;
        web.services
            .hooks
            .ping_as(&viewer.principal, at.owner(), id, &viewer.base)
            .await
            .map_err(|e| at.error(e))?;
        Ok(see_other_with(
            &viewer,
            &format!("{}/{}", at.base(), id.0),
            "success",
            "A ping was queued: its delivery shows below once sent.",
        ))
    }
    .await;
    respond(&viewer, result)
}

/// `POST …/settings/hooks/{id}/deliveries/{delivery}/redeliver`: queues the delivery again
/// (same GUID and payload).
pub async fn redeliver(
    viewer: Viewer,
    State(web): State<Web>,
    uri: Uri,
    path: Option<Path<HookPath>>,
    Form(form): Form<Fields>,
) -> Response {
    let path = path.map(|Path(path)| path).unwrap_or_default();
    let at = At::of(&path);
    let result = async {
        check_csrf(&viewer, form.csrf())?;
        signed_in(&viewer, &uri)?;
        let id = hook_id(&path)?;
        let delivery = DeliveryId(path.delivery.ok_or(PageError::NotFound)?);
        web.services
            .hooks
            .redeliver_as(&viewer.principal, at.owner(), id, delivery)
            .await
            .map_err(|e| at.error(e))?;
        Ok(see_other_with(
            &viewer,
            &format!("{}/{}", at.base(), id.0),
            "success",
            "The delivery was queued again.",
        ))
    }
    .await;
    respond(&viewer, result)
}
