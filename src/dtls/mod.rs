//! DTLS 1.2 server sessions for the TLS port (coturn's `--dtls`), sans-IO.
//!
//! The stack is the system OpenSSL (the `openssl` crate over Debian's
//! `libssl3`), driven through an in-memory datagram pipe: the owner of the UDP
//! socket (a relay thread's mio loop) hands each received datagram to the
//! peer's [`DtlsSession`] and sends whatever datagrams the session queues. No
//! thread, task, socket or clock read lives in here except OpenSSL's own
//! retransmission timer, which the owner drives with [`DtlsSession::poll_timeout`]
//! and [`DtlsSession::handle_timeout`].
//!
//! ```text
//! let server = DtlsServer::new(cert_pem, key_pem)?;          // once, cloned per thread
//! // first datagram from an unknown peer: HVR (no state) or, with a valid cookie, a session
//! let Some(mut s) = server.accept_datagram(now, peer, datagram, &mut out)? else { send out; return };
//! s.handle_datagram(now, datagram, &mut out, &mut app)?;       // every datagram from it
//! for d in out.drain(..) { socket.send_to(&d, peer) }          // handshake flights, replies
//! for m in app.drain(..) { /* decrypted STUN/ChannelData */ }
//! s.send(&reply, &mut out)?;                                    // encrypt an answer
//! if s.poll_timeout().is_some_and(|t| t <= now) { s.handle_timeout(now, &mut out)? }
//! ```
//!
//! Cookie exchange (HelloVerifyRequest) is on: a ClientHello without a valid
//! cookie gets a small HelloVerifyRequest and nothing else, so a spoofed source
//! cannot make the server send a certificate flight (no amplification). The
//! cookie is an HMAC over the peer's address with a per-server random key.

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use foreign_types::ForeignTypeRef;
use hmac::{Hmac, Mac};
use openssl::ex_data::Index;
use openssl::pkey::PKey;
use openssl::ssl::{ErrorCode, Ssl, SslContext, SslMethod, SslOptions, SslStream, SslVerifyMode};
use openssl::x509::X509;
use sha2::Sha256;

/// Default path MTU for handshake fragmentation: fits IPv6's 1280 minimum
/// after IP and UDP headers, like coturn's default DTLS MTU handling.
pub const DEFAULT_MTU: u32 = 1200;

/// Largest datagram the session accepts or OpenSSL may emit (a full DTLS record).
const MAX_DATAGRAM: usize = 16384 + 2048;

/// Length of the HelloVerifyRequest cookie (HMAC-SHA256 truncated).
const COOKIE_LEN: usize = 20;

/// `SSL_ctrl` commands behind the `DTLSv1_get_timeout` / `DTLSv1_handle_timeout`
/// macros (ssl.h: `DTLS_CTRL_GET_TIMEOUT`, `DTLS_CTRL_HANDLE_TIMEOUT`).
const DTLS_CTRL_GET_TIMEOUT: libc::c_int = 73;
const DTLS_CTRL_HANDLE_TIMEOUT: libc::c_int = 74;

/// Why a DTLS operation failed.
#[derive(Debug, thiserror::Error)]
pub enum DtlsError {
    /// Certificate, key or context setup (bad PEM, key not matching, ...).
    #[error("DTLS configuration: {0}")]
    Config(String),
    /// The handshake failed (alert sent or received, protocol violation,
    /// retransmissions exhausted). The session is dead; drop it.
    #[error("DTLS handshake failed: {0}")]
    Handshake(String),
    /// A fatal error after the handshake. The session is dead; drop it.
    #[error("DTLS session failed: {0}")]
    Session(String),
    /// Application data was offered before the handshake completed.
    #[error("DTLS handshake not complete")]
    NotReady,
    /// The peer closed the session (close_notify) or it was closed locally.
    #[error("DTLS session closed")]
    Closed,
}

/// Server-wide settings.
#[derive(Debug, Clone)]
pub struct DtlsConfig {
    /// Path MTU used to fragment handshake messages (bytes of DTLS payload).
    pub mtu: u32,
    /// OpenSSL cipher list (coturn's `--cipher-list`); `None` keeps OpenSSL's
    /// (system policy) default, as coturn does.
    pub cipher_list: Option<String>,
    /// Refuse DTLS 1.0 (coturn's `--no-tlsv1` style). Default false: whatever
    /// the system OpenSSL policy allows, as coturn does.
    pub dtls12_only: bool,
}

impl Default for DtlsConfig {
    fn default() -> Self {
        DtlsConfig { mtu: DEFAULT_MTU, cipher_list: None, dtls12_only: false }
    }
}

/// The shared server side: certificate, key, cookie secret. Cheap to clone
/// (reference-counted); one clone per relay thread. [`DtlsServer::reload`]
/// swaps the certificate for every clone at once: new handshakes use the new
/// one, established sessions keep theirs.
#[derive(Clone)]
pub struct DtlsServer {
    inner: Arc<std::sync::RwLock<Inner>>,
    config: DtlsConfig,
}

/// One certificate's context and the ex-data slot its cookie callbacks read.
#[derive(Clone)]
struct Inner {
    ctx: SslContext,
    peer_index: Index<Ssl, SocketAddr>,
}

impl DtlsServer {
    /// Server with the default [`DtlsConfig`]. `cert_pem` is the certificate
    /// chain (leaf first, as in coturn's `cert=` file); `key_pem` the private
    /// key (`pkey=`): RSA, ECDSA (P-256/P-384/P-521) or Ed25519, PKCS#1/SEC1/PKCS#8.
    pub fn new(cert_pem: &[u8], key_pem: &[u8]) -> Result<Self, DtlsError> {
        Self::with_config(cert_pem, key_pem, &DtlsConfig::default())
    }

    pub fn with_config(cert_pem: &[u8], key_pem: &[u8], config: &DtlsConfig) -> Result<Self, DtlsError> {
        let inner = Self::context(cert_pem, key_pem, config)?;
        Ok(DtlsServer { inner: Arc::new(std::sync::RwLock::new(inner)), config: config.clone() })
    }

    /// Use a new certificate and key for handshakes from now on (SIGUSR2,
    /// SIGHUP). On error the old ones stay.
    pub fn reload(&self, cert_pem: &[u8], key_pem: &[u8]) -> Result<(), DtlsError> {
        let inner = Self::context(cert_pem, key_pem, &self.config)?;
        match self.inner.write() {
            Ok(mut g) => *g = inner,
            Err(e) => *e.into_inner() = inner,
        }
        Ok(())
    }

    fn current(&self) -> Inner {
        match self.inner.read() {
            Ok(g) => g.clone(),
            Err(e) => e.into_inner().clone(),
        }
    }

    fn context(cert_pem: &[u8], key_pem: &[u8], config: &DtlsConfig) -> Result<Inner, DtlsError> {
        let cfg = |what: &str, e: openssl::error::ErrorStack| DtlsError::Config(format!("{what}: {e}"));
        let chain = X509::stack_from_pem(cert_pem).map_err(|e| cfg("certificate PEM", e))?;
        let mut chain = chain.into_iter();
        let leaf = chain.next().ok_or_else(|| DtlsError::Config("no certificate in PEM".into()))?;
        let key = PKey::private_key_from_pem(key_pem).map_err(|e| cfg("private key PEM", e))?;

        let mut b = SslContext::builder(SslMethod::dtls()).map_err(|e| cfg("SSL_CTX_new", e))?;
        b.set_certificate(&leaf).map_err(|e| cfg("certificate", e))?;
        for extra in chain {
            b.add_extra_chain_cert(extra).map_err(|e| cfg("chain certificate", e))?;
        }
        b.set_private_key(&key).map_err(|e| cfg("private key", e))?;
        b.check_private_key().map_err(|e| cfg("key does not match certificate", e))?;
        if let Some(list) = &config.cipher_list {
            b.set_cipher_list(list).map_err(|e| cfg("cipher list", e))?;
        }
        if config.dtls12_only {
            b.set_min_proto_version(Some(openssl::ssl::SslVersion::DTLS1_2))
                .map_err(|e| cfg("min protocol", e))?;
        }
        b.set_verify(SslVerifyMode::NONE);
        // We size fragments ourselves (there is no socket to ask); cookies on.
        b.set_options(SslOptions::NO_QUERY_MTU | SslOptions::COOKIE_EXCHANGE | SslOptions::NO_RENEGOTIATION);

        let peer_index = Ssl::new_ex_index::<SocketAddr>().map_err(|e| cfg("ex_data index", e))?;
        let mut secret = [0u8; 32];
        openssl::rand::rand_bytes(&mut secret).map_err(|e| cfg("RAND_bytes", e))?;
        let secret = Arc::new(secret);
        let gen_secret = Arc::clone(&secret);
        b.set_cookie_generate_cb(move |ssl, buf| {
            let peer = ssl.ex_data(peer_index).copied();
            let cookie = make_cookie(&gen_secret, peer);
            let n = cookie.len().min(buf.len());
            buf[..n].copy_from_slice(&cookie[..n]);
            Ok(n)
        });
        b.set_cookie_verify_cb(move |ssl, cookie| {
            let peer = ssl.ex_data(peer_index).copied();
            let expected = make_cookie(&secret, peer);
            cookie.len() == expected.len() && crate::stun::integrity::ct_eq(cookie, &expected)
        });
        Ok(Inner { ctx: b.build(), peer_index })
    }

    /// A new server-side session for `peer`, to be fed its datagrams. Create it
    /// on the first datagram that [`looks_like_dtls_handshake`] accepts.
    pub fn accept(&self, peer: SocketAddr) -> Result<DtlsSession, DtlsError> {
        let cfg = |what: &str, e: openssl::error::ErrorStack| DtlsError::Config(format!("{what}: {e}"));
        let inner = self.current();
        let mut ssl = Ssl::new(&inner.ctx).map_err(|e| cfg("SSL_new", e))?;
        ssl.set_ex_data(inner.peer_index, peer);
        ssl.set_accept_state();
        ssl.set_mtu(self.config.mtu).map_err(|e| cfg("SSL_set_mtu", e))?;
        let stream = SslStream::new(ssl, DatagramPipe::default()).map_err(|e| cfg("SSL BIO", e))?;
        Ok(DtlsSession { stream, peer, established: false, closed: false, deadline: None })
    }
}

impl DtlsServer {
    /// Stateless front door (the cookie exchange of RFC 6347 4.2.1 done the way
    /// `DTLSv1_listen` does it): for a datagram from a peer that has no
    /// session yet. A ClientHello without a valid cookie gets a
    /// HelloVerifyRequest appended to `out` and `Ok(None)`: nothing about the
    /// peer is kept, so spoofed sources cost one short-lived `SSL` object and
    /// one small reply each. A ClientHello carrying a valid cookie returns the
    /// new session, already past its first step (its ServerHello flight is in
    /// `out`). Anything else is dropped (`Ok(None)`, nothing sent).
    pub fn accept_datagram(
        &self,
        now: Instant,
        peer: SocketAddr,
        data: &[u8],
        out: &mut Vec<Vec<u8>>,
    ) -> Result<Option<DtlsSession>, DtlsError> {
        if !looks_like_dtls_handshake(data) || data.len() > MAX_DATAGRAM {
            return Ok(None);
        }
        let mut session = self.accept(peer)?;
        session.stream.get_mut().incoming.push_back(data.to_vec());
        // SAFETY: BIO_ADDR_new returns an owned, zeroed BIO_ADDR (or null);
        // DTLSv1_listen only reads the SSL's BIOs (our pipe) and writes the
        // address; the address is freed before returning.
        let listened = unsafe {
            let addr = ffi_ext::BIO_ADDR_new();
            if addr.is_null() {
                return Err(DtlsError::Config("BIO_ADDR_new failed".into()));
            }
            let r = ffi_ext::DTLSv1_listen(session.stream.ssl().as_ptr(), addr);
            ffi_ext::BIO_ADDR_free(addr);
            r
        };
        out.append(&mut session.stream.get_mut().outgoing);
        if listened <= 0 {
            // 0: HelloVerifyRequest sent or datagram ignored; <0: fatal parse error.
            openssl::error::ErrorStack::get(); // drain OpenSSL's thread error queue
            return Ok(None);
        }
        // Cookie verified; the ClientHello is buffered inside the SSL: continue.
        let mut app = Vec::new();
        let r = session.drive(&mut app);
        session.collect(now, out);
        r.map(|()| Some(session))
    }
}

/// libssl/libcrypto symbols the `openssl-sys` bindings leave out (linked by it).
mod ffi_ext {
    use libc::{c_int, c_void};
    extern "C" {
        pub fn DTLSv1_listen(s: *mut openssl_sys::SSL, client: *mut c_void) -> c_int;
        pub fn BIO_ADDR_new() -> *mut c_void;
        pub fn BIO_ADDR_free(a: *mut c_void);
    }
}

fn make_cookie(secret: &[u8; 32], peer: Option<SocketAddr>) -> [u8; COOKIE_LEN] {
    // Hmac::new_from_slice accepts any key length; the fallback is unreachable.
    let mut out = [0u8; COOKIE_LEN];
    if let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret) {
        match peer {
            Some(SocketAddr::V4(a)) => {
                mac.update(&a.ip().octets());
                mac.update(&a.port().to_be_bytes());
            }
            Some(SocketAddr::V6(a)) => {
                mac.update(&a.ip().octets());
                mac.update(&a.port().to_be_bytes());
            }
            None => mac.update(b"no-peer"),
        }
        let tag = mac.finalize().into_bytes();
        out.copy_from_slice(&tag[..COOKIE_LEN]);
    }
    out
}

/// RFC 7983 demultiplexing: a datagram whose first byte is 20..=63 is DTLS
/// (STUN starts with 0..=3, ChannelData with 64..=79).
pub fn looks_like_dtls(data: &[u8]) -> bool {
    matches!(data.first(), Some(20..=63))
}

/// True for a datagram that can open a session: a DTLS handshake record
/// (content type 22) with a DTLS version. Use it before [`DtlsServer::accept`]
/// so stray bytes do not create per-peer state.
pub fn looks_like_dtls_handshake(data: &[u8]) -> bool {
    // type(1) version(2) epoch(2) seq(6) length(2), then handshake type 1 = ClientHello.
    data.len() >= 14 && data[0] == 22 && data[1] == 0xFE && data[13] == 1
}

/// Key type for [`generate_self_signed`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    Rsa2048,
    EcdsaP256,
}

/// A throw-away self-signed certificate and key as PEM (certificate, key),
/// for tests and probes: CN and subjectAltName `localhost`, valid 2 days.
pub fn generate_self_signed(kind: KeyKind) -> Result<(Vec<u8>, Vec<u8>), DtlsError> {
    use openssl::asn1::Asn1Time;
    use openssl::bn::BigNum;
    use openssl::ec::{EcGroup, EcKey};
    use openssl::hash::MessageDigest;
    use openssl::nid::Nid;
    use openssl::rsa::Rsa;
    use openssl::x509::extension::SubjectAlternativeName;
    use openssl::x509::{X509Builder, X509NameBuilder};

    let e = |what: &str, e: openssl::error::ErrorStack| DtlsError::Config(format!("{what}: {e}"));
    let key = match kind {
        KeyKind::Rsa2048 => Rsa::generate(2048).and_then(PKey::from_rsa).map_err(|x| e("RSA key", x))?,
        KeyKind::EcdsaP256 => EcGroup::from_curve_name(Nid::X9_62_PRIME256V1)
            .and_then(|g| EcKey::generate(&g))
            .and_then(PKey::from_ec_key)
            .map_err(|x| e("EC key", x))?,
    };
    let build = || -> Result<X509, openssl::error::ErrorStack> {
        let mut name = X509NameBuilder::new()?;
        name.append_entry_by_nid(Nid::COMMONNAME, "localhost")?;
        let name = name.build();
        let mut b = X509Builder::new()?;
        b.set_version(2)?;
        let serial = BigNum::from_u32(1)?.to_asn1_integer()?;
        b.set_serial_number(&serial)?;
        b.set_subject_name(&name)?;
        b.set_issuer_name(&name)?;
        b.set_pubkey(&key)?;
        b.set_not_before(Asn1Time::days_from_now(0)?.as_ref())?;
        b.set_not_after(Asn1Time::days_from_now(2)?.as_ref())?;
        let san = SubjectAlternativeName::new().dns("localhost").build(&b.x509v3_context(None, None))?;
        b.append_extension(san)?;
        b.sign(&key, MessageDigest::sha256())?;
        Ok(b.build())
    };
    let cert = build().map_err(|x| e("certificate", x))?;
    let cert_pem = cert.to_pem().map_err(|x| e("certificate PEM", x))?;
    let key_pem = key.private_key_to_pem_pkcs8().map_err(|x| e("key PEM", x))?;
    Ok((cert_pem, key_pem))
}

/// One peer's DTLS session. Owned by the thread that owns the socket.
pub struct DtlsSession {
    stream: SslStream<DatagramPipe>,
    peer: SocketAddr,
    established: bool,
    closed: bool,
    deadline: Option<Instant>,
}

impl DtlsSession {
    pub fn peer(&self) -> SocketAddr {
        self.peer
    }

    /// The handshake has completed; [`send`](Self::send) may be used.
    pub fn is_established(&self) -> bool {
        self.established
    }

    /// A close_notify was received or sent; drop the session.
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// Negotiated cipher suite (OpenSSL name), once established.
    pub fn cipher(&self) -> Option<&'static str> {
        self.stream.ssl().current_cipher().map(|c| c.name())
    }

    /// Negotiated protocol version ("DTLSv1.2").
    pub fn version(&self) -> &'static str {
        self.stream.ssl().version_str()
    }

    /// Feed one datagram received from the peer. Datagrams to send back
    /// (handshake flights, alerts) are appended to `out`; decrypted
    /// application records (one STUN message or ChannelData each, normally)
    /// are appended to `app`. Records that fail authentication are dropped
    /// silently by OpenSSL, as DTLS requires; an `Err` means the session is dead.
    pub fn handle_datagram(
        &mut self,
        now: Instant,
        data: &[u8],
        out: &mut Vec<Vec<u8>>,
        app: &mut Vec<Vec<u8>>,
    ) -> Result<(), DtlsError> {
        if self.closed {
            return Err(DtlsError::Closed);
        }
        if data.is_empty() || data.len() > MAX_DATAGRAM {
            return Ok(());
        }
        self.stream.get_mut().incoming.push_back(data.to_vec());
        let result = self.drive(app);
        self.collect(now, out);
        result
    }

    /// Encrypt `app_data` as one record; the datagram is appended to `out`.
    pub fn send(&mut self, app_data: &[u8], out: &mut Vec<Vec<u8>>) -> Result<(), DtlsError> {
        if self.closed {
            return Err(DtlsError::Closed);
        }
        if !self.established {
            return Err(DtlsError::NotReady);
        }
        if app_data.is_empty() {
            return Ok(());
        }
        let r = self.stream.ssl_write(app_data);
        out.append(&mut self.stream.get_mut().outgoing);
        match r {
            Ok(_) => Ok(()),
            Err(e) => {
                self.closed = true;
                Err(DtlsError::Session(e.to_string()))
            }
        }
    }

    /// When OpenSSL wants [`handle_timeout`](Self::handle_timeout) called
    /// (handshake flight retransmission); `None` when no timer runs.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.deadline
    }

    /// Retransmit the last flight if its timer has expired (appending to
    /// `out`). `Err` when OpenSSL gave up (too many retransmissions).
    pub fn handle_timeout(&mut self, now: Instant, out: &mut Vec<Vec<u8>>) -> Result<(), DtlsError> {
        if self.closed {
            return Ok(());
        }
        if self.deadline.is_some_and(|d| d <= now) {
            // SAFETY: the SSL pointer is valid for the life of self.stream; the
            // command takes no argument.
            let r = unsafe {
                openssl_sys::SSL_ctrl(self.stream.ssl().as_ptr(), DTLS_CTRL_HANDLE_TIMEOUT, 0, std::ptr::null_mut())
            };
            if r < 0 {
                self.closed = true;
                self.collect(now, out);
                return Err(DtlsError::Handshake("retransmissions exhausted".into()));
            }
        }
        self.collect(now, out);
        Ok(())
    }

    /// Send close_notify (appended to `out`) and mark the session closed.
    pub fn close(&mut self, out: &mut Vec<Vec<u8>>) {
        if !self.closed && self.established {
            let _ = self.stream.shutdown();
        }
        self.closed = true;
        self.deadline = None;
        out.append(&mut self.stream.get_mut().outgoing);
    }

    fn drive(&mut self, app: &mut Vec<Vec<u8>>) -> Result<(), DtlsError> {
        if !self.established {
            match self.stream.do_handshake() {
                Ok(()) => self.established = true,
                Err(e) if e.code() == ErrorCode::WANT_READ || e.code() == ErrorCode::WANT_WRITE => return Ok(()),
                Err(e) => {
                    self.closed = true;
                    return Err(DtlsError::Handshake(e.to_string()));
                }
            }
        }
        let mut buf = vec![0u8; MAX_DATAGRAM];
        loop {
            match self.stream.ssl_read(&mut buf) {
                Ok(0) => return Ok(()),
                Ok(n) => app.push(buf[..n].to_vec()),
                Err(e) if e.code() == ErrorCode::WANT_READ || e.code() == ErrorCode::WANT_WRITE => return Ok(()),
                Err(e) if e.code() == ErrorCode::ZERO_RETURN => {
                    self.closed = true;
                    return Err(DtlsError::Closed);
                }
                Err(e) => {
                    self.closed = true;
                    return Err(DtlsError::Session(e.to_string()));
                }
            }
        }
    }

    /// Move queued datagrams to `out` and re-read OpenSSL's timer.
    fn collect(&mut self, now: Instant, out: &mut Vec<Vec<u8>>) {
        out.append(&mut self.stream.get_mut().outgoing);
        self.deadline = if self.closed { None } else { self.timer_remaining().map(|d| now + d) };
    }

    fn timer_remaining(&self) -> Option<Duration> {
        let mut tv = libc::timeval { tv_sec: 0, tv_usec: 0 };
        // SAFETY: DTLS_CTRL_GET_TIMEOUT writes one `struct timeval` through parg.
        let r = unsafe {
            openssl_sys::SSL_ctrl(
                self.stream.ssl().as_ptr(),
                DTLS_CTRL_GET_TIMEOUT,
                0,
                &mut tv as *mut libc::timeval as *mut libc::c_void,
            )
        };
        if r <= 0 {
            return None;
        }
        let secs = u64::try_from(tv.tv_sec).unwrap_or(0);
        let micros = u32::try_from(tv.tv_usec).unwrap_or(0);
        Some(Duration::from_secs(secs) + Duration::from_micros(u64::from(micros)))
    }
}

/// The BIO OpenSSL reads and writes: one `read` is one whole datagram, one
/// `write` is one whole datagram (OpenSSL writes DTLS record by record,
/// sized to the MTU during the handshake).
#[derive(Default)]
struct DatagramPipe {
    incoming: VecDeque<Vec<u8>>,
    outgoing: Vec<Vec<u8>>,
}

impl Read for DatagramPipe {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.incoming.pop_front() {
            Some(d) => {
                // A datagram larger than OpenSSL's buffer is truncated, as a
                // datagram socket would; the record then fails and is dropped.
                let n = d.len().min(buf.len());
                buf[..n].copy_from_slice(&d[..n]);
                Ok(n)
            }
            None => Err(io::ErrorKind::WouldBlock.into()),
        }
    }
}

impl Write for DatagramPipe {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.outgoing.push(buf.to_vec());
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests;
