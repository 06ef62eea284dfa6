//! The command line. Each subcommand is a thin call into the library.

mod account;
mod audit;
mod customers;
mod customers_print;
mod ops;
mod reconcile;
mod replay;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use tokio_util::sync::CancellationToken;

use crate::app::{self, Application};
use crate::config::{Needs, Settings};
use crate::{db, systemd, telemetry};

pub use replay::{HttpClient, post_signed, replay_files};

#[derive(Debug, Parser)]
#[command(name = "stripe-reconciler", version, about)]
pub struct Cli {
    /// TOML config file, layered over the defaults and under the environment.
    #[arg(long, global = true, env = "RECONCILER_CONFIG")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the daemon: webhook listener, API and workers.
    Serve {
        /// Do not apply pending migrations at start.
        #[arg(long)]
        no_migrate: bool,
    },
    /// Apply pending database migrations and exit.
    Migrate,
    /// Load and validate the configuration, print it (secrets redacted), and exit.
    CheckConfig,
    /// Sign event files as Stripe does and POST them; prints the HTTP status per file.
    Replay {
        /// Event JSON files, sent in the order given.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Webhook URL [default: http://<listen>/webhooks/stripe].
        #[arg(long)]
        to: Option<String>,
        /// Signing secret [default: the first configured webhook secret].
        #[arg(long)]
        secret: Option<String>,
    },
    /// Queue health: events per state, pending, in flight, dead, oldest pending age.
    Status {
        #[arg(long)]
        json: bool,
    },
    /// Inspect, retry and replay stored events.
    #[command(subcommand)]
    Events(ops::EventsCommand),
    /// Store the events Stripe's Events API lists since a time that no webhook brought
    /// (after an outage or a restore); they apply in order. Needs STRIPE_API_KEY.
    CatchUp {
        /// RFC 3339 time (2026-11-23T10:00:00Z) or an age such as 30m, 6h, 7d (at most 30d).
        #[arg(long, value_parser = ops::parse_since)]
        since: chrono::DateTime<chrono::Utc>,
        /// Count what would be stored, store nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Create the Stripe webhook endpoint for URL with every event type the daemon applies
    /// and its API version (prints the signing secret once); an existing one is checked and
    /// its missing types added. Needs STRIPE_API_KEY.
    SetupWebhook {
        /// The endpoint's URL (https://host/webhooks/stripe).
        #[arg(long)]
        url: String,
        /// Only report the differences; exit 1 when there are some.
        #[arg(long)]
        check: bool,
    },
    /// Customers as the API shows them: list, show, cancel, uncancel, quantity, balance,
    /// timeline (`--json` prints the API's answer). Needs only DATABASE_URL and the catalog;
    /// plan changes are carried out by the daemon's workers.
    #[command(subcommand)]
    Customers(customers::CustomersCommand),
    /// Compare the store with Stripe (changed customers and a sample, or `--all`), repair
    /// and record each difference; exit 1 when there was one (needs STRIPE_API_KEY).
    Audit {
        /// Every customer linked to Stripe, not only those changed since the last audit.
        #[arg(long)]
        all: bool,
        /// Only report: repair nothing, record nothing.
        #[arg(long)]
        dry_run: bool,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Repair drift: read subscriptions from Stripe and fix the store (needs STRIPE_API_KEY).
    Reconcile {
        /// Only this customer (our id).
        #[arg(long)]
        customer: Option<String>,
        /// Show what would change, change nothing.
        #[arg(long)]
        dry_run: bool,
    },
}

pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let config = cli.config.as_deref();
    match cli.command {
        Command::Serve { no_migrate } => {
            let settings = Settings::load(config, Needs::Daemon)?;
            telemetry::init(settings.log_format);
            let pool = db::pool(&settings)?;
            if !no_migrate {
                db::migrate(&pool).await.context("running migrations")?;
            }
            let shutdown = CancellationToken::new();
            app::cancel_on_signals(shutdown.clone());
            let app = Application::build(settings, pool).await?;
            // Migrations ran and the listener is bound: connections queue from here on.
            systemd::ready();
            app.run_until(shutdown).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Migrate => {
            let settings = Settings::load(config, Needs::Database)?;
            telemetry::init(settings.log_format);
            db::migrate(&db::pool(&settings)?)
                .await
                .context("running migrations")?;
            println!("migrations applied");
            Ok(ExitCode::SUCCESS)
        }
        Command::CheckConfig => {
            let settings = Settings::load(config, Needs::Daemon)?;
            println!("{settings:#?}");
            Ok(ExitCode::SUCCESS)
        }
        Command::Status { json } => {
            ops::status(&ops_pool(config).await?, json).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::CatchUp { since, dry_run } => {
            let settings = Settings::load(config, Needs::Database)?;
            telemetry::init(settings.log_format);
            account::catch_up(&settings, since, dry_run).await
        }
        Command::SetupWebhook { url, check } => {
            let settings = Settings::load(config, Needs::Database)?;
            telemetry::init(settings.log_format);
            account::setup_webhook(&settings, &url, check).await
        }
        Command::Audit { all, dry_run, json } => {
            let settings = Settings::load(config, Needs::Database)?;
            telemetry::init(settings.log_format);
            audit::run(&settings, all, dry_run, json).await
        }
        Command::Reconcile { customer, dry_run } => {
            let settings = Settings::load(config, Needs::Database)?;
            telemetry::init(settings.log_format);
            reconcile::run(&settings, customer.as_deref(), dry_run).await
        }
        Command::Customers(command) => {
            let settings = Settings::load(config, Needs::Database)?;
            let catalog = app::load_catalog(&settings)?;
            customers::run(&ops_pool_for(settings).await?, &catalog, command).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Events(command) => {
            let settings = Settings::load(config, Needs::Database)?;
            // Replays re-apply only what the daemon serves (its mode and account).
            let scope = settings.scope()?;
            ops::events(&ops_pool_for(settings).await?, command, &scope).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Replay { files, to, secret } => {
            let settings = Settings::load(config, Needs::Database).or_else(|_| {
                // Replaying needs no database: fall back to defaults + environment.
                Settings::load_from(config, Needs::Database, |name| match name {
                    "DATABASE_URL" => Some("postgres://unused".into()),
                    other => std::env::var(other).ok(),
                })
            })?;
            let secret = match secret {
                Some(s) => crate::config::Secret::new(s),
                None => settings
                    .webhook_secrets()
                    .into_iter()
                    .next()
                    .ok_or_else(|| {
                        UsageError(
                            "no signing secret: pass --secret or set STRIPE_WEBHOOK_SECRET".into(),
                        )
                    })?,
            };
            let url = to.unwrap_or_else(|| format!("http://{}/webhooks/stripe", settings.listen));
            let all_ok = replay_files(&files, &url, &secret).await?;
            Ok(if all_ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
    }
}

/// Input the user can correct (the configuration, an argument): exit status 2, like the
/// argument errors clap reports. Everything else is a failure (1).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// The exit status for an error `run` returned.
pub fn exit_code(error: &anyhow::Error) -> ExitCode {
    let usage = error
        .chain()
        .any(|cause| cause.is::<UsageError>() || cause.is::<crate::config::ConfigError>());
    if usage {
        ExitCode::from(2)
    } else {
        ExitCode::FAILURE
    }
}

/// A small pool for ops commands, which need only `DATABASE_URL`.
async fn ops_pool(config: Option<&std::path::Path>) -> anyhow::Result<sqlx::PgPool> {
    ops_pool_for(Settings::load(config, Needs::Database)?).await
}

async fn ops_pool_for(mut settings: Settings) -> anyhow::Result<sqlx::PgPool> {
    settings.database.max_connections = 2;
    let pool = db::pool(&settings)?;
    pool.acquire().await.context("connecting to the database")?;
    Ok(pool)
}
