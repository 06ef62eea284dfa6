//! The production systemd unit (`systemd/stripe-reconciler.service`): it must pass
//! `systemd-analyze verify` without a warning about it, score an overall exposure of at most
//! 2.0 in `systemd-analyze security`, and keep the directives the daemon relies on.
//!
//! `systemd-analyze` (Debian: the `systemd` package) works without systemd as PID 1 with the
//! flags used here. The tests that need it fail, saying what to install, when it is missing
//! or older than 250 (`security --offline`/`--threshold`); `scripts/test.sh` installs it.

use std::collections::BTreeMap;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const UNIT_NAME: &str = "stripe-reconciler.service";
const UNIT: &str = include_str!("../systemd/stripe-reconciler.service");
const ENV_EXAMPLE: &str = include_str!("../systemd/env.example");
const DEFAULTS: &str = include_str!("../config/defaults.toml");
/// Where the README installs the binary; the unit's Exec lines name it.
const INSTALLED_BIN: &str = "/usr/local/bin/stripe-reconciler";
const MAX_EXPOSURE: f64 = 2.0;

// ---- systemd-analyze -------------------------------------------------------------------

/// systemd 250 brought `security --offline` and `--threshold`.
const SECURITY_OFFLINE: u32 = 250;

/// The `systemd-analyze` to run, of version `min` or later; panics, saying what to install,
/// when it is missing or older. A missing tool is a failure, never a pass.
fn systemd_analyze(min: u32) -> PathBuf {
    for candidate in [
        "systemd-analyze",
        "/usr/bin/systemd-analyze",
        "/bin/systemd-analyze",
    ] {
        match Command::new(candidate).arg("--version").output() {
            Ok(out) if out.status.success() => {
                // "systemd 252 (252.38-1~deb12u1)"
                let text = String::from_utf8_lossy(&out.stdout);
                let version = text
                    .split_whitespace()
                    .nth(1)
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0);
                assert!(
                    version >= min,
                    "{candidate} is systemd {version}; this test needs {min}+ \
                     (Debian 12+: apt-get install systemd)"
                );
                return PathBuf::from(candidate);
            }
            Ok(_) => continue,
            Err(e) if e.kind() == ErrorKind::NotFound => continue,
            Err(e) => panic!("cannot run {candidate}: {e}"),
        }
    }
    panic!(
        "systemd-analyze is not installed: these tests need it (Debian/Ubuntu: apt-get install \
         systemd; scripts/test.sh installs it)"
    );
}

/// A temporary directory holding a copy of the unit under its real name, whose Exec lines run
/// the binary cargo built for this test instead of the not-installed /usr/local/bin one
/// (`verify` checks that each command is executable). Removed on drop.
struct UnitCopy {
    dir: PathBuf,
}

impl UnitCopy {
    fn new(test: &str, text: &str) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "stripe-reconciler-systemd-{}-{test}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create temp dir");
        let copy = Self { dir };
        std::fs::write(copy.path(), text).expect("write unit copy");
        copy
    }

    /// The copy with the built binary in place of the installed one.
    fn with_built_binary(test: &str) -> Self {
        Self::new(test, &with_built_binary(UNIT))
    }

    fn path(&self) -> PathBuf {
        self.dir.join(UNIT_NAME)
    }
}

impl Drop for UnitCopy {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn with_built_binary(unit: &str) -> String {
    let bin = env!("CARGO_BIN_EXE_stripe-reconciler");
    // systemd splits Exec lines on whitespace unless the word is quoted.
    let bin = if bin.contains(char::is_whitespace) {
        format!("\"{bin}\"")
    } else {
        bin.to_owned()
    };
    let replaced = unit.replace(INSTALLED_BIN, &bin);
    assert_ne!(replaced, unit, "the unit no longer runs {INSTALLED_BIN}");
    replaced
}

fn run(tool: &Path, args: &[&str], unit: &Path) -> (Output, String) {
    let out = Command::new(tool)
        .args(args)
        .arg(unit)
        .env("SYSTEMD_PAGER", "")
        .env("SYSTEMD_COLORS", "0")
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", tool.display()));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out, text)
}

/// `systemd-analyze verify`, offline: no generators, no man page lookups for Documentation=.
/// Returns its exit status and the lines about our unit (its name, its path or its binary).
/// Lines about other units (dependencies read from the host) are printed, not returned.
fn verify(tool: &Path, unit: &Path) -> (bool, Vec<String>) {
    let (out, text) = run(tool, &["verify", "--man=no", "--generators=no"], unit);
    let (ours, others): (Vec<&str>, Vec<&str>) = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .partition(|l| l.contains("stripe-reconciler"));
    for line in others {
        eprintln!("systemd-analyze verify (not about this unit): {line}");
    }
    (
        out.status.success(),
        ours.into_iter().map(String::from).collect(),
    )
}

/// "→ Overall exposure level for stripe-reconciler.service: 1.1 OK 🙂" → 1.1
fn overall_exposure(security_output: &str) -> Option<f64> {
    let line = security_output
        .lines()
        .find(|l| l.contains("Overall exposure level for"))?;
    let (_, rest) = line.rsplit_once(": ")?;
    rest.split_whitespace().next()?.parse().ok()
}

#[test]
fn verify_passes_without_warnings() {
    let tool = systemd_analyze(0);
    let copy = UnitCopy::with_built_binary("verify");
    let (ok, warnings) = verify(&tool, &copy.path());
    assert!(
        ok && warnings.is_empty(),
        "systemd-analyze verify {UNIT_NAME} failed or warned:\n{}",
        warnings.join("\n")
    );
}

/// Guards the test above: on this systemd, a bad directive does show up as a warning that
/// names the unit (verify itself still exits 0 for those).
#[test]
fn verify_reports_a_broken_copy() {
    let tool = systemd_analyze(0);
    let broken = with_built_binary(UNIT).replace(
        "TimeoutStopSec=30",
        "TimeoutStopSec=thirty\nProtectNothing=yes",
    );
    let copy = UnitCopy::new("verify-broken", &broken);
    let (_, warnings) = verify(&tool, &copy.path());
    let text = warnings.join("\n");
    assert!(
        text.contains("thirty"),
        "no warning for a bad time value:\n{text}"
    );
    assert!(
        text.contains("ProtectNothing"),
        "no warning for an unknown key:\n{text}"
    );
}

#[test]
fn security_exposure_is_at_most_2() {
    let tool = systemd_analyze(SECURITY_OFFLINE);
    let copy = UnitCopy::with_built_binary("security");
    let threshold = format!("--threshold={}", (MAX_EXPOSURE * 10.0).round() as u32);
    let (out, text) = run(
        &tool,
        &["security", "--offline=yes", &threshold, "--no-pager"],
        &copy.path(),
    );
    println!("{text}");
    let exposure = overall_exposure(&text)
        .unwrap_or_else(|| panic!("no overall exposure in the security output:\n{text}"));
    assert!(
        exposure <= MAX_EXPOSURE,
        "exposure {exposure} is above {MAX_EXPOSURE}:\n{text}"
    );
    assert!(
        out.status.success(),
        "systemd-analyze security {threshold} failed ({}):\n{text}",
        out.status
    );
}

#[test]
fn exposure_parser_reads_the_summary_line() {
    let sample = "✓ UMask=   Files created ...\n\n\
                  → Overall exposure level for stripe-reconciler.service: 1.1 OK 🙂\n";
    assert_eq!(overall_exposure(sample), Some(1.1));
    let ascii = "-> Overall exposure level for x.service: 9.6 UNSAFE :-(\n";
    assert_eq!(overall_exposure(ascii), Some(9.6));
    assert_eq!(overall_exposure("nothing here"), None);
}

// ---- the unit's contents ---------------------------------------------------------------

/// `section -> key -> values` (a key may repeat), comments and blank lines dropped.
type Directives = BTreeMap<String, BTreeMap<String, Vec<String>>>;

fn parse_unit(text: &str) -> Directives {
    let mut sections = Directives::new();
    let mut section = String::new();
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = name.to_owned();
            continue;
        }
        assert!(!line.ends_with('\\'), "keep directives on one line: {line}");
        let (key, value) = line
            .split_once('=')
            .unwrap_or_else(|| panic!("not a directive: {line}"));
        sections
            .entry(section.clone())
            .or_default()
            .entry(key.trim().to_owned())
            .or_default()
            .push(value.trim().to_owned());
    }
    sections
}

fn service() -> BTreeMap<String, Vec<String>> {
    parse_unit(UNIT)
        .remove("Service")
        .expect("the unit has a [Service] section")
}

/// The single value of `key`, failing when it is missing or set more than once.
fn one<'a>(service: &'a BTreeMap<String, Vec<String>>, key: &str) -> &'a str {
    match service.get(key).map(Vec::as_slice) {
        Some([value]) => value,
        Some(values) => panic!("{key}= is set {} times: {values:?}", values.len()),
        None => panic!("{key}= is missing from {UNIT_NAME}"),
    }
}

fn seconds(value: &str) -> u64 {
    value
        .strip_suffix('s')
        .unwrap_or(value)
        .parse()
        .unwrap_or_else(|_| panic!("expected plain seconds, got {value}"))
}

#[test]
fn unit_runs_the_daemon_as_a_notify_service() {
    let s = service();
    let expect = [
        ("Type", "notify"),
        ("NotifyAccess", "main"),
        ("WatchdogSec", "30"),
        ("Restart", "on-failure"),
        ("RestartSec", "2"),
        ("User", "stripe-reconciler"),
        ("Group", "stripe-reconciler"),
        ("EnvironmentFile", "/etc/stripe-reconciler/env"),
        (
            "ExecStartPre",
            "/usr/local/bin/stripe-reconciler --config /etc/stripe-reconciler/config.toml check-config",
        ),
        (
            "ExecStart",
            "/usr/local/bin/stripe-reconciler --config /etc/stripe-reconciler/config.toml serve",
        ),
        ("KillSignal", "SIGTERM"),
        ("TimeoutStopSec", "30"),
        ("MemoryMax", "256M"),
    ];
    for (key, value) in expect {
        assert_eq!(one(&s, key), value, "{key}=");
    }
    // Logs go to journald: nothing may redirect stdout/stderr elsewhere.
    for key in ["StandardOutput", "StandardError"] {
        if let Some(values) = s.get(key) {
            assert!(values.iter().all(|v| v == "journal"), "{key}={values:?}");
        }
    }
    assert!(
        !s.contains_key("DynamicUser"),
        "the README installs a static user"
    );
}

#[test]
fn stop_timeout_outlasts_the_daemons_drain() {
    let drain = DEFAULTS
        .lines()
        .find_map(|l| l.trim().strip_prefix("shutdown_timeout_secs"))
        .and_then(|rest| rest.trim().strip_prefix('='))
        .and_then(|v| v.split('#').next())
        .map(|v| {
            v.trim()
                .parse::<u64>()
                .expect("shutdown_timeout_secs is a number")
        })
        .expect("config/defaults.toml sets http.shutdown_timeout_secs");
    let stop = seconds(one(&service(), "TimeoutStopSec"));
    assert!(
        stop > drain,
        "TimeoutStopSec={stop} must exceed the daemon's drain bound of {drain} s"
    );
}

#[test]
fn unit_has_the_hardening_directives() {
    let s = service();
    let expect = [
        ("NoNewPrivileges", "yes"),
        ("ProtectSystem", "strict"),
        ("ProtectHome", "yes"),
        ("PrivateTmp", "yes"),
        ("PrivateDevices", "yes"),
        ("DevicePolicy", "closed"),
        ("PrivateUsers", "yes"),
        ("ProtectKernelTunables", "yes"),
        ("ProtectKernelModules", "yes"),
        ("ProtectKernelLogs", "yes"),
        ("ProtectControlGroups", "yes"),
        ("ProtectClock", "yes"),
        ("ProtectHostname", "yes"),
        ("ProtectProc", "invisible"),
        ("ProcSubset", "pid"),
        ("RestrictNamespaces", "yes"),
        ("RestrictRealtime", "yes"),
        ("RestrictSUIDSGID", "yes"),
        ("LockPersonality", "yes"),
        ("MemoryDenyWriteExecute", "yes"),
        ("RemoveIPC", "yes"),
        ("UMask", "0077"),
        ("SystemCallArchitectures", "native"),
        ("CapabilityBoundingSet", ""),
        ("AmbientCapabilities", ""),
        ("RestrictAddressFamilies", "AF_INET AF_INET6 AF_UNIX"),
    ];
    for (key, value) in expect {
        assert_eq!(one(&s, key), value, "{key}=");
    }
    let filters = s
        .get("SystemCallFilter")
        .expect("SystemCallFilter= is missing");
    assert!(
        filters.iter().any(|f| f == "@system-service"),
        "{filters:?}"
    );
    let denied: Vec<&str> = filters
        .iter()
        .filter_map(|f| f.strip_prefix('~'))
        .flat_map(str::split_whitespace)
        .collect();
    for group in ["@privileged", "@resources"] {
        assert!(
            denied.contains(&group),
            "SystemCallFilter=~ lacks {group}: {filters:?}"
        );
    }
    // The daemon talks to Postgres and Stripe: no network sandbox that cuts it off.
    assert!(
        !s.contains_key("PrivateNetwork"),
        "the daemon needs the network"
    );
    if let Some(deny) = s.get("IPAddressDeny") {
        assert!(
            s.contains_key("IPAddressAllow"),
            "IPAddressDeny={deny:?} without an allow list"
        );
    }
    // No writable paths: state lives in Postgres.
    for key in ["ReadWritePaths", "StateDirectory", "RuntimeDirectory"] {
        assert!(!s.contains_key(key), "{key}= opens a writable path");
    }
}

#[test]
fn env_example_lists_the_secrets_with_placeholders() {
    let vars: BTreeMap<&str, &str> = ENV_EXAMPLE
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            l.split_once('=')
                .unwrap_or_else(|| panic!("not KEY=value: {l}"))
        })
        .collect();
    for name in [
        "DATABASE_URL",
        "STRIPE_WEBHOOK_SECRET",
        "RECONCILER_API_TOKEN",
        "STRIPE_API_KEY",
    ] {
        let value = vars
            .get(name)
            .unwrap_or_else(|| panic!("env.example lacks {name}"));
        assert!(
            value.contains("CHANGE_ME"),
            "{name} is not a placeholder: {value}"
        );
    }
    for (name, _) in vars {
        assert!(
            !name.starts_with("export "),
            "systemd's EnvironmentFile= does not take `export`: {name}"
        );
    }
}
