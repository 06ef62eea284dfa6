//! What the fake's test binaries share (each takes it with `#[path]`): raw requests and
//! the check against async-stripe's types.

#![allow(dead_code)]

pub mod http;
pub mod typed;
