//! Failed sign-ins, limited per client address in fixed one-minute windows.
//!
//! The address is the connection's peer (an IPv6 address by its /64, what one host usually
//! has): behind a proxy every client shares the proxy's, and the limit becomes one for all
//! (forwarded addresses are not trusted: any client can write them). There is no limit over
//! all addresses: one would let anyone with a few dozen addresses lock every operator out
//! (issue 24). Failures from all addresses are still counted, and crossing [`OVERALL`] in a
//! window is logged once, so a guesser spread over many addresses is seen. What stops such
//! a guesser is the token itself (a long random one: see the README).
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

/// Failed sign-ins one address may make in a window.
pub(crate) const PER_ADDRESS: u32 = 5;
/// Failed sign-ins from all addresses together in a window beyond which it is logged (once
/// a window); they are not refused for it.
pub(crate) const OVERALL: u32 = 50;
/// The window, in seconds.
pub(crate) const WINDOW_SECS: i64 = 60;

/// Addresses remembered at most (beyond this, the ended windows go first, then the oldest).
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

/// What a failed sign-in was.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Failure {
    /// One more.
    Counted,
    /// The one that made all addresses' failures in this window [`OVERALL`].
    OverallReached,
}

impl Limiter {
    /// `Err(seconds to wait)` when `address` may not try to sign in now (its own failures;
    /// others' never hold it back).
    pub(crate) fn check(&self, address: IpAddr, now: i64) -> Result<(), i64> {
        let mut w = self.inner.lock().expect("never poisoned");
        match w
            .by_address
            .get_mut(&key(address))
            .map(|window| *window.current(now))
        {
            Some(window) if window.failures >= PER_ADDRESS => Err(window.retry_after(now)),
            _ => Ok(()),
        }
    }

    /// Counts a failed sign-in from `address`.
    pub(crate) fn failed(&self, address: IpAddr, now: i64) -> Failure {
        let mut w = self.inner.lock().expect("never poisoned");
        let overall = w.overall.current(now);
        overall.failures += 1;
        let failure = if overall.failures == OVERALL {
            Failure::OverallReached
        } else {
            Failure::Counted
        };
        let address = key(address);
        if w.by_address.len() >= MAX_ADDRESSES && !w.by_address.contains_key(&address) {
            w.by_address
                .retain(|_, window| now - window.start < WINDOW_SECS);
            if w.by_address.len() >= MAX_ADDRESSES {
                // Still full: the oldest window goes (never an address left uncounted).
                let oldest = w
                    .by_address
                    .iter()
                    .min_by_key(|(_, window)| window.start)
                    .map(|(address, _)| *address);
                if let Some(oldest) = oldest {
                    w.by_address.remove(&oldest);
                }
            }
        }
        w.by_address
            .entry(address)
            .or_default()
            .current(now)
            .failures += 1;
        failure
    }

    /// A successful sign-in clears the address's failures.
    pub(crate) fn succeeded(&self, address: IpAddr) {
        self.inner
            .lock()
            .expect("never poisoned")
            .by_address
            .remove(&key(address));
    }
}

/// What failures are counted by: an IPv4 address, an IPv6 address's /64 (an IPv4-mapped one
/// is its IPv4 address).
fn key(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V4(_) => address,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6((u128::from(v6) & !((1u128 << 64) - 1)).into()),
        },
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
    fn failures_from_many_addresses_hold_no_other_address_back() {
        let limiter = Limiter::default();
        let mut reached = 0;
        for n in 0..OVERALL + 10 {
            let address = IpAddr::from([10, 1, (n / 256) as u8, n as u8]);
            if limiter.failed(address, 0) == Failure::OverallReached {
                reached += 1;
            }
        }
        assert_eq!(reached, 1, "logged once a window");
        assert!(limiter.check("10.9.9.9".parse().unwrap(), 1).is_ok());
    }

    #[test]
    fn an_ipv6_host_is_its_64() {
        let limiter = Limiter::default();
        for n in 0..PER_ADDRESS {
            let address: IpAddr = format!("2001:db8:1:2::{n:x}").parse().unwrap();
            limiter.failed(address, 0);
        }
        assert!(
            limiter
                .check("2001:db8:1:2:ffff::1".parse().unwrap(), 1)
                .is_err()
        );
        assert!(limiter.check("2001:db8:1:3::1".parse().unwrap(), 1).is_ok());
        let mapped: IpAddr = "::ffff:10.0.0.1".parse().unwrap();
        assert_eq!(key(mapped), "10.0.0.1".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn a_full_table_still_counts_a_new_address() {
        let limiter = Limiter::default();
        for n in 0..MAX_ADDRESSES as u32 {
            limiter.failed(IpAddr::from(n.to_be_bytes()), 0);
        }
        let late: IpAddr = "192.0.2.1".parse().unwrap();
        for _ in 0..PER_ADDRESS {
            limiter.failed(late, 1);
        }
        assert!(limiter.check(late, 2).is_err());
    }
}
