//! TLS for the TURN listeners: coturn's TLS options turned into rustls
//! server configurations, plus what the I/O layer needs around them.
//!
//! Owns: reading certificates and keys (eagerly, so it happens before the
//! process drops privileges), mapping `--cipher-list`, `--ec-curve-name`,
//! `--CA-file` and the version flags onto rustls, ALPN selection, classifying
//! the first bytes of a TCP stream ([`sniff`]) and the hot-reloadable holder
//! used on SIGUSR2 ([`ReloadableTls`]). It opens no sockets.
//!
//! Decisions that differ from OpenSSL, and why:
//! - The crypto provider is rustls' `ring` provider: it builds with a C
//!   compiler only (no cmake/NASM, unlike aws-lc-rs), compiles quickly on small
//!   machines, and covers everything coturn deployments negotiate in practice
//!   (TLS 1.2/1.3, ECDHE, AES-GCM, ChaCha20). It lacks secp521r1 and the
//!   post-quantum hybrid groups.
//! - TLS 1.0/1.1 do not exist in rustls: `--tlsv1`/`--tlsv1_1` are refused
//!   with [`TlsError::UnsupportedVersion`] instead of silently ignored, so the
//!   operator learns that old clients will not connect.
//! - `--CA-file` makes client certificates *required*, as coturn does
//!   (`SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT`).
//! - ALPN: coturn's OpenSSL callback walks the *client's* list and takes the
//!   first of `stun.nat-discovery`, `stun.turn`, `http/1.1`; when none is
//!   offered it continues without ALPN. rustls instead picks in the server's
//!   order and aborts the handshake (`no_application_protocol`) when the
//!   client offers ALPN but nothing matches. [`TlsConfigs`] therefore holds one
//!   config per protocol plus one without ALPN, and
//!   [`TlsConfigs::for_client_hello`] (used with `rustls::server::Acceptor` or
//!   tokio-rustls' `LazyConfigAcceptor`) reproduces coturn exactly. The single
//!   config from [`build_server_config`] offers all three in server order and
//!   suits callers that do not look at the ClientHello.
//! - `--dh566`, `--dh1066`, `--dh-file` are accepted and produce a warning:
//!   rustls has no finite-field Diffie-Hellman.
//!
//! Intended use by the I/O layer, per accepted TCP connection:
//! ```text
//! match sniff(&first_bytes) {
//!     Sniff::NeedMore => read more (bounded), sniff again,
//!     Sniff::Tls => {
//!         let configs = reloadable.configs();           // fixed for this connection
//!         let mut acceptor = rustls::server::Acceptor::default();
//!         feed bytes with acceptor.read_tls(..) until acceptor.accept() gives Some(accepted);
//!         let conn = accepted.into_connection(configs.for_client_hello(&accepted.client_hello()));
//!         // tokio: LazyConfigAcceptor + start.into_stream(configs.for_client_hello(&start.client_hello()))
//!     }
//!     Sniff::Stun | Sniff::ChannelData => plain TURN over TCP,
//!     Sniff::Http => coturn's HTTP answer, Sniff::ProxyV1 | Sniff::ProxyV2 => PROXY header first,
//!     Sniff::Unknown => close,
//! }
//! ```

mod ciphers;
mod pem;
mod search;
mod sniff;

#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use rustls::crypto::CryptoProvider;
use rustls::server::{AlwaysResolvesServerRawPublicKeys, ClientHello, WebPkiClientVerifier};
use rustls::server::CertificateType;
use rustls::sign::CertifiedKey;
use rustls::{RootCertStore, ServerConfig, SupportedProtocolVersion};

pub use ciphers::{default_selection, map_cipher_list, map_curves, CipherSelection};
pub use search::{resolve_path, resolve_path_in, DEFAULT_CERT, DEFAULT_PKEY};
pub use sniff::{sniff, Sniff};

/// coturn's TLS options, as given (file names not yet resolved).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsOptions {
    /// `--cert`; `None` means coturn's default `turn_server_cert.pem`.
    pub cert: Option<PathBuf>,
    /// `--pkey`; `None` means coturn's default `turn_server_pkey.pem`.
    pub pkey: Option<PathBuf>,
    /// `--pkey-pwd`: passphrase of an encrypted private key.
    pub pkey_pwd: Option<String>,
    /// `--CA-file`: when set, client certificates are required and verified.
    pub ca_file: Option<PathBuf>,
    /// `--cipher-list` (OpenSSL syntax).
    pub cipher_list: Option<String>,
    /// `--ec-curve-name` (OpenSSL short name).
    pub ec_curve_name: Option<String>,
    /// `--tlsv1`: refused (rustls has no TLS 1.0).
    pub tlsv1: bool,
    /// `--tlsv1_1`: refused (rustls has no TLS 1.1).
    pub tlsv1_1: bool,
    /// `--no-tlsv1_2`: TLS 1.3 only.
    pub no_tlsv1_2: bool,
    /// Negotiate ALPN (`stun.turn`, `stun.nat-discovery`, `http/1.1`). Default true.
    pub alpn: bool,
    /// `--dh566`: accepted, unused.
    pub dh566: bool,
    /// `--dh1066`: accepted, unused.
    pub dh1066: bool,
    /// `--dh-file`: accepted, unused.
    pub dh_file: Option<PathBuf>,
    /// `--raw-public-keys`: a client that asks for the server's raw public
    /// key (RFC 7250) gets it instead of the certificate; others still get
    /// the certificate.
    pub raw_public_keys: bool,
    /// Base directory for relative file names; `None` = the process's current
    /// directory.
    pub base_dir: Option<PathBuf>,
}

impl Default for TlsOptions {
    fn default() -> Self {
        Self {
            cert: None,
            pkey: None,
            pkey_pwd: None,
            ca_file: None,
            cipher_list: None,
            ec_curve_name: None,
            tlsv1: false,
            tlsv1_1: false,
            no_tlsv1_2: false,
            alpn: true,
            dh566: false,
            dh1066: false,
            dh_file: None,
            raw_public_keys: false,
            base_dir: None,
        }
    }
}

/// Why a TLS configuration could not be built. Every message names the file
/// or option at fault and is meant to be shown to the operator as it is.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file was not found in any search directory. When this is the default
    /// certificate or key (no `--cert`/`--pkey` given), coturn starts without
    /// TLS listeners; the caller decides (see [`TlsError::is_missing_default`]).
    #[error("cannot find {what} file {name} (looked in ./, ./turnserver/, ./coturn/, ./etc/, ../etc/, /etc/, /etc/turnserver/, /etc/coturn/, /usr/local/etc/ and their turnserver/ and coturn/ subdirectories)")]
    NotFound {
        what: &'static str,
        name: PathBuf,
        /// True when the name is coturn's default, not one the operator gave.
        default_name: bool,
    },
    /// The file exists but cannot be read.
    #[error("cannot read {what} file {path}: {source}")]
    Read { what: &'static str, path: PathBuf, source: std::io::Error },
    /// The file is not well-formed PEM.
    #[error("{what} file {path} is not valid PEM: {reason}")]
    BadPem { what: &'static str, path: PathBuf, reason: String },
    /// The certificate file has no `CERTIFICATE` block.
    #[error("certificate file {path} contains no '-----BEGIN CERTIFICATE-----' block")]
    NoCertificate { path: PathBuf },
    /// The key file has no private key block.
    #[error("private key file {path} contains no private key (expected a PEM block PRIVATE KEY, RSA PRIVATE KEY, EC PRIVATE KEY or ENCRYPTED PRIVATE KEY)")]
    NoPrivateKey { path: PathBuf },
    /// The key is encrypted and `--pkey-pwd` is missing.
    #[error("private key file {path} is encrypted; give its passphrase with --pkey-pwd")]
    PasswordRequired { path: PathBuf },
    /// Decryption failed: wrong `--pkey-pwd` (or a corrupt file).
    #[error("cannot decrypt private key file {path}: wrong --pkey-pwd, or the file is corrupt")]
    WrongPassword { path: PathBuf },
    /// A key type or encryption scheme we cannot read.
    #[error("private key file {path}: {detail}; {}", pem::convert_hint(.path))]
    UnsupportedKey { path: PathBuf, detail: String },
    /// rustls rejected the (decrypted) key.
    #[error("private key file {path} is not a usable RSA, ECDSA or Ed25519 key: {source}")]
    InvalidKey { path: PathBuf, source: rustls::Error },
    /// The key does not belong to the leaf certificate.
    #[error("private key {key} does not match the first certificate in {cert}")]
    KeyMismatch { cert: PathBuf, key: PathBuf },
    /// rustls could not parse the leaf certificate.
    #[error("certificate file {path} is not usable: {source}")]
    InvalidCertificate { path: PathBuf, source: rustls::Error },
    /// The `--CA-file` could not be used.
    #[error("CA file {path}: {reason}")]
    InvalidCa { path: PathBuf, reason: String },
    /// `--tlsv1` or `--tlsv1_1`.
    #[error("--{option} cannot be honoured: rustls supports neither TLS 1.0 nor TLS 1.1 (TLS 1.2 is the minimum); remove the option")]
    UnsupportedVersion { option: &'static str },
    /// rustls refused the combination of options (e.g. `--no-tlsv1_2` with a
    /// `--cipher-list` that excludes every TLS 1.3 suite).
    #[error("TLS configuration rejected ({context}): {source}")]
    Config { context: String, source: rustls::Error },
}

impl TlsError {
    /// True when the error is only that coturn's default certificate or key
    /// file does not exist: coturn then runs without TLS listeners and logs a
    /// warning instead of refusing to start.
    pub fn is_missing_default(&self) -> bool {
        matches!(self, TlsError::NotFound { default_name: true, .. })
    }
}

/// An ALPN protocol coturn answers to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Alpn {
    /// `stun.turn` (RFC 7443): TURN.
    StunTurn,
    /// `stun.nat-discovery` (RFC 7443): STUN only.
    StunNatDiscovery,
    /// `http/1.1`: coturn's HTTP handling on the TURN port.
    Http11,
}

impl Alpn {
    /// Every protocol, in the order the combined config offers them.
    pub const ALL: [Alpn; 3] = [Alpn::StunTurn, Alpn::StunNatDiscovery, Alpn::Http11];

    /// The protocol identifier on the wire.
    pub fn protocol(self) -> &'static [u8] {
        match self {
            Alpn::StunTurn => b"stun.turn",
            Alpn::StunNatDiscovery => b"stun.nat-discovery",
            Alpn::Http11 => b"http/1.1",
        }
    }

    /// The protocol for a wire identifier, if we know it.
    pub fn from_protocol(p: &[u8]) -> Option<Alpn> {
        Alpn::ALL.into_iter().find(|a| a.protocol() == p)
    }

    fn index(self) -> usize {
        match self {
            Alpn::StunTurn => 0,
            Alpn::StunNatDiscovery => 1,
            Alpn::Http11 => 2,
        }
    }
}

/// coturn's ALPN choice: the first protocol in the *client's* list that we
/// know, or `None` (then the handshake continues without ALPN).
pub fn choose_alpn<'a>(offered: impl IntoIterator<Item = &'a [u8]>) -> Option<Alpn> {
    offered.into_iter().find_map(Alpn::from_protocol)
}

/// The server configs built from one set of options: one per ALPN protocol,
/// one without ALPN and the combined one. They share certificate, verifier,
/// suites and session cache; they differ only in `alpn_protocols`.
#[derive(Debug, Clone)]
pub struct TlsConfigs {
    by_alpn: [Arc<ServerConfig>; 3],
    no_alpn: Arc<ServerConfig>,
    combined: Arc<ServerConfig>,
    /// `--raw-public-keys`: the same configs presenting the raw public key
    /// (by ALPN protocol, then without ALPN), for clients that ask for it.
    raw_keys: Option<Box<[Arc<ServerConfig>; 4]>>,
}

impl TlsConfigs {
    /// The config offering all ALPN protocols (server order: `stun.turn`,
    /// `stun.nat-discovery`, `http/1.1`). A client that offers only other
    /// protocols fails its handshake with it; prefer [`Self::for_client_hello`].
    pub fn combined(&self) -> Arc<ServerConfig> {
        self.combined.clone()
    }

    /// The config that answers `alpn` (or negotiates no ALPN for `None`).
    pub fn for_alpn(&self, alpn: Option<Alpn>) -> Arc<ServerConfig> {
        match alpn {
            Some(a) => self.by_alpn[a.index()].clone(),
            None => self.no_alpn.clone(),
        }
    }

    /// The config for a received ClientHello, choosing ALPN as coturn does
    /// ([`choose_alpn`]); never fails the handshake over ALPN. With
    /// `--raw-public-keys`, a client that lists RawPublicKey among the server
    /// certificate types it takes gets the raw key (OpenSSL's server
    /// preference RPK then X.509, as coturn sets it); rustls alone would
    /// refuse every client that does not take raw keys.
    pub fn for_client_hello(&self, hello: &ClientHello<'_>) -> Arc<ServerConfig> {
        let alpn = hello.alpn().and_then(choose_alpn);
        let wants_raw_key = hello.server_cert_types().is_some_and(|t| t.contains(&CertificateType::RawPublicKey));
        match (&self.raw_keys, wants_raw_key) {
            (Some(raw), true) => raw[alpn.map_or(3, Alpn::index)].clone(),
            _ => self.for_alpn(alpn),
        }
    }

    /// Whether raw public keys are offered (`--raw-public-keys`).
    pub fn offers_raw_public_keys(&self) -> bool {
        self.raw_keys.is_some()
    }
}

/// Build the rustls configuration for `opts` (see [`build_configs`]) and
/// return the combined config plus warnings to log.
pub fn build_server_config(opts: &TlsOptions) -> Result<(Arc<ServerConfig>, Vec<String>), TlsError> {
    let (configs, warnings) = build_configs(opts)?;
    Ok((configs.combined(), warnings))
}

/// Resolve a configured or default file name through the search path.
fn locate(what: &'static str, given: Option<&Path>, default: &str, base: &Path) -> Result<PathBuf, TlsError> {
    let name = given.unwrap_or(Path::new(default));
    resolve_path(name, base).ok_or_else(|| TlsError::NotFound {
        what,
        name: name.to_path_buf(),
        default_name: given.is_none(),
    })
}

/// Build every config for `opts`. Reads the certificate, key and CA files
/// now. Returns warnings for options that were accepted but cannot be
/// followed exactly (cipher names, curves, DH parameters).
pub fn build_configs(opts: &TlsOptions) -> Result<(TlsConfigs, Vec<String>), TlsError> {
    if opts.tlsv1 {
        return Err(TlsError::UnsupportedVersion { option: "tlsv1" });
    }
    if opts.tlsv1_1 {
        return Err(TlsError::UnsupportedVersion { option: "tlsv1_1" });
    }
    let mut warnings = Vec::new();
    let base = match &opts.base_dir {
        Some(b) => b.clone(),
        None => std::env::current_dir().unwrap_or_else(|_| PathBuf::from(".")),
    };

    let cert_path = locate("certificate", opts.cert.as_deref(), DEFAULT_CERT, &base)?;
    let key_path = locate("private key", opts.pkey.as_deref(), DEFAULT_PKEY, &base)?;
    let chain = pem::load_certificates(&cert_path)?;
    let key = pem::load_private_key(&key_path, opts.pkey_pwd.as_deref())?;

    let selection = match opts.cipher_list.as_deref().map(str::trim) {
        Some(list) if !list.is_empty() => map_cipher_list(list),
        _ => default_selection(),
    };
    warnings.extend(selection.warnings.iter().cloned());
    let kx_groups = match opts.ec_curve_name.as_deref().map(str::trim) {
        Some(names) if !names.is_empty() => {
            let (groups, w) = map_curves(names);
            warnings.extend(w);
            groups
        }
        _ => rustls::crypto::ring::DEFAULT_KX_GROUPS.to_vec(),
    };
    if opts.dh566 || opts.dh1066 || opts.dh_file.is_some() {
        let which = [(opts.dh566, "dh566"), (opts.dh1066, "dh1066"), (opts.dh_file.is_some(), "dh-file")]
            .iter()
            .filter(|(on, _)| *on)
            .map(|(_, n)| *n)
            .collect::<Vec<_>>()
            .join(", ");
        warnings.push(format!(
            "{which}: not used: rustls has no finite-field DH (key exchange is ECDHE only)"
        ));
    }
    let provider = Arc::new(CryptoProvider {
        cipher_suites: selection.all(),
        kx_groups,
        ..rustls::crypto::ring::default_provider()
    });

    // Check the key and its match with the leaf here, so each failure gets
    // its own message (rustls' with_single_cert folds them together).
    let signing_key = provider
        .key_provider
        .load_private_key(key.clone_key())
        .map_err(|source| TlsError::InvalidKey { path: key_path.clone(), source })?;
    match CertifiedKey::new(chain.clone(), signing_key).keys_match() {
        Ok(()) | Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => {}
        Err(rustls::Error::InconsistentKeys(_)) => {
            return Err(TlsError::KeyMismatch { cert: cert_path, key: key_path })
        }
        Err(source) => return Err(TlsError::InvalidCertificate { path: cert_path, source }),
    }

    let versions: &[&'static SupportedProtocolVersion] = if opts.no_tlsv1_2 {
        &[&rustls::version::TLS13]
    } else {
        &[&rustls::version::TLS13, &rustls::version::TLS12]
    };
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(versions)
        .map_err(|source| TlsError::Config {
            context: "protocol versions and --cipher-list leave no usable cipher suite".into(),
            source,
        })?;
    let builder = match &opts.ca_file {
        Some(name) => {
            let ca_path = resolve_path(name, &base).ok_or_else(|| TlsError::NotFound {
                what: "CA",
                name: name.clone(),
                default_name: false,
            })?;
            let certs = pem::certificates(&pem::read_pem_file("CA", &ca_path)?);
            if certs.is_empty() {
                return Err(TlsError::InvalidCa {
                    path: ca_path,
                    reason: "contains no '-----BEGIN CERTIFICATE-----' block".into(),
                });
            }
            let mut roots = RootCertStore::empty();
            let (added, ignored) = roots.add_parsable_certificates(certs);
            if added == 0 {
                return Err(TlsError::InvalidCa { path: ca_path, reason: "no certificate in it could be parsed".into() });
            }
            if ignored > 0 {
                warnings.push(format!("CA file {}: {ignored} certificate(s) could not be parsed and are ignored", ca_path.display()));
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                .build()
                .map_err(|e| TlsError::InvalidCa { path: ca_path.clone(), reason: e.to_string() })?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let raw_key_builder = opts.raw_public_keys.then(|| builder.clone());
    let mut base_config = builder.with_single_cert(chain, key.clone_key()).map_err(|source| TlsError::Config {
        context: format!("certificate {} with key {}", cert_path.display(), key_path.display()),
        source,
    })?;
    // coturn sets SSL_OP_CIPHER_SERVER_PREFERENCE.
    base_config.ignore_client_order = true;

    let with_alpn = |protocols: &[Alpn]| offering(&base_config, opts.alpn, protocols);
    let raw_keys = match raw_key_builder {
        None => None,
        Some(builder) => {
            let signer = provider
                .key_provider
                .load_private_key(key)
                .map_err(|source| TlsError::InvalidKey { path: key_path.clone(), source })?;
            let spki = signer.public_key().ok_or_else(|| TlsError::Config {
                context: format!("--raw-public-keys: no public key can be derived from {}", key_path.display()),
                source: rustls::Error::General("unsupported key type for raw public keys".into()),
            })?;
            let raw = Arc::new(CertifiedKey::new(vec![rustls::pki_types::CertificateDer::from(spki.to_vec())], signer));
            let mut c = builder.with_cert_resolver(Arc::new(AlwaysResolvesServerRawPublicKeys::new(raw)));
            c.ignore_client_order = true;
            let [a, b, h] = Alpn::ALL.map(|a| offering(&c, opts.alpn, &[a]));
            Some(Box::new([a, b, h, offering(&c, opts.alpn, &[])]))
        }
    };
    let configs = TlsConfigs {
        by_alpn: Alpn::ALL.map(|a| with_alpn(&[a])),
        no_alpn: with_alpn(&[]),
        combined: with_alpn(&Alpn::ALL),
        raw_keys,
    };
    Ok((configs, warnings))
}

/// `base` offering `protocols` by ALPN (none when ALPN is off).
fn offering(base: &ServerConfig, alpn: bool, protocols: &[Alpn]) -> Arc<ServerConfig> {
    let mut c = base.clone();
    if alpn {
        c.alpn_protocols = protocols.iter().map(|a| a.protocol().to_vec()).collect();
    }
    Arc::new(c)
}

/// The TLS configs in use, replaceable while the server runs (SIGUSR2).
///
/// Each new connection takes the configs current at its start and keeps them
/// (an `Arc`), so a reload never disturbs handshakes or sessions in progress.
#[derive(Debug)]
pub struct ReloadableTls {
    inner: RwLock<Arc<TlsConfigs>>,
}

impl ReloadableTls {
    /// Start with already-built configs.
    pub fn new(configs: TlsConfigs) -> Self {
        Self { inner: RwLock::new(Arc::new(configs)) }
    }

    /// Build from options (reading the files now) and return the warnings.
    pub fn from_options(opts: &TlsOptions) -> Result<(Self, Vec<String>), TlsError> {
        let (configs, warnings) = build_configs(opts)?;
        Ok((Self::new(configs), warnings))
    }

    /// The combined config current now (see [`TlsConfigs::combined`]).
    pub fn current(&self) -> Arc<ServerConfig> {
        self.configs().combined()
    }

    /// All configs current now; take this once per connection.
    pub fn configs(&self) -> Arc<TlsConfigs> {
        // A panic while holding the lock cannot leave the Arc half-written.
        self.inner.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Rebuild from `opts` and swap atomically. On error the old configs stay
    /// in use, so a bad certificate pushed to disk does not take TLS down.
    pub fn reload(&self, opts: &TlsOptions) -> Result<Vec<String>, TlsError> {
        let (configs, warnings) = build_configs(opts)?;
        *self.inner.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(configs);
        Ok(warnings)
    }
}
