//! The forge packages link to (GitHub, or a self-hosted forge at its own URL), and which of its
//! repositories a source URL such as `org.opencontainers.image.source` names.
//!
//! Pure: parsing and comparing text only. Which repositories exist is the store's business.

use std::fmt;
use std::str::FromStr;

/// A forge, known by its base URL: `https://github.com`, or `https://git.example.com/forge`
/// for one served under a path. Its repositories are `<base>/<owner>/<repository>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Forge {
    /// The base URL as configured, without trailing `/`.
    url: String,
    /// `host[:port]`, lowercase, without the scheme's default port.
    authority: String,
    /// The path before `/<owner>/<repository>` (`""` or `/forge`).
    base_path: String,
}

/// A repository a source URL names on the forge; the store says whether it exists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceRef {
    /// The owner's login, as the URL spells it.
    pub owner: String,
    /// The repository name, without `.git`.
    pub name: String,
}

/// Why a configured forge URL is unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "forge URL `{0}` is invalid: use the forge's base URL with http or https and a host, e.g. `https://github.com`, without user, query or fragment"
)]
pub struct ForgeUrlError(pub String);

/// An `http(s)` URL cut at its parts: scheme and authority lowercased, the scheme's default
/// port dropped. `None` for other schemes, user info, or no host.
struct Parts<'a> {
    authority: String,
    path: &'a str,
    has_query_or_fragment: bool,
}

fn parts(url: &str) -> Option<Parts<'_>> {
    let (scheme, rest) = url.trim().split_once("://")?;
    let default_port = match scheme.to_ascii_lowercase().as_str() {
        "https" => ":443",
        "http" => ":80",
        _ => return None,
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    if authority.is_empty() || authority.contains('@') {
        return None;
    }
    let authority = authority.to_ascii_lowercase();
    let authority = authority
        .strip_suffix(default_port)
        .map(str::to_owned)
        .unwrap_or(authority);
    let path_end = tail.find(['?', '#']).unwrap_or(tail.len());
    Some(Parts {
        authority,
        path: &tail[..path_end],
        has_query_or_fragment: path_end < tail.len(),
    })
}

/// Whether `segment` can be an owner login or a repository name: letters, digits, `-`, `_`
/// and `.`, not `.` or `..` alone.
fn plausible_segment(segment: &str) -> bool {
    !segment.is_empty()
        && segment != "."
        && segment != ".."
        && segment
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

impl Forge {
    /// GitHub, the default forge.
    pub fn github() -> Forge {
        Forge {
            url: "https://github.com".into(),
            authority: "github.com".into(),
            base_path: String::new(),
        }
    }

    /// The base URL as configured (without trailing `/`).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The repository `source` names on this forge, if it names one: `<forge>/<owner>/<repo>`
    /// with the host compared case-insensitively, `http` and `https` alike (both reach the
    /// same repository page), trailing `/` and a `.git` suffix ignored. Deeper paths
    /// (`…/tree/main`), queries, fragments, other hosts and other schemes name none.
    pub fn repository(&self, source: &str) -> Option<SourceRef> {
        let parts = parts(source)?;
        if parts.authority != self.authority || parts.has_query_or_fragment {
            return None;
        }
        let path = parts.path.strip_prefix(self.base_path.as_str())?;
        let path = path.strip_prefix('/')?.trim_end_matches('/');
        let path = path.strip_suffix(".git").unwrap_or(path);
        let (owner, name) = path.split_once('/')?;
        if !plausible_segment(owner) || !plausible_segment(name) {
            return None;
        }
        Some(SourceRef {
            owner: owner.to_owned(),
            name: name.to_owned(),
        })
    }
}

impl Default for Forge {
    fn default() -> Self {
        Forge::github()
    }
}

impl FromStr for Forge {
    type Err = ForgeUrlError;

    /// Parses a forge's base URL, e.g. `https://github.com` or `http://git.internal:3000/`.
    fn from_str(url: &str) -> Result<Self, Self::Err> {
        let invalid = || ForgeUrlError(url.to_owned());
        let parts = parts(url).ok_or_else(invalid)?;
        if parts.has_query_or_fragment {
            return Err(invalid());
        }
        let base_path = parts.path.trim_end_matches('/');
        if !base_path.split('/').skip(1).all(plausible_segment) {
            return Err(invalid());
        }
        Ok(Forge {
            url: url.trim().trim_end_matches('/').to_owned(),
            authority: parts.authority,
            base_path: base_path.to_owned(),
        })
    }
}

impl fmt::Display for Forge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.url)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repo(forge: &Forge, url: &str) -> Option<(String, String)> {
        forge.repository(url).map(|r| (r.owner, r.name))
    }

    fn named(owner: &str, name: &str) -> Option<(String, String)> {
        Some((owner.into(), name.into()))
    }

    #[test]
    fn github_repository_urls_are_normalised() {
        let github = Forge::github();
        for url in [
            "https://github.com/acme/app",
            "https://github.com/acme/app/",
            "https://github.com/acme/app.git",
            "https://github.com/acme/app.git/",
            "https://GitHub.COM/acme/app",
            "http://github.com/acme/app",
            "HTTPS://github.com:443/acme/app",
            "  https://github.com/acme/app\n",
        ] {
            assert_eq!(repo(&github, url), named("acme", "app"), "{url}");
        }
        assert_eq!(
            repo(&github, "https://github.com/Acme/My.App_2"),
            named("Acme", "My.App_2"),
            "the owner's case is kept; logins compare case-insensitively later"
        );
    }

    #[test]
    fn other_urls_name_no_repository() {
        let github = Forge::github();
        for url in [
            "https://gitlab.com/acme/app",
            "https://github.com.evil.example/acme/app",
            "https://github.com:8443/acme/app",
            "https://user@github.com/acme/app",
            "ssh://git@github.com/acme/app",
            "git@github.com:acme/app.git",
            "github.com/acme/app",
            "https://github.com/acme",
            "https://github.com/acme/",
            "https://github.com/acme/app/tree/main",
            "https://github.com/acme/app?tab=readme",
            "https://github.com/acme/app#readme",
            "https://github.com//app",
            "https://github.com/acme/..",
            "https://github.com/acme/a%20b",
            "https://github.com/acme/.git",
            "",
        ] {
            assert_eq!(repo(&github, url), None, "{url}");
        }
    }

    #[test]
    fn a_self_hosted_forge_under_a_path() {
        let forge: Forge = "http://Git.Internal:3000/forge/".parse().unwrap();
        assert_eq!(forge.url(), "http://Git.Internal:3000/forge");
        assert_eq!(
            repo(&forge, "https://git.internal:3000/forge/acme/app.git"),
            named("acme", "app")
        );
        assert_eq!(repo(&forge, "http://git.internal:3000/acme/app"), None);
        assert_eq!(repo(&forge, "http://git.internal/forge/acme/app"), None);
        let plain: Forge = "http://git.internal:80".parse().unwrap();
        assert_eq!(
            repo(&plain, "http://git.internal/acme/app"),
            named("acme", "app")
        );
    }

    #[test]
    fn forge_urls_must_be_http_base_urls() {
        assert_eq!("https://github.com".parse::<Forge>(), Ok(Forge::github()));
        assert_eq!("https://github.com/".parse::<Forge>(), Ok(Forge::github()));
        for bad in [
            "github.com",
            "ftp://github.com",
            "https://",
            "https://u:p@github.com",
            "https://github.com/?x=1",
            "https://github.com/a b",
        ] {
            assert!(bad.parse::<Forge>().is_err(), "{bad}");
        }
    }
}
