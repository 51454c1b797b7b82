//! Web sessions: signing in with a password, the session a browser's cookie names, the
//! sessions page and changing one's password. The web UI is the only front that calls these.
//!
//! A session is a credential of its own kind (`berthw_` secrets) stored as a classic one with
//! the user's whole access — every scope they may hold, authorized for the SSO of the
//! organizations they belong to — so a page decides through [`crate::access::decide`] and
//! [`crate::access::rules`] exactly as the API does for a full-scope token. Its secret is
//! refused everywhere else ([`Access::principal`]); passwords are accepted only here.

use argon2::{Argon2, PasswordHasher as _, PasswordVerifier as _};

use super::manage::{ManageError, ManageResult, actor};
use super::model::{CredentialId, Grant, Principal, Scopes};
use super::service::Access;
use super::store::{Account, NewCredential, Resolved, SessionFacts, WebSession};
use super::token::{Secret, TokenKind, hash_secret, recognize};
use crate::access::AccountKind;
use crate::error::StoreError;
use crate::ports::{Millis, now_millis};

/// The shortest password Berth accepts.
pub const MIN_PASSWORD: usize = 8;
/// The longest password Berth hashes (a longer one is refused before any work).
pub const MAX_PASSWORD: usize = 256;

/// Why a sign-in failed.
#[derive(Debug, thiserror::Error)]
pub enum SignInError {
    /// Wrong login or password: one answer for both, so it tells nothing about which.
    #[error("Incorrect username or password.")]
    Refused,
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A new session: the cookie's secret (shown to the browser only) and who signed in.
#[derive(Debug)]
pub struct SignedIn {
    /// The cookie's value.
    pub secret: Secret,
    /// The user.
    pub user: Account,
}

/// Hashes `password` (Argon2id, a fresh salt) after checking its length.
pub fn hash_password(password: &str) -> Result<String, String> {
    if password.chars().count() < MIN_PASSWORD {
        return Err(format!(
            "the password needs at least {MIN_PASSWORD} characters"
        ));
    }
    if password.len() > MAX_PASSWORD {
        return Err(format!(
            "the password may have at most {MAX_PASSWORD} bytes"
        ));
    }
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|hash| hash.to_string())
        .map_err(|e| format!("hashing the password: {e}"))
}

/// Whether `password` matches the PHC string `hash`; off the async threads (Argon2 takes
/// tens of milliseconds on purpose).
async fn verify(password: &str, hash: Option<String>) -> bool {
    // A user without a password, or no such user, still costs one verification, so the time
    // a refusal takes does not tell which logins exist.
    const DECOY: &str = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$H5dRbAtVmN+rXPo/dt8LB9mZkEvWz8ia1PvwdFhUq2I";
    let known = hash.is_some();
    let hash = hash.unwrap_or_else(|| DECOY.to_owned());
    let password = password.to_owned();
    let matched = tokio::task::spawn_blocking(move || {
        Argon2::default()
            .verify_password(password.as_bytes(), hash.as_str())
            .is_ok()
    })
    .await
    .unwrap_or(false);
    known && matched
}

impl Access {
    /// Signs `login` in with `password`: a new session for `lifetime` milliseconds, or
    /// [`SignInError::Refused`] — the same for an unknown login, an organization, a user
    /// without a password and a wrong password. Tokens are not passwords: a string shaped
    /// like a Berth token is refused without a lookup.
    pub async fn sign_in(
        &self,
        login: &str,
        password: &str,
        facts: SessionFacts,
        lifetime: Millis,
    ) -> Result<SignedIn, SignInError> {
        if password.is_empty() || password.len() > MAX_PASSWORD || recognize(password).is_some() {
            return Err(SignInError::Refused);
        }
        let account = self.store().account(login).await?;
        let hash = match &account {
            Some(account) if account.kind == AccountKind::User => {
                self.store().password_hash(&account.login).await?
            }
            _ => None,
        };
        if !verify(password, hash).await {
            return Err(SignInError::Refused);
        }
        let user = account.ok_or(SignInError::Refused)?;
        let scopes = if user.site_admin {
            Scopes::ALL
        } else {
            Scopes::ALL
                .names()
                .into_iter()
                .filter(|name| *name != "site_admin")
                .collect::<Vec<_>>()
                .join(",")
                .parse()
                .expect("Berth's own scope names parse")
        };
        let sso_authorized = self
            .store()
            .orgs_of(user.id)
            .await?
            .into_iter()
            .map(|org| org.id)
            .collect();
        let secret = Secret::generate(TokenKind::Session);
        let now = now_millis();
        let credential = NewCredential {
            kind: TokenKind::Classic,
            hash: secret.hash(),
            user: Some(user.id),
            note: "web session".to_owned(),
            grant: Grant::Classic {
                scopes,
                sso_authorized,
            },
            expires_at: Some(now + lifetime),
            created_at: now,
        };
        let facts = SessionFacts {
            user_agent: facts.user_agent.chars().take(200).collect(),
            address: facts.address,
        };
        self.changed(self.store().create_session(&credential, &facts).await)?;
        Ok(SignedIn { secret, user })
    }

    /// The principal of the session whose cookie holds `secret`, or `None` (no such live
    /// session, or not a session's secret at all — a token is not a cookie).
    pub async fn session(
        &self,
        secret: &str,
    ) -> Result<Option<(CredentialId, Principal)>, StoreError> {
        if recognize(secret) != Some(TokenKind::Session) {
            return Ok(None);
        }
        Ok(match self.resolve_hash(&hash_secret(secret)).await? {
            Resolved::Valid(Principal::Token(credential)) => {
                Some((credential.id, Principal::Token(credential)))
            }
            _ => None,
        })
    }

    /// Ends session `id` (signing out). Anyone holding its cookie may end it.
    pub async fn sign_out(&self, id: CredentialId) -> Result<(), StoreError> {
        self.changed(self.store().revoke_credential(id, now_millis()).await)?;
        Ok(())
    }

    /// The caller's live web sessions, newest first.
    pub async fn sessions_as(&self, principal: &Principal) -> ManageResult<Vec<WebSession>> {
        let actor = actor(principal)?;
        Ok(self.store().list_sessions(actor.user, now_millis()).await?)
    }

    /// Ends one of the caller's own sessions; another's (or none) is not found.
    pub async fn revoke_session_as(
        &self,
        principal: &Principal,
        id: CredentialId,
    ) -> ManageResult<()> {
        let sessions = self.sessions_as(principal).await?;
        if !sessions.iter().any(|session| session.id == id) {
            return Err(ManageError::NotFound("Not Found".into()));
        }
        self.sign_out(id).await?;
        Ok(())
    }

    /// Sets the caller's password after checking their current one (which a user who has
    /// none leaves empty).
    pub async fn set_password_as(
        &self,
        principal: &Principal,
        current: &str,
        new: &str,
    ) -> ManageResult<()> {
        let actor = actor(principal)?;
        let invalid = |message: String| ManageError::Invalid {
            resource: "User",
            field: "password",
            code: "invalid",
            message,
        };
        let login = actor.credential.login.clone();
        let hash = self.store().password_hash(&login).await?;
        let current_ok = match hash {
            None => current.is_empty(),
            Some(hash) => verify(current, Some(hash)).await,
        };
        if !current_ok {
            return Err(invalid("the current password is not right".into()));
        }
        let hashed = hash_password(new).map_err(invalid)?;
        if !self.store().set_password_hash(actor.user, &hashed).await? {
            return Err(ManageError::NotFound("Not Found".into()));
        }
        Ok(())
    }
}
