//! TLS for the connection loop: the operator's certificate and key (PEM files), offered with
//! ALPN `h2` and `http/1.1`, and replaced without a restart.
//!
//! The certificate is chosen per handshake by [`ReloadingCert`], a rustls certificate resolver
//! holding the current pair: [`ReloadingCert::reload`] (on SIGHUP, and from
//! [`ReloadingCert::watch`] when the files change) loads the files again and, if the new pair
//! is good, serves it to the next handshake. Connections already open keep the session they
//! made. A bad new pair is logged and the old one kept, so a half-written rotation never
//! takes the server down.
//!
//! Changes are found by polling the two files' metadata (modification time, length, inode)
//! every few seconds rather than with inotify: polling sees certificates replaced by
//! renaming, by symlink swaps (as Kubernetes mounts secrets) and on network filesystems
//! alike, costs two `stat` calls per interval, and needs no dependency.
//!
//! This module reads files and knows rustls; it knows nothing of HTTP.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime};

use rustls::ServerConfig;
use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;

/// ALPN protocol id of HTTP/2.
pub const H2: &[u8] = b"h2";
/// ALPN protocol id of HTTP/1.1.
pub const HTTP_1_1: &[u8] = b"http/1.1";

/// A certificate chain or key that could not be used; the message names the file.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read.
    #[error("reading {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A file is not the PEM it should be.
    #[error("{path}: {problem}")]
    Pem {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        problem: String,
    },
    /// The key is of a kind rustls does not sign with, or does not belong to the certificate.
    #[error("{key} does not fit {cert}: {problem}")]
    Pair {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
        /// What rustls said.
        problem: String,
    },
}

/// The certificate chain and key files (PEM).
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// The certificate chain: the server's certificate first, then intermediates.
    pub cert: PathBuf,
    /// The private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

impl TlsFiles {
    /// Loads and checks the pair: both files parse and the key belongs to the certificate.
    pub fn load(&self) -> Result<CertifiedKey, TlsError> {
        let cert_pem = read(&self.cert)?;
        let chain = CertificateDer::pem_slice_iter(&cert_pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|err| pem_error(&self.cert, err))?;
        if chain.is_empty() {
            return Err(TlsError::Pem {
                path: self.cert.clone(),
                problem: "no CERTIFICATE block".into(),
            });
        }
        let key_pem = read(&self.key)?;
        let key =
            PrivateKeyDer::from_pem_slice(&key_pem).map_err(|err| pem_error(&self.key, err))?;
        CertifiedKey::from_der(chain, key, &provider()).map_err(|err| TlsError::Pair {
            cert: self.cert.clone(),
            key: self.key.clone(),
            problem: err.to_string(),
        })
    }

    /// What changes when either file is replaced or rewritten.
    fn stamp(&self) -> Stamp {
        [stamp_of(&self.cert), stamp_of(&self.key)]
    }
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.to_owned(),
        source,
    })
}

fn pem_error(path: &Path, err: rustls_pki_types::pem::Error) -> TlsError {
    let problem = match err {
        rustls_pki_types::pem::Error::NoItemsFound => "no PEM block of the expected kind".into(),
        other => format!("not valid PEM ({other:?})"),
    };
    TlsError::Pem {
        path: path.to_owned(),
        problem,
    }
}

/// The crypto provider: aws-lc-rs, named explicitly so that no other provider compiled into
/// the binary (by a dependency's features) can make rustls's default ambiguous.
fn provider() -> CryptoProvider {
    rustls::crypto::aws_lc_rs::default_provider()
}

/// One file's modification time, length and inode; `None` when it cannot be read.
type FileStamp = Option<(SystemTime, u64, u64)>;
type Stamp = [FileStamp; 2];

fn stamp_of(path: &Path) -> FileStamp {
    // `metadata` follows symlinks: a swapped link target counts as a change.
    let meta = std::fs::metadata(path).ok()?;
    #[cfg(unix)]
    let inode = std::os::unix::fs::MetadataExt::ino(&meta);
    #[cfg(not(unix))]
    let inode = 0;
    Some((meta.modified().ok()?, meta.len(), inode))
}

/// The certificate resolver: serves the current pair to every handshake and swaps in a new
/// one when the files change.
#[derive(Debug)]
pub struct ReloadingCert {
    files: TlsFiles,
    current: RwLock<Arc<CertifiedKey>>,
    /// The files' stamp when they were last loaded (successfully or not).
    seen: Mutex<Stamp>,
}

impl ReloadingCert {
    /// Loads the pair; an error names the file at fault.
    pub fn new(files: TlsFiles) -> Result<Arc<Self>, TlsError> {
        let seen = files.stamp();
        let key = files.load()?;
        Ok(Arc::new(ReloadingCert {
            files,
            current: RwLock::new(Arc::new(key)),
            seen: Mutex::new(seen),
        }))
    }

    /// Loads the files again; a good pair is served to the next handshake, a bad one is
    /// logged and the current pair kept.
    pub fn reload(&self) {
        *self.seen.lock().unwrap_or_else(|e| e.into_inner()) = self.files.stamp();
        match self.files.load() {
            Ok(key) => {
                *self.current.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(key);
                tracing::info!(cert = %self.files.cert.display(), "TLS certificate reloaded");
            }
            Err(err) => tracing::error!(
                error = %err,
                "the new TLS certificate or key cannot be used; still serving the previous one"
            ),
        }
    }

    /// Every `interval`, reloads the pair if either file changed since it was last loaded.
    /// Runs until the process exits.
    pub async fn watch(self: Arc<Self>, interval: Duration) {
        let mut ticks = tokio::time::interval(interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            let this = self.clone();
            // Two stat calls (and, on a change, two small reads): off the async threads.
            let _ = tokio::task::spawn_blocking(move || {
                let now = this.files.stamp();
                let changed = *this.seen.lock().unwrap_or_else(|e| e.into_inner()) != now;
                if changed {
                    this.reload();
                }
            })
            .await;
        }
    }
}

impl ResolvesServerCert for ReloadingCert {
    fn resolve(&self, _: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(
            self.current
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
        )
    }
}

/// The acceptor for `cert`: TLS 1.2 and 1.3, ALPN `h2` then `http/1.1`, no client
/// certificates.
pub fn acceptor(cert: Arc<ReloadingCert>) -> TlsAcceptor {
    let mut config = ServerConfig::builder_with_provider(Arc::new(provider()))
        .with_safe_default_protocol_versions()
        .expect("aws-lc-rs supports the default protocol versions")
        .with_no_client_auth()
        .with_cert_resolver(cert);
    config.alpn_protocols = vec![H2.to_vec(), HTTP_1_1.to_vec()];
    TlsAcceptor::from(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A self-signed pair for `name`, written as `dir/name.crt` and `dir/name.key`.
    fn pair(dir: &Path, name: &str) -> (TlsFiles, Vec<u8>) {
        let made = rcgen::generate_simple_self_signed(vec![name.to_owned()]).unwrap();
        let files = TlsFiles {
            cert: dir.join(format!("{name}.crt")),
            key: dir.join(format!("{name}.key")),
        };
        std::fs::write(&files.cert, made.cert.pem()).unwrap();
        std::fs::write(&files.key, made.signing_key.serialize_pem()).unwrap();
        (files, made.cert.der().to_vec())
    }

    fn served(cert: &ReloadingCert) -> Vec<u8> {
        let current = cert.current.read().unwrap().clone();
        current.end_entity_cert().unwrap().to_vec()
    }

    #[test]
    fn a_reload_serves_a_good_new_pair_and_keeps_the_old_one_over_a_bad_one() {
        let dir = tempfile::tempdir().unwrap();
        let (files, first) = pair(dir.path(), "one");
        let cert = ReloadingCert::new(files.clone()).unwrap();
        assert_eq!(served(&cert), first);

        std::fs::write(&files.cert, "-----BEGIN CERTIFICATE-----\nbroken").unwrap();
        cert.reload();
        assert_eq!(served(&cert), first, "a broken file keeps the old pair");
        // A certificate whose key is another's.
        let (other, second) = pair(dir.path(), "two");
        std::fs::copy(&other.cert, &files.cert).unwrap();
        cert.reload();
        assert_eq!(served(&cert), first, "a mismatched pair keeps the old pair");
        std::fs::copy(&other.key, &files.key).unwrap();
        cert.reload();
        assert_eq!(served(&cert), second);
        assert_ne!(files.stamp(), [None, None]);
    }

    #[test]
    fn errors_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let (mut files, _) = pair(dir.path(), "one");
        files.key = dir.path().join("absent.key");
        let err = TlsFiles::load(&files).unwrap_err().to_string();
        assert!(err.contains("absent.key"), "{err}");
        std::fs::write(dir.path().join("empty.crt"), "").unwrap();
        files.cert = dir.path().join("empty.crt");
        let err = TlsFiles::load(&files).unwrap_err().to_string();
        assert!(err.contains("empty.crt"), "{err}");
    }
}
