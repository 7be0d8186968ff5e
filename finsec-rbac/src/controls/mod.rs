//! Incident controls: suspended subjects, blocked client networks and trading halts, set
//! and lifted by people (or an incident handler), shared by every instance through a
//! [`ControlStore`], and read on the request path from an in-memory [`ControlSet`] that a
//! [`ControlWatcher`] keeps current.
//!
//! | control | refuses | lifted by |
//! |---|---|---|
//! | [`Control::Suspension`] | everything the subject (a user id) does: login, refresh, every request | anyone allowed to set it |
//! | [`Control::Block`] | every request from an address in the network (IPv4-mapped IPv6 read as IPv4) | anyone allowed, or its expiry |
//! | [`Control::Halt`] | new orders: all ([`HaltScope::Global`]), one account's, or one instrument's | anyone allowed, except a global halt: a second person, never the one who asked to lift it |
//!
//! Every control has a reason, who set it and when, and optionally an expiry; lifting keeps
//! the record (who, when), so the store is also the history.
//!
//! ```
//! use finsec_rbac::controls::{
//!     Control, ControlStore as _, ControlWatcher, HaltScope, MemoryControlStore, NewControl,
//! };
//! use time::OffsetDateTime;
//!
//! # async fn example() -> Result<(), finsec_rbac::controls::ControlError> {
//! let watcher = ControlWatcher::new(MemoryControlStore::new());
//! let now = OffsetDateTime::now_utc();
//! let halt = NewControl::new(Control::Halt(HaltScope::instrument("ACME")?), "news pending", "ops-1")?;
//! watcher.store().insert(&halt, now).await?;
//! watcher.refresh().await?; // the server does this every 250 ms
//! let set = watcher.current();
//! assert!(set.halt_for("ACC-1", "ACME", now).is_some());
//! assert!(set.halt_for("ACC-1", "OTHER", now).is_none());
//! # Ok(()) }
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(example()).unwrap();
//! ```
//!
//! # Sharing
//!
//! [`ControlStore::version`] changes with every insert and lift (in the same transaction),
//! so [`ControlWatcher::refresh`] costs one small read when nothing changed and reloads the
//! active controls when something did. Refreshing every 250 ms puts a change on every
//! instance within about a quarter of a second plus one query; an instance that wrote the
//! change refreshes at once. If the store fails, the last set stays in force (a control is
//! never dropped because the database hiccuped) and the error is returned to log.
//!
//! # Threat model
//!
//! - **An attacker with a stolen session or key** keeps working until the owner notices;
//!   suspension refuses the subject everywhere at once, whatever credential it uses.
//! - **A hostile network**: blocks are checked on the request path from memory, before any
//!   other work, so a blocked flood costs no database query.
//! - **An insider lifting a global halt alone**: the store only lifts it for someone other
//!   than the person who asked for the lift, in one conditional update.
//! - Not covered: deciding *when* to use them (people, or an incident handler on the audit
//!   monitor's alerts), and removing a subject's existing credentials (the caller revokes
//!   sessions and keys when it suspends).

mod error;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod sql;
mod store;
#[cfg(feature = "testing")]
#[cfg_attr(docsrs, doc(cfg(feature = "testing")))]
pub mod testing;

use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use arc_swap::ArcSwap;
use ipnet::IpNet;
use time::OffsetDateTime;

pub use error::{ControlError, Result};
#[cfg(any(feature = "sqlite", feature = "postgres"))]
#[cfg_attr(docsrs, doc(cfg(any(feature = "sqlite", feature = "postgres"))))]
pub use sql::SqlControlStore;
pub use store::{ControlStore, Lift, MemoryControlStore, lift};

/// The longest subject, account or instrument, in bytes.
pub const MAX_NAME_LEN: usize = 128;
/// The longest reason, in characters.
pub const MAX_REASON_CHARS: usize = 500;

fn check_name(field: &'static str, value: &str) -> Result<()> {
    let reason = if value.is_empty() {
        Some("is empty")
    } else if value.len() > MAX_NAME_LEN {
        Some("is longer than 128 bytes")
    } else if value.chars().any(char::is_control) {
        Some("contains a control character")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(ControlError::Invalid { field, reason }),
        None => Ok(()),
    }
}

/// What a trading halt covers.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum HaltScope {
    /// Every new order.
    Global,
    /// New orders of one trading account.
    Account(String),
    /// New orders of one instrument.
    Instrument(String),
}

impl HaltScope {
    /// A halt of one account.
    ///
    /// # Errors
    /// [`ControlError::Invalid`] for an empty or over-long name, or a control character.
    pub fn account(account: &str) -> Result<Self> {
        check_name("account", account)?;
        Ok(Self::Account(account.to_owned()))
    }

    /// A halt of one instrument.
    ///
    /// # Errors
    /// As [`account`](Self::account).
    pub fn instrument(instrument: &str) -> Result<Self> {
        check_name("instrument", instrument)?;
        Ok(Self::Instrument(instrument.to_owned()))
    }

    /// `global`, `account` or `instrument`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Global => "global",
            Self::Account(_) => "account",
            Self::Instrument(_) => "instrument",
        }
    }
}

/// One control.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Control {
    /// A subject (a user id) may do nothing.
    Suspension(String),
    /// Requests from a network are refused.
    Block(IpNet),
    /// New orders in a scope are refused.
    Halt(HaltScope),
}

impl Control {
    /// A suspension of `subject`.
    ///
    /// # Errors
    /// [`ControlError::Invalid`] for an empty or over-long subject, or a control character.
    pub fn suspension(subject: &str) -> Result<Self> {
        check_name("subject", subject)?;
        Ok(Self::Suspension(subject.to_owned()))
    }

    /// A block of `network` (its host bits cleared; an IPv4-mapped IPv6 network becomes
    /// IPv4).
    pub fn block(network: IpNet) -> Self {
        let network = match network {
            IpNet::V6(v6) if v6.prefix_len() >= 96 => match v6.addr().to_ipv4_mapped() {
                Some(v4) => {
                    ipnet::Ipv4Net::new(v4, v6.prefix_len() - 96).map_or(network, IpNet::V4)
                }
                None => network,
            },
            other => other,
        };
        Self::Block(network.trunc())
    }

    /// `suspension`, `block` or `halt`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Suspension(_) => "suspension",
            Self::Block(_) => "block",
            Self::Halt(_) => "halt",
        }
    }

    /// What it applies to: the subject, the network, or the halt's scope
    /// (`global`, `account:ACC`, `instrument:SYM`).
    pub fn target(&self) -> String {
        match self {
            Self::Suspension(subject) => subject.clone(),
            Self::Block(network) => network.to_string(),
            Self::Halt(HaltScope::Global) => "global".to_owned(),
            Self::Halt(HaltScope::Account(a)) => format!("account:{a}"),
            Self::Halt(HaltScope::Instrument(i)) => format!("instrument:{i}"),
        }
    }

    /// The control that [`kind`](Self::kind) and [`target`](Self::target) describe (how
    /// stores keep it).
    ///
    /// # Errors
    /// [`ControlError::Corrupt`] if they describe none.
    pub fn from_parts(kind: &str, target: &str) -> Result<Self> {
        let corrupt = || ControlError::Corrupt(format!("control {kind:?} {target:?}"));
        match kind {
            "suspension" => Self::suspension(target).map_err(|_| corrupt()),
            "block" => target
                .parse::<IpNet>()
                .map(Self::block)
                .map_err(|_| corrupt()),
            "halt" => match target.split_once(':') {
                None if target == "global" => Ok(Self::Halt(HaltScope::Global)),
                Some(("account", a)) => {
                    HaltScope::account(a).map(Self::Halt).map_err(|_| corrupt())
                }
                Some(("instrument", i)) => HaltScope::instrument(i)
                    .map(Self::Halt)
                    .map_err(|_| corrupt()),
                _ => Err(corrupt()),
            },
            _ => Err(corrupt()),
        }
    }

    /// Whether lifting it needs a second person ([`HaltScope::Global`]).
    pub fn needs_second_person_to_lift(&self) -> bool {
        matches!(self, Self::Halt(HaltScope::Global))
    }
}

/// A control to set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewControl {
    control: Control,
    reason: String,
    set_by: String,
    expires_at: Option<OffsetDateTime>,
}

impl NewControl {
    /// `control`, set by `set_by` (who, for the record) for `reason`.
    ///
    /// # Errors
    /// [`ControlError::Invalid`] for an empty reason, one over [`MAX_REASON_CHARS`]
    /// characters or holding a control character, or a bad `set_by`.
    pub fn new(control: Control, reason: &str, set_by: &str) -> Result<Self> {
        let problem = if reason.is_empty() {
            Some("is empty")
        } else if reason.chars().count() > MAX_REASON_CHARS {
            Some("is longer than 500 characters")
        } else if reason.chars().any(char::is_control) {
            Some("contains a control character")
        } else {
            None
        };
        if let Some(problem) = problem {
            return Err(ControlError::Invalid {
                field: "reason",
                reason: problem,
            });
        }
        check_name("set_by", set_by)?;
        Ok(Self {
            control,
            reason: reason.to_owned(),
            set_by: set_by.to_owned(),
            expires_at: None,
        })
    }

    /// Ends the control by itself at `at`.
    #[must_use]
    pub fn expiring_at(mut self, at: OffsetDateTime) -> Self {
        self.expires_at = Some(at);
        self
    }

    /// The control.
    pub fn control(&self) -> &Control {
        &self.control
    }

    /// Why.
    pub fn reason(&self) -> &str {
        &self.reason
    }

    /// Who set it.
    pub fn set_by(&self) -> &str {
        &self.set_by
    }

    /// When it ends by itself, if it does.
    pub fn expires_at(&self) -> Option<OffsetDateTime> {
        self.expires_at
    }
}

/// A stored control.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ControlRecord {
    /// Its id (assigned by the store, ascending).
    pub id: i64,
    /// The control.
    pub control: Control,
    /// Why it was set.
    pub reason: String,
    /// Who set it.
    pub set_by: String,
    /// When.
    pub set_at: OffsetDateTime,
    /// When it ends by itself, if it does.
    pub expires_at: Option<OffsetDateTime>,
    /// Who asked for a global halt to be lifted (waiting for a second person).
    pub lift_requested_by: Option<String>,
    /// Who lifted it.
    pub lifted_by: Option<String>,
    /// When it was lifted.
    pub lifted_at: Option<OffsetDateTime>,
}

impl ControlRecord {
    /// Whether it is in force at `now`: not lifted and not expired.
    pub fn active_at(&self, now: OffsetDateTime) -> bool {
        self.lifted_at.is_none() && self.expires_at.is_none_or(|end| end > now)
    }
}

/// The controls in force, indexed for the request path. Checks take the time, so a control
/// that expires stops applying without a reload.
#[derive(Debug, Clone, Default)]
pub struct ControlSet {
    suspensions: HashMap<String, Vec<ControlRecord>>,
    blocks: Vec<(IpNet, ControlRecord)>,
    halts: Vec<ControlRecord>,
}

impl ControlSet {
    /// The set of the active records among `records` at `now`.
    pub fn new(records: impl IntoIterator<Item = ControlRecord>, now: OffsetDateTime) -> Self {
        let mut set = Self::default();
        for record in records.into_iter().filter(|r| r.active_at(now)) {
            match &record.control {
                Control::Suspension(subject) => set
                    .suspensions
                    .entry(subject.clone())
                    .or_default()
                    .push(record),
                Control::Block(network) => set.blocks.push((*network, record)),
                Control::Halt(_) => set.halts.push(record),
            }
        }
        set
    }

    /// The suspension of `subject` in force at `now`, if any.
    pub fn suspension(&self, subject: &str, now: OffsetDateTime) -> Option<&ControlRecord> {
        self.suspensions
            .get(subject)?
            .iter()
            .find(|r| r.active_at(now))
    }

    /// The block covering `address` at `now`, if any (IPv4-mapped IPv6 read as IPv4).
    pub fn block(&self, address: IpAddr, now: OffsetDateTime) -> Option<&ControlRecord> {
        let address = address.to_canonical();
        self.blocks
            .iter()
            .find(|(net, r)| net.contains(&address) && r.active_at(now))
            .map(|(_, r)| r)
    }

    /// The halt refusing a new order of `account` in `instrument` at `now`, if any: a global
    /// halt first, then the account's, then the instrument's.
    pub fn halt_for(
        &self,
        account: &str,
        instrument: &str,
        now: OffsetDateTime,
    ) -> Option<&ControlRecord> {
        let rank = |r: &ControlRecord| match &r.control {
            Control::Halt(HaltScope::Global) => Some(0),
            Control::Halt(HaltScope::Account(a)) if a == account => Some(1),
            Control::Halt(HaltScope::Instrument(i)) if i == instrument => Some(2),
            _ => None,
        };
        self.halts
            .iter()
            .filter(|r| r.active_at(now))
            .filter_map(|r| rank(r).map(|k| (k, r)))
            .min_by_key(|(k, r)| (*k, r.id))
            .map(|(_, r)| r)
    }

    /// Whether nothing is in force.
    pub fn is_empty(&self) -> bool {
        self.suspensions.is_empty() && self.blocks.is_empty() && self.halts.is_empty()
    }
}

/// Keeps a [`ControlSet`] current from a [`ControlStore`]: [`current`](Self::current) is a
/// lock-free read for the request path; [`refresh`](Self::refresh) reloads when the
/// store's version changed.
pub struct ControlWatcher<S> {
    store: S,
    current: ArcSwap<ControlSet>,
    /// The version the current set was loaded at; `i64::MIN` before the first load.
    version: AtomicI64,
}

impl<S> fmt::Debug for ControlWatcher<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ControlWatcher")
            .field("version", &self.version.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl<S: ControlStore> ControlWatcher<S> {
    /// A watcher on `store`, with an empty set until the first [`refresh`](Self::refresh).
    pub fn new(store: S) -> Self {
        Self {
            store,
            current: ArcSwap::from_pointee(ControlSet::default()),
            version: AtomicI64::new(i64::MIN),
        }
    }

    /// The store.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// The controls as of the last refresh.
    pub fn current(&self) -> Arc<ControlSet> {
        self.current.load_full()
    }

    /// Reloads the active controls if the store's version changed since the last load.
    /// Returns whether it reloaded.
    ///
    /// # Errors
    /// A store failure; the last set stays in force.
    pub async fn refresh(&self) -> Result<bool> {
        let version = self.store.version().await?;
        if version == self.version.load(Ordering::Acquire) {
            return Ok(false);
        }
        let now = OffsetDateTime::now_utc();
        let records = self.store.active(now).await?;
        self.current.store(Arc::new(ControlSet::new(records, now)));
        self.version.store(version, Ordering::Release);
        Ok(true)
    }
}

#[cfg(test)]
mod tests;
