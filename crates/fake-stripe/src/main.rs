//! `fake-stripe`: the fake Stripe API as a process, for `scripts/run.sh` and demos (never for
//! money). Serves until SIGTERM or SIGINT.

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use fake_stripe::{FakeConfig, FakeStripe, WebhookSecret};
use tokio::signal::unix::{SignalKind, signal};

/// Run the project's fake Stripe API (for local development and demos; never for money).
#[derive(Debug, Parser)]
#[command(name = "fake-stripe", version)]
struct Cli {
    #[arg(long, default_value = "127.0.0.1:12111")]
    listen: SocketAddr,
    /// Where to deliver webhooks (e.g. http://127.0.0.1:8080/webhooks/stripe).
    #[arg(long)]
    webhook_url: Option<String>,
    /// Signing secret for deliveries [default: the first of STRIPE_WEBHOOK_SECRET].
    #[arg(long)]
    webhook_secret: Option<String>,
}

#[tokio::main]
async fn main() -> ExitCode {
    match run(Cli::parse()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("fake-stripe: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,hyper=warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .compact()
        .without_time()
        .init();
    let secret = cli.webhook_secret.map(WebhookSecret::new).or_else(|| {
        let all = std::env::var("STRIPE_WEBHOOK_SECRET").ok()?;
        all.split(',').next().map(|s| WebhookSecret::new(s.trim()))
    });
    let listener = tokio::net::TcpListener::bind(cli.listen)
        .await
        .with_context(|| format!("cannot listen on {}", cli.listen))?;
    let config = FakeConfig {
        webhook_url: cli.webhook_url,
        webhook_secret: secret,
    };
    let mut term = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    let fake = FakeStripe::start(listener, config).await;
    println!("fake Stripe API on {}", fake.url());
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM: shutting down"),
        _ = int.recv() => tracing::info!("SIGINT: shutting down"),
    }
    fake.shutdown();
    Ok(())
}
