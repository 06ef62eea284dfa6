// Reference Stripe webhook handler, written the way Stripe's docs show it:
// express.raw() keeps the exact bytes, stripe.webhooks.constructEvent() verifies the
// Stripe-Signature header, and the event is stored in Postgres before we answer 200.
// One process per core (node:cluster), one pg Pool per process.
//
//   PORT                   listen port (127.0.0.1), default 3000
//   DATABASE_URL           Postgres URL (required)
//   STRIPE_WEBHOOK_SECRET  whsec_... (required)
//   STRIPE_API_KEY         optional; webhook verification never calls Stripe
//   REFERENCE_WORKERS      processes, default os.availableParallelism()
//   REFERENCE_POOL_SIZE    pg connections per process, default 16
'use strict';

const cluster = require('node:cluster');
const os = require('node:os');
const express = require('express');
const { Pool } = require('pg');

const port = Number(process.env.PORT || 3000);
const databaseUrl = process.env.DATABASE_URL;
const endpointSecret = process.env.STRIPE_WEBHOOK_SECRET;
const workers = Number(process.env.REFERENCE_WORKERS || os.availableParallelism());
const poolSize = Number(process.env.REFERENCE_POOL_SIZE || 16);

if (!databaseUrl || !endpointSecret) {
  console.error('reference: DATABASE_URL and STRIPE_WEBHOOK_SECRET are required');
  process.exit(2);
}

const CREATE_TABLE = `CREATE TABLE IF NOT EXISTS events (
  id text PRIMARY KEY,
  type text NOT NULL,
  payload jsonb NOT NULL,
  received_at timestamptz NOT NULL DEFAULT now()
)`;

if (cluster.isPrimary) {
  primary().catch((err) => {
    console.error('reference: startup failed:', err.message);
    process.exit(1);
  });
} else {
  worker();
}

async function primary() {
  // Create the table once, before forking, so workers never race on CREATE TABLE.
  const pool = new Pool({ connectionString: databaseUrl, max: 1 });
  await pool.query(CREATE_TABLE);
  await pool.end();

  let stopping = false;
  for (let i = 0; i < workers; i++) cluster.fork();
  cluster.on('exit', (w, code, signal) => {
    if (!stopping) {
      console.error(`reference: worker ${w.process.pid} died (${signal || code}); restarting`);
      cluster.fork();
    } else if (Object.keys(cluster.workers).length === 0) {
      process.exit(0);
    }
  });
  const stop = () => {
    if (stopping) return;
    stopping = true;
    const alive = Object.values(cluster.workers);
    if (alive.length === 0) process.exit(0);
    for (const w of alive) w.process.kill('SIGTERM');
    setTimeout(() => process.exit(0), 5000).unref();
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  console.error(`reference: listening on 127.0.0.1:${port} with ${workers} workers, pool ${poolSize} each`);
}

function worker() {
  const stripe = require('stripe')(process.env.STRIPE_API_KEY || 'sk_test_unused');
  const pool = new Pool({ connectionString: databaseUrl, max: poolSize });
  pool.on('error', (err) => console.error('reference: idle client error:', err.message));

  const app = express();
  app.disable('x-powered-by');

  app.get('/healthz', (req, res) => res.send('ok'));

  // Match the raw body to application/json, as in Stripe's docs.
  app.post('/webhooks/stripe', express.raw({ type: 'application/json' }), async (req, res) => {
    const sig = req.headers['stripe-signature'];
    let event;
    try {
      event = stripe.webhooks.constructEvent(req.body, sig, endpointSecret);
    } catch (err) {
      res.status(400).send(`Webhook Error: ${err.message}`);
      return;
    }
    try {
      // Store the body exactly as signed (jsonb parses it); a redelivery is a no-op.
      await pool.query(
        'INSERT INTO events (id, type, payload) VALUES ($1, $2, $3) ON CONFLICT (id) DO NOTHING',
        [event.id, event.type, req.body.toString('utf8')],
      );
    } catch (err) {
      console.error('reference: insert failed:', err.message);
      res.status(503).json({ error: 'database unavailable' });
      return;
    }
    res.json({ received: true });
  });

  const server = app.listen(port, '127.0.0.1');
  process.on('SIGTERM', () => {
    server.close();
    pool.end().finally(() => process.exit(0));
    setTimeout(() => process.exit(0), 3000).unref();
  });
}
