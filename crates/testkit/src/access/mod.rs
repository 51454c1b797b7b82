//! The access contract: the directory (accounts, organizations, teams, repositories), packages
//! (targets, records, roles, links) and credentials (tokens, apps) of
//! [`berth_core::access::store::AccessStore`].
//!
//! Each clause takes a fresh, empty store; [`access_contract!`](crate::access_contract) stamps
//! them per backend. The fixtures are public so a backend's own extras build the same values.

mod credentials;
mod directory;
mod packages;

pub use credentials::*;
pub use directory::*;
pub use packages::*;

use berth_core::RepoName;
use berth_core::access::store::{Created, DirectoryStore, NewCredential, NewUser, Resolved};
use berth_core::access::token::TokenKind;
use berth_core::access::{AccountId, Credential, Grant, Principal, RepoId, Visibility};

/// Stamps the access contract for one backend: `access_contract!(sqlite, open)` makes
/// `mod sqlite` with one test per clause of [`access`](crate::access), each on the store
/// `open` returns (see the [crate] docs).
#[macro_export]
macro_rules! access_contract {
    ($backend:ident, $open:expr) => {
        $crate::__stamp!(
            $backend,
            $open,
            access,
            [::tokio::test],
            [
                logins_are_unique_case_insensitively_and_kept_as_given,
                creating_an_org_makes_its_creator_an_owner,
                policy_and_sso_settings_round_trip,
                removing_a_membership_removes_the_orgs_team_memberships_only,
                team_slugs_are_unique_per_org_case_insensitively,
                repositories_are_unique_per_owner_and_found_case_insensitively,
                listings_read_members_orgs_teams_and_repositories_with_roles,
                target_without_an_owner_account_is_empty,
                target_with_an_owner_but_no_package,
                target_describes_the_package_its_link_and_job_access,
                package_role_is_the_highest_of_the_users_and_their_teams,
                repo_role_comes_from_collaborators_teams_and_ownership,
                create_package_is_idempotent_and_concurrent_creators_agree,
                a_package_created_linked_inherits,
                deleted_packages_are_marked_restored_and_purged_with_their_repository,
                the_first_link_of_a_package_wins,
                the_listing_pages_and_counts_exactly_what_each_principal_may_pull,
                the_listing_finds_packages_by_part_of_their_name,
                each_grant_kind_round_trips_through_its_secret,
                grant_lists_are_sets,
                tokens_grant_at_most_write,
                expired_revoked_and_unknown_secrets,
                touches_keep_the_latest_use_and_lists_are_newest_first,
                sso_authorization_is_added_to_a_classic_grant,
                app_installations_are_found_by_their_apps_secret,
                web_sessions_resolve_list_and_end_as_credentials,
                passwords_are_set_for_users_only,
            ]
        );
    };
}

/// A user `login` with no name, email or password, not a site admin.
pub fn new_user(login: &str) -> NewUser {
    NewUser {
        login: login.to_owned(),
        name: None,
        email: None,
        password_hash: None,
        site_admin: false,
    }
}

/// Creates user `login` (at 1 000 ms); its id.
pub async fn user(s: &impl DirectoryStore, login: &str) -> AccountId {
    match s.create_user(&new_user(login), 1_000).await.unwrap() {
        Created::New(id) => id,
        Created::Taken => panic!("login {login} taken"),
    }
}

/// Creates organization `login` owned by `owner`; its id.
pub async fn org(s: &impl DirectoryStore, login: &str, owner: AccountId) -> AccountId {
    match s.create_org(login, None, owner, 1_000).await.unwrap() {
        Created::New(id) => id,
        Created::Taken => panic!("login {login} taken"),
    }
}

/// Creates source repository `name` of `owner`; its id.
pub async fn repo(s: &impl DirectoryStore, owner: AccountId, name: &str, v: Visibility) -> RepoId {
    match s.create_repo(owner, name, v, 1_000).await.unwrap() {
        Created::New(id) => id,
        Created::Taken => panic!("repository {name} taken"),
    }
}

/// Creates team `slug` of `org`; its id.
pub async fn team(
    s: &impl DirectoryStore,
    org: AccountId,
    slug: &str,
) -> berth_core::access::store::TeamId {
    match s.create_team(org, slug, slug).await.unwrap() {
        Created::New(id) => id,
        Created::Taken => panic!("team {slug} taken"),
    }
}

/// The package name `text`.
pub fn name(text: &str) -> RepoName {
    text.parse().expect("package name")
}

/// A classic grant of `scopes` (e.g. `"read:packages"`).
pub fn classic(scopes: &str) -> Grant {
    Grant::Classic {
        scopes: scopes.parse().unwrap(),
        sso_authorized: Vec::new(),
    }
}

/// A credential whose hash is `secret`'s bytes, noted "note of `secret`", created at 1 000 ms.
pub fn credential(
    kind: TokenKind,
    secret: &str,
    user: Option<AccountId>,
    grant: Grant,
) -> NewCredential {
    NewCredential {
        kind,
        hash: secret.as_bytes().to_vec(),
        user,
        note: format!("note of {secret}"),
        grant,
        expires_at: None,
        created_at: 1_000,
    }
}

/// The credential of a valid token; panics on anything else.
pub fn valid(resolved: Resolved) -> Credential {
    match resolved {
        Resolved::Valid(Principal::Token(credential)) => credential,
        other => panic!("expected a valid token, got {other:?}"),
    }
}
