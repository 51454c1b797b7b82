//! The time format, node ids and URLs; the objects are checked against GitHub's examples by
//! the payload tests (`hooks/payload/tests.rs`) and the integration suites.

use super::urls::{PackageUrls, package_segment, short_name};
use super::*;
use crate::access::store::Account;
use crate::access::{AccountKind, PackagePolicy};
use crate::ids::AccountId;
use crate::name::RepoName;

/// An account as the stores return one, for renderer tests.
pub(crate) fn account(id: i64, login: &str, kind: AccountKind) -> Account {
    Account {
        id: AccountId(id),
        login: login.into(),
        kind,
        name: None,
        email: None,
        site_admin: false,
        requires_sso: false,
        policy: PackagePolicy::default(),
        created_at: 1_700_000_000_000,
    }
}

#[test]
fn times_are_githubs_iso_8601() {
    assert_eq!(time(0), "1970-01-01T00:00:00Z");
    assert_eq!(time(-5), "1970-01-01T00:00:00Z");
    assert_eq!(time(951_782_400_000), "2000-02-29T00:00:00Z");
    assert_eq!(time(1_795_000_000_123), "2026-11-18T11:06:40Z");
    assert_eq!(maybe_time(None), Value::Null);
    assert_eq!(maybe_time(Some(0)), "1970-01-01T00:00:00Z");
}

#[test]
fn node_ids_are_githubs_legacy_encoding() {
    // GitHub's example user 21031067 has node id MDQ6VXNlcjIxMDMxMDY3.
    assert_eq!(node_id("User", 21_031_067), "MDQ6VXNlcjIxMDMxMDY3");
}

#[test]
fn nested_package_names_are_one_segment_in_every_url() {
    let name: RepoName = "acme/api/worker".parse().unwrap();
    assert_eq!(short_name(&name), "api/worker");
    assert_eq!(package_segment(&name), "api%2Fworker");
    let org = account(2, "acme", AccountKind::Organization);
    let urls = PackageUrls::of("https://r.example", &org, &name);
    assert_eq!(
        urls.api,
        "https://r.example/api/v3/orgs/acme/packages/container/api%2Fworker"
    );
    // GitHub's package page: `…/packages/container/package/<name, / as %2F>`.
    assert_eq!(
        urls.page,
        "https://r.example/orgs/acme/packages/container/package/api%2Fworker"
    );
    assert_eq!(
        urls.version_api(7),
        "https://r.example/api/v3/orgs/acme/packages/container/api%2Fworker/versions/7"
    );
    assert_eq!(
        urls.version_page(7),
        "https://r.example/orgs/acme/packages/container/api%2Fworker/7"
    );
    let user = account(3, "bob", AccountKind::User);
    let flat: RepoName = "bob/app".parse().unwrap();
    assert_eq!(
        PackageUrls::of("https://r.example", &user, &flat).page,
        "https://r.example/users/bob/packages/container/package/app"
    );
}
