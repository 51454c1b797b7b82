//! Parsing a request line into an [`Endpoint`] — pure, no I/O, before anything else runs.
//!
//! Repository names contain `/` and may even contain path components called `blobs` or
//! `manifests`, so the path is parsed from its end: the trailing segments have fixed shapes
//! (`manifests/<reference>`, `blobs/<digest>`, `blobs/uploads/<id>`, `tags/list`,
//! `referrers/<digest>`), and whatever precedes them is the name.
//!
//! [`Endpoint::operation`] is the one table of what each endpoint serves: a method it serves
//! is an [`Operation`], and each operation names the [`Action`] the caller needs on the
//! repository ([`Operation::action`]). The dispatcher authorizes with that action and then
//! matches on the operation, so the method check and the permission check cannot disagree.

/// The request method the table is keyed by (re-exported for callers without axum, e.g. the
/// fuzz targets).
pub use axum::http::Method;
use berth_core::access::Action;
use berth_core::digest::DigestError;
use berth_core::name::ReferenceError;
use berth_core::{Digest, Reference, RegistryError, RepoName};

/// One operation of the distribution API, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// `/v2/` — API version check.
    Base,
    /// `/v2/_catalog` — repository listing.
    Catalog,
    /// `/v2/<name>/tags/list`.
    Tags(RepoName),
    /// `/v2/<name>/manifests/<reference>`.
    Manifest(RepoName, Reference),
    /// `/v2/<name>/manifests/<reference>` whose reference is neither a tag nor a digest
    /// (as written in the path, and why). No manifest can be stored under it, so reading or
    /// deleting it answers what a missing manifest answers; pushing it is refused as invalid.
    BadReference(RepoName, String, ReferenceError),
    /// `/v2/<name>/blobs/<digest>`.
    Blob(RepoName, Digest),
    /// `/v2/<name>/blobs/uploads/` — start an upload (or push/mount in one request).
    StartUpload(RepoName),
    /// `/v2/<name>/blobs/uploads/<id>` — an upload session.
    Upload(RepoName, String),
    /// `/v2/<name>/referrers/<digest>`.
    Referrers(RepoName, Digest),
}

/// Why a path is not an endpoint.
#[derive(Debug)]
pub enum ParseError {
    /// The path has no distribution-API shape.
    NoSuchEndpoint,
    /// The shape matched but a part is invalid.
    Invalid(RegistryError),
}

impl From<RegistryError> for ParseError {
    fn from(e: RegistryError) -> Self {
        ParseError::Invalid(e)
    }
}

fn name(segments: &[&str]) -> Result<RepoName, ParseError> {
    if segments.is_empty() {
        return Err(ParseError::NoSuchEndpoint);
    }
    let raw = segments.join("/");
    raw.parse()
        .map_err(|e: berth_core::name::NameError| RegistryError::NameInvalid(e.to_string()).into())
}

fn digest(raw: &str) -> Result<Digest, ParseError> {
    raw.parse()
        .map_err(|e: DigestError| RegistryError::DigestInvalid(e.to_string()).into())
}

/// The spec's error for pushing under a reference that is neither a tag nor a digest.
pub fn reference_error(error: &ReferenceError) -> RegistryError {
    match error {
        ReferenceError::Digest(e) => RegistryError::DigestInvalid(e.to_string()),
        ReferenceError::Tag(e) => RegistryError::TagInvalid(e.to_string()),
    }
}

impl Endpoint {
    /// Parses the path of a request (starting with `/v2`).
    pub fn parse(path: &str) -> Result<Endpoint, ParseError> {
        let rest = path.strip_prefix("/v2").ok_or(ParseError::NoSuchEndpoint)?;
        let rest = rest.strip_prefix('/').unwrap_or(rest);
        if rest.is_empty() {
            return Ok(Endpoint::Base);
        }
        if rest == "_catalog" {
            return Ok(Endpoint::Catalog);
        }
        let segments: Vec<&str> = rest.split('/').collect();
        let n = segments.len();
        let tail = |k: usize| segments.get(n.wrapping_sub(k)).copied();
        match (tail(3), tail(2), tail(1)) {
            // `<name>/blobs/uploads/` (trailing slash) or `<name>/blobs/uploads/<id>`.
            (Some("blobs"), Some("uploads"), Some(last)) if n >= 4 => {
                if last.is_empty() {
                    Ok(Endpoint::StartUpload(name(&segments[..n - 3])?))
                } else {
                    Ok(Endpoint::Upload(name(&segments[..n - 3])?, last.to_owned()))
                }
            }
            (_, Some("blobs"), Some("uploads")) if n >= 3 => {
                Ok(Endpoint::StartUpload(name(&segments[..n - 2])?))
            }
            (_, Some("blobs"), Some(d)) if n >= 3 => {
                Ok(Endpoint::Blob(name(&segments[..n - 2])?, digest(d)?))
            }
            (_, Some("manifests"), Some(r)) if n >= 3 => {
                let name = name(&segments[..n - 2])?;
                Ok(match r.parse() {
                    Ok(reference) => Endpoint::Manifest(name, reference),
                    Err(e) => Endpoint::BadReference(name, r.to_owned(), e),
                })
            }
            (_, Some("tags"), Some("list")) if n >= 3 => {
                Ok(Endpoint::Tags(name(&segments[..n - 2])?))
            }
            (_, Some("referrers"), Some(d)) if n >= 3 => {
                Ok(Endpoint::Referrers(name(&segments[..n - 2])?, digest(d)?))
            }
            _ => Err(ParseError::NoSuchEndpoint),
        }
    }

    /// The repository the endpoint is about (none for the base and the catalog).
    pub fn name(&self) -> Option<&RepoName> {
        match self {
            Endpoint::Base | Endpoint::Catalog => None,
            Endpoint::Tags(name)
            | Endpoint::Manifest(name, _)
            | Endpoint::BadReference(name, ..)
            | Endpoint::Blob(name, _)
            | Endpoint::StartUpload(name)
            | Endpoint::Upload(name, _)
            | Endpoint::Referrers(name, _) => Some(name),
        }
    }

    /// A short, fixed name for logs and metrics (never the raw path).
    pub fn label(&self) -> &'static str {
        match self {
            Endpoint::Base => "base",
            Endpoint::Catalog => "catalog",
            Endpoint::Tags(..) => "tags",
            Endpoint::Manifest(..) | Endpoint::BadReference(..) => "manifest",
            Endpoint::Blob(..) => "blob",
            Endpoint::StartUpload(..) => "start_upload",
            Endpoint::Upload(..) => "upload",
            Endpoint::Referrers(..) => "referrers",
        }
    }
}

/// What one request does: an endpoint with a method it serves, and the parsed parts its
/// handler takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation<'a> {
    /// `GET`/`HEAD /v2/`: the API version check (and login check).
    Ping,
    /// `GET /v2/_catalog` (each repository filtered by the caller's access, not one action).
    Catalog,
    /// `GET …/tags/list`.
    ListTags(&'a RepoName),
    /// `GET …/referrers/<digest>`.
    ListReferrers(&'a RepoName, &'a Digest),
    /// `GET`/`HEAD …/manifests/<reference>`.
    ReadManifest {
        /// The repository.
        name: &'a RepoName,
        /// Tag or digest.
        reference: &'a Reference,
        /// `HEAD`: headers only.
        head: bool,
    },
    /// `PUT …/manifests/<reference>`.
    PushManifest(&'a RepoName, &'a Reference),
    /// `DELETE …/manifests/<reference>`.
    DeleteManifest(&'a RepoName, &'a Reference),
    /// `GET`/`HEAD …/manifests/<reference>` of a reference that is neither a tag nor a digest
    /// (as written, and why): answered as a missing manifest once authorized.
    ReadUnknownReference(&'a str, &'a ReferenceError),
    /// `DELETE` of such a reference: answered as a missing manifest once authorized.
    DeleteUnknownReference(&'a str, &'a ReferenceError),
    /// `PUT` of such a reference: refused as invalid before authentication, because
    /// authorizing a push may create the package and a push that cannot succeed must leave
    /// nothing behind.
    PushInvalidReference(&'a ReferenceError),
    /// `GET`/`HEAD …/blobs/<digest>`.
    ReadBlob {
        /// The repository.
        name: &'a RepoName,
        /// The blob.
        digest: &'a Digest,
        /// `HEAD`: headers only.
        head: bool,
    },
    /// `DELETE …/blobs/<digest>`.
    DeleteBlob(&'a RepoName, &'a Digest),
    /// `POST …/blobs/uploads/`: start an upload, push in one request, or mount.
    StartUpload(&'a RepoName),
    /// `GET`/`HEAD …/blobs/uploads/<id>`: how far the upload got.
    UploadStatus(&'a RepoName, &'a str),
    /// `PATCH …/blobs/uploads/<id>`: a chunk.
    PatchUpload(&'a RepoName, &'a str),
    /// `PUT …/blobs/uploads/<id>?digest=`: the last chunk, and the blob stored.
    FinishUpload(&'a RepoName, &'a str),
    /// `DELETE …/blobs/uploads/<id>`: abandon the upload.
    CancelUpload(&'a RepoName, &'a str),
}

impl Operation<'_> {
    /// A fixed name for metrics and request logs, e.g. `manifest_get`, `blob_get`,
    /// `upload_patch` (never the path, which carries the repository).
    pub fn name(&self) -> &'static str {
        use Operation::*;
        match self {
            Ping => "base",
            Catalog => "catalog",
            ListTags(_) => "tags_list",
            ListReferrers(..) => "referrers_get",
            ReadManifest { head: false, .. } | ReadUnknownReference(..) => "manifest_get",
            ReadManifest { head: true, .. } => "manifest_head",
            PushManifest(..) | PushInvalidReference(_) => "manifest_put",
            DeleteManifest(..) | DeleteUnknownReference(..) => "manifest_delete",
            ReadBlob { head: false, .. } => "blob_get",
            ReadBlob { head: true, .. } => "blob_head",
            DeleteBlob(..) => "blob_delete",
            StartUpload(_) => "upload_start",
            UploadStatus(..) => "upload_status",
            PatchUpload(..) => "upload_patch",
            FinishUpload(..) => "upload_put",
            CancelUpload(..) => "upload_delete",
        }
    }

    /// The action the caller needs on the endpoint's repository; `None` for the version
    /// check, the catalog (filtered per repository) and a push refused before authentication.
    ///
    /// Reading an upload's status needs pull only, as Distribution authorizes it (a client
    /// resuming an upload may hold a pull token by then); every request that changes the
    /// upload, cancelling included, needs push, what starting it needed. (Distribution asks
    /// `delete` for a cancel, as for any `DELETE`; a pusher without delete rights must still
    /// be able to abandon the upload they started.)
    pub fn action(&self) -> Option<Action> {
        use Operation::*;
        match self {
            Ping | Catalog | PushInvalidReference(_) => None,
            ListTags(_)
            | ListReferrers(..)
            | ReadManifest { .. }
            | ReadUnknownReference(..)
            | ReadBlob { .. }
            | UploadStatus(..) => Some(Action::Pull),
            PushManifest(..) | StartUpload(_) | PatchUpload(..) | FinishUpload(..)
            | CancelUpload(..) => Some(Action::Push),
            DeleteManifest(..) | DeleteUnknownReference(..) | DeleteBlob(..) => {
                Some(Action::Delete)
            }
        }
    }
}

impl Endpoint {
    /// The table: what `method` does on this endpoint, `None` when the endpoint does not
    /// serve it.
    pub fn operation(&self, method: &Method) -> Option<Operation<'_>> {
        use Operation::*;
        let head = *method == Method::HEAD;
        let read = head || *method == Method::GET;
        let operation = match self {
            Endpoint::Base if read => Ping,
            Endpoint::Catalog if *method == Method::GET => Catalog,
            Endpoint::Tags(name) if *method == Method::GET => ListTags(name),
            Endpoint::Referrers(name, digest) if *method == Method::GET => {
                ListReferrers(name, digest)
            }
            Endpoint::Manifest(name, reference) => match *method {
                Method::GET | Method::HEAD => ReadManifest {
                    name,
                    reference,
                    head,
                },
                Method::PUT => PushManifest(name, reference),
                Method::DELETE => DeleteManifest(name, reference),
                _ => return None,
            },
            Endpoint::BadReference(_, raw, why) => match *method {
                Method::GET | Method::HEAD => ReadUnknownReference(raw, why),
                Method::DELETE => DeleteUnknownReference(raw, why),
                Method::PUT => PushInvalidReference(why),
                _ => return None,
            },
            Endpoint::Blob(name, digest) => match *method {
                Method::GET | Method::HEAD => ReadBlob { name, digest, head },
                Method::DELETE => DeleteBlob(name, digest),
                _ => return None,
            },
            Endpoint::StartUpload(name) if *method == Method::POST => StartUpload(name),
            Endpoint::Upload(name, id) => match *method {
                Method::GET | Method::HEAD => UploadStatus(name, id),
                Method::PATCH => PatchUpload(name, id),
                Method::PUT => FinishUpload(name, id),
                Method::DELETE => CancelUpload(name, id),
                _ => return None,
            },
            _ => return None,
        };
        Some(operation)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(path: &str) -> Endpoint {
        Endpoint::parse(path).unwrap_or_else(|e| panic!("{path}: {e:?}"))
    }

    fn code(path: &str) -> &'static str {
        match Endpoint::parse(path) {
            Err(ParseError::Invalid(e)) => e.code(),
            other => panic!("{path}: {other:?}"),
        }
    }

    #[test]
    fn parses_every_shape() {
        let d = Digest::sha256(b"x");
        assert_eq!(ok("/v2/"), Endpoint::Base);
        assert_eq!(ok("/v2"), Endpoint::Base);
        assert_eq!(ok("/v2/_catalog"), Endpoint::Catalog);
        assert!(matches!(ok("/v2/a/b/c/tags/list"), Endpoint::Tags(n) if n.as_str() == "a/b/c"));
        assert!(matches!(
            ok("/v2/a/manifests/latest"),
            Endpoint::Manifest(_, Reference::Tag(_))
        ));
        assert!(matches!(ok(&format!("/v2/a/blobs/{d}")), Endpoint::Blob(_, x) if x == d));
        assert!(
            matches!(ok("/v2/a/b/blobs/uploads/"), Endpoint::StartUpload(n) if n.as_str() == "a/b")
        );
        assert!(
            matches!(ok("/v2/a/b/blobs/uploads"), Endpoint::StartUpload(n) if n.as_str() == "a/b")
        );
        assert!(matches!(ok("/v2/a/blobs/uploads/abc"), Endpoint::Upload(_, id) if id == "abc"));
        assert!(matches!(
            ok(&format!("/v2/a/referrers/{d}")),
            Endpoint::Referrers(..)
        ));
    }

    #[test]
    fn names_may_contain_endpoint_words() {
        assert!(matches!(
            ok("/v2/blobs/manifests/tags/manifests/v1"),
            Endpoint::Manifest(n, _) if n.as_str() == "blobs/manifests/tags"
        ));
        assert!(matches!(
            ok("/v2/x/blobs/uploads/blobs/uploads/"),
            Endpoint::StartUpload(n) if n.as_str() == "x/blobs/uploads"
        ));
    }

    #[test]
    fn invalid_parts_have_their_codes() {
        assert_eq!(code("/v2/UPPER/tags/list"), "NAME_INVALID");
        assert!(matches!(
            ok("/v2/a/manifests/-bad"),
            Endpoint::BadReference(_, r, ReferenceError::Tag(_)) if r == "-bad"
        ));
        assert!(matches!(
            ok("/v2/a/manifests/sha256:zz"),
            Endpoint::BadReference(_, _, ReferenceError::Digest(_))
        ));
        assert_eq!(code("/v2/a/blobs/nope"), "DIGEST_INVALID");
        assert!(matches!(
            Endpoint::parse("/v2/a"),
            Err(ParseError::NoSuchEndpoint)
        ));
        assert!(matches!(
            Endpoint::parse("/v2/manifests/x"),
            Err(ParseError::NoSuchEndpoint)
        ));
        assert!(matches!(
            Endpoint::parse("/v3/a/tags/list"),
            Err(ParseError::NoSuchEndpoint)
        ));
    }

    /// Every endpoint's methods and the action each needs (`-`: none).
    #[test]
    fn the_table_says_what_each_method_needs() {
        let d = Digest::sha256(b"x");
        let methods = ["GET", "HEAD", "PUT", "POST", "PATCH", "DELETE"];
        let cases: [(String, &str); 8] = [
            ("/v2/".into(), "GET - HEAD -"),
            ("/v2/_catalog".into(), "GET -"),
            ("/v2/a/tags/list".into(), "GET pull"),
            (format!("/v2/a/referrers/{d}"), "GET pull"),
            (
                "/v2/a/manifests/v1".into(),
                "GET pull HEAD pull PUT push DELETE delete",
            ),
            (
                "/v2/a/manifests/-bad".into(),
                "GET pull HEAD pull PUT - DELETE delete",
            ),
            (
                format!("/v2/a/blobs/{d}"),
                "GET pull HEAD pull DELETE delete",
            ),
            (
                "/v2/a/blobs/uploads/u".into(),
                "GET pull HEAD pull PUT push PATCH push DELETE push",
            ),
        ];
        for (path, expected) in cases {
            let endpoint = ok(&path);
            let served: Vec<String> = methods
                .iter()
                .filter_map(|m| {
                    let method: Method = m.parse().unwrap();
                    let operation = endpoint.operation(&method)?;
                    let action = operation.action().map_or("-", |a| match a {
                        Action::Pull => "pull",
                        Action::Push => "push",
                        Action::Delete | Action::Manage => "delete",
                    });
                    Some(format!("{m} {action}"))
                })
                .collect();
            assert_eq!(served.join(" "), expected, "{path}");
        }
        assert_eq!(
            ok("/v2/a/blobs/uploads/").operation(&Method::POST),
            Some(Operation::StartUpload(&"a".parse().unwrap()))
        );
        assert_eq!(ok("/v2/a/blobs/uploads/").operation(&Method::GET), None);
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        /// One path component of the spec's name grammar.
        fn component() -> impl Strategy<Value = String> {
            "[a-z0-9]{1,6}((\\.|_|__|-{1,2})[a-z0-9]{1,6}){0,2}"
        }

        fn name() -> impl Strategy<Value = String> {
            proptest::collection::vec(component(), 1..6).prop_map(|c| c.join("/"))
        }

        proptest! {
            #[test]
            fn never_panics_on_any_path(path in "/v2(/[ -~]{0,20}){0,6}") {
                let _ = Endpoint::parse(&path);
            }

            #[test]
            fn every_valid_name_parses_back(name in name(), tag in "[a-zA-Z0-9_][a-zA-Z0-9._-]{0,20}") {
                let parsed = Endpoint::parse(&format!("/v2/{name}/manifests/{tag}"));
                match parsed {
                    Ok(Endpoint::Manifest(n, Reference::Tag(t))) => {
                        prop_assert_eq!(n.as_str(), name.as_str());
                        prop_assert_eq!(t.as_str(), tag.as_str());
                    }
                    other => prop_assert!(false, "{name}:{tag} parsed as {other:?}"),
                }
                let uploads = Endpoint::parse(&format!("/v2/{name}/blobs/uploads/"));
                prop_assert!(matches!(uploads, Ok(Endpoint::StartUpload(n)) if n.as_str() == name));
            }
        }
    }
}
