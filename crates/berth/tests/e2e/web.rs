//! The web UI over HTTP: sign-in, sessions, CSRF, the Packages tab, and that a page shows a
//! viewer exactly what the API lets them see.

use crate::common::web::{PASSWORD, WebClient, set_password};
use crate::common::world::World;
use crate::common::{ADMIN, ORG, Server};

#[tokio::test]
async fn a_user_signs_in_with_their_password_and_out_again() {
    let server = Server::start();
    let world = World::new(&server);
    world.user("alice").await;
    set_password(&server, "alice");
    let mut web = WebClient::anonymous(&server);

    let wrong = web.sign_in("alice", "not-the-password").await;
    assert_eq!(wrong.status, 401);
    assert!(wrong.has("Incorrect username or password."));
    assert!(web.cookie("berth_session").is_none());
    let unknown = web.sign_in("nobody", PASSWORD).await;
    assert_eq!(unknown.status, 401);
    assert!(unknown.has("Incorrect username or password."));

    let signed = web.sign_in("alice", PASSWORD).await;
    assert_eq!(signed.status, 303);
    let cookie = signed
        .headers
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|c| c.starts_with("berth_session="))
        .expect("a session cookie");
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"),
        "{cookie}"
    );
    let tab = web.get("/alice?tab=packages").await;
    assert_eq!(tab.status, 200);
    assert!(tab.has("Sign out"));

    // The session's secret is no token: the registry and the API refuse it.
    let secret = web.cookie("berth_session").unwrap().to_owned();
    let api = reqwest::Client::new()
        .get(server.url("/api/v3/user"))
        .bearer_auth(&secret)
        .send()
        .await
        .unwrap();
    assert_eq!(api.status(), 401);
    let registry = crate::common::login("alice", &secret)
        .get(server.url("/v2/"))
        .send()
        .await
        .unwrap();
    assert_eq!(registry.status(), 401);

    let out = web.post("/logout", &[]).await;
    assert_eq!(out.status, 303);
    assert!(web.cookie("berth_session").is_none());
    // The old cookie no longer works, even if kept.
    let mut replay = WebClient::anonymous(&server);
    replay.get("/login").await;
    let page = {
        let http = reqwest::Client::new();
        http.get(server.url("/alice?tab=packages"))
            .header("cookie", format!("berth_session={secret}"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    };
    assert!(page.contains("Sign in") && !page.contains("Sign out"));
}

#[tokio::test]
async fn tokens_are_not_passwords_and_forms_need_their_csrf_token() {
    let server = Server::start();
    let world = World::new(&server);
    let token = world.user("alice").scopes("read:packages").await;
    set_password(&server, "alice");
    let mut web = WebClient::anonymous(&server);
    let refused = web.sign_in("alice", &token).await;
    assert_eq!(refused.status, 401, "a token is never a password here");

    // A forged sign-in (no token from the form) is refused before any password check.
    let mut forger = WebClient::anonymous(&server);
    let forged = forger
        .post_raw("/login", &[("login", "alice"), ("password", PASSWORD)])
        .await;
    assert_eq!(forged.status, 403);
    assert!(forger.cookie("berth_session").is_none());

    // A forged sign-out of a signed-in user leaves them signed in.
    let mut alice = WebClient::signed_in(&server, "alice").await;
    let forged = alice.post_raw("/logout", &[]).await;
    assert_eq!(forged.status, 403);
    assert_eq!(alice.get("/alice?tab=packages").await.status, 200);
    assert!(alice.get("/alice?tab=packages").await.has("Sign out"));
}

#[tokio::test]
async fn failed_sign_ins_are_limited_per_address() {
    let server = Server::start_with(&[("BERTH_AUTH_FAILURES_PER_MINUTE", "3")]);
    let world = World::new(&server);
    world.user("alice").await;
    set_password(&server, "alice");
    let mut web = WebClient::anonymous(&server);
    let mut statuses = Vec::new();
    for _ in 0..5 {
        statuses.push(web.sign_in("alice", "wrong-password").await.status);
    }
    assert_eq!(statuses.last(), Some(&429), "{statuses:?}");
    // Past the limit even the right password waits.
    let right = web.sign_in("alice", PASSWORD).await;
    assert_eq!(right.status, 429);
}

#[tokio::test]
async fn the_packages_tab_lists_what_the_viewer_may_see() {
    let server = Server::start();
    let world = World::new(&server);
    world.user("alice").member("member").await;
    crate::common::push_image(&server, &format!("{ORG}/public-app"), "v1", b"public layer").await;
    crate::common::push_image(&server, &format!("{ORG}/secret-app"), "v1", b"secret layer").await;
    world
        .visibility(&format!("{ORG}/public-app"), "public")
        .await;

    let mut visitor = WebClient::anonymous(&server);
    let page = visitor.get(&format!("/orgs/{ORG}/packages")).await;
    assert_eq!(page.status, 200);
    assert!(page.has("public-app"));
    assert!(
        !page.has("secret-app"),
        "a private package is invisible to visitors"
    );

    for _ in 0..2 {
        let pulled = crate::common::client()
            .get(server.url(&format!("/v2/{ORG}/public-app/manifests/v1")))
            .header("accept", "application/vnd.oci.image.manifest.v1+json")
            .send()
            .await
            .unwrap();
        assert_eq!(pulled.status(), 200);
    }
    let mut admin = WebClient::signed_in(&server, ADMIN).await;
    let page = admin.get(&format!("/orgs/{ORG}/packages")).await;
    assert!(page.has("public-app") && page.has("secret-app"));
    assert!(
        page.has("1 versions · 2 downloads"),
        "each package's downloads, counted: {}",
        page.body
    );
    let filtered = admin
        .get(&format!("/orgs/{ORG}/packages?visibility=private"))
        .await;
    assert!(filtered.has("secret-app") && !filtered.has("public-app"));
    let searched = admin.get(&format!("/orgs/{ORG}/packages?q=secret")).await;
    assert!(searched.has("secret-app") && !searched.has("public-app"));

    // An account nobody has and one that exists answer the same 404 page when invisible.
    let missing = visitor.get("/no-such-account-at-all").await;
    assert_eq!(missing.status, 404);
    assert!(missing.has("Page not found"));
}
