//! The layers, the requirements, secrets kept out of `Debug` and errors, the Stripe scope.

use super::*;
use crate::stripe::event::Scope;

fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let pairs: Vec<(String, String)> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    move |name| {
        pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    }
}

const FULL: &[(&str, &str)] = &[
    ("DATABASE_URL", "postgres://u:hunter2@localhost/db"),
    ("STRIPE_WEBHOOK_SECRET", "whsec_old, whsec_new"),
    ("RECONCILER_API_TOKEN", "tok_secret"),
    ("STRIPE_API_KEY", "sk_test_secret_key"),
];

#[test]
fn defaults_and_env_layer() {
    let s = Settings::load_from(None, Needs::Daemon, env(FULL)).unwrap();
    assert_eq!(s.listen.to_string(), "127.0.0.1:8080");
    assert_eq!(s.signature_tolerance_secs, 300);
    assert_eq!(s.http.max_body_bytes, 1024 * 1024);
    let secrets: Vec<String> = s
        .webhook_secrets()
        .iter()
        .map(|s| s.expose().to_owned())
        .collect();
    assert_eq!(secrets, ["whsec_old", "whsec_new"]);
}

#[test]
fn each_missing_requirement_is_named() {
    for name in [
        "DATABASE_URL",
        "STRIPE_WEBHOOK_SECRET",
        "RECONCILER_API_TOKEN",
    ] {
        let rest: Vec<_> = FULL.iter().copied().filter(|(k, _)| *k != name).collect();
        let err = Settings::load_from(None, Needs::Daemon, env(&rest)).unwrap_err();
        assert!(err.to_string().contains(name), "{err}");
    }
    let db_only = &FULL[..1];
    assert!(Settings::load_from(None, Needs::Database, env(db_only)).is_ok());
}

#[test]
fn debug_output_never_shows_secrets() {
    let s = Settings::load_from(None, Needs::Daemon, env(FULL)).unwrap();
    let debug = format!("{s:?}");
    for secret in [
        "hunter2",
        "whsec_old",
        "whsec_new",
        "tok_secret",
        "sk_test_secret_key",
    ] {
        assert!(!debug.contains(secret), "{secret} leaked in {debug}");
    }
    assert!(debug.contains("[redacted]"));
}

#[test]
fn metrics_token_is_off_by_default_and_env_turns_it_on() {
    let s = Settings::load_from(None, Needs::Daemon, env(FULL)).unwrap();
    assert!(!s.metrics.require_token);
    let mut pairs = FULL.to_vec();
    pairs.push(("RECONCILER_METRICS_REQUIRE_TOKEN", "true"));
    let s = Settings::load_from(None, Needs::Daemon, env(&pairs)).unwrap();
    assert!(s.metrics.require_token);
}

#[test]
fn file_layer_sits_between_defaults_and_env() {
    let dir = std::env::temp_dir().join(format!("rc-config-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("c.toml");
    std::fs::write(
        &path,
        "listen = \"127.0.0.1:9999\"\nsignature_tolerance_secs = 60\n",
    )
    .unwrap();
    let mut pairs = FULL.to_vec();
    pairs.push(("RECONCILER_SIGNATURE_TOLERANCE_SECS", "30"));
    let s = Settings::load_from(Some(&path), Needs::Daemon, env(&pairs)).unwrap();
    assert_eq!(s.listen.port(), 9999);
    assert_eq!(s.signature_tolerance_secs, 30);
}

fn with(pairs: &[(&'static str, &'static str)]) -> Vec<(&'static str, &'static str)> {
    let mut all: Vec<_> = FULL
        .iter()
        .copied()
        .filter(|(k, _)| !pairs.iter().any(|(p, _)| p == k))
        .collect();
    all.extend_from_slice(pairs);
    all
}

#[test]
fn a_listen_address_without_a_port_number_is_named_in_one_line() {
    for value in ["127.0.0.1:notaport", "127.0.0.1:99999", "localhost"] {
        let pairs = with(&[("RECONCILER_LISTEN", value)]);
        let err = Settings::load_from(None, Needs::Daemon, env(&pairs)).unwrap_err();
        let shown = format!("{:#}", anyhow::Error::new(err));
        assert!(shown.contains("`listen`"), "{shown}");
        assert!(shown.contains(value), "{shown}");
        assert_eq!(shown.matches(value).count(), 1, "said once: {shown}");
        assert!(!shown.contains('\n'), "{shown}");
    }
}

#[test]
fn a_database_url_of_another_scheme_is_refused_without_showing_it() {
    for url in [
        "mysql://u:hunter2@localhost/db",
        "hunter2",
        "postgres:/hunter2",
    ] {
        let pairs = with(&[("DATABASE_URL", url)]);
        for needs in [Needs::Daemon, Needs::Database] {
            let err = Settings::load_from(None, needs, env(&pairs)).unwrap_err();
            let shown = format!("{:#}", anyhow::Error::new(err));
            assert!(shown.contains("database_url"), "{shown}");
            assert!(shown.contains("postgres://"), "{shown}");
            assert!(!shown.contains("hunter2"), "the URL leaked: {shown}");
        }
    }
    for url in ["postgres://u:p@h/db", "postgresql://u:p@h/db"] {
        let pairs = with(&[("DATABASE_URL", url)]);
        assert!(Settings::load_from(None, Needs::Daemon, env(&pairs)).is_ok());
    }
}

/// The scope of FULL without its key, plus `pairs`, with `file` as the config file.
fn scope_of(pairs: &[(&'static str, &'static str)], file: Option<&str>) -> Result<Scope, String> {
    static FILES: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let dir = std::env::temp_dir().join(format!("rc-scope-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let n = FILES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let path = dir.join(format!("{n}.toml"));
    std::fs::write(&path, file.unwrap_or("")).unwrap();
    let mut all: Vec<_> = FULL
        .iter()
        .copied()
        .filter(|(k, _)| *k != "STRIPE_API_KEY")
        .collect();
    all.extend_from_slice(pairs);
    Settings::load_from(Some(&path), Needs::Daemon, env(&all))
        .and_then(|s| s.scope())
        .map_err(|e| e.to_string())
}

#[test]
fn the_mode_comes_from_the_key_else_the_setting_else_test() {
    let live = |pairs, file| scope_of(pairs, file).map(|s| s.livemode);
    assert_eq!(live(&[], None), Ok(false));
    assert_eq!(live(&[("STRIPE_API_KEY", "sk_live_x")], None), Ok(true));
    assert_eq!(live(&[("STRIPE_API_KEY", "rk_live_x")], None), Ok(true));
    assert_eq!(live(&[("STRIPE_API_KEY", "sk_test_x")], None), Ok(false));
    assert_eq!(live(&[("STRIPE_API_KEY", "rk_test_x")], None), Ok(false));
    assert_eq!(live(&[], Some("[stripe]\nlivemode = true\n")), Ok(true));
    assert_eq!(
        live(
            &[("STRIPE_API_KEY", "sk_live_x")],
            Some("[stripe]\nlivemode = true\n")
        ),
        Ok(true)
    );
    let err = live(
        &[("STRIPE_API_KEY", "sk_live_secretpart")],
        Some("[stripe]\nlivemode = false\n"),
    )
    .unwrap_err();
    assert!(
        err.contains("stripe.livemode") && err.contains("live key"),
        "{err}"
    );
    assert!(!err.contains("secretpart"), "{err}");
    let err = live(&[("STRIPE_API_KEY", "pk_test_secretpart")], None).unwrap_err();
    assert!(err.contains("STRIPE_API_KEY"), "{err}");
    assert!(!err.contains("secretpart"), "{err}");
}

#[test]
fn the_account_must_be_an_account_id() {
    let scope = scope_of(&[], Some("[stripe]\naccount = \"acct_1Abc\"\n")).unwrap();
    assert_eq!(scope.account.as_deref(), Some("acct_1Abc"));
    let err = scope_of(&[], Some("[stripe]\naccount = \"cus_1\"\n")).unwrap_err();
    assert!(err.contains("stripe.account"), "{err}");
}
