//! Waiting briefly for what the outbox carries out (an attach, a plan change, a reward grant),
//! so a caller usually gets the outcome in one call: [`crate::requests::wait`], under the name
//! the front doors call it by.

pub use crate::requests::wait;
