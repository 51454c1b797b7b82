//! `berth admin`: bootstraps and administers an instance from the machine it runs on. It opens
//! the configured stores ([`Stores`], no token needed: whoever can read the data directory
//! owns the instance anyway) and makes one operator call per command
//! (`berth_core::access::operator`), so the rules a name or a conflict follows are core's.
//! Works while `berth serve` runs: SQLite in WAL mode takes writers from several processes,
//! and `changes.rs` tells the server its access cache is stale.

use std::io::Read;

use anyhow::{Context, bail};
use berth_core::access::store::NewUser;
use berth_core::access::{Access, OrgRole, Role, Scopes, Visibility};
use berth_core::hooks::Hooks;
use berth_core::name::RepoName;
use berth_core::policies::{PolicyScope, Verdict, parse_policies};
use berth_core::ports::now_millis;
use berth_core::quotas;
use berth_core::registry::Registry;
use berth_core::services::Services;
use clap::Subcommand;
use std::sync::Arc;

use crate::config::Config;
use crate::stores::{Opener, Stores};

/// What `berth admin` can do.
#[derive(Subcommand)]
pub enum AdminCommand {
    /// Create a user; with --token-scopes, also a classic token for it, printed once.
    CreateUser {
        /// Login.
        login: String,
        /// Make the user a site administrator.
        #[arg(long)]
        site_admin: bool,
        /// Email address.
        #[arg(long)]
        email: Option<String>,
        /// Read a password from standard input (used only by the web UI, never the registry).
        #[arg(long)]
        password_stdin: bool,
        /// Scopes of a classic token to create now, e.g. `write:packages,delete:packages`.
        #[arg(long)]
        token_scopes: Option<String>,
        /// Days until that token expires (default: never).
        #[arg(long)]
        token_expires_days: Option<u32>,
    },
    /// Create an organization owned by an existing user.
    CreateOrg {
        /// Organization login.
        login: String,
        /// Its first owner.
        #[arg(long)]
        owner: String,
    },
    /// Add a user to an organization (or change their role).
    AddMember {
        /// Organization login.
        org: String,
        /// User login.
        user: String,
        /// Make them an owner rather than a member.
        #[arg(long)]
        owner: bool,
    },
    /// Create a source repository (what packages link to) owned by a user or organization.
    CreateRepo {
        /// `OWNER/NAME`, e.g. `acme/app`.
        repo: String,
        /// Who sees it.
        #[arg(long, value_enum, default_value = "private")]
        visibility: VisibilityArg,
    },
    /// Make a user a collaborator on a source repository (or change their role).
    AddCollaborator {
        /// `OWNER/NAME` of the repository.
        repo: String,
        /// User login.
        user: String,
        /// Their role on the repository (and on the packages inheriting from it).
        #[arg(long, value_enum)]
        role: RoleArg,
    },
    /// Set a user's web UI password (read from standard input), e.g. to reset a forgotten one.
    SetPassword {
        /// User login.
        login: String,
    },
    /// Create a classic personal access token for a user; prints it once.
    CreateToken {
        /// User login.
        login: String,
        /// Scopes, e.g. `read:packages` or `write:packages,delete:packages`.
        #[arg(long)]
        scopes: String,
        /// A note saying what the token is for.
        #[arg(long, default_value = "created with berth admin")]
        note: String,
        /// Days until it expires (default: never).
        #[arg(long)]
        expires_days: Option<u32>,
    },
    /// List a user's tokens (never their secrets): id, kind, note, scopes, dates.
    ListTokens {
        /// User login.
        login: String,
    },
    /// Revoke a token, given the token itself (e.g. one that leaked).
    RevokeToken {
        /// The token.
        token: String,
    },
    /// Replace the storage policies (immutable tags, retention) of an account or a package
    /// with a JSON document, e.g. `{"immutable_tags":["v*"],"retention":{"keep_latest":10}}`
    /// (`{}` removes them).
    SetPolicies {
        /// The account (user or organization login) or package (`OWNER/NAME…`).
        #[command(flatten)]
        scope: ScopeArg,
        /// The policies, as the API's `PUT …/policies` takes them.
        policies: String,
    },
    /// Print the storage policies set on an account or a package (JSON).
    ShowPolicies {
        /// The account or package.
        #[command(flatten)]
        scope: ScopeArg,
    },
    /// Run the retention policies now (every package they apply to, or one), printing what
    /// is deleted and why; with --dry-run, what would be, deleting nothing.
    Retention {
        /// Only this package.
        #[arg(long)]
        package: Option<String>,
        /// Print the plan; delete nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Set an account's storage quota: the bytes of the distinct blobs its packages may
    /// reference; pushes that would go over it are refused.
    SetQuota {
        /// User or organization login.
        account: String,
        /// The quota, e.g. `10GiB`, `500 MB` or a number of bytes; `none` removes it.
        limit: String,
    },
    /// Show an account's storage usage and quota.
    Quota {
        /// User or organization login.
        account: String,
    },
}

/// An account or a package, as `--account`/`--package` name it.
#[derive(clap::Args)]
#[group(required = true, multiple = false)]
pub struct ScopeArg {
    /// A user or organization login.
    #[arg(long)]
    account: Option<String>,
    /// A package, `OWNER/NAME…`.
    #[arg(long)]
    package: Option<String>,
}

/// A visibility, as `--visibility` spells it.
#[derive(Clone, Copy, clap::ValueEnum)]
pub enum VisibilityArg {
    /// Only those granted a role.
    Private,
    /// Every signed-in user of this instance.
    Internal,
    /// Everyone.
    Public,
}

impl From<VisibilityArg> for Visibility {
    fn from(arg: VisibilityArg) -> Visibility {
        match arg {
            VisibilityArg::Private => Visibility::Private,
            VisibilityArg::Internal => Visibility::Internal,
            VisibilityArg::Public => Visibility::Public,
        }
    }
}

/// A role, as `--role` spells it.
#[derive(Clone, Copy, clap::ValueEnum)]
pub enum RoleArg {
    /// Pull.
    Read,
    /// Pull and push.
    Write,
    /// Also delete and manage access.
    Admin,
}

impl From<RoleArg> for Role {
    fn from(arg: RoleArg) -> Role {
        match arg {
            RoleArg::Read => Role::Read,
            RoleArg::Write => Role::Write,
            RoleArg::Admin => Role::Admin,
        }
    }
}

/// Runs `command` against the metadata database under `data_dir`.
pub async fn run(config: &Config, command: AdminCommand) -> anyhow::Result<()> {
    let data_dir = config.data_dir.as_path();
    let done = execute(config, command).await;
    // Even a command that failed half-way may have written: a running server's access
    // cache forgets what it read.
    if let Err(err) = crate::changes::announce(data_dir) {
        eprintln!(
            "warning: could not tell a running server about the change ({err}); it applies within a second"
        );
    }
    done
}

async fn execute(config: &Config, command: AdminCommand) -> anyhow::Result<()> {
    let data_dir = config.data_dir.as_path();
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("creating data directory {}", data_dir.display()))?;
    let (database, blobs) = config.store_urls()?;
    let stores = Stores::open(&database, &blobs, Opener::Admin).await?;
    let access = Access::new(stores.access.clone());
    let registry = Registry::new(stores.metadata.clone(), stores.blobs.clone());
    let now = now_millis();
    match command {
        AdminCommand::SetPolicies { scope, policies } => {
            let services = services(config, &stores, &access);
            let value: serde_json::Value = serde_json::from_str(&policies)
                .context("the policies are not JSON (see `berth admin set-policies --help`)")?;
            let policies = parse_policies(&value).map_err(|e| anyhow::anyhow!("{e}"))?;
            let (scope_name, scope) = resolve_scope(&access, &scope).await?;
            services
                .packages
                .set_policies(scope.as_scope(), &policies)
                .await?;
            eprintln!("storage policies of {scope_name} set");
            println!("{}", serde_json::to_string_pretty(&policies)?);
        }
        AdminCommand::ShowPolicies { scope } => {
            let (_, scope) = resolve_scope(&access, &scope).await?;
            let policies = stores.metadata.policies(scope.as_scope()).await?;
            println!(
                "{}",
                serde_json::to_string_pretty(&policies.unwrap_or_default())?
            );
        }
        AdminCommand::Retention { package, dry_run } => {
            let services = services(config, &stores, &access);
            let names = match package {
                Some(name) => vec![name.parse().map_err(|e| anyhow::anyhow!("{name}: {e}"))?],
                None => stores.metadata.retained_packages().await?,
            };
            println!("action\tpackage\tversion\tdigest\ttags\trule\treason");
            for name in names {
                if dry_run {
                    let plan = services.packages.retention_plan(&name, None, now).await?;
                    for (version, verdict) in &plan.versions {
                        let (action, rule, reason) = match verdict {
                            Verdict::Delete(why) => ("delete", why.rule(), why.describe()),
                            Verdict::Keep(why) => ("keep", why.rule(), why.describe()),
                        };
                        println!(
                            "{action}\t{name}\t{}\t{}\t{}\t{rule}\t{reason}",
                            version.id,
                            version.digest,
                            version.tags.join(",")
                        );
                    }
                } else {
                    let base = config
                        .external_url
                        .clone()
                        .unwrap_or_else(|| format!("http://{}", config.listen));
                    for report in services
                        .packages
                        .run_retention_of(&name, now, &base)
                        .await?
                    {
                        for deleted in &report.deleted {
                            println!(
                                "deleted\t{name}\t{}\t{}\t\t{}\t{}",
                                deleted.id,
                                deleted.digest,
                                deleted.reason.rule(),
                                deleted.reason.describe()
                            );
                        }
                        for (id, why) in &report.refused {
                            println!("refused\t{name}\t{id}\t\t\t\t{why}");
                        }
                    }
                }
            }
        }
        AdminCommand::CreateUser {
            login,
            site_admin,
            email,
            password_stdin,
            token_scopes,
            token_expires_days,
        } => {
            let password_hash = if password_stdin {
                let mut password = String::new();
                std::io::stdin().read_to_string(&mut password)?;
                Some(hash_password(password.trim_end_matches(['\n', '\r']))?)
            } else {
                None
            };
            let user = NewUser {
                login: login.clone(),
                name: None,
                email,
                password_hash,
                site_admin,
            };
            let token = match token_scopes {
                Some(scopes) => Some((
                    scopes.parse::<Scopes>().map_err(anyhow::Error::msg)?,
                    token_expires_days.map(|d| now + i64::from(d) * 86_400_000),
                )),
                None => None,
            };
            let scopes = token.as_ref().map(|(scopes, _)| *scopes);
            let (_, secret) = access.bootstrap_user(&user, token).await?;
            eprintln!(
                "created {}user `{login}`",
                if site_admin {
                    "site administrator "
                } else {
                    ""
                }
            );
            if let (Some(secret), Some(scopes)) = (secret, scopes) {
                eprintln!("token (shown once; scopes {scopes}):");
                println!("{}", secret.expose());
            }
        }
        AdminCommand::CreateOrg { login, owner } => {
            access.bootstrap_org(&login, &owner).await?;
            eprintln!("created organization `{login}` owned by `{owner}`");
        }
        AdminCommand::AddMember { org, user, owner } => {
            let role = if owner {
                OrgRole::Owner
            } else {
                OrgRole::Member
            };
            access.add_member(&org, &user, role).await?;
            eprintln!("`{user}` is now {role:?} of `{org}`");
        }
        AdminCommand::CreateRepo { repo, visibility } => {
            let (owner, name) = owner_and_name(&repo)?;
            let visibility = Visibility::from(visibility);
            let created = access.bootstrap_repo(owner, name, visibility).await?;
            println!(
                "created repository `{}/{}` ({}, id {})",
                created.owner_login,
                created.name,
                visibility_name(visibility),
                created.id
            );
        }
        AdminCommand::AddCollaborator { repo, user, role } => {
            let (owner, name) = owner_and_name(&repo)?;
            let role = Role::from(role);
            let source = access.add_collaborator(owner, name, &user, role).await?;
            println!(
                "`{user}` is a collaborator on `{}/{}` with the {} role",
                source.owner_login,
                source.name,
                role_name(role)
            );
        }
        AdminCommand::SetPassword { login } => {
            let mut password = String::new();
            std::io::stdin().read_to_string(&mut password)?;
            let hash = hash_password(password.trim_end_matches(['\n', '\r']))?;
            access.set_password(&login, &hash).await?;
            eprintln!("password of `{login}` set");
        }
        AdminCommand::CreateToken {
            login,
            scopes,
            note,
            expires_days,
        } => {
            let scopes: Scopes = scopes.parse().map_err(anyhow::Error::msg)?;
            let expires = expires_days.map(|d| now + i64::from(d) * 86_400_000);
            let secret = access
                .bootstrap_token(&login, &note, scopes, expires)
                .await?;
            eprintln!("token for `{login}` (shown once; scopes {scopes}):");
            println!("{}", secret.expose());
        }
        AdminCommand::ListTokens { login } => {
            println!("id\tkind\tnote\tscopes\tcreated\texpires\tlast_used\trevoked");
            for token in access.tokens_of(&login).await? {
                let scopes = match &token.grant {
                    berth_core::access::Grant::Classic { scopes, .. } => scopes.to_string(),
                    _ => String::new(),
                };
                println!(
                    "{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}",
                    token.id,
                    token.kind.as_str(),
                    token.note,
                    scopes,
                    time(Some(token.created_at)),
                    time(token.expires_at),
                    time(token.last_used_at),
                    time(token.revoked_at),
                );
            }
        }
        AdminCommand::RevokeToken { token } => {
            let id = access.revoke_secret(&token).await?;
            eprintln!("revoked token {id}");
        }
        AdminCommand::SetQuota { account, limit } => {
            let limit = quota_limit(&limit)?;
            let quota = quotas::set_storage_quota(&access, &registry, &account, limit).await?;
            print_quota(&quota);
        }
        AdminCommand::Quota { account } => {
            let quota = quotas::storage_quota(&access, &registry, &account).await?;
            print_quota(&quota);
        }
    }
    Ok(())
}

/// An account's id or a package's name, resolved from `--account`/`--package`.
enum Scope {
    Account(berth_core::access::AccountId),
    Package(RepoName),
}

impl Scope {
    fn as_scope(&self) -> PolicyScope<'_> {
        match self {
            Scope::Account(id) => PolicyScope::Account(*id),
            Scope::Package(name) => PolicyScope::Package(name),
        }
    }
}

async fn resolve_scope(access: &Access, scope: &ScopeArg) -> anyhow::Result<(String, Scope)> {
    match (&scope.account, &scope.package) {
        (Some(login), _) => {
            let account = access.account(login, None).await?;
            Ok((
                format!("account `{}`", account.login),
                Scope::Account(account.id),
            ))
        }
        (None, Some(name)) => {
            let name: RepoName = name
                .parse()
                .map_err(|e| anyhow::anyhow!("`{name}` is not a package name: {e}"))?;
            Ok((format!("package `{name}`"), Scope::Package(name)))
        }
        (None, None) => bail!("name --account LOGIN or --package OWNER/NAME"),
    }
}

/// The services over the opened stores (deletions queue webhook deliveries, which the
/// server's worker sends).
fn services(config: &Config, stores: &Stores, access: &Access) -> Services {
    let registry = Registry::new(stores.metadata.clone(), stores.blobs.clone());
    let network = Arc::new(crate::egress::NetworkPolicy::new(
        config.webhook_allowed_networks.clone(),
        config.listen,
    ));
    let hooks = Hooks::new(stores.hooks.clone(), access.clone(), network);
    Services::new(registry, access.clone(), hooks)
}

/// A quota as `set-quota` takes it: a size (`10GiB`, `500 MB`, bytes), or `none`.
fn quota_limit(text: &str) -> anyhow::Result<Option<u64>> {
    if text.eq_ignore_ascii_case("none") {
        return Ok(None);
    }
    let size: bytesize::ByteSize = text.trim().parse().map_err(|e| {
        anyhow::anyhow!(
            "`{text}` is not a size ({e}); give e.g. 10GiB, 500MB or a number of bytes, or `none` to remove the quota"
        )
    })?;
    if i64::try_from(size.as_u64()).is_err() {
        bail!("`{text}` is more than this registry can count; give at most 8 EiB");
    }
    Ok(Some(size.as_u64()))
}

/// Prints `account`, usage and quota, one `key: value` a line.
fn print_quota(quota: &quotas::StorageQuota) {
    let usage = quota.usage;
    println!("account: {}", quota.account.login);
    println!(
        "used: {} ({} bytes)",
        bytesize::ByteSize(usage.used),
        usage.used
    );
    match usage.limit {
        Some(limit) => println!("limit: {} ({limit} bytes)", bytesize::ByteSize(limit)),
        None => println!("limit: none"),
    }
}

/// Splits `OWNER/NAME`; a name is letters, digits, `-`, `_` and `.` (as on GitHub, and what
/// a source URL can name).
fn owner_and_name(repo: &str) -> anyhow::Result<(&str, &str)> {
    let plausible = |part: &str| {
        !part.is_empty()
            && part != "."
            && part != ".."
            && part
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    };
    match repo.split_once('/') {
        Some((owner, name)) if plausible(owner) && plausible(name) => Ok((owner, name)),
        _ => {
            bail!("`{repo}` is not OWNER/NAME, e.g. `acme/app` (letters, digits, `-`, `_` and `.`)")
        }
    }
}

fn visibility_name(visibility: Visibility) -> &'static str {
    match visibility {
        Visibility::Private => "private",
        Visibility::Internal => "internal",
        Visibility::Public => "public",
    }
}

fn role_name(role: Role) -> &'static str {
    match role {
        Role::Read => "read",
        Role::Write => "write",
        Role::Admin => "admin",
    }
}

/// Argon2id PHC string of `password`.
fn hash_password(password: &str) -> anyhow::Result<String> {
    berth_core::access::sessions::hash_password(password).map_err(anyhow::Error::msg)
}

/// An RFC 3339 time, or `-`.
fn time(millis: Option<i64>) -> String {
    millis.map_or_else(
        || "-".to_owned(),
        |m| {
            let at = std::time::UNIX_EPOCH
                + std::time::Duration::from_millis(u64::try_from(m).unwrap_or(0));
            humantime::format_rfc3339_seconds(at).to_string()
        },
    )
}
