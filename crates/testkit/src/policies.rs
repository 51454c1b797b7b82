//! The storage-policy contract: [`berth_core::ports::PolicyStore`] — policies of accounts and
//! packages, the packages a retention pass visits, what it reads of their versions, and the
//! last pull the download counts record.
//!
//! Each clause takes a fresh, empty store that implements the access ports too (policies
//! hang on accounts and packages); [`policies_contract!`](crate::policies_contract) stamps
//! them per backend.

use berth_core::StoreErrorKind;
use berth_core::access::Visibility;
use berth_core::access::store::AccessStore;
use berth_core::policies::{PolicyScope, parse_policies};
use berth_core::ports::{MetadataStore, PutManifestOutcome};
use serde_json::json;

use crate::access::{name, org, user};
use crate::meta::{manifest, tag};

/// Stamps the policy contract for one backend: `policies_contract!(sqlite, open)` makes
/// `mod sqlite` with one test per clause of [`policies`](crate::policies).
#[macro_export]
macro_rules! policies_contract {
    ($backend:ident, $open:expr) => {
        $crate::__stamp!(
            $backend,
            $open,
            policies,
            [::tokio::test],
            [
                policies_round_trip_per_account_and_package,
                retained_packages_are_the_live_ones_a_retention_policy_reaches,
                retention_facts_name_tags_children_subjects_and_last_pulls,
                an_immutable_tag_is_created_or_kept_never_moved,
                of_two_pushes_creating_one_immutable_tag_the_first_keeps_it,
            ]
        );
    };
}

/// Policies set on an account and on a package read back as set, separately and together
/// (for a package not created yet, its account's alone); `None` removes them; a package that
/// does not exist cannot be given policies.
pub async fn policies_round_trip_per_account_and_package<S: AccessStore + MetadataStore + Clone>(
    s: S,
) {
    let alice = user(&s, "alice").await;
    let acme = org(&s, "acme", alice).await;
    let app = name("acme/app");
    s.create_package(&app, acme, Visibility::Private, None, None, 1_000)
        .await
        .unwrap();
    let account = parse_policies(&json!({"immutable_tags": ["v*"],
        "retention": {"keep_latest": 3}}))
    .unwrap();
    let own = parse_policies(&json!({"immutable_tags": ["stable"]})).unwrap();

    assert_eq!(s.policies(PolicyScope::Account(acme)).await.unwrap(), None);
    s.set_policies(PolicyScope::Account(acme), Some(&account), 2_000)
        .await
        .unwrap();
    s.set_policies(PolicyScope::Package(&app), Some(&own), 2_000)
        .await
        .unwrap();
    assert_eq!(
        s.policies(PolicyScope::Account(acme)).await.unwrap(),
        Some(account.clone())
    );
    assert_eq!(
        s.policies(PolicyScope::Package(&app)).await.unwrap(),
        Some(own.clone())
    );
    assert_eq!(s.policies(PolicyScope::Account(alice)).await.unwrap(), None);

    let both = s.package_policies(&app).await.unwrap();
    assert_eq!(
        (both.owner.as_str(), both.package.as_str()),
        ("acme", "acme/app")
    );
    assert_eq!(
        (both.account.as_ref(), both.own.as_ref()),
        (Some(&account), Some(&own))
    );
    let unborn = s.package_policies(&name("acme/next")).await.unwrap();
    assert_eq!(
        (unborn.account.as_ref(), unborn.own),
        (Some(&account), None),
        "a package not pushed yet is under its account's rules already"
    );

    // Replacing, then removing.
    s.set_policies(PolicyScope::Package(&app), Some(&account), 3_000)
        .await
        .unwrap();
    assert_eq!(
        s.policies(PolicyScope::Package(&app)).await.unwrap(),
        Some(account.clone())
    );
    s.set_policies(PolicyScope::Package(&app), None, 4_000)
        .await
        .unwrap();
    assert_eq!(s.package_policies(&app).await.unwrap().own, None);

    let missing = s
        .set_policies(PolicyScope::Package(&name("acme/none")), Some(&own), 5_000)
        .await
        .unwrap_err();
    assert_eq!(missing.kind(), StoreErrorKind::NotFound);
}

/// The packages a retention pass visits: live ones whose own policies or whose account's
/// hold a retention policy; immutable tags alone bring none, a deleted package is skipped.
pub async fn retained_packages_are_the_live_ones_a_retention_policy_reaches<
    S: AccessStore + MetadataStore + Clone,
>(
    s: S,
) {
    let alice = user(&s, "alice").await;
    let acme = org(&s, "acme", alice).await;
    let bob = user(&s, "bob").await;
    for (package, owner) in [
        ("acme/a", acme),
        ("acme/b", acme),
        ("acme/gone", acme),
        ("bob/kept", bob),
        ("bob/pruned", bob),
    ] {
        s.create_package(
            &name(package),
            owner,
            Visibility::Private,
            None,
            None,
            1_000,
        )
        .await
        .unwrap();
    }
    let retention =
        parse_policies(&json!({"retention": {"delete_untagged_after_days": 7}})).unwrap();
    let immutable = parse_policies(&json!({"immutable_tags": ["v*"]})).unwrap();
    assert!(s.retained_packages().await.unwrap().is_empty());

    s.set_policies(PolicyScope::Account(acme), Some(&retention), 2_000)
        .await
        .unwrap();
    s.set_policies(PolicyScope::Account(bob), Some(&immutable), 2_000)
        .await
        .unwrap();
    s.set_policies(
        PolicyScope::Package(&name("bob/kept")),
        Some(&immutable),
        2_000,
    )
    .await
    .unwrap();
    s.set_policies(
        PolicyScope::Package(&name("bob/pruned")),
        Some(&retention),
        2_000,
    )
    .await
    .unwrap();
    s.set_package_deleted(&name("acme/gone"), Some(3_000))
        .await
        .unwrap();
    let names: Vec<String> = s
        .retained_packages()
        .await
        .unwrap()
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(names, ["acme/a", "acme/b", "bob/pruned"]);
}

/// What retention reads of a package's live versions: tags (sorted), an index's children,
/// a referrer's subject, the last recorded pull (the latest of the batches, never moved
/// back); deleted versions are not listed. And the tags pointing at one manifest.
pub async fn retention_facts_name_tags_children_subjects_and_last_pulls<
    S: AccessStore + MetadataStore + Clone,
>(
    s: S,
) {
    let r = name("acme/multi");
    let amd = manifest("amd64");
    let arm = manifest("arm64");
    let mut index = manifest("index");
    index.media_type = "application/vnd.oci.image.index.v1+json".to_owned();
    index.blobs = Vec::new();
    index.children = vec![amd.digest.clone(), arm.digest.clone()];
    let mut signature = manifest("signature");
    signature.subject = Some(arm.digest.clone());
    let old = manifest("old");
    for m in [&amd, &arm, &signature, &old] {
        s.put_manifest(&r, m, None).await.unwrap();
    }
    s.put_manifest(&r, &index, Some(&tag("v1"))).await.unwrap();
    s.put_manifest(&r, &index, Some(&tag("latest")))
        .await
        .unwrap();
    s.delete_manifest(&r, &old.digest, 5_000).await.unwrap();

    s.add_downloads(&[(r.clone(), index.digest.clone(), 2)], 7_000)
        .await
        .unwrap();
    s.add_downloads(&[(r.clone(), index.digest.clone(), 1)], 6_000)
        .await
        .unwrap();

    let facts = s.retention_facts(&r).await.unwrap();
    let find = |d: &berth_core::Digest| facts.iter().find(|f| &f.digest == d);
    assert_eq!(facts.len(), 4, "deleted versions are not listed: {facts:?}");
    assert!(find(&old.digest).is_none());
    let index_facts = find(&index.digest).unwrap();
    assert_eq!(index_facts.tags, ["latest", "v1"]);
    let mut children = index_facts.children.clone();
    children.sort();
    let mut expected = vec![amd.digest.clone(), arm.digest.clone()];
    expected.sort();
    assert_eq!(children, expected);
    assert_eq!(index_facts.last_pulled_at, Some(7_000));
    let signature_facts = find(&signature.digest).unwrap();
    assert_eq!(signature_facts.subject.as_ref(), Some(&arm.digest));
    assert!(signature_facts.tags.is_empty() && signature_facts.children.is_empty());
    assert_eq!(find(&amd.digest).unwrap().last_pulled_at, None);
    assert!(facts.iter().all(|f| f.updated_at > 0));

    assert_eq!(
        s.manifest_tags(&r, &index.digest).await.unwrap(),
        ["latest", "v1"]
    );
    assert!(s.manifest_tags(&r, &amd.digest).await.unwrap().is_empty());
}

/// A manifest pushed under an immutable tag creates the tag, or finds it on the same
/// manifest; one pushed to move it is refused naming the manifest the tag keeps, and stores
/// nothing (not even the manifest). Other tags move as always.
pub async fn an_immutable_tag_is_created_or_kept_never_moved<S: MetadataStore + Clone>(s: S) {
    let r = name("acme/app");
    let locked = |mut m: berth_core::ports::NewManifest| {
        m.tag_immutable = true;
        m
    };
    let (first, second) = (locked(manifest("first")), locked(manifest("second")));
    let stored = s.put_manifest(&r, &first, Some(&tag("v1"))).await.unwrap();
    assert!(
        matches!(
            stored,
            PutManifestOutcome::Stored {
                created: true,
                tag_moved: true,
                ..
            }
        ),
        "{stored:?}"
    );
    let again = s.put_manifest(&r, &first, Some(&tag("v1"))).await.unwrap();
    assert!(
        matches!(
            again,
            PutManifestOutcome::Stored {
                tag_moved: false,
                ..
            }
        ),
        "{again:?}"
    );
    assert_eq!(
        s.put_manifest(&r, &second, Some(&tag("v1"))).await.unwrap(),
        PutManifestOutcome::TagImmutable(first.digest.clone())
    );
    assert!(
        s.manifest_by_digest(&r, &second.digest)
            .await
            .unwrap()
            .is_none(),
        "a refused push stores nothing"
    );
    assert_eq!(
        s.manifest_by_tag(&r, &tag("v1"))
            .await
            .unwrap()
            .unwrap()
            .digest,
        first.digest
    );
    let mut movable = manifest("second");
    s.put_manifest(&r, &movable, Some(&tag("latest")))
        .await
        .unwrap();
    movable = manifest("first");
    let moved = s
        .put_manifest(&r, &movable, Some(&tag("latest")))
        .await
        .unwrap();
    assert!(
        matches!(
            moved,
            PutManifestOutcome::Stored {
                tag_moved: true,
                ..
            }
        ),
        "{moved:?}"
    );
}

/// Two pushes creating the same immutable tag at once (two connections, on a backend that
/// has several): one creates it, the other is refused naming that one's manifest.
pub async fn of_two_pushes_creating_one_immutable_tag_the_first_keeps_it<
    S: MetadataStore + Clone,
>(
    s: S,
) {
    let r = name("acme/race");
    for round in 0..10 {
        let t = tag(&format!("v{round}"));
        let pushes: Vec<_> = ["a", "b"]
            .into_iter()
            .map(|side| {
                let (s, r, t) = (s.clone(), r.clone(), t.clone());
                let mut m = manifest(&format!("{side} {round}"));
                m.tag_immutable = true;
                tokio::spawn(async move {
                    let outcome = s.put_manifest(&r, &m, Some(&t)).await.unwrap();
                    (m.digest, outcome)
                })
            })
            .collect();
        let mut stored = Vec::new();
        let mut refused = Vec::new();
        for push in pushes {
            match push.await.unwrap() {
                (d, PutManifestOutcome::Stored { .. }) => stored.push(d),
                (_, PutManifestOutcome::TagImmutable(keeps)) => refused.push(keeps),
                (_, other) => panic!("{other:?}"),
            }
        }
        assert_eq!((stored.len(), refused.len()), (1, 1), "round {round}");
        assert_eq!(
            refused[0], stored[0],
            "the refusal names the manifest that won"
        );
        assert_eq!(
            s.manifest_by_tag(&r, &t).await.unwrap().unwrap().digest,
            stored[0]
        );
    }
}
