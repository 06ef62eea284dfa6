//! Builds the daemon from settings; `main` and the tests both go through [`Application`].

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use outbox::{Engine, Registry, Wakeup};
use sqlx::PgPool;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::billing::StripeContext;
use crate::catalog::Catalog;
use crate::config::Settings;
use crate::console::ConsoleState;
use crate::http::{self, AppState};
use crate::ingest::Ingest;
use crate::stripe::client::StripeApi;
use crate::web::BodyLimits;
use crate::{metrics, systemd};

/// A bound, ready-to-run daemon.
pub struct Application {
    listener: TcpListener,
    state: Arc<AppState>,
    tasks: TaskTracker,
    engine: Engine,
    settings: Settings,
}

impl Application {
    /// Loads the catalog, binds `settings.listen` (port 0 picks a free port) and starts the
    /// ingest writers, with the production handlers. The database must be migrated (see
    /// [`crate::db::migrate`]): the catalog is stored there.
    pub async fn build(settings: Settings, pool: PgPool) -> anyhow::Result<Self> {
        let catalog = load_catalog(&settings)?;
        let stripe = StripeContext::from_settings(&settings.stripe, catalog.clone())?;
        let bill_usage = stripe.is_some();
        let mut registry =
            crate::appliers::register(Registry::default(), catalog.clone(), bill_usage);
        if let Some(stripe) = stripe {
            registry = crate::billing::register(registry, stripe);
        }
        Self::build_with(settings, pool, catalog, registry).await
    }

    /// [`Application::build`] with a given catalog and handler registry.
    pub async fn build_with(
        settings: Settings,
        pool: PgPool,
        catalog: Arc<Catalog>,
        registry: Registry,
    ) -> anyhow::Result<Self> {
        let version = crate::store::catalog_versions::store(&pool, &catalog)
            .await
            .context("storing the catalog (is the database migrated?)")?;
        tracing::info!(version, plans = catalog.plans.len(), "catalog loaded");
        // `billing.past_due_access` may have changed since the last start: it applies now.
        let past_due = crate::store::balances::provision_past_due(&pool, &catalog)
            .await
            .context("applying billing.past_due_access")?;
        if past_due > 0 {
            tracing::info!(customers = past_due, policy = ?catalog.access, "past-due access applied");
        }
        let listener = TcpListener::bind(settings.listen)
            .await
            .with_context(|| format!("cannot listen on {}", settings.listen))?;
        metrics::install();
        let tasks = TaskTracker::new();
        let wakeup = Arc::new(Wakeup::default());
        let scope = settings.scope()?;
        let ingest = Ingest::start(
            pool.clone(),
            &settings.ingest,
            scope,
            wakeup.clone(),
            &tasks,
        );
        let stripe_enabled =
            registry.handles_job(<crate::jobs::ExecuteAttach as outbox::Job>::KIND);
        let stripe_api = request_api(&settings)?.filter(|_| stripe_enabled);
        let engine = Engine::new(
            pool.clone(),
            registry,
            settings.engine.clone(),
            wakeup.clone(),
        );
        let api_token = settings
            .api_token
            .clone()
            .context("api_token is required")?;
        let ops = crate::ops::Ctx {
            pool,
            catalog,
            stripe_enabled,
            stripe_api,
            wait: Duration::from_millis(settings.stripe.attach_wait_ms),
        };
        let body_limits = BodyLimits::from_settings(&settings.http);
        let console = ConsoleState {
            ops: ops.clone(),
            api_token: api_token.clone(),
            body_limits,
            console: crate::console::Console::new(&api_token),
        };
        let state = Arc::new(AppState {
            ops,
            ingest,
            webhook_secrets: settings.webhook_secrets(),
            api_token,
            signature_tolerance_secs: settings.signature_tolerance_secs,
            http: settings.http.clone(),
            body_limits,
            metrics: settings.metrics.clone(),
            console,
        });
        Ok(Self {
            listener,
            state,
            tasks,
            engine,
            settings,
        })
    }

    /// The engine, for draining the queue in tests and tools.
    pub fn engine(&self) -> Engine {
        self.engine.clone()
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    /// Serves until `shutdown` is cancelled, then drains within the configured timeout.
    /// Runs the workers, the metrics upkeep and, under systemd, the watchdog keep-alive;
    /// tells systemd `STOPPING=1` when shutdown starts.
    pub async fn run_until(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let Self {
            listener,
            state,
            tasks,
            engine,
            settings,
        } = self;
        engine.start(&tasks, &shutdown);
        tasks.spawn(metrics::upkeep(shutdown.clone()));
        if let Some(api) = catch_up_api(&settings)? {
            let stripe = &settings.stripe;
            tasks.spawn(crate::catchup::periodically(
                api,
                state.ops.pool.clone(),
                state.ingest.clone(),
                Duration::from_secs(stripe.catch_up_interval_secs),
                Duration::from_secs(stripe.catch_up_window_secs),
                shutdown.clone(),
            ));
        }
        if let Some(stripe) = audit_context(&settings, &state.ops.catalog)? {
            tasks.spawn(crate::audit::periodically(
                stripe,
                state.ops.pool.clone(),
                Duration::from_secs(settings.stripe.audit_interval_secs),
                i64::from(settings.stripe.audit_sample),
                shutdown.clone(),
            ));
        }
        systemd::watchdog::start(&tasks, &shutdown, state.ops.pool.clone(), engine.clone());
        tracing::info!(addr = %listener.local_addr()?, workers = settings.engine.workers, "listening");
        let drain = settings.shutdown_timeout();
        let work = async {
            http::serve(listener, state, shutdown.clone()).await;
            // The server has dropped its ingest handles: the writers drain and stop.
            tasks.close();
            tasks.wait().await;
        };
        let deadline = async {
            shutdown.cancelled().await;
            systemd::stopping();
            tokio::time::sleep(drain).await;
        };
        tokio::select! {
            // The deadline first, so `STOPPING=1` goes out even when the work stops in the
            // same poll that sees the shutdown (unbiased, that race lost it now and then).
            biased;
            () = deadline => tracing::warn!(?drain, "in-flight work did not finish in time"),
            () = work => tracing::info!("stopped"),
        }
        Ok(())
    }
}

/// The Stripe API for the periodic catch-up, when a key is set and it is on.
fn catch_up_api(settings: &Settings) -> anyhow::Result<Option<StripeApi>> {
    let stripe = &settings.stripe;
    let Some(key) = stripe
        .api_key
        .as_ref()
        .filter(|_| stripe.catch_up_interval_secs > 0)
    else {
        return Ok(None);
    };
    let timeout = Duration::from_millis(stripe.timeout_ms);
    Ok(Some(StripeApi::new(key, &stripe.api_base, timeout)?))
}

/// What the periodic audit needs, when a key is set and it is on.
fn audit_context(
    settings: &Settings,
    catalog: &Arc<Catalog>,
) -> anyhow::Result<Option<StripeContext>> {
    if settings.stripe.audit_interval_secs == 0 {
        return Ok(None);
    }
    StripeContext::from_settings(&settings.stripe, catalog.clone())
}

/// The Stripe API for lookups a request waits on (a promotion code), when a key is set.
fn request_api(settings: &Settings) -> anyhow::Result<Option<StripeApi>> {
    let stripe = &settings.stripe;
    let Some(key) = stripe.api_key.as_ref() else {
        return Ok(None);
    };
    let timeout = Duration::from_millis(stripe.timeout_ms);
    Ok(Some(StripeApi::new(key, &stripe.api_base, timeout)?))
}

/// The catalog named by the settings, validated; empty when none is configured.
pub fn load_catalog(settings: &Settings) -> anyhow::Result<Arc<Catalog>> {
    let mut catalog = match &settings.catalog {
        Some(path) => Catalog::load(path)?,
        None => {
            tracing::warn!("no catalog configured (RECONCILER_CATALOG): no plans or features");
            Catalog::default()
        }
    };
    catalog.access = settings.billing.past_due_access;
    Ok(Arc::new(catalog))
}

/// Cancels `token` on SIGTERM or SIGINT. The handlers are installed before this returns, so
/// a signal that arrives right after start-up (systemd stopping a service that just became
/// ready) shuts down gracefully instead of killing the process.
pub fn cancel_on_signals(token: CancellationToken) {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler installs");
    let mut int = signal(SignalKind::interrupt()).expect("SIGINT handler installs");
    tokio::spawn(async move {
        tokio::select! {
            _ = term.recv() => tracing::info!("SIGTERM: shutting down"),
            _ = int.recv() => tracing::info!("SIGINT: shutting down"),
        }
        token.cancel();
    });
}
