//! The access cache's contract over a backend's access store: what it remembers, and when it
//! forgets. Writes "through the service" go through [`Access::changed`], as every access write
//! in core does; writes straight to the store are another process's.
//!
//! Each clause takes a fresh, empty store; [`access_cache_contract!`](crate::access_cache_contract)
//! stamps them per backend.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use berth_core::RepoName;
use berth_core::access::cache::ChangeSignal;
use berth_core::access::store::{AccessStore, Created, Grantee, NewCredential, NewUser, Resolved};
use berth_core::access::token::TokenKind;
use berth_core::access::{
    Access, AccessCache, AccountId, CredentialId, Grant, Principal, Role, Visibility,
};

struct Fixture<S> {
    /// The store underneath, written to as another process would.
    inner: Arc<S>,
    cache: Arc<AccessCache>,
    /// The service over `inner` with `cache`.
    access: Access,
    /// What the change signal reads; bump it to announce another process's change.
    signal: Arc<AtomicU64>,
    alice: AccountId,
}

async fn fixture<S: AccessStore>(store: S, ttl: Duration) -> Fixture<S> {
    let inner = Arc::new(store);
    let signal = Arc::new(AtomicU64::new(0));
    let reading = Arc::clone(&signal);
    let read: ChangeSignal = Arc::new(move || reading.load(Ordering::SeqCst));
    let cache = Arc::new(AccessCache::new(ttl, Some(read)));
    let access = Access::new(inner.clone() as Arc<dyn AccessStore>).with_cache(cache.clone());
    let user = NewUser {
        login: "alice".into(),
        name: None,
        email: None,
        password_hash: None,
        site_admin: false,
    };
    let Created::New(alice) = inner.create_user(&user, 1_000).await.unwrap() else {
        panic!("alice")
    };
    Fixture {
        inner,
        cache,
        access,
        signal,
        alice,
    }
}

fn token(secret: &str, user: AccountId, expires_at: Option<i64>) -> NewCredential {
    NewCredential {
        kind: TokenKind::Classic,
        hash: secret.as_bytes().to_vec(),
        user: Some(user),
        note: secret.into(),
        grant: Grant::Classic {
            scopes: "read:packages".parse().unwrap(),
            sso_authorized: Vec::new(),
        },
        expires_at,
        created_at: 1_000,
    }
}

fn credential_id(resolved: &Resolved) -> CredentialId {
    match resolved {
        Resolved::Valid(Principal::Token(c)) => c.id,
        other => panic!("expected a valid token, got {other:?}"),
    }
}

/// Stamps the access cache's contract for one backend: `access_cache_contract!(sqlite, open)`
/// makes `mod sqlite` with one test per clause of [`cache`](crate::cache), each over the store
/// `open` returns (see the [crate] docs).
#[macro_export]
macro_rules! access_cache_contract {
    ($backend:ident, $open:expr) => {
        $crate::__stamp!(
            $backend,
            $open,
            cache,
            [::tokio::test],
            [
                a_revocation_through_the_cache_applies_to_the_next_read,
                another_processs_change_applies_once_signalled_or_after_the_ttl,
                a_remembered_token_still_expires_on_time,
                targets_are_remembered_per_user_and_forgotten_on_any_write,
            ]
        );
    };
}

/// A revocation through the cache applies to the next read.
pub async fn a_revocation_through_the_cache_applies_to_the_next_read<S: AccessStore>(store: S) {
    let f = fixture(store, Duration::from_secs(60)).await;
    let id = f
        .access
        .changed(f.inner.create_credential(&token("s1", f.alice, None)).await)
        .unwrap();
    assert_eq!(
        credential_id(
            &f.cache
                .resolve_secret(&*f.inner, b"s1", 2_000)
                .await
                .unwrap()
        ),
        id
    );
    assert!(
        f.access
            .changed(f.inner.revoke_credential(id, 3_000).await)
            .unwrap()
    );
    assert_eq!(
        f.cache
            .resolve_secret(&*f.inner, b"s1", 4_000)
            .await
            .unwrap(),
        Resolved::Revoked
    );
}

/// Another process's change applies once signalled or after the ttl.
pub async fn another_processs_change_applies_once_signalled_or_after_the_ttl<S: AccessStore>(
    store: S,
) {
    let f = fixture(store, Duration::from_millis(300)).await;
    let id = f
        .inner
        .create_credential(&token("s2", f.alice, None))
        .await
        .unwrap();
    assert_eq!(
        credential_id(
            &f.cache
                .resolve_secret(&*f.inner, b"s2", 2_000)
                .await
                .unwrap()
        ),
        id
    );
    f.inner.revoke_credential(id, 3_000).await.unwrap();
    assert_eq!(
        credential_id(
            &f.cache
                .resolve_secret(&*f.inner, b"s2", 4_000)
                .await
                .unwrap()
        ),
        id,
        "remembered: the change was made behind the cache's back"
    );
    f.signal.fetch_add(1, Ordering::SeqCst);
    assert_eq!(
        f.cache
            .resolve_secret(&*f.inner, b"s2", 4_000)
            .await
            .unwrap(),
        Resolved::Revoked,
        "signalled"
    );

    let id = f
        .inner
        .create_credential(&token("s3", f.alice, None))
        .await
        .unwrap();
    f.cache
        .resolve_secret(&*f.inner, b"s3", 2_000)
        .await
        .unwrap();
    f.inner.revoke_credential(id, 3_000).await.unwrap();
    tokio::time::sleep(Duration::from_millis(350)).await;
    assert_eq!(
        f.cache
            .resolve_secret(&*f.inner, b"s3", 4_000)
            .await
            .unwrap(),
        Resolved::Revoked,
        "past the ttl"
    );
}

/// A remembered token still expires on time.
pub async fn a_remembered_token_still_expires_on_time<S: AccessStore>(store: S) {
    let f = fixture(store, Duration::from_secs(60)).await;
    f.access
        .changed(
            f.inner
                .create_credential(&token("s4", f.alice, Some(5_000)))
                .await,
        )
        .unwrap();
    credential_id(
        &f.cache
            .resolve_secret(&*f.inner, b"s4", 4_000)
            .await
            .unwrap(),
    );
    assert_eq!(
        f.cache
            .resolve_secret(&*f.inner, b"s4", 5_000)
            .await
            .unwrap(),
        Resolved::Expired(5_000)
    );
}

/// Targets are remembered per user and forgotten on any write.
pub async fn targets_are_remembered_per_user_and_forgotten_on_any_write<S: AccessStore>(store: S) {
    let f = fixture(store, Duration::from_secs(60)).await;
    let app: RepoName = "alice/app".parse().unwrap();
    let Created::New(bob) = f
        .access
        .changed(
            f.inner
                .create_user(
                    &NewUser {
                        login: "bob".into(),
                        name: None,
                        email: None,
                        password_hash: None,
                        site_admin: false,
                    },
                    1_000,
                )
                .await,
        )
        .unwrap()
    else {
        panic!("bob")
    };
    f.access
        .changed(
            f.inner
                .create_package(
                    &app,
                    f.alice,
                    Visibility::Private,
                    None,
                    Some(f.alice),
                    1_000,
                )
                .await,
        )
        .unwrap();
    let role = async |user| {
        f.access
            .target(&app, Some(user))
            .await
            .unwrap()
            .relations
            .package_role
    };
    assert_eq!(role(f.alice).await, Some(Role::Admin));
    assert_eq!(role(bob).await, None);
    f.access
        .changed(
            f.inner
                .set_package_role(&app, Grantee::User(bob), Some(Role::Write))
                .await,
        )
        .unwrap();
    assert_eq!(
        role(bob).await,
        Some(Role::Write),
        "the grant applies at once"
    );
    f.inner
        .set_package_role(&app, Grantee::User(bob), None)
        .await
        .unwrap();
    assert_eq!(
        role(bob).await,
        Some(Role::Write),
        "behind the cache's back"
    );
    f.signal.fetch_add(1, Ordering::SeqCst);
    assert_eq!(role(bob).await, None);
}
