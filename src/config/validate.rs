//! Validation at start-up: what a command requires, values out of range, and the mode and
//! account the Stripe settings name; every refusal says which setting, never a secret.

use super::{ConfigError, Needs, Settings};
use crate::stripe::event::Scope;

impl Settings {
    pub(super) fn validate(&self, needs: Needs) -> Result<(), ConfigError> {
        let Some(url) = &self.database_url else {
            return Err(missing("DATABASE_URL"));
        };
        // Never echo the URL: it holds the password.
        if !["postgres://", "postgresql://"]
            .iter()
            .any(|scheme| url.expose().starts_with(scheme))
        {
            return Err(invalid(
                "database_url (DATABASE_URL)",
                "must start with postgres:// or postgresql:// (the value is not shown: it may hold a password)",
            ));
        }
        self.scope()?;
        if needs == Needs::Daemon {
            if self.webhook_secrets().is_empty() {
                return Err(missing("STRIPE_WEBHOOK_SECRET"));
            }
            if self
                .api_token
                .as_ref()
                .is_none_or(|t| t.expose().is_empty())
            {
                return Err(missing("RECONCILER_API_TOKEN"));
            }
        }
        if self.http.max_body_bytes == 0 {
            return Err(invalid("http.max_body_bytes", "must be at least 1"));
        }
        if self.http.max_connections == 0 {
            return Err(invalid("http.max_connections", "must be at least 1"));
        }
        if self.ingest.writers == 0 || self.ingest.batch_max == 0 {
            return Err(invalid(
                "ingest",
                "writers and batch_max must be at least 1",
            ));
        }
        if self.engine.batch_size < 1 || self.engine.max_attempts < 1 {
            return Err(invalid(
                "engine",
                "batch_size and max_attempts must be at least 1",
            ));
        }
        if self.engine.retention_days < 7 {
            return Err(invalid(
                "engine.retention_days",
                "must be at least 7 (Stripe redelivers for 3 days)",
            ));
        }
        Ok(())
    }

    /// The events this daemon applies: the mode of `stripe.api_key` (`sk_live_`/`rk_live_`
    /// or `sk_test_`/`rk_test_`), else `stripe.livemode`, else test mode; and
    /// `stripe.account` when set. A key and a `stripe.livemode` that disagree are an error.
    pub fn scope(&self) -> Result<Scope, ConfigError> {
        let stripe = &self.stripe;
        let key_mode = match &stripe.api_key {
            None => None,
            Some(key) => Some(key_livemode(key.expose()).ok_or_else(|| {
                invalid(
                    "stripe.api_key (STRIPE_API_KEY)",
                    "must start with sk_live_, sk_test_, rk_live_ or rk_test_",
                )
            })?),
        };
        let livemode = match (key_mode, stripe.livemode) {
            (Some(key), Some(set)) if key != set => {
                return Err(invalid(
                    "stripe.livemode",
                    &format!(
                        "is {set}, but STRIPE_API_KEY is a {} key",
                        if key { "live" } else { "test" }
                    ),
                ));
            }
            (Some(key), _) => key,
            (None, set) => set.unwrap_or(false),
        };
        if let Some(account) = &stripe.account
            && !crate::stripe::ids::is_valid("acct_", account)
        {
            return Err(invalid(
                "stripe.account",
                "must be a Stripe account id (acct_ and letters, digits or _)",
            ));
        }
        Ok(Scope {
            livemode,
            account: stripe.account.clone(),
        })
    }
}

/// `Some(livemode)` for a secret or restricted key, `None` for anything else.
fn key_livemode(key: &str) -> Option<bool> {
    match key.get(..8) {
        Some("sk_live_" | "rk_live_") => Some(true),
        Some("sk_test_" | "rk_test_") => Some(false),
        _ => None,
    }
}

fn missing(env: &'static str) -> ConfigError {
    let (key, what) = match env {
        "DATABASE_URL" => ("database_url", "the Postgres URL"),
        "STRIPE_WEBHOOK_SECRET" => ("stripe_webhook_secret", "a webhook signing secret"),
        _ => ("api_token", "the bearer token for /v1"),
    };
    ConfigError::Missing { env, key, what }
}

fn invalid(key: &'static str, reason: &str) -> ConfigError {
    ConfigError::Invalid {
        key,
        reason: reason.to_owned(),
    }
}
