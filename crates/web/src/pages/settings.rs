//! The signed-in user's settings: `GET /settings/tokens` (personal access tokens, classic and
//! fine-grained: list, create — the secret shown once, in the creating POST's answer — and
//! revoke), `GET /settings/sessions` (web sessions, revoke), `GET /settings/security`
//! (change the password). The user's webhooks are [`super::hooks`]. Every page needs a
//! signed-in viewer; every form action checks its CSRF token first and makes one core call.

use askama::Template;
use axum::Form;
use axum::extract::{Path, State};
use axum::http::{StatusCode, Uri};
use axum::response::Response;
use berth_core::access::store::CredentialInfo;
use berth_core::access::token::TokenKind;
use berth_core::access::{Grant, NewToken, Role, Scopes, TokenRequest};
use berth_core::ids::CredentialId;
use berth_core::ports::{Millis, now_millis};

use super::error::{PageError, PageResult};
use super::{check_csrf, see_other, see_other_with, signed_in};
use crate::Web;
use crate::session::Viewer;
use crate::view::{Layout, ago, render, timestamp};

/// A settings page's side navigation: its heading and links.
pub struct Nav {
    /// `Settings`, or the organization's login.
    pub heading: String,
    /// The links, the current one marked.
    pub items: Vec<NavItem>,
}

/// One link of [`Nav`].
pub struct NavItem {
    /// The text.
    pub label: &'static str,
    /// Where it goes.
    pub href: String,
    /// Whether it is this page.
    pub current: bool,
    /// An octicon's paths.
    pub icon: &'static str,
}

impl Nav {
    /// The user's settings, `current` the path of this page's section.
    pub fn user(current: &str) -> Nav {
        use crate::octicons::{KEY, LOCK, SHIELD, WEBHOOK};
        let items = [
            ("Personal access tokens", "/settings/tokens", KEY),
            ("Sessions", "/settings/sessions", SHIELD),
            ("Password and authentication", "/settings/security", LOCK),
            ("Webhooks", "/settings/hooks", WEBHOOK),
        ];
        Nav {
            heading: "Settings".into(),
            items: items
                .into_iter()
                .map(|(label, href, icon)| NavItem {
                    label,
                    href: href.to_owned(),
                    current: href == current,
                    icon,
                })
                .collect(),
        }
    }

    /// Organization `org`'s settings, `current` the last segment of this page's section
    /// (`packages`, `security`, `hooks`).
    pub fn org(org: &str, current: &str) -> Nav {
        use crate::octicons::{PACKAGE, SHIELD, WEBHOOK};
        let items = [
            ("Packages", "packages", PACKAGE),
            ("Authentication security", "security", SHIELD),
            ("Webhooks", "hooks", WEBHOOK),
        ];
        Nav {
            heading: format!("{org} settings"),
            items: items
                .into_iter()
                .map(|(label, section, icon)| NavItem {
                    label,
                    href: format!("/organizations/{org}/settings/{section}"),
                    current: section == current,
                    icon,
                })
                .collect(),
        }
    }
}

/// A posted form's fields in order, repeated names kept (checkbox groups).
#[derive(Debug, Default, serde::Deserialize)]
#[serde(transparent)]
pub struct Fields(Vec<(String, String)>);

impl Fields {
    /// The first value of `name`, or "".
    pub fn get(&self, name: &str) -> &str {
        self.0
            .iter()
            .find(|(key, _)| key == name)
            .map_or("", |(_, value)| value.as_str())
    }

    /// Every value of `name`.
    pub fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.0
            .iter()
            .filter(move |(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    /// Whether checkbox `name` was checked.
    pub fn checked(&self, name: &str) -> bool {
        self.0.iter().any(|(key, _)| key == name)
    }

    /// The form's CSRF token.
    pub fn csrf(&self) -> &str {
        self.get("authenticity_token")
    }
}

/// A handler's result as the response: the page, or the error page.
pub fn respond(viewer: &Viewer, result: PageResult) -> Response {
    result.unwrap_or_else(|err| err.page(viewer))
}

/// A form action's failure a person can fix (bad input, a conflict, not allowed) as a
/// redirect back to `back` with the message; anything else as its error page.
pub fn back_with_error(viewer: &Viewer, back: &str, err: PageError) -> PageResult {
    match err {
        PageError::Invalid(why) | PageError::Conflict(why) | PageError::Forbidden(why) => {
            Ok(see_other_with(viewer, back, "error", &why))
        }
        other => Err(other),
    }
}

/// "in 30 days", "Never", "Expired 2 days ago".
fn expiry(at: Option<Millis>) -> String {
    match at {
        None => "Never".into(),
        Some(at) if at <= now_millis() => format!("Expired {}", ago(at)),
        Some(at) => format!("Expires {}", ago(at)),
    }
}

/// A token as its row on the list.
pub struct TokenRow {
    id: i64,
    note: String,
    fine_grained: bool,
    /// Classic: its scopes; fine-grained: `read` or `write`.
    access: String,
    /// Fine-grained: the resource owner's login.
    owner: String,
    packages: Vec<String>,
    repositories: usize,
    created_ago: String,
    created_at: String,
    expires: String,
    last_used: Option<(String, String)>,
}

fn token_row(info: &CredentialInfo, owners: &[(berth_core::ids::AccountId, String)]) -> TokenRow {
    let mut row = TokenRow {
        id: info.id.0,
        note: info.note.clone(),
        fine_grained: info.kind == TokenKind::FineGrained,
        access: String::new(),
        owner: String::new(),
        packages: Vec::new(),
        repositories: 0,
        created_ago: ago(info.created_at),
        created_at: timestamp(info.created_at),
        expires: expiry(info.expires_at),
        last_used: info.last_used_at.map(|at| (ago(at), timestamp(at))),
    };
    match &info.grant {
        Grant::Classic { scopes, .. } => {
            row.access = if scopes.names().is_empty() {
                "no scopes".into()
            } else {
                scopes.names().join(", ")
            };
        }
        Grant::FineGrained {
            owner,
            packages,
            repositories,
            permission,
            ..
        } => {
            row.access = permission.as_str().to_owned();
            row.owner = owners
                .iter()
                .find(|(id, _)| id == owner)
                .map_or_else(|| format!("account {owner}"), |(_, login)| login.clone());
            row.packages = packages.clone();
            row.repositories = repositories.len();
        }
        Grant::App { .. } | Grant::Job { .. } => {}
    }
    row
}

#[derive(Template)]
#[template(path = "settings_tokens.html")]
struct TokensPage {
    layout: Layout,
    nav: Nav,
    rows: Vec<TokenRow>,
}

/// `GET /settings/tokens`: the user's live personal access tokens, newest first (no secret:
/// it was shown once, when created).
pub async fn tokens(viewer: Viewer, State(web): State<Web>, uri: Uri) -> Response {
    respond(&viewer, tokens_page(&viewer, &web, &uri).await)
}

async fn tokens_page(viewer: &Viewer, web: &Web, uri: &Uri) -> PageResult {
    let user = signed_in(viewer, uri)?;
    let access = &web.services.access;
    let tokens = access.list_tokens_as(&viewer.principal).await?;
    // Fine-grained tokens name their owner by id: the user or one of their organizations.
    let mut owners = vec![(user.id, user.login.clone())];
    if tokens.iter().any(|t| t.kind == TokenKind::FineGrained) {
        owners.extend(
            access
                .my_orgs_as(&viewer.principal)
                .await?
                .into_iter()
                .map(|org| (org.id, org.login)),
        );
    }
    let rows = tokens
        .iter()
        .filter(|t| t.revoked_at.is_none())
        .map(|t| token_row(t, &owners))
        .collect();
    let page = TokensPage {
        layout: Layout::new(viewer, "Personal access tokens"),
        nav: Nav::user("/settings/tokens"),
        rows,
    };
    Ok(render(viewer, StatusCode::OK, &page))
}

/// The expiry choices of the forms: days, or none.
const EXPIRY_DAYS: [&str; 5] = ["7", "30", "60", "90", "none"];

/// The expiry a form's `expiration` names.
fn expires_at(choice: &str) -> Result<Option<Millis>, PageError> {
    if choice == "none" {
        return Ok(None);
    }
    match choice.parse::<i64>() {
        Ok(days) if EXPIRY_DAYS.contains(&choice) => Ok(Some(now_millis() + days * 86_400_000)),
        _ => Err(PageError::Invalid(format!(
            "`{choice}` is no expiration: choose 7, 30, 60 or 90 days, or none"
        ))),
    }
}

#[derive(Template)]
#[template(path = "settings_token_new.html")]
struct NewClassicPage {
    layout: Layout,
    nav: Nav,
    /// GitHub's classic scopes, in its order.
    scopes: Vec<&'static str>,
}

/// `GET /settings/tokens/new`: the classic token form.
pub async fn new_classic(viewer: Viewer, uri: Uri) -> Response {
    respond(
        &viewer,
        (|| {
            signed_in(&viewer, &uri)?;
            // Only the scopes the viewer may hold (`site_admin` is for site administrators).
            let scopes = Scopes::known()
                .filter(|name| {
                    name.parse::<Scopes>().is_ok_and(|scope| {
                        berth_core::access::rules::may_hold_scopes(&viewer.principal, &scope)
                    })
                })
                .collect();
            let page = NewClassicPage {
                layout: Layout::new(&viewer, "New personal access token (classic)"),
                nav: Nav::user("/settings/tokens"),
                scopes,
            };
            Ok(render(&viewer, StatusCode::OK, &page))
        })(),
    )
}

#[derive(Template)]
#[template(path = "settings_token_new_fine.html")]
struct NewFineGrainedPage {
    layout: Layout,
    nav: Nav,
    owners: Vec<String>,
}

/// `GET /settings/personal-access-tokens/new`: the fine-grained token form; its resource
/// owners are the user and the organizations they belong to.
pub async fn new_fine_grained(viewer: Viewer, State(web): State<Web>, uri: Uri) -> Response {
    respond(&viewer, new_fine_grained_page(&viewer, &web, &uri).await)
}

async fn new_fine_grained_page(viewer: &Viewer, web: &Web, uri: &Uri) -> PageResult {
    let user = signed_in(viewer, uri)?;
    let orgs = web.services.access.my_orgs_as(&viewer.principal).await?;
    let mut owners = vec![user.login.clone()];
    owners.extend(orgs.into_iter().map(|org| org.login));
    let page = NewFineGrainedPage {
        layout: Layout::new(viewer, "New fine-grained personal access token"),
        nav: Nav::user("/settings/tokens"),
        owners,
    };
    Ok(render(viewer, StatusCode::OK, &page))
}

#[derive(Template)]
#[template(path = "settings_token_created.html")]
struct CreatedPage {
    layout: Layout,
    nav: Nav,
    row: TokenRow,
    secret: String,
}

/// `POST /settings/tokens`: creates a classic token (`note`, `expiration`, checkboxes
/// `scopes`); the answer shows its secret, this once.
pub async fn create_classic(
    viewer: Viewer,
    State(web): State<Web>,
    uri: Uri,
    Form(form): Form<Fields>,
) -> Response {
    let result = async {
        check_csrf(&viewer, form.csrf())?;
        signed_in(&viewer, &uri)?;
        let request = (|| {
            let scopes: Scopes = form
                .all("scopes")
                .collect::<Vec<_>>()
                .join(",")
                .parse()
                .map_err(PageError::Invalid)?;
            Ok::<_, PageError>(TokenRequest::Classic {
                note: note(&form)?,
                scopes,
                expires_at: expires_at(form.get("expiration"))?,
            })
        })();
        created(&viewer, &web, request, "/settings/tokens/new", "").await
    }
    .await;
    respond(&viewer, result)
}

/// `POST /settings/personal-access-tokens`: creates a fine-grained token (`note`,
/// `expiration`, `resource_owner`, `packages` and `repositories` — names separated by
/// commas, spaces or lines — and `permission`); the answer shows its secret, this once.
pub async fn create_fine_grained(
    viewer: Viewer,
    State(web): State<Web>,
    uri: Uri,
    Form(form): Form<Fields>,
) -> Response {
    let result = async {
        check_csrf(&viewer, form.csrf())?;
        signed_in(&viewer, &uri)?;
        let names = |field: &str| -> Vec<String> {
            form.get(field)
                .split([',', ' ', '\n', '\r', '\t'])
                .filter(|name| !name.is_empty())
                .map(str::to_owned)
                .collect()
        };
        let request = (|| {
            let permission = match form.get("permission") {
                "read" => Role::Read,
                "write" => Role::Write,
                other => {
                    return Err(PageError::Invalid(format!(
                        "`{other}` is no permission: choose read or write"
                    )));
                }
            };
            Ok(TokenRequest::FineGrained {
                note: note(&form)?,
                resource_owner: form.get("resource_owner").trim().to_owned(),
                repositories: names("repositories"),
                packages: names("packages"),
                permission,
                expires_at: expires_at(form.get("expiration"))?,
            })
        })();
        created(
            &viewer,
            &web,
            request,
            "/settings/personal-access-tokens/new",
            form.get("resource_owner").trim(),
        )
        .await
    }
    .await;
    respond(&viewer, result)
}

fn note(form: &Fields) -> Result<String, PageError> {
    let note = form.get("note").trim();
    if note.is_empty() {
        return Err(PageError::Invalid(
            "Give the token a note: what is it for?".into(),
        ));
    }
    Ok(note.chars().take(200).collect())
}

/// Creates the token `request` describes and shows its secret; a request a person can fix
/// goes back to the form `back` with why.
async fn created(
    viewer: &Viewer,
    web: &Web,
    request: Result<TokenRequest, PageError>,
    back: &str,
    owner_login: &str,
) -> PageResult {
    let request = match request {
        Ok(request) => request,
        Err(err) => return back_with_error(viewer, back, err),
    };
    let NewToken { info, secret } = match web
        .services
        .access
        .create_token_as(&viewer.principal, request)
        .await
    {
        Ok(created) => created,
        Err(err) => return back_with_error(viewer, back, err.into()),
    };
    // The owner the form named is the token's (core checked it); the user otherwise.
    let owners = match (&info.grant, viewer.user.as_ref()) {
        (Grant::FineGrained { owner, .. }, _) => vec![(*owner, owner_login.to_owned())],
        (_, Some(user)) => vec![(user.id, user.login.clone())],
        (_, None) => Vec::new(),
    };
    let page = CreatedPage {
        layout: Layout::new(viewer, "Personal access tokens"),
        nav: Nav::user("/settings/tokens"),
        row: token_row(&info, &owners),
        secret: secret.expose().to_owned(),
    };
    Ok(render(viewer, StatusCode::OK, &page))
}

/// The forms of the revoke buttons.
#[derive(Debug, serde::Deserialize)]
pub struct Plain {
    #[serde(default)]
    authenticity_token: String,
}

/// `POST /settings/tokens/{id}/revoke`.
pub async fn revoke_token(
    viewer: Viewer,
    State(web): State<Web>,
    uri: Uri,
    Path(id): Path<i64>,
    Form(form): Form<Plain>,
) -> Response {
    let result = async {
        check_csrf(&viewer, &form.authenticity_token)?;
        signed_in(&viewer, &uri)?;
        web.services
            .access
            .revoke_token_as(&viewer.principal, CredentialId(id))
            .await?;
        Ok(see_other_with(
            &viewer,
            "/settings/tokens",
            "success",
            "The token was revoked: it no longer works anywhere.",
        ))
    }
    .await;
    respond(&viewer, result)
}

/// A session as its row.
pub struct SessionRow {
    id: i64,
    current: bool,
    user_agent: String,
    address: String,
    signed_in_ago: String,
    signed_in_at: String,
    last_active: Option<(String, String)>,
    expires: String,
}

#[derive(Template)]
#[template(path = "settings_sessions.html")]
struct SessionsPage {
    layout: Layout,
    nav: Nav,
    rows: Vec<SessionRow>,
}

/// `GET /settings/sessions`: the user's live web sessions, this one marked.
pub async fn sessions(viewer: Viewer, State(web): State<Web>, uri: Uri) -> Response {
    let result = async {
        signed_in(&viewer, &uri)?;
        let sessions = web.services.access.sessions_as(&viewer.principal).await?;
        let rows = sessions
            .into_iter()
            .map(|s| SessionRow {
                id: s.id.0,
                current: viewer.session == Some(s.id),
                user_agent: if s.facts.user_agent.is_empty() {
                    "Unknown browser".into()
                } else {
                    s.facts.user_agent
                },
                address: s.facts.address,
                signed_in_ago: ago(s.created_at),
                signed_in_at: timestamp(s.created_at),
                last_active: s.last_used_at.map(|at| (ago(at), timestamp(at))),
                expires: expiry(s.expires_at),
            })
            .collect();
        let page = SessionsPage {
            layout: Layout::new(&viewer, "Sessions"),
            nav: Nav::user("/settings/sessions"),
            rows,
        };
        Ok(render(&viewer, StatusCode::OK, &page))
    }
    .await;
    respond(&viewer, result)
}

/// `POST /settings/sessions/{id}/revoke`: signs that session out (this one included: then
/// to the sign-in page).
pub async fn revoke_session(
    viewer: Viewer,
    State(web): State<Web>,
    uri: Uri,
    Path(id): Path<i64>,
    Form(form): Form<Plain>,
) -> Response {
    let result = async {
        check_csrf(&viewer, &form.authenticity_token)?;
        signed_in(&viewer, &uri)?;
        let id = CredentialId(id);
        web.services
            .access
            .revoke_session_as(&viewer.principal, id)
            .await?;
        if viewer.session == Some(id) {
            return Ok(see_other("/login"));
        }
        Ok(see_other_with(
            &viewer,
            "/settings/sessions",
            "success",
            "The session was revoked: that browser is signed out.",
        ))
    }
    .await;
    respond(&viewer, result)
}

#[derive(Template)]
#[template(path = "settings_security.html")]
struct SecurityPage {
    layout: Layout,
    nav: Nav,
    min_password: usize,
}

/// `GET /settings/security`: the change-password form.
pub async fn security(viewer: Viewer, uri: Uri) -> Response {
    respond(
        &viewer,
        (|| {
            signed_in(&viewer, &uri)?;
            let page = SecurityPage {
                layout: Layout::new(&viewer, "Password and authentication"),
                nav: Nav::user("/settings/security"),
                min_password: berth_core::access::sessions::MIN_PASSWORD,
            };
            Ok(render(&viewer, StatusCode::OK, &page))
        })(),
    )
}

/// The change-password form.
#[derive(Debug, serde::Deserialize)]
pub struct PasswordForm {
    #[serde(default)]
    authenticity_token: String,
    #[serde(default)]
    current_password: String,
    #[serde(default)]
    new_password: String,
    #[serde(default)]
    confirm_password: String,
}

/// `POST /settings/security/password`: sets a new password after checking the current one.
pub async fn change_password(
    viewer: Viewer,
    State(web): State<Web>,
    uri: Uri,
    Form(form): Form<PasswordForm>,
) -> Response {
    let back = "/settings/security";
    let result = async {
        check_csrf(&viewer, &form.authenticity_token)?;
        signed_in(&viewer, &uri)?;
        if form.new_password != form.confirm_password {
            return Ok(see_other_with(
                &viewer,
                back,
                "error",
                "The new password and its confirmation differ.",
            ));
        }
        match web
            .services
            .access
            .set_password_as(
                &viewer.principal,
                &form.current_password,
                &form.new_password,
            )
            .await
        {
            Ok(()) => Ok(see_other_with(
                &viewer,
                back,
                "success",
                "Your password was changed.",
            )),
            Err(err) => back_with_error(&viewer, back, err.into()),
        }
    }
    .await;
    respond(&viewer, result)
}
