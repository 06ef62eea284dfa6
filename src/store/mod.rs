//! SQL, and nothing else: small async functions over a pool or a transaction.

pub mod events;
