//! The hooks service: managing hooks (each call checks the caller as the management API
//! does: a user's classic token, its scopes and role) and queueing their deliveries.
//!
//! Who manages which hooks: a repository's hooks, its admins (`repo` scope, which covers
//! GitHub's `admin:repo_hook`); an organization's, its owners (`admin:org`); a user's, the
//! user (`write:packages`: where events about their packages go is a package admin's choice).
//! A repository the caller may not see is 404, as everywhere.
//!
//! Calls the [`HookStore`] port and the access service; never HTTP.

use std::sync::Arc;

use tokio::sync::Notify;

use super::model::{
    Attempt, ContentType, Delivery, DeliveryId, GITHUB_EVENTS, Hook, HookConfig, HookId, HookScope,
    HookSettings, NewDelivery,
};
use super::payload::{PingTarget, ping_payload};
use super::signing::new_guid;
use super::store::HookStore;
use super::targets::TargetPolicy;
use crate::access::manage::actor;
use crate::access::rules;
use crate::access::store::{Account, SourceRepo};
use crate::access::{Access, ManageError, ManageResult, Principal};
use crate::github::hooks::hook as hook_json;
use crate::ids::AppId;
use crate::ports::now_millis;

/// Hooks, their deliveries, and the queue's wake-up call.
#[derive(Clone)]
pub struct Hooks {
    pub(super) store: Arc<dyn HookStore>,
    pub(super) access: Access,
    pub(super) wake: Arc<Notify>,
    targets: Arc<dyn TargetPolicy>,
    max_hooks_per_account: usize,
}

/// Hooks an account may have, its repositories' included, unless told otherwise (GitHub
/// allows 20 per event and target).
pub const MAX_HOOKS_PER_ACCOUNT: usize = 20;

/// The hook collection a request names.
#[derive(Debug, Clone, Copy)]
pub enum HookOwner<'a> {
    /// `/repos/{owner}/{repo}/hooks`.
    Repository {
        /// The repository's owner login.
        owner: &'a str,
        /// The repository's name.
        name: &'a str,
    },
    /// `/orgs/{org}/hooks`.
    Organization(&'a str),
    /// `/user/hooks`: the calling user's.
    User,
}

/// What a hook is attached to, with the records its JSON and ping payload name.
#[derive(Debug, Clone)]
pub struct HookParent {
    /// The scope hooks are stored under.
    pub scope: HookScope,
    /// The repository, for repository hooks.
    pub repo: Option<SourceRepo>,
    /// The repository's owner, the organization, or the user.
    pub account: Account,
}

impl HookParent {
    /// The records, for payloads.
    pub fn target(&self) -> PingTarget<'_> {
        match (&self.repo, self.scope) {
            (Some(repo), _) => PingTarget::Repository(repo, &self.account),
            (None, HookScope::Organization(_)) => PingTarget::Organization(&self.account),
            (None, _) => PingTarget::User(&self.account),
        }
    }

    /// The collection's API path: `repos/acme/app`, `orgs/acme` or `user`.
    pub fn path(&self) -> String {
        self.target().path()
    }
}

/// A hook's settings as a request gives them: absent fields are `None` (kept on update,
/// defaulted on create). Checked by the service, which answers 422 naming the field.
#[derive(Debug, Clone, Default)]
pub struct HookRequest {
    /// GitHub's `name`: only `web`.
    pub name: Option<String>,
    /// `active` (default true).
    pub active: Option<bool>,
    /// `events` (default `["package"]`), replacing the list.
    pub events: Option<Vec<String>>,
    /// `add_events` (update only).
    pub add_events: Vec<String>,
    /// `remove_events` (update only).
    pub remove_events: Vec<String>,
    /// `config.url` (required on create).
    pub url: Option<String>,
    /// `config.content_type`: `json` (default) or `form`.
    pub content_type: Option<String>,
    /// `config.secret`: `Some("")` removes it.
    pub secret: Option<String>,
    /// `config.insecure_ssl`.
    pub insecure_ssl: Option<bool>,
    /// Berth's `deleted_events` (default false).
    pub deleted_events: Option<bool>,
}

fn invalid(field: &'static str, message: impl Into<String>) -> ManageError {
    ManageError::Invalid {
        resource: "Hook",
        field,
        code: "custom",
        message: message.into(),
    }
}

fn hook_not_found(id: HookId) -> ManageError {
    ManageError::NotFound(format!("there is no hook {id} here"))
}

/// Checks a receiver URL: absolute `http` or `https` with a host.
fn check_url(url: &str) -> ManageResult<()> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .ok_or_else(|| {
            invalid(
                "url",
                format!("config.url `{url}` is not an http:// or https:// URL"),
            )
        })?;
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    if host.is_empty() || host.contains(char::is_whitespace) || url.len() > 2048 {
        return Err(invalid(
            "url",
            format!("config.url `{url}` has no valid host (e.g. https://scanner.example/hook)"),
        ));
    }
    Ok(())
}

fn check_events(events: &[String]) -> ManageResult<()> {
    let known = |e: &String| e == "*" || GITHUB_EVENTS.contains(&e.as_str());
    if let Some(unknown) = events.iter().find(|e| !known(e)) {
        return Err(invalid(
            "events",
            format!(
                "`{unknown}` is not a GitHub webhook event; Berth sends package, registry_package (or *)"
            ),
        ));
    }
    Ok(())
}

impl HookRequest {
    /// The settings of a new hook.
    fn create(self) -> ManageResult<HookSettings> {
        let Some(url) = self.url.clone() else {
            return Err(ManageError::Invalid {
                resource: "Hook",
                field: "url",
                code: "missing_field",
                message: "config.url is required: where should deliveries be sent?".into(),
            });
        };
        let base = HookSettings {
            active: true,
            events: vec!["package".into()],
            config: HookConfig {
                url,
                content_type: ContentType::Json,
                secret: None,
                insecure_ssl: false,
            },
            deleted_events: false,
        };
        self.apply(base)
    }

    /// `settings` with this request's fields applied, checked.
    fn apply(self, mut settings: HookSettings) -> ManageResult<HookSettings> {
        if let Some(name) = self.name.as_deref()
            && name != "web"
        {
            return Err(invalid(
                "name",
                format!("hook name `{name}` is not supported; use \"web\""),
            ));
        }
        if let Some(url) = self.url {
            check_url(&url)?;
            settings.config.url = url;
        }
        if let Some(text) = self.content_type.as_deref() {
            settings.config.content_type = ContentType::parse(text).ok_or_else(|| {
                invalid(
                    "content_type",
                    format!("config.content_type `{text}` is not json or form"),
                )
            })?;
        }
        if let Some(secret) = self.secret {
            settings.config.secret = Some(secret).filter(|s| !s.is_empty());
        }
        if let Some(insecure) = self.insecure_ssl {
            settings.config.insecure_ssl = insecure;
        }
        if let Some(active) = self.active {
            settings.active = active;
        }
        if let Some(deleted) = self.deleted_events {
            settings.deleted_events = deleted;
        }
        if let Some(events) = self.events {
            check_events(&events)?;
            settings.events = events;
        }
        check_events(&self.add_events)?;
        for event in self.add_events {
            if !settings.events.contains(&event) {
                settings.events.push(event);
            }
        }
        settings.events.retain(|e| !self.remove_events.contains(e));
        settings.events.dedup();
        if settings.events.is_empty() {
            return Err(invalid(
                "events",
                "a hook needs at least one event: package, registry_package or *",
            ));
        }
        Ok(settings)
    }
}

impl Hooks {
    /// The service over `store`, checking callers with `access` and receiver URLs with
    /// `targets`.
    pub fn new(store: Arc<dyn HookStore>, access: Access, targets: Arc<dyn TargetPolicy>) -> Self {
        Hooks {
            store,
            access,
            wake: Arc::new(Notify::new()),
            targets,
            max_hooks_per_account: MAX_HOOKS_PER_ACCOUNT,
        }
    }

    /// At most `max` hooks per account, its repositories' hooks included (at least one).
    #[must_use]
    pub fn with_max_hooks_per_account(mut self, max: usize) -> Self {
        self.max_hooks_per_account = max.max(1);
        self
    }

    /// Refuses a receiver URL the network policy refuses, naming why.
    async fn check_target(&self, url: &str) -> ManageResult<()> {
        self.targets
            .check(url)
            .await
            .map_err(|why| invalid("url", format!("config.url `{url}` is refused: {why}")))
    }

    /// The hook collection `owner` names, if the caller manages it; and the caller's account.
    pub async fn parent_as(
        &self,
        principal: &Principal,
        owner: HookOwner<'_>,
    ) -> ManageResult<(HookParent, Account)> {
        let actor = actor(principal)?;
        let store = self.access.store();
        let caller = store.account_by_id(actor.user).await?.ok_or_else(|| {
            ManageError::Unauthenticated("the token's user no longer exists".into())
        })?;
        let parent = match owner {
            HookOwner::Repository { owner, name } => {
                let repo = self.access.repo_as(principal, owner, name).await?;
                self.access.need_repo_hook_scope(principal)?;
                let role = store.repo_role(repo.id, actor.user).await?;
                if !rules::may_manage_repo(principal, role) {
                    return Err(ManageError::Forbidden(
                        "Must have admin rights to Repository.".into(),
                    ));
                }
                let account = store.account_by_id(repo.owner).await?.ok_or_else(|| {
                    ManageError::NotFound(format!("the owner of `{owner}/{name}` vanished"))
                })?;
                HookParent {
                    scope: HookScope::Repository(repo.id),
                    repo: Some(repo),
                    account,
                }
            }
            HookOwner::Organization(login) => {
                let org = self.access.org_hooks_owned_by(principal, login).await?;
                HookParent {
                    scope: HookScope::Organization(org.id),
                    repo: None,
                    account: org,
                }
            }
            HookOwner::User => {
                actor.need("write:packages")?;
                HookParent {
                    scope: HookScope::User(caller.id),
                    repo: None,
                    account: caller.clone(),
                }
            }
        };
        Ok((parent, caller))
    }

    /// Creates a hook and queues its `ping`.
    pub async fn create_as(
        &self,
        principal: &Principal,
        owner: HookOwner<'_>,
        request: HookRequest,
        base: &str,
    ) -> ManageResult<(HookParent, Hook)> {
        let (parent, caller) = self.parent_as(principal, owner).await?;
        let settings = request.create()?;
        self.check_target(&settings.config.url).await?;
        let max = self.max_hooks_per_account;
        let Some(id) = self
            .store
            .create_hook(parent.scope, &settings, now_millis(), max)
            .await?
        else {
            return Err(ManageError::Invalid {
                resource: "Hook",
                field: "events",
                code: "custom",
                message: format!(
                    "{} already has {max} webhooks (its own and its repositories'), the most \
                     this server allows per account (webhook_max_hooks_per_account); delete \
                     one before adding another",
                    parent.account.login
                ),
            });
        };
        let hook = self
            .store
            .hook(id)
            .await?
            .ok_or_else(|| hook_not_found(id))?;
        self.queue_ping(&parent, &hook, &caller, base).await?;
        Ok((parent, hook))
    }

    /// The settings of an app's webhook as `request` gives them, checked as a hook's creation
    /// (422 naming the field).
    pub async fn app_hook_settings(&self, request: HookRequest) -> ManageResult<HookSettings> {
        let settings = request.create()?;
        self.check_target(&settings.config.url).await?;
        Ok(settings)
    }

    /// Gives app `app`, which the caller has just registered, its one webhook (GitHub's
    /// `hook_attributes` and `webhook_secret`): `request` checked as a hook's creation, the
    /// hook stored under [`HookScope::App`]. The app receives the package events of the
    /// accounts it is installed on, limited to the installation's selected repositories.
    /// Call [`Hooks::app_hook_settings`] first, before registering the app, so that settings
    /// a person must fix refuse the registration whole. Queues the `ping` GitHub sends a new
    /// app's webhook (its `hook` naming the `app_id`), sent by `principal`.
    pub async fn create_app_hook(
        &self,
        principal: &Principal,
        app: AppId,
        settings: HookSettings,
        base: &str,
    ) -> ManageResult<Hook> {
        let sender = self
            .sender_of(principal)
            .await?
            .ok_or_else(|| ManageError::Unauthenticated("sign in to register an app".into()))?;
        let max = self.max_hooks_per_account;
        let Some(id) = self
            .store
            .create_hook(HookScope::App(app), &settings, now_millis(), max)
            .await?
        else {
            return Err(invalid(
                "hook_attributes",
                format!(
                    "the app's owner already has {max} webhooks, the most this server allows \
                     per account (webhook_max_hooks_per_account)"
                ),
            ));
        };
        let hook = self
            .store
            .hook(id)
            .await?
            .ok_or_else(|| hook_not_found(id))?;
        // GitHub's app hook object: no collection URLs (an app's hook lives at `/app/hook`).
        let mut json = hook_json(base, "app", &hook);
        if let Some(object) = json.as_object_mut() {
            for key in ["url", "ping_url", "deliveries_url", "test_url"] {
                object.remove(key);
            }
            object.insert("app_id".into(), app.0.into());
        }
        let payload = ping_payload(&hook, json, base, &PingTarget::User(&sender), &sender);
        self.enqueue_ping(&hook, &payload, None).await?;
        Ok(hook)
    }

    /// The hooks of a collection.
    pub async fn list_as(
        &self,
        principal: &Principal,
        owner: HookOwner<'_>,
    ) -> ManageResult<(HookParent, Vec<Hook>)> {
        let (parent, _) = self.parent_as(principal, owner).await?;
        let hooks = self.store.hooks_of(parent.scope).await?;
        Ok((parent, hooks))
    }

    /// Hook `id` of a collection.
    pub async fn get_as(
        &self,
        principal: &Principal,
        owner: HookOwner<'_>,
        id: HookId,
    ) -> ManageResult<(HookParent, Hook)> {
        let (parent, _) = self.parent_as(principal, owner).await?;
        let hook = self.hook_of(&parent, id).await?;
        Ok((parent, hook))
    }

    /// Changes hook `id`'s settings.
    pub async fn update_as(
        &self,
        principal: &Principal,
        owner: HookOwner<'_>,
        id: HookId,
        request: HookRequest,
    ) -> ManageResult<(HookParent, Hook)> {
        let (parent, _) = self.parent_as(principal, owner).await?;
        let hook = self.hook_of(&parent, id).await?;
        let old_url = hook.config.url.clone();
        let current = HookSettings {
            active: hook.active,
            events: hook.events,
            config: hook.config,
            deleted_events: hook.deleted_events,
        };
        let settings = request.apply(current)?;
        if settings.config.url != old_url {
            self.check_target(&settings.config.url).await?;
        }
        if !self.store.update_hook(id, &settings, now_millis()).await? {
            return Err(hook_not_found(id));
        }
        self.wake.notify_one();
        let hook = self.hook_of(&parent, id).await?;
        Ok((parent, hook))
    }

    /// Deletes hook `id` with its queued and past deliveries.
    pub async fn delete_as(
        &self,
        principal: &Principal,
        owner: HookOwner<'_>,
        id: HookId,
    ) -> ManageResult<()> {
        let (parent, _) = self.parent_as(principal, owner).await?;
        self.hook_of(&parent, id).await?;
        if !self.store.delete_hook(id).await? {
            return Err(hook_not_found(id));
        }
        Ok(())
    }

    /// Queues a `ping` to hook `id`.
    pub async fn ping_as(
        &self,
        principal: &Principal,
        owner: HookOwner<'_>,
        id: HookId,
        base: &str,
    ) -> ManageResult<()> {
        let (parent, caller) = self.parent_as(principal, owner).await?;
        let hook = self.hook_of(&parent, id).await?;
        self.queue_ping(&parent, &hook, &caller, base).await
    }

    /// Deliveries of hook `id`, newest first, below `cursor` (a delivery id).
    pub async fn deliveries_as(
        &self,
        principal: &Principal,
        owner: HookOwner<'_>,
        id: HookId,
        cursor: Option<DeliveryId>,
        per_page: usize,
    ) -> ManageResult<Vec<Delivery>> {
        let (parent, _) = self.parent_as(principal, owner).await?;
        self.hook_of(&parent, id).await?;
        Ok(self.store.deliveries(id, cursor, per_page).await?)
    }

    /// Delivery `delivery` of hook `id`, with its attempts.
    pub async fn delivery_as(
        &self,
        principal: &Principal,
        owner: HookOwner<'_>,
        id: HookId,
        delivery: DeliveryId,
    ) -> ManageResult<(Hook, Delivery, Vec<Attempt>)> {
        let (parent, _) = self.parent_as(principal, owner).await?;
        let hook = self.hook_of(&parent, id).await?;
        let (found, attempts) = self.store.delivery(id, delivery).await?.ok_or_else(|| {
            ManageError::NotFound(format!("hook {id} has no delivery {delivery}"))
        })?;
        Ok((hook, found, attempts))
    }

    /// Queues delivery `delivery` of hook `id` again (same GUID and payload, marked
    /// `redelivery`), behind the hook's other queued deliveries.
    pub async fn redeliver_as(
        &self,
        principal: &Principal,
        owner: HookOwner<'_>,
        id: HookId,
        delivery: DeliveryId,
    ) -> ManageResult<()> {
        let (_, original, _) = self.delivery_as(principal, owner, id, delivery).await?;
        let again = NewDelivery {
            redelivery: true,
            ..original.queued
        };
        self.store.enqueue(&[again], now_millis()).await?;
        self.wake.notify_one();
        Ok(())
    }

    async fn hook_of(&self, parent: &HookParent, id: HookId) -> ManageResult<Hook> {
        self.store
            .hook(id)
            .await?
            .filter(|h| h.scope == parent.scope)
            .ok_or_else(|| hook_not_found(id))
    }

    async fn queue_ping(
        &self,
        parent: &HookParent,
        hook: &Hook,
        sender: &Account,
        base: &str,
    ) -> ManageResult<()> {
        let json = hook_json(base, &parent.path(), hook);
        let payload = ping_payload(hook, json, base, &parent.target(), sender);
        let repository = parent.repo.as_ref().map(|r| r.id);
        self.enqueue_ping(hook, &payload, repository).await
    }

    /// Queues `payload` as a `ping` delivery to `hook` and wakes the worker.
    async fn enqueue_ping(
        &self,
        hook: &Hook,
        payload: &serde_json::Value,
        repository_id: Option<crate::ids::RepoId>,
    ) -> ManageResult<()> {
        let ping = NewDelivery {
            hook: hook.id,
            guid: new_guid(),
            event: "ping".into(),
            action: None,
            payload: payload.to_string(),
            redelivery: false,
            repository_id,
        };
        self.store.enqueue(&[ping], now_millis()).await?;
        self.wake.notify_one();
        Ok(())
    }

    /// The account a principal acts as in payloads (`sender`): the token's user, or for app
    /// and job tokens the account owning the installation or repository.
    pub(super) async fn sender_of(
        &self,
        principal: &Principal,
    ) -> crate::ports::StoreResult<Option<Account>> {
        use crate::access::Grant;
        let Principal::Token(credential) = principal else {
            return Ok(None);
        };
        let id = match (&credential.grant, credential.user) {
            (_, Some(user)) => user,
            (Grant::App { account, .. }, None) => *account,
            (Grant::Job { owner, .. }, None) => *owner,
            _ => return Ok(None),
        };
        self.access.store().account_by_id(id).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(url: &str) -> HookRequest {
        HookRequest {
            url: Some(url.into()),
            ..HookRequest::default()
        }
    }

    #[test]
    fn a_new_hook_defaults_to_githubs_settings() {
        let settings = request("https://scanner.example/hook").create().unwrap();
        assert!(settings.active);
        assert_eq!(settings.events, ["package"]);
        assert_eq!(settings.config.content_type, ContentType::Json);
        assert!(!settings.deleted_events);
    }

    #[test]
    fn bad_settings_name_the_field() {
        let field = |r: HookRequest| match r.create() {
            Err(ManageError::Invalid { field, message, .. }) => {
                assert!(message.len() > 15, "{message}");
                field
            }
            other => panic!("{other:?}"),
        };
        assert_eq!(field(HookRequest::default()), "url");
        assert_eq!(field(request("ftp://x")), "url");
        assert_eq!(field(request("https:///path")), "url");
        let mut r = request("https://x");
        r.events = Some(vec!["package".into(), "pushes".into()]);
        assert_eq!(field(r), "events");
        let mut r = request("https://x");
        r.content_type = Some("xml".into());
        assert_eq!(field(r), "content_type");
        let mut r = request("https://x");
        r.name = Some("email".into());
        assert_eq!(field(r), "name");
        let mut r = request("https://x");
        r.events = Some(vec![]);
        assert_eq!(field(r), "events");
    }

    #[test]
    fn any_github_event_is_kept_as_given() {
        let mut r = request("https://x");
        r.events = Some(vec!["push".into(), "pull_request".into()]);
        assert_eq!(r.create().unwrap().events, ["push", "pull_request"]);
    }

    #[test]
    fn updates_add_and_remove_events_and_clear_the_secret() {
        let mut r = request("https://x");
        r.secret = Some("s".into());
        let settings = r.create().unwrap();
        assert_eq!(settings.config.secret.as_deref(), Some("s"));
        let update = HookRequest {
            add_events: vec!["registry_package".into()],
            remove_events: vec!["package".into()],
            secret: Some(String::new()),
            ..HookRequest::default()
        };
        let settings = update.apply(settings).unwrap();
        assert_eq!(settings.events, ["registry_package"]);
        assert_eq!(settings.config.secret, None);
        assert_eq!(settings.config.url, "https://x");
    }
}
