//! Ready-made trading limits: messages per account, and the order-to-trade ratio.
//!
//! - [`message_rate`] is a [`RateLimitPolicy`] of `N` messages per second per account (GCRA), checked
//!   like any other policy with [`RateLimiter::check_policy`](crate::failure::RateLimiter::check_policy).
//! - [`OrderToTradeRatio`] limits how many orders an account may submit for each fill over a
//!   sliding window, the ratio venues and regulators watch (MiFID II RTS 9 requires trading
//!   venues to cap it). It is built on two counters per account in any
//!   [`RateLimitStore`] (orders and fills, each a sliding-window quota used as a counter:
//!   cost 1 to count, cost 0 to read), so it works the same on the memory and Redis stores and
//!   is shared by every instance that shares the store.
//!
//! # The ratio rule
//!
//! A new order is allowed if, counting it, the account's orders in the window are at most
//! `min_orders`, or at most `max_orders_per_fill × max(fills, 1)`. Below the minimum an account
//! that has not traded yet can still quote; above it, the ratio never exceeds the maximum. The
//! counts are sliding-window estimates (the previous window weighted by its overlap, as for
//! [`Algorithm::SlidingWindow`]), so an order leaves the count gradually over one window after
//! it was made, and so does a fill.
//!
//! [`OrderToTradeRatio::check_order`] reads both counters in one batch (one round trip on
//! Redis) and consumes nothing; [`record_order`](OrderToTradeRatio::record_order) and
//! [`record_fill`](OrderToTradeRatio::record_fill) count. Checking and recording are separate
//! calls on separate keys, so concurrent orders of one account may each pass the check before
//! any is recorded: the ratio can be exceeded by at most the number of orders in flight at once.
//! [`try_order`](OrderToTradeRatio::try_order) checks and, if allowed, records.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use crate::decision::Decision;
use crate::error::{Error, Result};
use crate::policy::{KeyKind, MAX_POLICY_NAME_LEN, RateLimitPolicy, Rule};
use crate::quota::{Algorithm, MAX_SPAN_MICROS, Quota};
use crate::store::{Check, RateLimitStore, validate_key};

/// A policy `messages` allowing `per_second` messages per second per account with GCRA, and
/// bursts of `burst` (by default `per_second`). Check it with
/// [`Identity::with_account`](crate::policy::Identity::with_account).
///
/// # Errors
/// [`Error::InvalidQuota`] if the burst spans more than the longest time a quota can hold.
pub fn message_rate(per_second: NonZeroU32, burst: Option<NonZeroU32>) -> Result<RateLimitPolicy> {
    let quota = Quota::per_second(per_second)
        .with_burst(burst.unwrap_or(per_second))?
        .named("messages.account")?;
    RateLimitPolicy::new("messages", vec![Rule::new(KeyKind::Account, quota)])
}

/// Parameters of an [`OrderToTradeRatio`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderToTradeConfig {
    /// Names the counters' keys (`<name>:orders:<account>`): 1 to 31 bytes of ASCII letters,
    /// digits, `-` and `_`. Default `otr`.
    pub name: String,
    /// The sliding window the orders and fills are counted over.
    pub window: Duration,
    /// The most orders allowed per fill once past `min_orders`.
    pub max_orders_per_fill: NonZeroU32,
    /// Orders always allowed in a window, whatever the fills.
    pub min_orders: u32,
}

impl OrderToTradeConfig {
    /// `max_orders_per_fill` orders per fill over `window`, after `min_orders` orders.
    pub fn new(window: Duration, max_orders_per_fill: NonZeroU32, min_orders: u32) -> Self {
        Self {
            name: "otr".to_owned(),
            window,
            max_orders_per_fill,
            min_orders,
        }
    }
}

/// The answer of [`OrderToTradeRatio::check_order`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OrderCheck {
    /// Whether a new order is allowed.
    pub allowed: bool,
    /// Orders counted in the window, without the new one.
    pub orders: u64,
    /// Fills counted in the window.
    pub fills: u64,
}

/// The order-to-trade ratio limit (see the [module docs](self)).
///
/// Generic over its store like [`RateLimiter`](crate::RateLimiter); the default is
/// `Arc<dyn RateLimitStore>`.
#[derive(Debug, Clone)]
pub struct OrderToTradeRatio<S = Arc<dyn RateLimitStore>> {
    store: S,
    config: OrderToTradeConfig,
    orders: [Quota; 1],
    fills: [Quota; 1],
    capacity: u64,
}

impl<S: RateLimitStore> OrderToTradeRatio<S> {
    /// A limit kept in `store`.
    ///
    /// # Errors
    /// [`Error::Config`] if the name is not valid or the window is not a valid quota period
    /// (1 ms to 366 days, whole microseconds).
    pub fn new(store: S, config: OrderToTradeConfig) -> Result<Self> {
        let invalid = |reason: String| Error::Config {
            path: format!("order_to_trade.{}", config.name),
            reason,
        };
        if config.name.is_empty()
            || config.name.len() > MAX_POLICY_NAME_LEN
            || !config
                .name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_'))
        {
            return Err(invalid(format!(
                "name {:?} must be 1 to {MAX_POLICY_NAME_LEN} bytes of ASCII letters, digits, \
                 '-' and '_'",
                config.name
            )));
        }
        let period_us = u64::try_from(config.window.as_micros())
            .unwrap_or(u64::MAX)
            .max(1);
        // The largest count a sliding window of this length can hold exactly.
        let capacity = (MAX_SPAN_MICROS / period_us).min(u64::from(u32::MAX));
        let limit = u32::try_from(capacity)
            .ok()
            .and_then(NonZeroU32::new)
            .ok_or_else(|| invalid(format!("window {:?} is too long", config.window)))?;
        let counter = |what: &str| -> Result<Quota> {
            Quota::new(limit, config.window)
                .and_then(|q| q.with_algorithm(Algorithm::SlidingWindow))
                .and_then(|q| q.named(&format!("{}.{what}", config.name)))
                .map_err(|e| invalid(e.to_string()))
        };
        Ok(Self {
            orders: [counter("orders")?],
            fills: [counter("fills")?],
            store,
            capacity,
            config,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &OrderToTradeConfig {
        &self.config
    }

    fn key(&self, what: &str, account: &str) -> Result<String> {
        validate_key(account)?;
        Ok(format!("{}:{what}:{account}", self.config.name))
    }

    /// The count a counter's decision implies.
    fn count(&self, decision: &Decision<'_>) -> u64 {
        self.capacity.saturating_sub(decision.remaining())
    }

    /// Whether a new order of `account` is allowed now; counts nothing.
    ///
    /// # Errors
    /// [`Error::InvalidKey`] for an unusable account id, or the store's error.
    pub async fn check_order(&self, account: &str) -> Result<OrderCheck> {
        let orders_key = self.key("orders", account)?;
        let fills_key = self.key("fills", account)?;
        let checks = [
            Check::new(&orders_key, &self.orders).with_cost(0),
            Check::new(&fills_key, &self.fills).with_cost(0),
        ];
        let decisions = self.store.check_batch(&checks).await?;
        let [orders, fills] = decisions.as_slice() else {
            return Err(Error::Protocol {
                backend: self.store.backend(),
                reason: format!("{} decisions for a batch of 2", decisions.len()),
            });
        };
        let orders = self.count(orders);
        let fills = self.count(fills);
        let with_new = orders.saturating_add(1);
        let allowed = with_new <= u64::from(self.config.min_orders)
            || with_new
                <= u64::from(self.config.max_orders_per_fill.get()).saturating_mul(fills.max(1));
        Ok(OrderCheck {
            allowed,
            orders,
            fills,
        })
    }

    /// Counts an order of `account`; returns the orders now counted in the window.
    ///
    /// # Errors
    /// As [`check_order`](Self::check_order).
    pub async fn record_order(&self, account: &str) -> Result<u64> {
        self.record("orders", &self.orders, account).await
    }

    /// Counts a fill of `account`; returns the fills now counted in the window.
    ///
    /// # Errors
    /// As [`check_order`](Self::check_order).
    pub async fn record_fill(&self, account: &str) -> Result<u64> {
        self.record("fills", &self.fills, account).await
    }

    async fn record(&self, what: &str, quota: &[Quota; 1], account: &str) -> Result<u64> {
        let key = self.key(what, account)?;
        let decision = self.store.check(Check::new(&key, quota)).await?;
        // A saturated counter (more than `capacity` in a window) denies and stays full.
        Ok(self.count(&decision))
    }

    /// Checks a new order and, if allowed, counts it.
    ///
    /// # Errors
    /// As [`check_order`](Self::check_order).
    pub async fn try_order(&self, account: &str) -> Result<OrderCheck> {
        let check = self.check_order(account).await?;
        if check.allowed {
            self.record_order(account).await?;
        }
        Ok(check)
    }
}
