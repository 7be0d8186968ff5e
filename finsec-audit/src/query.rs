//! Searching the log: [`AuditQuery`], with filters and keyset pagination.
//!
//! A [`Query`] filters on the acting user or API key, the action, the resource, the
//! outcome and a time range, and pages by position: each [`Page`] carries the cursor of the
//! next, so a page is one indexed range scan however deep it is, and events appended while
//! someone pages never shift the pages. SQL sinks bind every value as a parameter.
//!
//! Implemented by [`MemorySink`](crate::MemorySink) and the SQL sinks. The file sink is not
//! queryable: ship its events to a SQL sink, or read it in order.

use async_trait::async_trait;

use crate::error::{Error, Result};
use crate::event::{AuditEvent, Outcome};

/// The most events one page holds.
pub const MAX_PAGE: usize = 1_000;

/// Which way pages run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Order {
    /// Newest first (the default).
    #[default]
    NewestFirst,
    /// Oldest first.
    OldestFirst,
}

/// What to look for. Every filter that is set must match; `Query::default()` matches
/// everything.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Query {
    /// The acting user id.
    pub user: Option<String>,
    /// The acting API key id.
    pub api_key: Option<String>,
    /// The action, exactly.
    pub action: Option<String>,
    /// The resource type.
    pub resource_type: Option<String>,
    /// The resource id (with or without `resource_type`).
    pub resource_id: Option<String>,
    /// The outcome.
    pub outcome: Option<Outcome>,
    /// Events at or after this time, unix microseconds UTC.
    pub since_us: Option<i64>,
    /// Events before this time, unix microseconds UTC.
    pub until_us: Option<i64>,
    /// The cursor: the `next` of the previous page.
    pub after: Option<u64>,
    /// Events per page, 1 to [`MAX_PAGE`] (default 100).
    pub limit: usize,
    /// Which way pages run.
    pub order: Order,
}

impl Default for Query {
    fn default() -> Self {
        Self {
            user: None,
            api_key: None,
            action: None,
            resource_type: None,
            resource_id: None,
            outcome: None,
            since_us: None,
            until_us: None,
            after: None,
            limit: 100,
            order: Order::NewestFirst,
        }
    }
}

impl Query {
    /// Refuses a page size out of range.
    ///
    /// # Errors
    /// [`Error::InvalidQuery`].
    pub fn validate(&self) -> Result<()> {
        if self.limit == 0 || self.limit > MAX_PAGE {
            return Err(Error::InvalidQuery(format!(
                "limit must be between 1 and {MAX_PAGE}, not {}",
                self.limit
            )));
        }
        if let (Some(a), Some(b)) = (self.since_us, self.until_us)
            && a > b
        {
            return Err(Error::InvalidQuery(
                "the time range ends before it starts".to_owned(),
            ));
        }
        Ok(())
    }

    /// Whether `event` at `position` passes every filter and the cursor.
    pub fn matches(&self, position: u64, event: &AuditEvent) -> bool {
        let actor = event.actor();
        let resource = event.resource();
        let eq = |want: &Option<String>, have: Option<&str>| {
            want.as_deref().is_none_or(|w| have == Some(w))
        };
        let at = event.time().unix_micros();
        let cursor = match (self.after, self.order) {
            (None, _) => true,
            (Some(c), Order::NewestFirst) => position < c,
            (Some(c), Order::OldestFirst) => position > c,
        };
        cursor
            && eq(&self.user, actor.user.as_deref())
            && eq(&self.api_key, actor.api_key.as_deref())
            && eq(&self.action, Some(event.action()))
            && eq(&self.resource_type, resource.map(|r| r.kind.as_str()))
            && eq(&self.resource_id, resource.map(|r| r.id.as_str()))
            && self.outcome.is_none_or(|o| o == event.outcome())
            && self.since_us.is_none_or(|s| at >= s)
            && self.until_us.is_none_or(|u| at < u)
    }
}

/// One page of results.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Page {
    /// The events with their positions, in the query's order.
    pub events: Vec<(u64, AuditEvent)>,
    /// The cursor of the next page (`Query::after`), or `None` on the last page.
    pub next: Option<u64>,
}

/// A sink that can be searched.
#[async_trait]
pub trait AuditQuery: Send + Sync {
    /// One page of the events that match `query`.
    ///
    /// # Errors
    /// [`Error::InvalidQuery`] for a page size out of range; [`Error::Store`];
    /// [`Error::Event`] if a stored event does not parse (run `verify`).
    async fn query(&self, query: &Query) -> Result<Page>;
}

macro_rules! forward_query {
    ($($ty:ty),+ $(,)?) => {$(
        #[async_trait]
        impl<S: AuditQuery + ?Sized> AuditQuery for $ty {
            async fn query(&self, query: &Query) -> Result<Page> {
                (**self).query(query).await
            }
        }
    )+};
}

forward_query!(&S, std::sync::Arc<S>, Box<S>);

const _: () = {
    const fn is_query<S: AuditQuery + ?Sized>() {}
    is_query::<&dyn AuditQuery>();
    is_query::<std::sync::Arc<dyn AuditQuery>>();
    is_query::<Box<dyn AuditQuery>>();
};

/// Builds a page from up to `limit + 1` matching events in order.
pub(crate) fn page(mut events: Vec<(u64, AuditEvent)>, limit: usize) -> Page {
    let more = events.len() > limit;
    events.truncate(limit);
    let next = if more {
        events.last().map(|(p, _)| *p)
    } else {
        None
    };
    Page { events, next }
}
