//! Failed sign-ins, limited per client address and overall, in fixed one-minute windows.
//!
//! The address is the connection's peer: behind a proxy every client shares the proxy's,
//! and the limit becomes one for all (forwarded addresses are not trusted: any client can
//! write them). The overall limit bounds guessing from many addresses.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

/// Failed sign-ins one address may make in a window.
pub(crate) const PER_ADDRESS: u32 = 5;
/// Failed sign-ins all addresses together may make in a window.
pub(crate) const OVERALL: u32 = 50;
/// The window, in seconds.
pub(crate) const WINDOW_SECS: i64 = 60;

/// Addresses remembered at most (the oldest windows go first beyond this).
const MAX_ADDRESSES: usize = 10_000;

#[derive(Default)]
pub(crate) struct Limiter {
    inner: Mutex<Windows>,
}

#[derive(Default)]
struct Windows {
    by_address: HashMap<IpAddr, Window>,
    overall: Window,
}

#[derive(Default, Clone, Copy)]
struct Window {
    start: i64,
    failures: u32,
}

impl Window {
    fn current(&mut self, now: i64) -> &mut Self {
        if now - self.start >= WINDOW_SECS {
            *self = Window {
                start: now,
                failures: 0,
            };
        }
        self
    }

    fn retry_after(&self, now: i64) -> i64 {
        (self.start + WINDOW_SECS - now).max(1)
    }
}

impl Limiter {
    /// `Err(seconds to wait)` when `address` may not try to sign in now.
    pub(crate) fn check(&self, address: IpAddr, now: i64) -> Result<(), i64> {
        let mut w = self.inner.lock().expect("never poisoned");
        let overall = *w.overall.current(now);
        if overall.failures >= OVERALL {
            return Err(overall.retry_after(now));
        }
        match w
            .by_address
            .get_mut(&address)
            .map(|window| *window.current(now))
        {
            Some(window) if window.failures >= PER_ADDRESS => Err(window.retry_after(now)),
            _ => Ok(()),
        }
    }

    /// Counts a failed sign-in from `address`.
    pub(crate) fn failed(&self, address: IpAddr, now: i64) {
        let mut w = self.inner.lock().expect("never poisoned");
        w.overall.current(now).failures += 1;
        if w.by_address.len() >= MAX_ADDRESSES && !w.by_address.contains_key(&address) {
            w.by_address
                .retain(|_, window| now - window.start < WINDOW_SECS);
            if w.by_address.len() >= MAX_ADDRESSES {
                return; // Still full: the overall limit holds meanwhile.
            }
        }
        w.by_address
            .entry(address)
            .or_default()
            .current(now)
            .failures += 1;
    }

    /// A successful sign-in clears the address's failures.
    pub(crate) fn succeeded(&self, address: IpAddr) {
        self.inner
            .lock()
            .expect("never poisoned")
            .by_address
            .remove(&address);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_waits_after_its_failures_until_the_window_ends() {
        let limiter = Limiter::default();
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        for _ in 0..PER_ADDRESS {
            assert!(limiter.check(a, 100).is_ok());
            limiter.failed(a, 100);
        }
        assert_eq!(limiter.check(a, 110), Err(50));
        assert!(limiter.check(b, 110).is_ok(), "others are not held back");
        assert!(limiter.check(a, 100 + WINDOW_SECS).is_ok());
        limiter.failed(a, 200);
        limiter.succeeded(a);
        assert!(limiter.check(a, 201).is_ok());
    }

    #[test]
    fn the_overall_limit_holds_every_address() {
        let limiter = Limiter::default();
        for n in 0..OVERALL {
            limiter.failed(IpAddr::from([10, 1, (n / 256) as u8, n as u8]), 0);
        }
        assert!(limiter.check("10.9.9.9".parse().unwrap(), 1).is_err());
        assert!(
            limiter
                .check("10.9.9.9".parse().unwrap(), WINDOW_SECS)
                .is_ok()
        );
    }
}
