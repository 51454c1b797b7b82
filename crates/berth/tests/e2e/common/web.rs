//! A web UI client over HTTP, as a browser without JavaScript is: it keeps cookies, follows no
//! redirects (so tests see each 303 and its flash), and posts forms with the CSRF token the
//! last page it read carried. Browser tests (Chromium) are `web_browser.rs`.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::process::{Command, Stdio};

use super::Server;

/// The password [`WebClient::signed_in`] gives users.
pub const PASSWORD: &str = "correct-horse-battery";

/// One answer: status, headers and the body as text.
#[derive(Debug)]
pub struct Page {
    /// Status code.
    pub status: u16,
    /// Headers.
    pub headers: reqwest::header::HeaderMap,
    /// The body.
    pub body: String,
}

impl Page {
    /// The CSRF token of the page's forms (`authenticity_token`), if it has a form.
    pub fn csrf(&self) -> Option<String> {
        let at = self.body.find("name=\"authenticity_token\" value=\"")?;
        let rest = &self.body[at + "name=\"authenticity_token\" value=\"".len()..];
        Some(rest[..rest.find('"')?].to_owned())
    }

    /// The `Location` of a redirect.
    pub fn location(&self) -> Option<&str> {
        self.headers
            .get(reqwest::header::LOCATION)
            .and_then(|v| v.to_str().ok())
    }

    /// Whether the body contains `text`.
    pub fn has(&self, text: &str) -> bool {
        self.body.contains(text)
    }
}

/// A browser-like client of one server.
pub struct WebClient {
    http: reqwest::Client,
    base: String,
    cookies: BTreeMap<String, String>,
    /// The CSRF token of the last page read that had a form.
    pub csrf: Option<String>,
}

/// Sets `login`'s web password to [`PASSWORD`] (`berth admin set-password`).
pub fn set_password(server: &Server, login: &str) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_berth"))
        .args(["admin", "--data-dir"])
        .arg(server.data_dir())
        .args(["set-password", login])
        .env("BERTH_LOG", "warn")
        .envs(server.env_vars())
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run berth admin set-password");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(format!("{PASSWORD}\n").as_bytes())
        .expect("write the password");
    let output = child.wait_with_output().expect("berth admin set-password");
    assert!(
        output.status.success(),
        "set-password {login}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

impl WebClient {
    /// A visitor who has not signed in.
    pub fn anonymous(server: &Server) -> WebClient {
        WebClient {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("client"),
            base: server.base.clone(),
            cookies: BTreeMap::new(),
            csrf: None,
        }
    }

    /// `login` (an existing user), given a password and signed in through the form.
    pub async fn signed_in(server: &Server, login: &str) -> WebClient {
        set_password(server, login);
        let mut client = WebClient::anonymous(server);
        let page = client.sign_in(login, PASSWORD).await;
        assert_eq!(page.status, 303, "signing in {login}: {}", page.body);
        client
    }

    /// Opens the sign-in form and posts it with `login` and `password`: the form's answer.
    pub async fn sign_in(&mut self, login: &str, password: &str) -> Page {
        let form = self.get("/login").await;
        assert_eq!(form.status, 200, "the sign-in form: {}", form.body);
        self.post("/login", &[("login", login), ("password", password)])
            .await
    }

    /// `GET path` with the cookies held; keeps the page's CSRF token.
    pub async fn get(&mut self, path: &str) -> Page {
        let request = self.http.get(format!("{}{path}", self.base));
        self.send(request).await
    }

    /// `POST path` of a form with `fields` and the CSRF token of the last page read.
    pub async fn post(&mut self, path: &str, fields: &[(&str, &str)]) -> Page {
        let token = self.csrf.clone().unwrap_or_default();
        let mut all: Vec<(&str, &str)> = fields.to_vec();
        all.push(("authenticity_token", &token));
        self.post_raw(path, &all).await
    }

    /// `POST path` of a form with exactly `fields` (no token added: forged posts).
    pub async fn post_raw(&mut self, path: &str, fields: &[(&str, &str)]) -> Page {
        let body = fields
            .iter()
            .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
            .collect::<Vec<_>>()
            .join("&");
        let request = self
            .http
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body);
        self.send(request).await
    }

    /// The value of cookie `name` held now.
    pub fn cookie(&self, name: &str) -> Option<&str> {
        self.cookies.get(name).map(String::as_str)
    }

    async fn send(&mut self, request: reqwest::RequestBuilder) -> Page {
        let cookie = self
            .cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ");
        let request = if cookie.is_empty() {
            request
        } else {
            request.header("cookie", cookie)
        };
        let response = request.send().await.expect("request");
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        for set in headers.get_all(reqwest::header::SET_COOKIE) {
            let set = set.to_str().expect("ascii cookie");
            let pair = set.split(';').next().unwrap_or("");
            if let Some((name, value)) = pair.split_once('=') {
                let cleared = set.contains("Max-Age=0") || value.is_empty();
                if cleared {
                    self.cookies.remove(name);
                } else {
                    self.cookies.insert(name.to_owned(), value.to_owned());
                }
            }
        }
        let body = response.text().await.expect("body");
        let page = Page {
            status,
            headers,
            body,
        };
        if let Some(token) = page.csrf() {
            self.csrf = Some(token);
        }
        page
    }
}

fn encode(text: &str) -> String {
    percent_encoding::utf8_percent_encode(text, percent_encoding::NON_ALPHANUMERIC).to_string()
}
