//! The authorization matrix over real HTTP: principal × package (visibility, role,
//! inheritance) × action → status, every cell asserted against the running server.
//!
//! The expectations are a table written by hand from the rules of the permission function
//! (`berth_core::access::decide`), never computed by calling it, so the test fails when the
//! function is wrong. Every cell where the principal may not read the package is also sent for
//! a package that does not exist: the two answers must be identical, byte for byte, once the
//! name is substituted, and the catalog must not list the package. A run collects every wrong
//! cell and prints the whole observed matrix before failing.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use crate::common::world::{FineGrained, World};
use crate::common::{Server, anonymous_client, digest, login, push_blob, put_manifest};
use reqwest::{Client, Response};
use serde_json::{Value, json};

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// The name compared with every package a principal may not read.
const MISSING: &str = "acme/does-not-exist";
/// The public package of every fixture: mounts into other packages come from it.
const PUBLIC: &str = "acme/pub";
/// Every package scope a user's own tokens are carved from.
const ALL_PACKAGE_SCOPES: &[&str] = &["read:packages", "write:packages", "delete:packages", "repo"];
/// Authentication failures (expired and revoked tokens) would otherwise hit the per-address
/// limit of 30 a minute and turn later cells into 429s.
const NO_FAILURE_LIMIT: (&str, &str) = ("BERTH_AUTH_FAILURES_PER_MINUTE", "1000000");

// --- the expectations ---------------------------------------------------------------------

/// The main fixture, all in organization `acme` (owner: site admin `admin`, and `olivia`;
/// members `mark` and `tina`; `tina` is in team `devs`; `oscar` and `nora` are not members):
///
/// | package          | visibility | access                                                   |
/// |------------------|------------|----------------------------------------------------------|
/// | `acme/priv`      | private    | team `devs`: write; outside collaborator `oscar`: read    |
/// | `acme/int`       | internal   | team `devs`: admin                                        |
/// | `acme/pub`       | public     | none                                                      |
/// | `acme/linked`    | private    | linked to private repo `app`, inherits its access         |
/// | `acme/noinherit` | private    | linked to `app`, does not inherit; `mark`: read           |
/// | `acme/shared`    | private    | Actions access for repository `other`: read               |
///
/// Repository `app` (private): `oscar` is a collaborator with push, team `devs` has pull.
/// Repository `other` (private): nothing.
const PACKAGES: &[&str] = &[
    "acme/priv",
    "acme/int",
    "acme/pub",
    "acme/linked",
    "acme/noinherit",
    "acme/shared",
];

/// One row a principal, one column a package: three letters for pull, push, delete.
/// `Y` allowed, `N` 404 NAME_UNKNOWN, `D` 403 DENIED, `U` 401 UNAUTHORIZED with a challenge.
/// Derived from them: list tags and referrers answer as pull; a mount into the package (from
/// `acme/pub`) answers as push; a mount from the package into a package the principal may
/// push to is 201 when pull is `Y` and 202 (a plain upload, as if the blob were absent)
/// otherwise; the catalog lists exactly the packages pull allows.
///
/// `create`: a push to a new name of the principal's own (`acme/new-<principal>`, selected
/// by the fine-grained write token); `missing`: a push to [`MISSING`], which no token selects.
///
/// Principals (classic tokens hold read, write, delete:packages and repo unless named `pat-`):
/// `owner` is `olivia`, org owner; `member` is `mark`, member without roles but read on
/// `noinherit`; `team-member` is `tina`; `collaborator` is `oscar`, outside collaborator
/// (read on `priv`, push on repo `app`), `collab-no-repo` the same without the `repo` scope;
/// `outsider` is `nora`, no relation at all; `pat-*` are `olivia`'s tokens with only the scopes
/// named; `fine-grained-write` is `tina`'s (packages `priv` and `new-fine-grained-write`,
/// repository `app`, packages: write); `fine-grained-read` is `olivia`'s (package `shared`,
/// packages: read); `app-write` an installation token of an app installed on `acme` for all
/// repositories with packages: write, `app-read` one narrowed to repository `app` and read;
/// `job-linked` a job token of `app`, `job-other` of `other` (both packages: write);
/// `job-expired`, `pat-expired` and `pat-revoked` are dead tokens.
///
/// Push to a package the principal may not read: 404 for a principal that may create packages
/// in `acme` (it cannot be told the name is free, so it is told nothing), otherwise the very
/// refusal a push to a missing name gets (403 saying why it may not create packages).
///
/// A principal mounts into its new package when it may create one, else into the package
/// [`MAIN_TARGETS`] names, else into `acme/pub`, where the refusal of the push answers first.
const MAIN_TABLE: &str = "
# principal           priv int pub linked noinherit shared | create missing
anonymous             UUU  UUU YUU UUU    UUU       UUU    | U      U
site-admin            YYY  YYY YYY YYY    YYY       YYY    | Y      Y
owner                 YYY  YYY YYY YYY    YYY       YYY    | Y      Y
member                NNN  YDD YDD NNN    YDD       NNN    | Y      Y
team-member           YYD  YYY YDD YDD    NNN       NNN    | Y      Y
collaborator          YDD  YDD YDD YYD    NDN       NDN    | D      D
collab-no-repo        YDD  YDD YDD NDN    NDN       NDN    | D      D
outsider              NDN  YDD YDD NDN    NDN       NDN    | D      D
pat-read              YDD  YDD YDD YDD    YDD       YDD    | D      D
pat-write             YYD  YYD YYD YYD    YYD       YYD    | Y      Y
# delete:packages deletes nothing without read:packages (GitHub: a token needs both); only
# public packages are read without read:packages, internal ones are not
pat-delete            NDN  NDN YDD NDN    NDN       NDN    | D      D
pat-read-delete       YDY  YDY YDY YDY    YDY       YDY    | D      D
pat-repo              NDN  NDN YDD NDN    NDN       NDN    | D      D
pat-admin-org         NDN  NDN YDD NDN    NDN       NDN    | D      D
# fine-grained tokens read what they select, and public packages
fine-grained-write    YYD  NDN YDD YDD    NDN       NDN    | Y      D
fine-grained-read     NDN  NDN YDD NDN    NDN       YDD    | D      D
# app tokens reach what is linked to their repositories, inheriting or not; job tokens read
# it, and write only what inherits their repository's access or grants it write
app-read              NDN  NDN YDD YDD    YDD       NDN    | D      D
app-write             YYD  YYD YYD YYD    YYD       YYD    | Y      Y
job-linked            NNN  NNN YDD YYD    YDD       NNN    | Y      Y
job-other             NNN  NNN YDD NNN    NNN       YDD    | Y      Y
job-expired           UUU  UUU UUU UUU    UUU       UUU    | U      U
pat-expired           UUU  UUU UUU UUU    UUU       UUU    | U      U
pat-revoked           UUU  UUU UUU UUU    UUU       UUU    | U      U
";

/// Where principals that may not create a package mount into instead of their own new one.
const MAIN_TARGETS: &[(&str, &str)] = &[("collaborator", "acme/linked")];

/// The SSO fixture: organization `acme` requires SSO-authorized classic tokens. `acme/priv`
/// is private with `mark` (member): read; `acme/int` internal; `acme/pub` public.
const SSO_PACKAGES: &[&str] = &["acme/priv", "acme/int", "acme/pub"];

/// As [`MAIN_TABLE`]. `owner-*` are `olivia`'s tokens (org owner), `member-*` `mark`'s, with
/// and without SSO authorization for `acme`; `fine-grained` is `mark`'s (package `priv`,
/// read; SSO authorization is for classic tokens); `site-admin`'s token is not authorized,
/// and a site administrator needs none. A classic token without SSO authorization reaches
/// nothing of the organization and learns nothing of it, except that it pulls public
/// packages as anyone may (pushing or deleting them is refused, naming SSO).
/// `app-expired` is an installation token past its lifetime.
const SSO_TABLE: &str = "
# principal           priv int pub | create missing
anonymous             UUU  UUU YUU | U      U
site-admin            YYY  YYY YYY | Y      Y
owner-sso             YYY  YYY YYY | Y      Y
owner-no-sso          NNN  NNN YDD | N      N
member-sso            YDD  YDD YDD | Y      Y
member-no-sso         NNN  NNN YDD | N      N
fine-grained          YDD  NDN YDD | D      D
app-expired           UUU  UUU UUU | U      U
";

/// A row of a table.
struct Row {
    who: String,
    /// Per package: pull, push, delete.
    cells: Vec<[char; 3]>,
    create: char,
    missing: char,
}

impl Row {
    /// No credentials, or dead ones: the catalog answers 401 too.
    fn unauthenticated(&self) -> bool {
        self.missing == 'U'
    }
}

fn parse_table(table: &str, packages: usize) -> Vec<Row> {
    let letter = |text: &str| -> char {
        assert!(
            text.len() == 1 && "YNDU".contains(text),
            "bad letter `{text}`"
        );
        text.chars().next().expect("one letter")
    };
    table
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(|line| {
            let (left, right) = line.split_once('|').expect("a `|` in every row");
            let mut words = left.split_whitespace();
            let who = words.next().expect("principal").to_owned();
            let cells: Vec<[char; 3]> = words
                .map(|cell| {
                    let chars: Vec<char> = cell.chars().collect();
                    assert!(
                        chars.len() == 3 && chars.iter().all(|c| "YNDU".contains(*c)),
                        "bad cell `{cell}` of {who}"
                    );
                    [chars[0], chars[1], chars[2]]
                })
                .collect();
            assert_eq!(cells.len(), packages, "columns of {who}");
            let right: Vec<&str> = right.split_whitespace().collect();
            assert_eq!(right.len(), 2, "create and missing of {who}");
            Row {
                who,
                cells,
                create: letter(right[0]),
                missing: letter(right[1]),
            }
        })
        .collect()
}

// --- the actions ----------------------------------------------------------------------------

/// What a cell does over HTTP.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Act {
    /// `GET /v2/<name>/manifests/v1`.
    Pull,
    /// `GET /v2/<name>/tags/list`.
    Tags,
    /// `GET /v2/<name>/referrers/<digest of v1>`.
    Referrers,
    /// `PUT /v2/<name>/manifests/v1` with the bytes already there (changes nothing).
    Push,
    /// `POST /v2/<name>/blobs/uploads/?mount=<layer of acme/pub>&from=acme/pub`.
    Mount,
    /// `DELETE /v2/<name>/manifests/<digest of a throwaway manifest>` (restored after).
    Delete,
    /// `POST /v2/<target>/blobs/uploads/?mount=<layer only name holds>&from=<name>`.
    MountFrom,
}

const ACTS: [Act; 7] = [
    Act::Pull,
    Act::Tags,
    Act::Referrers,
    Act::Push,
    Act::Mount,
    Act::Delete,
    Act::MountFrom,
];

impl Act {
    fn label(self) -> &'static str {
        match self {
            Act::Pull => "pull",
            Act::Tags => "list tags",
            Act::Referrers => "referrers",
            Act::Push => "push",
            Act::Mount => "mount into",
            Act::Delete => "delete",
            Act::MountFrom => "mount from",
        }
    }

    /// The status of success.
    fn success(self) -> u16 {
        match self {
            Act::Pull | Act::Tags | Act::Referrers => 200,
            Act::Push | Act::Mount | Act::MountFrom => 201,
            Act::Delete => 202,
        }
    }

    /// Whether sending it for [`MISSING`] could create that package.
    fn pushes(self) -> bool {
        matches!(self, Act::Push | Act::Mount)
    }
}

/// What a response was, for comparing and reporting.
#[derive(Clone)]
struct Seen {
    status: u16,
    code: String,
    message: String,
    challenge: String,
    content_type: String,
    header_names: Vec<String>,
    body: String,
}

impl Seen {
    async fn of(response: Response) -> Seen {
        let status = response.status().as_u16();
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_owned()
        };
        let challenge = header("www-authenticate");
        let content_type = header("content-type");
        let mut header_names: Vec<String> = response
            .headers()
            .keys()
            .map(|k| k.as_str().to_owned())
            .filter(|k| k != "date")
            .collect();
        header_names.sort();
        let body = response.text().await.unwrap_or_default();
        let error = serde_json::from_str::<Value>(&body)
            .map(|v| v["errors"][0].clone())
            .unwrap_or(Value::Null);
        let text = |field: &str| error[field].as_str().unwrap_or("").to_owned();
        Seen {
            status,
            code: text("code"),
            message: text("message"),
            challenge,
            content_type,
            header_names,
            body,
        }
    }

    /// The table's letter for this answer to a request whose success is `success`.
    fn letter(&self, success: u16) -> char {
        match (self.status, self.code.as_str()) {
            (status, _) if status == success => 'Y',
            (404, "NAME_UNKNOWN") => 'N',
            (403, "DENIED") => 'D',
            (401, "UNAUTHORIZED") if self.challenge.starts_with("Bearer realm=") => 'U',
            _ => '?',
        }
    }

    /// A mount from a package: `M` mounted (201), `S` a plain upload session (202).
    fn mount_letter(&self) -> char {
        match self.status {
            201 => 'M',
            202 => 'S',
            _ => self.letter(0),
        }
    }

    /// Everything a client sees, with `name` (if any) replaced by a placeholder, and numbers
    /// (which say how long ago a token expired) by `#`.
    fn shape(&self, name: Option<&str>) -> String {
        let hide = |text: &str| {
            let mut hidden = String::new();
            let named = name.map_or_else(|| text.to_owned(), |n| text.replace(n, "<name>"));
            for c in named.chars() {
                if !c.is_ascii_digit() {
                    hidden.push(c);
                } else if !hidden.ends_with('#') {
                    hidden.push('#');
                }
            }
            hidden
        };
        format!(
            "{} | headers {} | content-type {} | www-authenticate {} | body {}",
            self.status,
            self.header_names.join(","),
            self.content_type,
            hide(&self.challenge),
            hide(&self.body)
        )
    }

    /// The response without the pull scope on `from` a mount's challenge adds: it echoes the
    /// request's `from` parameter whatever the package is, so it tells nothing.
    fn mounting_from(&self, from: &str) -> Seen {
        let mut seen = self.clone();
        seen.challenge = seen
            .challenge
            .replace(&format!(" repository:{from}:pull"), "");
        seen
    }

    fn describe(&self) -> String {
        if self.code.is_empty() {
            format!("{}", self.status)
        } else {
            format!("{} {} ({})", self.status, self.code, self.message)
        }
    }
}

/// One fixture package's content: a manifest pulled and pushed again, a throwaway manifest
/// deleted and restored, and a layer no other package holds (mounted from it).
struct Image {
    manifest: Vec<u8>,
    digest: String,
    throwaway: Vec<u8>,
    throwaway_digest: String,
    layer: String,
}

/// Publishes package `name` as the site administrator.
async fn publish(server: &Server, name: &str) -> Image {
    let layer = format!("the layer only {name} holds").into_bytes();
    let config = format!(
        r#"{{"architecture":"amd64","os":"linux","rootfs":{{"type":"layers","diff_ids":["{}"]}}}}"#,
        digest(&layer)
    );
    let config_digest = push_blob(server, name, config.clone()).await;
    let layer_digest = push_blob(server, name, layer.clone()).await;
    let manifest = |purpose: &str| {
        serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config.len()},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer_digest, "size": layer.len()}],
            "annotations": {"purpose": purpose},
        }))
        .expect("json")
    };
    let pulled = manifest("pulled, and pushed again unchanged");
    let throwaway = manifest("deleted, and restored");
    put_manifest(server, name, "v1", OCI_MANIFEST, &pulled).await;
    put_manifest(server, name, "throwaway", OCI_MANIFEST, &throwaway).await;
    Image {
        digest: digest(&pulled),
        throwaway_digest: digest(&throwaway),
        manifest: pulled,
        throwaway,
        layer: layer_digest,
    }
}

// --- the run --------------------------------------------------------------------------------

/// A fixture and its principals, ready to be walked.
struct Matrix<'a> {
    server: &'a Server,
    packages: &'a [&'a str],
    images: BTreeMap<String, Image>,
    rows: Vec<Row>,
    clients: BTreeMap<String, Client>,
    targets: &'a [(&'a str, &'a str)],
}

/// What a walk found.
#[derive(Default)]
struct Findings {
    /// Cells asserted (each action on each package, each package's catalog listing, each
    /// creation).
    cells: usize,
    /// Refusals compared with the same request for [`MISSING`].
    leak_checks: usize,
    wrong: Vec<String>,
    /// Observed letters by (principal, package): the seven actions then the catalog.
    grid: BTreeMap<(String, String), [char; 8]>,
    /// Observed creation letter by principal.
    created: BTreeMap<String, char>,
}

impl Findings {
    fn check(&mut self, where_: String, expected: char, observed: char, seen: &Seen) -> bool {
        self.cells += 1;
        if expected == observed {
            return true;
        }
        self.wrong.push(format!(
            "{where_}: expected {}, got {}",
            meaning(expected),
            seen.describe()
        ));
        false
    }

    /// The observed matrix; a wrong cell is shown in lower case.
    fn render(&self, matrix: &Matrix<'_>) -> String {
        let mut out = String::from(
            "per package: pull, tags, referrers, push, mount into, delete, mount from, catalog \
             (Y allowed / listed, N 404, D 403, U 401, M mounted, S plain upload, - not listed; \
             lower case: wrong)\n",
        );
        let _ = write!(out, "{:<20}", "");
        for package in matrix.packages {
            let _ = write!(out, " {:<9}", package.trim_start_matches("acme/"));
        }
        out.push_str(" create\n");
        for row in &matrix.rows {
            let _ = write!(out, "{:<20}", row.who);
            for package in matrix.packages {
                let key = (row.who.clone(), (*package).to_owned());
                let letters: String = self
                    .grid
                    .get(&key)
                    .map_or("????????".into(), |l| l.iter().collect());
                let _ = write!(out, " {letters:<9}");
            }
            let created = self.created.get(&row.who).copied().unwrap_or('?');
            let _ = writeln!(out, " {created}");
        }
        out
    }
}

fn meaning(letter: char) -> &'static str {
    match letter {
        'Y' => "success",
        'N' => "404 NAME_UNKNOWN",
        'D' => "403 DENIED",
        'U' => "401 UNAUTHORIZED with a challenge",
        'M' => "201 (mounted)",
        'S' => "202 (a plain upload session)",
        '-' => "not listed",
        _ => "?",
    }
}

fn mark(letter: char, right: bool) -> char {
    if right {
        letter
    } else {
        letter.to_ascii_lowercase()
    }
}

impl Matrix<'_> {
    fn client(&self, who: &str) -> &Client {
        self.clients
            .get(who)
            .unwrap_or_else(|| panic!("no client for {who}"))
    }

    fn column(&self, package: &str) -> usize {
        self.packages
            .iter()
            .position(|p| *p == package)
            .unwrap_or_else(|| panic!("{package} is not a column"))
    }

    /// The package `row` mounts into, and the letter a push there gets.
    fn target(&self, row: &Row) -> (String, char) {
        if row.create == 'Y' {
            return (format!("acme/new-{}", row.who), 'Y');
        }
        let target = self
            .targets
            .iter()
            .find(|(who, _)| *who == row.who)
            .map_or(PUBLIC, |(_, target)| *target);
        (target.to_owned(), row.cells[self.column(target)][1])
    }

    async fn send(&self, http: &Client, act: Act, name: &str, image: &Image, target: &str) -> Seen {
        let url = |path: String| self.server.url(&path);
        let public_layer = &self.images[PUBLIC].layer;
        let request = match act {
            Act::Pull => http
                .get(url(format!("/v2/{name}/manifests/v1")))
                .header("accept", OCI_MANIFEST),
            Act::Tags => http.get(url(format!("/v2/{name}/tags/list"))),
            Act::Referrers => http.get(url(format!("/v2/{name}/referrers/{}", image.digest))),
            Act::Push => http
                .put(url(format!("/v2/{name}/manifests/v1")))
                .header("content-type", OCI_MANIFEST)
                .body(image.manifest.clone()),
            Act::Mount => http.post(url(format!(
                "/v2/{name}/blobs/uploads/?mount={public_layer}&from={PUBLIC}"
            ))),
            Act::Delete => http.delete(url(format!(
                "/v2/{name}/manifests/{}",
                image.throwaway_digest
            ))),
            Act::MountFrom => http.post(url(format!(
                "/v2/{target}/blobs/uploads/?mount={}&from={name}",
                image.layer
            ))),
        };
        Seen::of(request.send().await.expect("registry request")).await
    }

    /// Walks every cell.
    async fn run(&self) -> Findings {
        let mut found = Findings::default();
        for row in &self.rows {
            self.catalog(row, &mut found).await;
        }
        for row in &self.rows {
            for package in self.packages {
                for act in ACTS.into_iter().filter(|a| *a != Act::MountFrom) {
                    self.cell(row, package, act, &mut found).await;
                }
            }
        }
        // New packages next: the principals that create one mount into it.
        for row in &self.rows {
            let http = self.client(&row.who);
            let name = format!("acme/new-{}", row.who);
            let response = http
                .post(self.server.url(&format!("/v2/{name}/blobs/uploads/")))
                .send()
                .await
                .expect("create");
            let seen = Seen::of(response).await;
            let observed = seen.letter(202);
            let right = found.check(
                format!("{} × {name} (new) × push", row.who),
                row.create,
                observed,
                &seen,
            );
            found.created.insert(row.who.clone(), mark(observed, right));
        }
        for row in &self.rows {
            for package in self.packages {
                self.cell(row, package, Act::MountFrom, &mut found).await;
            }
        }
        found
    }

    /// `GET /v2/_catalog`: exactly the packages the principal may pull.
    async fn catalog(&self, row: &Row, found: &mut Findings) {
        let response = self
            .client(&row.who)
            .get(self.server.url("/v2/_catalog"))
            .send()
            .await
            .expect("catalog");
        let seen = Seen::of(response).await;
        let listed: Vec<String> = serde_json::from_str::<Value>(&seen.body)
            .ok()
            .and_then(|v| v["repositories"].as_array().cloned())
            .unwrap_or_default()
            .iter()
            .filter_map(|n| n.as_str().map(str::to_owned))
            .collect();
        for name in &listed {
            if !self.packages.contains(&name.as_str()) {
                found
                    .wrong
                    .push(format!("{} × catalog: lists unknown `{name}`", row.who));
            }
        }
        for (column, package) in self.packages.iter().enumerate() {
            let (expected, observed) = if row.unauthenticated() {
                ('U', seen.letter(200))
            } else {
                let expected = if row.cells[column][0] == 'Y' {
                    'Y'
                } else {
                    '-'
                };
                let observed = match seen.status {
                    200 if listed.iter().any(|n| n == package) => 'Y',
                    200 => '-',
                    _ => seen.letter(200),
                };
                (expected, observed)
            };
            let right = found.check(
                format!("{} × {package} × catalog", row.who),
                expected,
                observed,
                &seen,
            );
            let key = (row.who.clone(), (*package).to_owned());
            found.grid.entry(key).or_insert(['?'; 8])[7] = mark(observed, right);
        }
    }

    /// One action of one principal on one package, and for a package the principal may not
    /// read, the same request for [`MISSING`].
    async fn cell(&self, row: &Row, package: &str, act: Act, found: &mut Findings) {
        let http = self.client(&row.who);
        let image = &self.images[package];
        let [pull, push, delete] = row.cells[self.column(package)];
        let (target, target_push) = self.target(row);
        let expected = match act {
            Act::Pull | Act::Tags | Act::Referrers => pull,
            Act::Push | Act::Mount => push,
            Act::Delete => delete,
            Act::MountFrom if target_push != 'Y' => target_push,
            Act::MountFrom if pull == 'Y' => 'M',
            Act::MountFrom => 'S',
        };
        let seen = self.send(http, act, package, image, &target).await;
        let observed = match act {
            Act::MountFrom => seen.mount_letter(),
            _ => seen.letter(act.success()),
        };
        let right = found.check(
            format!("{} × {package} × {}", row.who, act.label()),
            expected,
            observed,
            &seen,
        );
        let column = ACTS.iter().position(|a| *a == act).expect("an act");
        let key = (row.who.clone(), package.to_owned());
        found.grid.entry(key).or_insert(['?'; 8])[column] = mark(observed, right);
        if act == Act::Delete && seen.status == 202 {
            put_manifest(
                self.server,
                package,
                "throwaway",
                OCI_MANIFEST,
                &image.throwaway,
            )
            .await;
        }
        // No leak: what a principal that may not read the package is told must be what it is
        // told about a package that does not exist. (A push to a missing name by a principal
        // that may create packages would create it: that difference cannot be hidden.)
        if pull == 'Y' || (act.pushes() && row.missing == 'Y') {
            return;
        }
        let other = self.send(http, act, MISSING, image, &target).await;
        found.leak_checks += 1;
        // A mount names the package it reads from only in the request (and the challenge's
        // scope, which echoes it).
        let (ours, theirs) = match act {
            Act::MountFrom => (
                seen.mounting_from(package).shape(None),
                other.mounting_from(MISSING).shape(None),
            ),
            Act::Mount => (
                seen.mounting_from(PUBLIC).shape(Some(package)),
                other.mounting_from(PUBLIC).shape(Some(MISSING)),
            ),
            _ => (seen.shape(Some(package)), other.shape(Some(MISSING))),
        };
        if ours != theirs {
            found.wrong.push(format!(
                "{} × {package} × {}: LEAK, the answer differs from the one for {MISSING}\n      {package}: {ours}\n      {MISSING}: {theirs}",
                row.who,
                act.label()
            ));
        }
        if act == Act::Push {
            found.check(
                format!("{} × {MISSING} × push", row.who),
                row.missing,
                other.letter(201),
                &other,
            );
        }
    }
}

fn report(name: &str, matrix: &Matrix<'_>, found: &Findings, started: Instant) {
    let summary = format!(
        "{name}: {} principals × {} packages; {} cells, {} compared with a missing package, in {:.1?}",
        matrix.rows.len(),
        matrix.packages.len(),
        found.cells,
        found.leak_checks,
        started.elapsed()
    );
    eprintln!("{summary}\n{}", found.render(matrix));
    assert!(
        found.wrong.is_empty(),
        "{summary}\n{} wrong:\n  {}\n\n{}",
        found.wrong.len(),
        found.wrong.join("\n  "),
        found.render(matrix)
    );
}

// --- setting up --------------------------------------------------------------------------

async fn publish_all(server: &Server, packages: &[&str]) -> BTreeMap<String, Image> {
    let mut images = BTreeMap::new();
    for package in packages {
        images.insert((*package).to_owned(), publish(server, package).await);
    }
    images
}

// --- the tests ------------------------------------------------------------------------------

#[tokio::test]
async fn every_principal_kind_on_every_kind_of_package_for_every_action() {
    let server = Server::start_with(&[NO_FAILURE_LIMIT]);
    let world = World::new(&server);
    let admin = server.admin_token.clone();
    let started = Instant::now();

    // People and their places in the organization.
    let olivia = world.user("olivia").await;
    let mark_token = world.user("mark").await;
    let tina = world.user("tina").await;
    let oscar = world.user("oscar").await;
    let nora = world.user("nora").await;
    for (login, role) in [("olivia", "admin"), ("mark", "member"), ("tina", "member")] {
        world.member(login, role).await;
    }
    for repo in ["app", "other"] {
        world.repo(repo, "private").await;
    }
    world
        .team(
            "devs",
            json!({ "maintainers": ["tina"], "repo_names": ["app"], "permission": "pull" }),
        )
        .await;
    world.collaborator("app", "oscar", "push").await;

    // The packages and their settings.
    let images = publish_all(&server, PACKAGES).await;
    let setting = |package, setting, body| world.package("PUT", package, setting, body);
    world.visibility("acme/int", "internal").await;
    world.visibility("acme/pub", "public").await;
    setting("acme/priv", "/teams/devs", json!({ "role": "write" })).await;
    setting(
        "acme/priv",
        "/collaborators/oscar",
        json!({ "role": "read" }),
    )
    .await;
    setting("acme/int", "/teams/devs", json!({ "role": "admin" })).await;
    setting(
        "acme/linked",
        "/repository",
        json!({ "repository": "app", "inherit_access": true }),
    )
    .await;
    setting(
        "acme/noinherit",
        "/repository",
        json!({ "repository": "app", "inherit_access": false }),
    )
    .await;
    setting(
        "acme/noinherit",
        "/collaborators/mark",
        json!({ "role": "read" }),
    )
    .await;
    setting(
        "acme/shared",
        "/actions-access/other",
        json!({ "role": "read" }),
    )
    .await;

    // The principals.
    let mut clients = BTreeMap::new();
    let mut add = |who: &str, client: Client| clients.insert(who.to_owned(), client);
    let job_expired = world
        .job_token(
            "app",
            json!({ "permissions": { "packages": "write" }, "expires_in": 1 }),
        )
        .await;
    let job_expires = Instant::now() + Duration::from_millis(1100);
    add("anonymous", anonymous_client());
    add("site-admin", login("admin", &admin));
    let full = ALL_PACKAGE_SCOPES;
    add(
        "owner",
        login("olivia", &world.classic(&olivia, full).await.1),
    );
    add(
        "member",
        login("mark", &world.classic(&mark_token, full).await.1),
    );
    add(
        "team-member",
        login("tina", &world.classic(&tina, full).await.1),
    );
    add(
        "collaborator",
        login("oscar", &world.classic(&oscar, full).await.1),
    );
    let no_repo = &["read:packages", "write:packages", "delete:packages"];
    add(
        "collab-no-repo",
        login("oscar", &world.classic(&oscar, no_repo).await.1),
    );
    add(
        "outsider",
        login("nora", &world.classic(&nora, full).await.1),
    );
    for (who, scopes) in [
        ("pat-read", &["read:packages"][..]),
        ("pat-write", &["write:packages"]),
        ("pat-delete", &["delete:packages"]),
        ("pat-read-delete", &["read:packages", "delete:packages"]),
        ("pat-repo", &["repo"]),
        ("pat-admin-org", &["admin:org"]),
    ] {
        add(
            who,
            login("olivia", &world.classic(&olivia, scopes).await.1),
        );
    }
    let fine_write = world
        .fine_grained(
            &tina,
            FineGrained {
                owner: "acme",
                packages: &["priv", "new-fine-grained-write"],
                repositories: &["app"],
                permission: "write",
            },
        )
        .await;
    add("fine-grained-write", login("tina", &fine_write));
    let fine_read = world
        .fine_grained(
            &olivia,
            FineGrained {
                owner: "acme",
                packages: &["shared"],
                repositories: &[],
                permission: "read",
            },
        )
        .await;
    add("fine-grained-read", login("olivia", &fine_read));
    let (secret, installation) = world.app("ci-bot", "write").await;
    let app_write = world
        .installation_token(&secret, installation, json!({}))
        .await;
    add("app-write", login("x-access-token", &app_write));
    let narrowed = json!({ "repositories": ["app"], "permissions": { "packages": "read" } });
    let app_read = world
        .installation_token(&secret, installation, narrowed)
        .await;
    add("app-read", login("x-access-token", &app_read));
    let write = json!({ "permissions": { "packages": "write" } });
    add(
        "job-linked",
        login(
            "x-access-token",
            &world.job_token("app", write.clone()).await,
        ),
    );
    add(
        "job-other",
        login("x-access-token", &world.job_token("other", write).await),
    );
    add("job-expired", login("x-access-token", &job_expired));
    let expired = server.admin(&[
        "create-token",
        "olivia",
        "--scopes",
        "read:packages,write:packages,delete:packages,repo",
        "--expires-days",
        "0",
    ]);
    add("pat-expired", login("olivia", &expired));
    let (revoked_id, revoked) = world.classic(&olivia, full).await;
    world
        .as_user(&olivia)
        .ok("DELETE", &format!("/user/tokens/{revoked_id}"), None)
        .await;
    add("pat-revoked", login("olivia", &revoked));
    tokio::time::sleep(job_expires.saturating_duration_since(Instant::now())).await;
    eprintln!("fixture ready in {:.1?}", started.elapsed());

    let matrix = Matrix {
        server: &server,
        packages: PACKAGES,
        images,
        rows: parse_table(MAIN_TABLE, PACKAGES.len()),
        clients,
        targets: MAIN_TARGETS,
    };
    let found = matrix.run().await;
    report("main matrix", &matrix, &found, started);
}

#[tokio::test]
async fn sso_authorization_and_expired_app_tokens() {
    let server = Server::start_with(&[NO_FAILURE_LIMIT, ("BERTH_APP_TOKEN_TTL_SECS", "1")]);
    let world = World::new(&server);
    let admin = server.admin_token.clone();
    let started = Instant::now();

    let olivia = world.user("olivia").await;
    let mark_token = world.user("mark").await;
    for (login, role) in [("olivia", "admin"), ("mark", "member")] {
        world.member(login, role).await;
    }
    let images = publish_all(&server, SSO_PACKAGES).await;
    world.visibility("acme/int", "internal").await;
    world.visibility("acme/pub", "public").await;
    world
        .package(
            "PUT",
            "acme/priv",
            "/collaborators/mark",
            json!({ "role": "read" }),
        )
        .await;

    let (secret, installation) = world.app("ci-bot", "read").await;
    let app_expired = world
        .installation_token(&secret, installation, json!({}))
        .await;
    let app_expires = Instant::now() + Duration::from_millis(1100);

    let mut clients = BTreeMap::new();
    clients.insert("anonymous".to_owned(), anonymous_client());
    clients.insert("site-admin".to_owned(), login("admin", &admin));
    let scopes = &["read:packages", "write:packages", "delete:packages"];
    for (person, own) in [("owner", &olivia), ("member", &mark_token)] {
        let login_name = if person == "owner" { "olivia" } else { "mark" };
        let (id, authorized) = world.classic(own, scopes).await;
        world.authorize_sso(own, id).await;
        clients.insert(format!("{person}-sso"), login(login_name, &authorized));
        let (_, unauthorized) = world.classic(own, scopes).await;
        clients.insert(format!("{person}-no-sso"), login(login_name, &unauthorized));
    }
    let fine = world
        .fine_grained(
            &mark_token,
            FineGrained {
                owner: "acme",
                packages: &["priv"],
                repositories: &[],
                permission: "read",
            },
        )
        .await;
    clients.insert("fine-grained".to_owned(), login("mark", &fine));
    clients.insert(
        "app-expired".to_owned(),
        login("x-access-token", &app_expired),
    );
    world.require_sso("acme").await;
    tokio::time::sleep(app_expires.saturating_duration_since(Instant::now())).await;

    let matrix = Matrix {
        server: &server,
        packages: SSO_PACKAGES,
        images,
        rows: parse_table(SSO_TABLE, SSO_PACKAGES.len()),
        clients,
        targets: &[],
    };
    let found = matrix.run().await;
    report("SSO matrix", &matrix, &found, started);
}
