//! SQL, and nothing else: small async functions over a connection (usually a transaction).

pub mod activity;
pub mod attaches;
pub mod audits;
pub mod balances;
pub mod catalog_versions;
pub mod customer_contact;
pub mod customer_list;
pub mod customers;
pub mod discounts;
pub mod duplicates;
pub mod entities;
pub mod invoices;
pub mod plan_changes;
pub mod plan_reads;
pub mod plans;
pub mod requests;
pub mod reward_grants;
pub mod rows;
pub mod search_plan;
pub mod stripe_ids;
pub mod subscription_states;
pub mod subscription_sync;
pub mod trials;
