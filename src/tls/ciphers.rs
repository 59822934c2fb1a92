//! OpenSSL `--cipher-list` and `--ec-curve-name` mapped onto rustls.
//!
//! rustls (ring provider) offers three TLS 1.3 suites and six TLS 1.2 suites,
//! all ECDHE with AES-GCM or ChaCha20-Poly1305, and three key-exchange groups.
//! An OpenSSL cipher string is evaluated against that small table with
//! OpenSSL's rules, so strings from existing coturn configs keep their
//! meaning wherever rustls can follow it:
//! - elements are separated by `:`, `,` or spaces; `A+B` is the intersection
//!   of A and B; `!X` removes X for good, `-X` removes it (a later element can
//!   add it back), `+X` moves X to the end; `@STRENGTH` sorts by key length;
//!   `@SECLEVEL=n` is accepted and ignored;
//! - like OpenSSL's `SSL_CTX_set_cipher_list`, the string governs TLS 1.2;
//!   TLS 1.3 keeps all its suites unless the string names TLS 1.3 suites
//!   (`TLS_AES_128_GCM_SHA256`, ...), which OpenSSL configures separately
//!   with `-ciphersuites` and we accept in the same string;
//! - OpenSSL names that rustls cannot offer (CBC, RSA key exchange, DHE, ...)
//!   are warnings when the string asks for them and silent when it excludes
//!   them; if nothing usable is left, the rustls defaults are used with a
//!   warning rather than refusing to start.
//!
//! The server uses its own order (coturn sets `SSL_OP_CIPHER_SERVER_PREFERENCE`).

use rustls::crypto::ring::{cipher_suite as cs, kx_group};
use rustls::crypto::SupportedKxGroup;
use rustls::SupportedCipherSuite;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Auth {
    Ecdsa,
    Rsa,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Enc {
    Aes128Gcm,
    Aes256Gcm,
    Chacha20,
}

/// A TLS 1.2 suite with the attributes OpenSSL aliases select on.
struct Suite12 {
    suite: SupportedCipherSuite,
    openssl: &'static str,
    iana: &'static str,
    auth: Auth,
    enc: Enc,
}

/// A TLS 1.3 suite; OpenSSL and IANA names coincide.
struct Suite13 {
    suite: SupportedCipherSuite,
    name: &'static str,
    enc: Enc,
}

/// rustls' TLS 1.2 suites in rustls' default (server preference) order.
fn tls12_table() -> [Suite12; 6] {
    [
        Suite12 {
            suite: cs::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
            openssl: "ECDHE-ECDSA-AES256-GCM-SHA384",
            iana: "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
            auth: Auth::Ecdsa,
            enc: Enc::Aes256Gcm,
        },
        Suite12 {
            suite: cs::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
            openssl: "ECDHE-ECDSA-AES128-GCM-SHA256",
            iana: "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
            auth: Auth::Ecdsa,
            enc: Enc::Aes128Gcm,
        },
        Suite12 {
            suite: cs::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
            openssl: "ECDHE-ECDSA-CHACHA20-POLY1305",
            iana: "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
            auth: Auth::Ecdsa,
            enc: Enc::Chacha20,
        },
        Suite12 {
            suite: cs::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
            openssl: "ECDHE-RSA-AES256-GCM-SHA384",
            iana: "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
            auth: Auth::Rsa,
            enc: Enc::Aes256Gcm,
        },
        Suite12 {
            suite: cs::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
            openssl: "ECDHE-RSA-AES128-GCM-SHA256",
            iana: "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
            auth: Auth::Rsa,
            enc: Enc::Aes128Gcm,
        },
        Suite12 {
            suite: cs::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
            openssl: "ECDHE-RSA-CHACHA20-POLY1305",
            iana: "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
            auth: Auth::Rsa,
            enc: Enc::Chacha20,
        },
    ]
}

fn tls13_table() -> [Suite13; 3] {
    [
        Suite13 { suite: cs::TLS13_AES_256_GCM_SHA384, name: "TLS_AES_256_GCM_SHA384", enc: Enc::Aes256Gcm },
        Suite13 { suite: cs::TLS13_AES_128_GCM_SHA256, name: "TLS_AES_128_GCM_SHA256", enc: Enc::Aes128Gcm },
        Suite13 {
            suite: cs::TLS13_CHACHA20_POLY1305_SHA256,
            name: "TLS_CHACHA20_POLY1305_SHA256",
            enc: Enc::Chacha20,
        },
    ]
}

/// Key length in bits, for `@STRENGTH`.
fn strength(enc: Enc) -> u16 {
    match enc {
        Enc::Aes128Gcm => 128,
        Enc::Aes256Gcm | Enc::Chacha20 => 256,
    }
}

/// OpenSSL aliases that exist but select nothing rustls offers. Asking for
/// them positively warns; excluding them (`!aNULL`, `!MD5`...) is silent.
const EMPTY_ALIASES: &[&str] = &[
    "MEDIUM", "LOW", "EXPORT", "EXP", "EXPORT40", "EXPORT56", "eNULL", "NULL", "aNULL", "COMPLEMENTOFDEFAULT",
    "COMPLEMENTOFALL", "RC4", "RC2", "DES", "3DES", "IDEA", "SEED", "MD5", "SHA1", "SHA", "PSK", "kPSK", "aPSK",
    "ECDHEPSK", "kECDHEPSK", "DHEPSK", "kDHEPSK", "RSAPSK", "kRSAPSK", "SRP", "kSRP", "aSRP", "CAMELLIA",
    "CAMELLIA128", "CAMELLIA256", "ARIA", "ARIA128", "ARIA256", "ARIAGCM", "DSS", "aDSS", "DH", "kDH", "kDHr",
    "kDHd", "kDHE", "kEDH", "DHE", "EDH", "ADH", "AECDH", "aECDH", "kECDH", "kRSA", "AESCCM", "AESCCM8", "CBC",
    "GOST94", "GOST89MAC", "aGOST", "aGOST01", "kGOST", "TLSv1", "TLSv1.0", "SSLv3", "SSLv2", "aNULL",
    "kECDHr", "kECDHe", "aDH", "CHACHA20-POLY1305-PSK", "SUITEB128ONLY",
];

/// The TLS 1.2 table indices an alias or suite name selects; `None` when the
/// word is not an OpenSSL cipher word we know.
fn alias12(word: &str, table: &[Suite12]) -> Option<Vec<usize>> {
    let pick = |f: &dyn Fn(&Suite12) -> bool| -> Vec<usize> {
        table.iter().enumerate().filter(|(_, s)| f(s)).map(|(i, _)| i).collect()
    };
    if let Some(i) = table.iter().position(|s| s.openssl == word || s.iana.eq_ignore_ascii_case(word)) {
        return Some(vec![i]);
    }
    let sel = match word {
        "ALL" | "DEFAULT" | "HIGH" | "TLSv1.2" | "AEAD" | "ECDHE" | "EECDH" | "kECDHE" | "kEECDH" | "ECDH"
        | "FIPS" | "SHA2" => pick(&|_| true),
        "aECDSA" | "ECDSA" => pick(&|s| s.auth == Auth::Ecdsa),
        // OpenSSL: "RSA" selects RSA key exchange *or* authentication.
        "aRSA" | "RSA" => pick(&|s| s.auth == Auth::Rsa),
        "AES" | "AESGCM" => pick(&|s| s.enc != Enc::Chacha20),
        "AES128" => pick(&|s| s.enc == Enc::Aes128Gcm),
        // SHA256 as MAC/PRF: AES-128-GCM and ChaCha20-Poly1305 suites.
        "SHA256" => pick(&|s| s.enc != Enc::Aes256Gcm),
        "AES256" | "SHA384" => pick(&|s| s.enc == Enc::Aes256Gcm),
        "CHACHA20" => pick(&|s| s.enc == Enc::Chacha20),
        // Suite B: ECDSA with AES-GCM.
        "SUITEB128" | "SUITEB128C2" | "SUITEB192" => pick(&|s| s.auth == Auth::Ecdsa && s.enc != Enc::Chacha20),
        w if EMPTY_ALIASES.contains(&w) => Vec::new(),
        _ => return None,
    };
    Some(sel)
}

/// What a cipher list evaluates to.
#[derive(Debug, Clone)]
pub struct CipherSelection {
    /// TLS 1.3 suites, in server preference order.
    pub tls13: Vec<SupportedCipherSuite>,
    /// TLS 1.2 suites, in server preference order.
    pub tls12: Vec<SupportedCipherSuite>,
    /// Operator-facing warnings.
    pub warnings: Vec<String>,
}

impl CipherSelection {
    /// All suites, TLS 1.3 first, as a `CryptoProvider` wants them.
    pub fn all(&self) -> Vec<SupportedCipherSuite> {
        self.tls13.iter().chain(self.tls12.iter()).copied().collect()
    }
}

/// The rustls defaults (what `DEFAULT` or no `--cipher-list` gives).
pub fn default_selection() -> CipherSelection {
    CipherSelection {
        tls13: tls13_table().iter().map(|s| s.suite).collect(),
        tls12: tls12_table().iter().map(|s| s.suite).collect(),
        warnings: Vec::new(),
    }
}

/// Evaluate an OpenSSL cipher string (see the module doc for the rules).
pub fn map_cipher_list(list: &str) -> CipherSelection {
    let t12 = tls12_table();
    let t13 = tls13_table();
    let mut warnings = Vec::new();
    let mut sel12: Vec<usize> = Vec::new();
    let mut banned12: Vec<usize> = Vec::new();
    let mut sel13: Vec<usize> = Vec::new();
    let mut named13 = false;
    let mut removed13: Vec<usize> = Vec::new();
    let mut strength_sort = false;

    for element in list.split([':', ',', ' ', '\t']).filter(|e| !e.is_empty()) {
        // "DEFAULT@SECLEVEL=1" carries a directive after '@'.
        let (body, directives) = match element.split_once('@') {
            Some((b, d)) => (b, Some(d)),
            None => (element, None),
        };
        if let Some(d) = directives {
            for d in d.split('@') {
                if d.eq_ignore_ascii_case("STRENGTH") {
                    strength_sort = true;
                } else if !d.to_ascii_uppercase().starts_with("SECLEVEL=") {
                    warnings.push(format!("cipher-list: ignoring unknown directive '@{d}'"));
                }
            }
        }
        if body.is_empty() {
            continue;
        }
        let (op, words) = match body.as_bytes()[0] {
            b'!' | b'-' | b'+' => (body.as_bytes()[0], &body[1..]),
            _ => (b' ', body),
        };

        if let Some(i) = t13.iter().position(|s| s.name.eq_ignore_ascii_case(words)) {
            match op {
                b' ' => {
                    named13 = true;
                    if !sel13.contains(&i) && !removed13.contains(&i) {
                        sel13.push(i);
                    }
                }
                b'+' => {
                    if let Some(p) = sel13.iter().position(|&x| x == i) {
                        sel13.remove(p);
                        sel13.push(i);
                    }
                }
                _ => {
                    sel13.retain(|&x| x != i);
                    removed13.push(i);
                }
            }
            continue;
        }

        // "A+B+C": the suites every part selects.
        let mut matched: Option<Vec<usize>> = None;
        let mut unknown = None;
        for part in words.split('+') {
            match alias12(part, &t12) {
                Some(set) => {
                    matched = Some(match matched {
                        None => set,
                        Some(prev) => prev.into_iter().filter(|i| set.contains(i)).collect(),
                    })
                }
                None => {
                    unknown = Some(part);
                    break;
                }
            }
        }
        let set = match (unknown, matched) {
            (None, Some(set)) => set,
            (Some(part), _) => {
                if op == b' ' {
                    warnings.push(format!(
                        "cipher-list: ignoring '{words}': '{part}' is unknown or not a cipher rustls offers \
                         (rustls has only ECDHE with AES-GCM or ChaCha20-Poly1305)"
                    ));
                }
                continue;
            }
            (None, None) => continue,
        };
        match op {
            b' ' => {
                if set.is_empty() {
                    warnings.push(format!("cipher-list: '{words}' selects no cipher rustls offers; ignored"));
                }
                for i in set {
                    if !sel12.contains(&i) && !banned12.contains(&i) {
                        sel12.push(i);
                    }
                }
            }
            b'-' => sel12.retain(|i| !set.contains(i)),
            b'!' => {
                sel12.retain(|i| !set.contains(i));
                banned12.extend(set);
            }
            _ => {
                let (moved, kept): (Vec<usize>, Vec<usize>) = sel12.iter().partition(|i| set.contains(i));
                sel12 = kept;
                sel12.extend(moved);
            }
        }
    }

    if strength_sort {
        // Stable: equal strengths keep their relative order, as in OpenSSL.
        sel12.sort_by_key(|&i| std::cmp::Reverse(strength(t12[i].enc)));
        sel13.sort_by_key(|&i| std::cmp::Reverse(strength(t13[i].enc)));
    }
    let tls13: Vec<SupportedCipherSuite> = if named13 {
        sel13.iter().map(|&i| t13[i].suite).collect()
    } else {
        t13.iter().enumerate().filter(|(i, _)| !removed13.contains(i)).map(|(_, s)| s.suite).collect()
    };
    let tls12: Vec<SupportedCipherSuite> = sel12.iter().map(|&i| t12[i].suite).collect();

    if tls12.is_empty() && !named13 {
        warnings.push(format!(
            "cipher-list '{list}' selects no cipher suite rustls offers; using the rustls defaults"
        ));
        let mut d = default_selection();
        d.warnings = warnings;
        return d;
    }
    if tls12.is_empty() {
        warnings.push(format!("cipher-list '{list}' selects no TLS 1.2 suite: only TLS 1.3 clients can connect"));
    }
    if tls13.is_empty() {
        warnings.push(format!("cipher-list '{list}' excludes every TLS 1.3 suite: only TLS 1.2 clients can connect"));
    }
    CipherSelection { tls13, tls12, warnings }
}

/// Map `--ec-curve-name` (OpenSSL short names; a `:`-separated list is also
/// accepted) to rustls key-exchange groups. Unknown or unsupported names are
/// warnings; if none is usable the defaults are kept.
pub fn map_curves(names: &str) -> (Vec<&'static dyn SupportedKxGroup>, Vec<String>) {
    let mut groups: Vec<&'static dyn SupportedKxGroup> = Vec::new();
    let mut warnings = Vec::new();
    for name in names.split([':', ',']).map(str::trim).filter(|n| !n.is_empty()) {
        let g = match name.to_ascii_lowercase().as_str() {
            "prime256v1" | "secp256r1" | "p-256" | "p256" => Some(kx_group::SECP256R1),
            "secp384r1" | "p-384" | "p384" => Some(kx_group::SECP384R1),
            "x25519" => Some(kx_group::X25519),
            "secp521r1" | "p-521" | "p521" | "x448" | "secp224r1" | "p-224" | "brainpoolp256r1"
            | "brainpoolp384r1" | "brainpoolp512r1" | "secp256k1" | "prime192v1" => {
                warnings.push(format!(
                    "ec-curve-name: curve '{name}' is not supported by rustls (supported: prime256v1, secp384r1, X25519)"
                ));
                None
            }
            _ => {
                warnings.push(format!("ec-curve-name: unknown curve name '{name}'"));
                None
            }
        };
        if let Some(g) = g {
            if !groups.iter().any(|x| x.name() == g.name()) {
                groups.push(g);
            }
        }
    }
    if groups.is_empty() {
        warnings.push("ec-curve-name: no usable curve; using the defaults (X25519, prime256v1, secp384r1)".into());
        groups = rustls::crypto::ring::DEFAULT_KX_GROUPS.to_vec();
    }
    (groups, warnings)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::CipherSuite as C;

    fn ids(v: &[SupportedCipherSuite]) -> Vec<C> {
        v.iter().map(|s| s.suite()).collect()
    }

    const ALL12: [C; 6] = [
        C::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
        C::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
        C::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
        C::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
        C::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
        C::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
    ];
    const ALL13: [C; 3] =
        [C::TLS13_AES_256_GCM_SHA384, C::TLS13_AES_128_GCM_SHA256, C::TLS13_CHACHA20_POLY1305_SHA256];

    #[test]
    fn aliases_select_everything() {
        for s in ["DEFAULT", "ALL", "HIGH", "HIGH:!aNULL:!MD5", "ALL:!EXPORT:!LOW:@STRENGTH", "DEFAULT@SECLEVEL=1"] {
            let m = map_cipher_list(s);
            assert_eq!(ids(&m.tls13), ALL13, "{s}");
            let mut got = ids(&m.tls12);
            got.sort_by_key(|c| u16::from(*c));
            let mut want = ALL12.to_vec();
            want.sort_by_key(|c| u16::from(*c));
            assert_eq!(got, want, "{s}");
            assert!(m.warnings.is_empty(), "{s}: {:?}", m.warnings);
        }
    }

    #[test]
    fn single_names() {
        let m = map_cipher_list("ECDHE-ECDSA-AES128-GCM-SHA256");
        assert_eq!(ids(&m.tls12), [C::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256]);
        // TLS 1.3 is governed separately, as in OpenSSL.
        assert_eq!(ids(&m.tls13), ALL13);
        let m = map_cipher_list("TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,ECDHE-RSA-AES256-GCM-SHA384");
        assert_eq!(
            ids(&m.tls12),
            [C::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256, C::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384]
        );
    }

    #[test]
    fn tls13_names_restrict_tls13() {
        let m = map_cipher_list("TLS_AES_128_GCM_SHA256:ECDHE-RSA-AES128-GCM-SHA256");
        assert_eq!(ids(&m.tls13), [C::TLS13_AES_128_GCM_SHA256]);
        assert_eq!(ids(&m.tls12), [C::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256]);
        assert!(m.warnings.is_empty());
        let m = map_cipher_list("TLS_CHACHA20_POLY1305_SHA256");
        assert_eq!(ids(&m.tls13), [C::TLS13_CHACHA20_POLY1305_SHA256]);
        assert!(m.tls12.is_empty());
        assert!(m.warnings.iter().any(|w| w.contains("no TLS 1.2 suite")));
        let m = map_cipher_list("HIGH:!TLS_CHACHA20_POLY1305_SHA256");
        assert_eq!(ids(&m.tls13), [C::TLS13_AES_256_GCM_SHA384, C::TLS13_AES_128_GCM_SHA256]);
    }

    #[test]
    fn modifiers_and_combinations() {
        let m = map_cipher_list("ECDHE+AESGCM:ECDHE+CHACHA20:!aRSA");
        assert_eq!(
            ids(&m.tls12),
            [
                C::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
                C::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
                C::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256
            ]
        );
        // '-' allows re-adding, '!' does not.
        let m = map_cipher_list("ALL:-CHACHA20:CHACHA20");
        assert_eq!(ids(&m.tls12).len(), 6);
        assert_eq!(
            ids(&m.tls12)[4..],
            [C::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256, C::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256]
        );
        let m = map_cipher_list("ALL:!CHACHA20:CHACHA20");
        assert_eq!(ids(&m.tls12).len(), 4);
        // '+X' moves to the end.
        let m = map_cipher_list("ALL:+AES256");
        assert_eq!(
            ids(&m.tls12)[4..],
            [C::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, C::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384]
        );
        // @STRENGTH puts the 256-bit suites first, stable otherwise.
        let m = map_cipher_list("AES128:AES256:@STRENGTH");
        assert_eq!(
            ids(&m.tls12),
            [
                C::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
                C::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
                C::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
                C::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
            ]
        );
        let m = map_cipher_list("SHA256:AES256:@STRENGTH");
        assert_eq!(
            ids(&m.tls12),
            [
                C::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
                C::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
                C::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
                C::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
                C::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
                C::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
            ]
        );
    }

    #[test]
    fn unmappable_names_warn_and_fall_back() {
        let m = map_cipher_list("AES128-SHA:DHE-RSA-AES256-SHA:ECDHE-RSA-AES128-GCM-SHA256");
        assert_eq!(ids(&m.tls12), [C::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256]);
        assert_eq!(m.warnings.len(), 2, "{:?}", m.warnings);
        assert!(m.warnings[0].contains("AES128-SHA"));
        let m = map_cipher_list("RC4-SHA:MEDIUM");
        assert_eq!(ids(&m.tls12).len(), 6);
        assert_eq!(ids(&m.tls13), ALL13);
        assert!(m.warnings.last().is_some_and(|w| w.contains("using the rustls defaults")), "{:?}", m.warnings);
        assert!(m.warnings.iter().any(|w| w.contains("'MEDIUM' selects no cipher")));
        // Exclusions of things rustls never offers are silent.
        let m = map_cipher_list("ECDHE-RSA-AES256-GCM-SHA384:!RC4:!3DES:!DSS:!PSK:!FOOBAR");
        assert!(m.warnings.is_empty(), "{:?}", m.warnings);
        let m = map_cipher_list("HIGH:@FOO");
        assert!(m.warnings.iter().any(|w| w.contains("@FOO")));
    }

    #[test]
    fn curves() {
        let (g, w) = map_curves("prime256v1");
        assert_eq!(g.len(), 1);
        assert_eq!(g[0].name(), rustls::NamedGroup::secp256r1);
        assert!(w.is_empty());
        let (g, w) = map_curves("X25519:secp384r1");
        assert_eq!(g.iter().map(|g| g.name()).collect::<Vec<_>>(), [rustls::NamedGroup::X25519, rustls::NamedGroup::secp384r1]);
        assert!(w.is_empty());
        let (g, w) = map_curves("secp521r1");
        assert_eq!(g.len(), 3);
        assert_eq!(w.len(), 2);
        assert!(w[0].contains("not supported by rustls"));
        let (_, w) = map_curves("nonsense");
        assert!(w[0].contains("unknown curve name 'nonsense'"));
    }
}
