//! The backend-independent cases every user database must pass.
//!
//! [`run_suite`] uses only the public [`UserDb`] API, writes and reads back
//! every kind of row, and expects a fresh, empty database (each backend test
//! makes its own). It checks coturn's semantics: writes of an existing key
//! replace it, adds are idempotent, a realm option of "0" removes it, the
//! `list_*` calls are ordered by realm and then by name (origin, value, opt,
//! range; oauth keys by kid), the realm filter of a `list_*` call returns that realm only, and
//! values with quotes or SQL/Redis-looking text are stored verbatim.

use turnserver::core::oauth::OauthKeyRow;
use turnserver::userdb::{AdminUser, DbError, PeerList, PeerRange, RealmOption, UserDb};

const RA: &str = "a.suite.example";
const RB: &str = "b.suite.example";

fn pair(a: &str, b: &str) -> (String, String) {
    (a.to_string(), b.to_string())
}

fn ok<T>(what: &str, r: Result<T, DbError>) -> T {
    match r {
        Ok(v) => v,
        Err(e) => panic!("{what}: {e}"),
    }
}

fn opt(realm: &str, o: &str, v: &str) -> RealmOption {
    RealmOption {
        realm: realm.into(),
        opt: o.into(),
        value: v.into(),
    }
}

fn range(realm: &str, r: &str) -> PeerRange {
    PeerRange {
        realm: realm.into(),
        range: r.into(),
    }
}

/// Runs every case against `db` (see the module docs).
pub async fn run_suite(db: &UserDb) {
    ok("ping", db.ping().await);
    users(db).await;
    secrets(db).await;
    origins(db).await;
    realm_options(db).await;
    peer_ranges(db).await;
    admins(db).await;
    oauth_keys(db).await;
    ok("ping at the end", db.ping().await);
}

async fn users(db: &UserDb) {
    let k1 = "0123456789abcdef0123456789abcdef";
    let k2 = "fedcba9876543210fedcba9876543210";
    // SHA-256 realms store a 64-hex key; it comes back as stored.
    let k3 = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
    assert_eq!(
        ok(
            "get_user_key on empty db",
            db.get_user_key(RA, "alice").await
        ),
        None,
        "a fresh database has no user alice"
    );
    assert_eq!(ok("list_users empty", db.list_users(None).await), vec![]);

    ok("set alice", db.set_user_key(RA, "alice", k1).await);
    assert_eq!(
        ok("get alice", db.get_user_key(RA, "alice").await).as_deref(),
        Some(k1),
        "key written is read back"
    );
    ok("replace alice", db.set_user_key(RA, "alice", k2).await);
    assert_eq!(
        ok("get alice", db.get_user_key(RA, "alice").await).as_deref(),
        Some(k2),
        "set_user_key replaces the key of an existing user"
    );
    ok("set bob", db.set_user_key(RA, "bob", k1).await);
    ok("set alice in b", db.set_user_key(RB, "alice", k3).await);
    ok("set carol in b", db.set_user_key(RB, "carol", k1).await);
    assert_eq!(
        ok("get alice in b", db.get_user_key(RB, "alice").await).as_deref(),
        Some(k3),
        "the same name in another realm is another user (64-hex key as stored)"
    );
    assert_eq!(
        ok("get alice in a", db.get_user_key(RA, "alice").await).as_deref(),
        Some(k2),
        "writing alice in realm b left alice in realm a alone"
    );
    assert_eq!(
        ok(
            "get unknown realm",
            db.get_user_key("c.suite.example", "alice").await
        ),
        None,
        "no user in an unknown realm"
    );
    assert_eq!(
        ok("list_users", db.list_users(None).await),
        vec![
            pair("alice", RA),
            pair("bob", RA),
            pair("alice", RB),
            pair("carol", RB)
        ],
        "(name, realm) pairs ordered by realm, then name"
    );
    assert_eq!(
        ok("list_users b", db.list_users(Some(RB)).await),
        vec![pair("alice", RB), pair("carol", RB)],
        "realm filter"
    );
    assert_eq!(
        ok(
            "list_users unknown realm",
            db.list_users(Some("c.suite.example")).await
        ),
        vec![],
        "realm filter on a realm without users"
    );

    // Values are stored verbatim, never interpreted.
    let odd = "o'brien\"; drop table turnusers_lt;-- ?$1 %s \\ ünï";
    ok("set odd name", db.set_user_key(RA, odd, k1).await);
    assert_eq!(
        ok("get odd name", db.get_user_key(RA, odd).await).as_deref(),
        Some(k1),
        "a name with quotes and SQL in it round-trips"
    );
    ok("delete odd name", db.delete_user(RA, odd).await);

    ok("delete bob", db.delete_user(RA, "bob").await);
    assert_eq!(
        ok("get bob", db.get_user_key(RA, "bob").await),
        None,
        "deleted user is gone"
    );
    ok(
        "delete bob again (absent user is fine)",
        db.delete_user(RA, "bob").await,
    );
    ok("delete alice in b", db.delete_user(RB, "alice").await);
    assert_eq!(
        ok("list_users after deletes", db.list_users(None).await),
        vec![pair("alice", RA), pair("carol", RB)],
        "deletes remove exactly the (realm, name) given"
    );
}

async fn secrets(db: &UserDb) {
    assert_eq!(
        ok("get_secrets empty", db.get_secrets(RA).await),
        Vec::<String>::new()
    );
    ok("add s1", db.add_secret(RA, "s1-secret").await);
    ok("add s2", db.add_secret(RA, "s2-secret").await);
    ok("add s1 again", db.add_secret(RA, "s1-secret").await);
    ok("add s3 in b", db.add_secret(RB, "s3-secret").await);
    let mut got = ok("get_secrets a", db.get_secrets(RA).await);
    got.sort();
    assert_eq!(
        got,
        vec!["s1-secret".to_string(), "s2-secret".to_string()],
        "secrets of realm a, each once (add_secret is idempotent)"
    );
    assert_eq!(
        ok("list_secrets", db.list_secrets(None).await),
        vec![
            pair("s1-secret", RA),
            pair("s2-secret", RA),
            pair("s3-secret", RB)
        ],
        "(value, realm) pairs ordered by realm, then value"
    );
    assert_eq!(
        ok("list_secrets b", db.list_secrets(Some(RB)).await),
        vec![pair("s3-secret", RB)],
        "realm filter"
    );
    ok("delete s1", db.delete_secret(RA, "s1-secret").await);
    assert_eq!(
        ok("get_secrets a", db.get_secrets(RA).await),
        vec!["s2-secret".to_string()],
        "delete_secret removes one secret"
    );
    ok(
        "delete s3 from the wrong realm",
        db.delete_secret(RA, "s3-secret").await,
    );
    assert_eq!(
        ok("get_secrets b", db.get_secrets(RB).await),
        vec!["s3-secret".to_string()],
        "delete_secret only touches its realm"
    );
    ok("add s4", db.add_secret(RA, "s4-secret").await);
    ok("delete all in a", db.delete_all_secrets(RA).await);
    assert_eq!(
        ok("get_secrets a", db.get_secrets(RA).await),
        Vec::<String>::new(),
        "delete_all_secrets empties the realm"
    );
    assert_eq!(
        ok("list_secrets", db.list_secrets(None).await),
        vec![pair("s3-secret", RB)],
        "delete_all_secrets leaves other realms alone"
    );
}

async fn origins(db: &UserDb) {
    assert_eq!(
        ok("list_origins empty", db.list_origins(None).await),
        vec![]
    );
    let o1 = "https://app.example.org:443";
    let o2 = "http://other.example.org:8080";
    let o3 = "https://b.example.net:443";
    ok("add o1", db.add_origin(o1, RA).await);
    ok("add o2", db.add_origin(o2, RA).await);
    ok("add o3", db.add_origin(o3, RB).await);
    assert_eq!(
        ok("list_origins", db.list_origins(None).await),
        vec![pair(o2, RA), pair(o1, RA), pair(o3, RB)],
        "(origin, realm) pairs ordered by realm, then origin"
    );
    assert_eq!(
        ok("list_origins b", db.list_origins(Some(RB)).await),
        vec![pair(o3, RB)],
        "realm filter"
    );
    ok("move o2 to b", db.add_origin(o2, RB).await);
    assert_eq!(
        ok("list_origins", db.list_origins(None).await),
        vec![pair(o1, RA), pair(o2, RB), pair(o3, RB)],
        "add_origin of an existing origin replaces its realm (one realm per origin)"
    );
    ok("delete o1", db.delete_origin(o1).await);
    ok("delete o1 again", db.delete_origin(o1).await);
    assert_eq!(
        ok("list_origins", db.list_origins(None).await),
        vec![pair(o2, RB), pair(o3, RB)],
        "delete_origin removes the origin"
    );
}

async fn realm_options(db: &UserDb) {
    assert_eq!(
        ok(
            "list_realm_options empty",
            db.list_realm_options(None).await
        ),
        vec![]
    );
    ok(
        "max-bps a",
        db.set_realm_option(RA, "max-bps", "64000").await,
    );
    ok(
        "user-quota a",
        db.set_realm_option(RA, "user-quota", "10").await,
    );
    ok(
        "total-quota b",
        db.set_realm_option(RB, "total-quota", "100").await,
    );
    assert_eq!(
        ok("list_realm_options", db.list_realm_options(None).await),
        vec![
            opt(RA, "max-bps", "64000"),
            opt(RA, "user-quota", "10"),
            opt(RB, "total-quota", "100")
        ],
        "options ordered by realm, then option name"
    );
    assert_eq!(
        ok(
            "list_realm_options b",
            db.list_realm_options(Some(RB)).await
        ),
        vec![opt(RB, "total-quota", "100")],
        "realm filter"
    );
    ok(
        "max-bps a again",
        db.set_realm_option(RA, "max-bps", "128000").await,
    );
    assert_eq!(
        ok(
            "list_realm_options a",
            db.list_realm_options(Some(RA)).await
        ),
        vec![opt(RA, "max-bps", "128000"), opt(RA, "user-quota", "10")],
        "set_realm_option replaces the value"
    );
    ok(
        "max-bps a = 0",
        db.set_realm_option(RA, "max-bps", "0").await,
    );
    assert_eq!(
        ok(
            "list_realm_options a",
            db.list_realm_options(Some(RA)).await
        ),
        vec![opt(RA, "user-quota", "10")],
        "value \"0\" removes the option"
    );
    ok(
        "removing an absent option is fine",
        db.set_realm_option(RA, "max-bps", "0").await,
    );
    assert_eq!(
        ok("list_realm_options", db.list_realm_options(None).await),
        vec![opt(RA, "user-quota", "10"), opt(RB, "total-quota", "100")],
        "only the one option went"
    );
}

async fn peer_ranges(db: &UserDb) {
    for list in [PeerList::Allowed, PeerList::Denied] {
        assert_eq!(
            ok("list_peer_ranges empty", db.list_peer_ranges(list).await),
            vec![],
            "{list:?} list starts empty"
        );
    }
    let r1 = "10.0.0.1";
    let r2 = "10.0.0.0-10.0.0.255";
    let r3 = "192.168.0.0-192.168.255.255";
    let r6 = "2001:db8::1-2001:db8::ff";
    ok(
        "allow r1",
        db.add_peer_range(PeerList::Allowed, RA, r1).await,
    );
    ok(
        "allow r2",
        db.add_peer_range(PeerList::Allowed, RA, r2).await,
    );
    ok(
        "allow r1 again",
        db.add_peer_range(PeerList::Allowed, RA, r1).await,
    );
    ok(
        "allow r6 in b",
        db.add_peer_range(PeerList::Allowed, RB, r6).await,
    );
    ok("deny r3", db.add_peer_range(PeerList::Denied, RB, r3).await);
    assert_eq!(
        ok("allowed", db.list_peer_ranges(PeerList::Allowed).await),
        vec![range(RA, r2), range(RA, r1), range(RB, r6)],
        "allowed ranges once each, ordered by realm, then range"
    );
    assert_eq!(
        ok("denied", db.list_peer_ranges(PeerList::Denied).await),
        vec![range(RB, r3)],
        "the denied list is separate from the allowed list"
    );
    ok(
        "delete r1",
        db.delete_peer_range(PeerList::Allowed, RA, r1).await,
    );
    ok(
        "delete r3 from the wrong list",
        db.delete_peer_range(PeerList::Allowed, RB, r3).await,
    );
    ok(
        "delete r6 in the wrong realm",
        db.delete_peer_range(PeerList::Allowed, RA, r6).await,
    );
    assert_eq!(
        ok("allowed", db.list_peer_ranges(PeerList::Allowed).await),
        vec![range(RA, r2), range(RB, r6)],
        "delete_peer_range removes exactly (list, realm, range)"
    );
    assert_eq!(
        ok("denied", db.list_peer_ranges(PeerList::Denied).await),
        vec![range(RB, r3)],
        "deleting from the allowed list left the denied list alone"
    );
    ok(
        "delete r3",
        db.delete_peer_range(PeerList::Denied, RB, r3).await,
    );
    assert_eq!(
        ok("denied", db.list_peer_ranges(PeerList::Denied).await),
        vec![],
        "denied list empty again"
    );
}

async fn admins(db: &UserDb) {
    assert_eq!(ok("get admin empty", db.get_admin_user("root").await), None);
    assert_eq!(ok("list admins empty", db.list_admin_users().await), vec![]);
    let root = AdminUser {
        name: "root".into(),
        realm: String::new(),
        password:
            "$5$0011223344556677$aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
                .into(),
    };
    let ops = AdminUser {
        name: "ops".into(),
        realm: RA.into(),
        password: "plain-text-pw".into(),
    };
    ok("set root", db.set_admin_user(&root).await);
    ok("set ops", db.set_admin_user(&ops).await);
    assert_eq!(
        ok("get root", db.get_admin_user("root").await),
        Some(root.clone()),
        "superuser (empty realm) read back with its hash"
    );
    assert_eq!(
        ok("list admins", db.list_admin_users().await),
        vec![ops.clone(), root.clone()],
        "admins ordered by name"
    );
    let root2 = AdminUser {
        password:
            "$5$8899aabbccddeeff$bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
                .into(),
        realm: RB.into(),
        ..root.clone()
    };
    ok("replace root", db.set_admin_user(&root2).await);
    assert_eq!(
        ok("get root", db.get_admin_user("root").await),
        Some(root2.clone()),
        "set_admin_user replaces password and realm"
    );
    ok("delete ops", db.delete_admin_user("ops").await);
    ok("delete ops again", db.delete_admin_user("ops").await);
    assert_eq!(
        ok("get ops", db.get_admin_user("ops").await),
        None,
        "deleted admin is gone"
    );
    assert_eq!(
        ok("list admins", db.list_admin_users().await),
        vec![root2],
        "one admin left"
    );
}

fn oauth(kid: &str, ikm: &str, timestamp: u64, lifetime: u32, alg: &str, realm: &str) -> OauthKeyRow {
    OauthKeyRow {
        kid: kid.into(),
        ikm_key: ikm.into(),
        timestamp,
        lifetime,
        as_rs_alg: alg.into(),
        realm: realm.into(),
    }
}

async fn oauth_keys(db: &UserDb) {
    assert_eq!(ok("list oauth keys empty", db.list_oauth_keys().await), vec![]);
    let north = oauth(
        "north",
        "MTIzNDU2Nzg5MDEyMzQ1Njc4OTAxMjM0NTY3ODkwMTI=",
        0,
        0,
        "A256GCM",
        RA,
    );
    let east = oauth("east", "MTIzNDU2Nzg5MDEyMzQ1Ng==", 1_700_000_000, 3600, "A128GCM", "");
    // Kids with quotes and glob characters are stored and listed verbatim.
    let odd = oauth("o'dd*[k]?", "MTIzNDU2Nzg5MDEyMzQ1Ng==", 5, 6, "A128GCM", RB);
    ok("set north", db.set_oauth_key(&north).await);
    ok("set east", db.set_oauth_key(&east).await);
    ok("set odd", db.set_oauth_key(&odd).await);
    assert_eq!(
        ok("list oauth keys", db.list_oauth_keys().await),
        vec![east.clone(), north.clone(), odd.clone()],
        "every row with every column, ordered by kid"
    );
    let north2 = oauth("north", "MTIzNDU2Nzg5MDEyMzQ1Ng==", 10, 20, "A128GCM", RB);
    ok("replace north", db.set_oauth_key(&north2).await);
    assert_eq!(
        ok("get north", db.get_oauth_key("north").await),
        Some(north2.clone()),
        "set_oauth_key replaces the row of an existing kid"
    );
    ok("delete east", db.delete_oauth_key("east").await);
    ok("delete east again", db.delete_oauth_key("east").await);
    ok("delete odd", db.delete_oauth_key(&odd.kid).await);
    assert_eq!(ok("get east", db.get_oauth_key("east").await), None, "deleted key is gone");
    assert_eq!(
        ok("list oauth keys", db.list_oauth_keys().await),
        vec![north2],
        "one key left, as replaced"
    );
}
