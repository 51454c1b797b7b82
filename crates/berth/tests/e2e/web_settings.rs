//! The settings pages over HTTP: personal access tokens (the secret shown once, working as a
//! registry password until revoked), sessions, the password, an organization's package and
//! SSO settings (only for those who manage it), and webhooks with their delivery log.

use crate::common::web::{PASSWORD, Page, WebClient};
use crate::common::world::World;
use crate::common::{ORG, Server};
use crate::webhooks::{LOOPBACK, Receiver};

/// The text between `start` and the next `end` in `page`, after `start`'s first match.
fn between<'a>(page: &'a Page, start: &str, end: &str) -> Option<&'a str> {
    let at = page.body.find(start)? + start.len();
    let rest = &page.body[at..];
    Some(&rest[..rest.find(end)?])
}

/// The numbers of `{prefix}{n}{suffix}` in `page`, in order.
fn ids(page: &Page, prefix: &str, suffix: &str) -> Vec<i64> {
    page.body
        .match_indices(prefix)
        .filter_map(|(at, _)| {
            let rest = &page.body[at + prefix.len()..];
            let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
            rest[digits.len()..]
                .starts_with(suffix)
                .then(|| digits.parse().ok())
                .flatten()
        })
        .collect()
}

async fn registry_status(server: &Server, user: &str, secret: &str) -> u16 {
    crate::common::login(user, secret)
        .get(server.url("/v2/"))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn web_settings_a_classic_token_is_shown_once_and_works_until_revoked() {
    let server = Server::start();
    let world = World::new(&server);
    world.user("alice").await;
    let mut signed_out = WebClient::anonymous(&server);
    let away = signed_out.get("/settings/tokens").await;
    assert_eq!(away.status, 303);
    assert_eq!(
        away.location(),
        Some("/login?return_to=%2Fsettings%2Ftokens")
    );

    let mut web = WebClient::signed_in(&server, "alice").await;
    let form = web.get("/settings/tokens/new").await;
    assert_eq!(form.status, 200, "{}", form.body);
    assert!(form.has(r#"value="write:packages""#) && form.has(r#"value="admin:org""#));
    assert!(
        !form.has(r#"value="site_admin""#),
        "site_admin is offered to site administrators only"
    );
    let mut admin = WebClient::signed_in(&server, crate::common::ADMIN).await;
    assert!(
        admin
            .get("/settings/tokens/new")
            .await
            .has(r#"value="site_admin""#)
    );

    // A forged creation (no CSRF token) creates nothing.
    let forged = web
        .post_raw(
            "/settings/tokens",
            &[
                ("note", "forged"),
                ("expiration", "30"),
                ("scopes", "read:packages"),
            ],
        )
        .await;
    assert_eq!(forged.status, 403);

    let created = web
        .post(
            "/settings/tokens",
            &[
                ("note", "laptop"),
                ("expiration", "30"),
                ("scopes", "read:packages"),
                ("scopes", "write:packages"),
            ],
        )
        .await;
    assert_eq!(created.status, 200, "{}", created.body);
    assert_eq!(
        created.headers.get("cache-control").unwrap(),
        "no-store",
        "a page showing a secret is never cached"
    );
    let secret = between(&created, r#"id="new-token">"#, "<")
        .expect("the secret on the answer")
        .to_owned();
    assert!(secret.len() > 20, "{secret}");
    assert!(
        created.has(&format!(r#"data-copy="{secret}""#)),
        "a copy button"
    );
    assert!(created.has("write:packages"));
    assert_eq!(registry_status(&server, "alice", &secret).await, 200);

    let list = web.get("/settings/tokens").await;
    assert_eq!(list.status, 200);
    assert!(list.has("laptop") && list.has("write:packages, read:packages"));
    assert!(!list.has(&secret), "the list never shows a secret again");
    assert!(!list.has("forged"), "the forged form created no token");
    // Alice's first token (the fixture's) is listed too; the new one is the laptop's row.
    let row = list
        .body
        .split(r#"<li class="Box-row"#)
        .find(|row| row.contains("laptop"))
        .expect("the new token's row");
    let token_ids = ids(
        &Page {
            status: 200,
            headers: Default::default(),
            body: row.to_owned(),
        },
        "/settings/tokens/",
        "/revoke",
    );
    assert_eq!(token_ids.len(), 1, "{row}");
    let revoke = format!("/settings/tokens/{}/revoke", token_ids[0]);

    // Its use shows on the list once recorded (uses are written every few seconds).
    poll(&mut web, "/settings/tokens", |page| {
        page.body
            .split(r#"<li class="Box-row"#)
            .any(|row| row.contains("laptop") && row.contains("Last used"))
    })
    .await;

    let forged = web.post_raw(&revoke, &[]).await;
    assert_eq!(forged.status, 403);
    assert_eq!(registry_status(&server, "alice", &secret).await, 200);

    let revoked = web.post(&revoke, &[]).await;
    assert_eq!(revoked.status, 303);
    assert_eq!(revoked.location(), Some("/settings/tokens"));
    let after = web.get("/settings/tokens").await;
    assert!(after.has("The token was revoked") && !after.has("laptop"));
    assert_eq!(registry_status(&server, "alice", &secret).await, 401);

    // A bad choice goes back to the form with why, creating nothing.
    let bad = web
        .post(
            "/settings/tokens",
            &[
                ("note", "x"),
                ("expiration", "1000"),
                ("scopes", "read:packages"),
            ],
        )
        .await;
    assert_eq!(bad.status, 303);
    assert_eq!(bad.location(), Some("/settings/tokens/new"));
    assert!(
        web.get("/settings/tokens/new")
            .await
            .has("is no expiration")
    );
}

#[tokio::test]
async fn web_settings_a_fine_grained_token_for_an_organization() {
    let server = Server::start();
    let world = World::new(&server);
    world.user("alice").member("member").await;
    let mut web = WebClient::signed_in(&server, "alice").await;
    let form = web.get("/settings/personal-access-tokens/new").await;
    assert_eq!(form.status, 200, "{}", form.body);
    assert!(
        form.has(&format!(r#"<option value="{ORG}">"#)),
        "{}",
        form.body
    );

    let created = web
        .post(
            "/settings/personal-access-tokens",
            &[
                ("note", "ci"),
                ("expiration", "7"),
                ("resource_owner", ORG),
                ("packages", "app\nworker"),
                ("repositories", ""),
                ("permission", "read"),
            ],
        )
        .await;
    assert_eq!(created.status, 200, "{}", created.body);
    assert!(created.has("fine-grained") && created.has(&format!("<strong>{ORG}</strong>")));
    let secret = between(&created, r#"id="new-token">"#, "<")
        .expect("the secret")
        .to_owned();
    assert_eq!(registry_status(&server, "alice", &secret).await, 200);

    let list = web.get("/settings/tokens").await;
    assert!(list.has("ci") && list.has(&format!("<strong>{ORG}</strong>")));
    assert!(list.has(&format!("{ORG}/app")) && list.has(&format!("{ORG}/worker")));
    assert!(!list.has(&secret));

    // An owner the user does not belong to is refused, back to the form with why.
    let refused = web
        .post(
            "/settings/personal-access-tokens",
            &[
                ("note", "elsewhere"),
                ("expiration", "7"),
                ("resource_owner", "no-such-org"),
                ("packages", "app"),
                ("permission", "read"),
            ],
        )
        .await;
    assert_eq!(refused.status, 303, "{}", refused.body);
    assert!(!web.get("/settings/tokens").await.has("elsewhere"));
}

#[tokio::test]
async fn web_settings_sessions_are_listed_and_revoking_one_signs_it_out() {
    let server = Server::start();
    let world = World::new(&server);
    world.user("alice").await;
    let mut first = WebClient::signed_in(&server, "alice").await;
    let mut second = WebClient::anonymous(&server);
    assert_eq!(second.sign_in("alice", PASSWORD).await.status, 303);

    let page = first.get("/settings/sessions").await;
    assert_eq!(page.status, 200, "{}", page.body);
    let sessions = ids(&page, "/settings/sessions/", "/revoke");
    assert_eq!(sessions.len(), 2, "{}", page.body);
    assert_eq!(page.body.matches("Your current session").count(), 1);
    // The other one is the row without the mark.
    let other = page
        .body
        .split(r#"<li class="Box-row"#)
        .find(|row| row.contains("/settings/sessions/") && !row.contains("Your current session"))
        .and_then(|row| {
            sessions
                .iter()
                .find(|id| row.contains(&format!("/settings/sessions/{id}/revoke")))
        })
        .copied()
        .expect("the other session's row");

    let forged = first
        .post_raw(&format!("/settings/sessions/{other}/revoke"), &[])
        .await;
    assert_eq!(forged.status, 403);
    assert_eq!(second.get("/settings/sessions").await.status, 200);

    let revoked = first
        .post(&format!("/settings/sessions/{other}/revoke"), &[])
        .await;
    assert_eq!(revoked.status, 303);
    let gone = second.get("/settings/sessions").await;
    assert_eq!(gone.status, 303, "the revoked browser is signed out");
    assert!(gone.location().unwrap().starts_with("/login"));
    let page = first.get("/settings/sessions").await;
    assert_eq!(ids(&page, "/settings/sessions/", "/revoke").len(), 1);

    // Another user's session is not theirs to revoke.
    world.user("bob").await;
    let mut bob = WebClient::signed_in(&server, "bob").await;
    bob.get("/settings/sessions").await;
    let mine = ids(&page, "/settings/sessions/", "/revoke")[0];
    let theirs = bob
        .post(&format!("/settings/sessions/{mine}/revoke"), &[])
        .await;
    assert_eq!(theirs.status, 404);
    assert_eq!(first.get("/settings/sessions").await.status, 200);
}

#[tokio::test]
async fn web_settings_the_password_changes_only_with_the_current_one() {
    let server = Server::start();
    let world = World::new(&server);
    world.user("alice").await;
    let mut web = WebClient::signed_in(&server, "alice").await;
    assert_eq!(web.get("/settings/security").await.status, 200);
    let new = "a-brand-new-password";

    let wrong = web
        .post(
            "/settings/security/password",
            &[
                ("current_password", "not-my-password"),
                ("new_password", new),
                ("confirm_password", new),
            ],
        )
        .await;
    assert_eq!(wrong.status, 303);
    assert!(
        web.get("/settings/security")
            .await
            .has("current password is not right")
    );
    let differ = web
        .post(
            "/settings/security/password",
            &[
                ("current_password", PASSWORD),
                ("new_password", new),
                ("confirm_password", "something-else"),
            ],
        )
        .await;
    assert_eq!(differ.status, 303);
    assert!(web.get("/settings/security").await.has("differ"));
    let forged = web
        .post_raw(
            "/settings/security/password",
            &[
                ("current_password", PASSWORD),
                ("new_password", new),
                ("confirm_password", new),
            ],
        )
        .await;
    assert_eq!(forged.status, 403);
    let mut check = WebClient::anonymous(&server);
    assert_eq!(
        check.sign_in("alice", PASSWORD).await.status,
        303,
        "unchanged so far"
    );

    let changed = web
        .post(
            "/settings/security/password",
            &[
                ("current_password", PASSWORD),
                ("new_password", new),
                ("confirm_password", new),
            ],
        )
        .await;
    assert_eq!(changed.status, 303);
    assert!(
        web.get("/settings/security")
            .await
            .has("Your password was changed.")
    );
    let mut old = WebClient::anonymous(&server);
    assert_eq!(old.sign_in("alice", PASSWORD).await.status, 401);
    let mut fresh = WebClient::anonymous(&server);
    assert_eq!(fresh.sign_in("alice", new).await.status, 303);
}

#[tokio::test]
async fn web_settings_only_an_organizations_owners_see_and_change_its_settings() {
    let server = Server::start();
    let world = World::new(&server);
    world.user("owner").member("admin").await;
    world.user("member").member("member").await;
    let packages = format!("/organizations/{ORG}/settings/packages");
    let security = format!("/organizations/{ORG}/settings/security");
    let hooks = format!("/organizations/{ORG}/settings/hooks");

    let mut owner = WebClient::signed_in(&server, "owner").await;
    let page = owner.get(&packages).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.has(r#"name="default_visibility" value="private" checked"#));

    let mut member = WebClient::signed_in(&server, "member").await;
    let new_hook = format!("{hooks}/new");
    for path in [&packages, &security, &hooks, &new_hook] {
        let page = member.get(path).await;
        assert_eq!(page.status, 404, "{path}");
        assert!(page.has("Page not found"));
    }
    // The member's own (valid) token does not make the action theirs.
    member.get("/settings/tokens").await;
    let refused = member
        .post(&packages, &[("default_visibility", "public")])
        .await;
    assert_eq!(refused.status, 404);
    let refused = member.post(&security, &[("requires_sso", "on")]).await;
    assert_eq!(refused.status, 404);
    // A forged post of the owner's is refused too.
    let forged = owner
        .post_raw(&packages, &[("default_visibility", "public")])
        .await;
    assert_eq!(forged.status, 403);
    let page = owner.get(&packages).await;
    assert!(
        page.has(r#"name="default_visibility" value="private" checked"#),
        "nothing changed"
    );

    let saved = owner
        .post(
            &packages,
            &[
                ("default_visibility", "public"),
                ("member_visibilities", "public"),
                ("member_visibilities", "private"),
            ],
        )
        .await;
    assert_eq!(saved.status, 303);
    let page = owner.get(&packages).await;
    assert!(page.has("Package settings saved."));
    assert!(page.has(r#"name="default_visibility" value="public" checked"#));
    assert!(page.has(r#"name="member_visibilities" value="private" checked"#));
    assert!(!page.has(r#"name="member_visibilities" value="internal" checked"#));
    // A package created now starts public: a visitor sees it.
    crate::common::push_image(&server, &format!("{ORG}/fresh-app"), "v1", b"fresh layer").await;
    let mut visitor = WebClient::anonymous(&server);
    assert!(
        visitor
            .get(&format!("/orgs/{ORG}/packages"))
            .await
            .has("fresh-app")
    );

    assert!(!owner.get(&security).await.has("checked"));
    let sso = owner.post(&security, &[("requires_sso", "on")]).await;
    assert_eq!(sso.status, 303);
    assert!(owner.get(&security).await.has(r#"value="on" checked"#));
    assert_eq!(owner.get(&hooks).await.status, 200);
    assert_eq!(owner.get(&new_hook).await.status, 200);
    // The member cannot add a hook to the organization either.
    member.get("/settings/tokens").await;
    let refused = member
        .post(
            &hooks,
            &[
                ("url", "https://hooks.example/x"),
                ("events", "package"),
                ("active", "on"),
            ],
        )
        .await;
    assert_eq!(refused.status, 404);
}

#[tokio::test]
async fn web_settings_a_webhook_from_the_form_gets_a_ping_logged_and_redelivered() {
    let server = Server::start_with(&[LOOPBACK]);
    let world = World::new(&server);
    world.user("alice").await;
    let receiver = Receiver::start().await;
    let mut web = WebClient::signed_in(&server, "alice").await;
    assert_eq!(web.get("/settings/hooks").await.status, 200);
    assert_eq!(web.get("/settings/hooks/new").await.status, 200);

    let forged = web
        .post_raw(
            "/settings/hooks",
            &[
                ("url", &receiver.url()),
                ("events", "package"),
                ("active", "on"),
            ],
        )
        .await;
    assert_eq!(forged.status, 403);

    let created = web
        .post(
            "/settings/hooks",
            &[
                ("url", &receiver.url()),
                ("content_type", "json"),
                ("secret", "s3cret"),
                ("events", "package"),
                ("events", "registry_package"),
                ("active", "on"),
            ],
        )
        .await;
    assert_eq!(created.status, 303, "{}", created.body);
    let hook_page = created.location().expect("to the hook's page").to_owned();
    assert!(hook_page.starts_with("/settings/hooks/"), "{hook_page}");

    let pings = receiver
        .wait_for("the ping", |got| got.iter().any(|r| r.event() == "ping"))
        .await;
    assert_eq!(
        pings.len(),
        1,
        "one hook, one ping: the forged form made none"
    );
    let guid = pings[0].header("x-github-delivery").to_owned();
    assert!(
        pings[0]
            .header("x-hub-signature-256")
            .starts_with("sha256=")
    );

    let delivered = r#"data-delivery-state="delivered""#;
    let page = poll(&mut web, &hook_page, |page| page.has(delivered)).await;
    assert!(page.has(&guid), "the log names the delivery");
    assert!(
        page.has("X-GitHub-Event") || page.has("x-github-event"),
        "request headers"
    );
    assert!(page.has("zen"), "the payload");
    assert!(page.has(">200<"), "the response status");
    let deliveries = ids(&page, "/deliveries/", "/redeliver");
    assert_eq!(deliveries.len(), 1, "{}", page.body);
    let redeliver = format!("{hook_page}/deliveries/{}/redeliver", deliveries[0]);

    let forged = web.post_raw(&redeliver, &[]).await;
    assert_eq!(forged.status, 403);
    let again = web.post(&redeliver, &[]).await;
    assert_eq!(again.status, 303);
    let pings = receiver
        .wait_for("the redelivery", |got| {
            got.iter().filter(|r| r.event() == "ping").count() == 2
        })
        .await;
    assert_eq!(
        pings[1].header("x-github-delivery"),
        guid,
        "the same delivery again"
    );
    let page = poll(&mut web, &hook_page, |page| {
        page.body.matches(delivered).count() == 2
    })
    .await;
    assert!(page.has("redelivery"));

    // Edited through the form: inactive, and the list says so.
    let edited = web
        .post(
            &hook_page,
            &[
                ("url", &receiver.url()),
                ("content_type", "json"),
                ("events", "*"),
            ],
        )
        .await;
    assert_eq!(edited.status, 303);
    let list = web.get("/settings/hooks").await;
    assert!(
        list.has("inactive") && list.has("everything"),
        "{}",
        list.body
    );

    // Another user sees no such hook.
    world.user("bob").await;
    let mut bob = WebClient::signed_in(&server, "bob").await;
    assert_eq!(bob.get(&hook_page).await.status, 404);

    let deleted = web.post(&format!("{hook_page}/delete"), &[]).await;
    assert_eq!(deleted.status, 303);
    assert_eq!(web.get(&hook_page).await.status, 404);
}

/// Reads `path` until `done` holds (at most 30 s).
async fn poll(web: &mut WebClient, path: &str, done: impl Fn(&Page) -> bool) -> Page {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let page = web.get(path).await;
        assert_eq!(page.status, 200, "{}", page.body);
        if done(&page) {
            return page;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting on {path}: {}",
            page.body
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}
