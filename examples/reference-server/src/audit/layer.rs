//! The audit layer: one `http.request` event per request worth keeping, and the security
//! events handlers report through [`AuditNotes`], each with the request's actor, client
//! address, user agent, request id and duration.
//!
//! [`record`] wraps everything from the global rate limit inward, so it sees the 429s of
//! every limit and the answer of every handler; [`principal`] runs right after
//! authentication and tells it who asked. Every event goes to the monitor; the log keeps
//! requests that are not `GET`/`HEAD`/`OPTIONS`, requests refused with 401, 403 or 429,
//! reads of `/audit`, and every handler note.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;
use finsec_audit::{Actor, AuditEvent, Detail, EventTime, Outcome, Precision};
use http_body::Body as _;
use std::sync::{Mutex, MutexGuard, PoisonError};

use crate::auth::extract::Via;
use crate::http::layers::authenticate::Authenticated;
use crate::http::layers::client_addr::ClientAddr;
use crate::http::layers::request_id::RequestId;
use crate::state::AppState;

/// A security event a handler reports, recorded by [`record`] with the request's context.
#[derive(Debug, Clone)]
pub struct Note {
    action: &'static str,
    outcome: Outcome,
    user: Option<String>,
    attempted_username: Option<String>,
    resource: Option<(&'static str, String)>,
    details: Vec<(&'static str, Detail)>,
}

impl Note {
    /// `action` (for example `auth.login`) ended with `outcome`.
    pub fn new(action: &'static str, outcome: Outcome) -> Self {
        Self {
            action,
            outcome,
            user: None,
            attempted_username: None,
            resource: None,
            details: Vec::new(),
        }
    }

    /// The user it concerns, when the request has no principal yet (a login).
    #[must_use]
    pub fn user(mut self, id: impl ToString) -> Self {
        self.user = Some(id.to_string());
        self
    }

    /// The username someone tried: recorded as its keyed blind index (resource `user`),
    /// never in clear, so the monitor can count attempts per account.
    #[must_use]
    pub fn attempted_username(mut self, username: &str) -> Self {
        self.attempted_username = Some(username.to_owned());
        self
    }

    /// What was acted on.
    #[must_use]
    pub fn resource(mut self, kind: &'static str, id: impl ToString) -> Self {
        self.resource = Some((kind, id.to_string()));
        self
    }

    /// A detail (never a secret: names like `password` are refused by the log).
    #[must_use]
    pub fn detail(mut self, name: &'static str, value: impl Into<Detail>) -> Self {
        self.details.push((name, value.into()));
        self
    }
}

#[derive(Debug, Default)]
struct Slot {
    authenticated: Option<Authenticated>,
    notes: Vec<Note>,
}

/// Where a handler reports security events for the audit layer to record. An extractor
/// that never fails: outside the layer (in unit tests) notes go nowhere.
#[derive(Debug, Clone, Default)]
pub struct AuditNotes(Arc<Mutex<Slot>>);

impl AuditNotes {
    /// Reports an event.
    pub fn note(&self, note: Note) {
        self.slot().notes.push(note);
    }

    fn slot(&self) -> MutexGuard<'_, Slot> {
        // A slot holds plain data: a panic elsewhere cannot leave it half-written.
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for AuditNotes {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(parts.extensions.get::<Self>().cloned().unwrap_or_default())
    }
}

/// Runs after authentication: tells the audit layer who asked.
pub async fn principal(request: Request, next: Next) -> Response {
    if let (Some(notes), Some(auth)) = (
        request.extensions().get::<AuditNotes>(),
        request.extensions().get::<Authenticated>(),
    ) {
        notes.slot().authenticated = Some(auth.clone());
    }
    next.run(request).await
}

fn clip(text: &str, max: usize) -> String {
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.get(..end).unwrap_or_default().to_owned()
}

fn outcome_of(status: StatusCode) -> Outcome {
    match status.as_u16() {
        401 | 403 | 429 => Outcome::Denied,
        400..=499 => Outcome::Failure,
        500..=599 => Outcome::Error,
        _ => Outcome::Success,
    }
}

/// The request's context, captured before the handler runs.
struct Context {
    method: Method,
    path: String,
    ip: Option<finsec_audit::Text>,
    raw_ip: Option<String>,
    user_agent: Option<String>,
    request_id: Option<String>,
}

/// The user an event names: the note's, or the request's principal.
fn event_user(authenticated: Option<&Authenticated>, user: Option<String>) -> Option<String> {
    let principal = authenticated.and_then(Authenticated::principal);
    user.or_else(|| principal.map(|p| p.user_id.to_string()))
}

/// The address and user agent of events about a known user, sealed under their key, per
/// user (one request's events name at most a couple of users).
#[derive(Default)]
struct Sealed(Vec<(String, SealedActor)>);

/// An actor's address and user agent, sealed.
type SealedActor = (Option<finsec_audit::Text>, Option<finsec_audit::Text>);

impl Sealed {
    async fn get(
        &mut self,
        audit: &super::Audit,
        ctx: &Context,
        user: Option<&str>,
    ) -> Option<(Option<finsec_audit::Text>, Option<finsec_audit::Text>)> {
        let user = user?;
        if let Some((_, sealed)) = self.0.iter().find(|(u, _)| u == user) {
            return Some(sealed.clone());
        }
        let sealed = audit
            .seal_actor(user, ctx.raw_ip.as_deref(), ctx.user_agent.as_deref())
            .await;
        self.0.push((user.to_owned(), sealed.clone()));
        Some(sealed)
    }
}

#[expect(
    clippy::too_many_arguments,
    reason = "one event's parts, built in two places of one function"
)]
fn build(
    ctx: &Context,
    authenticated: Option<&Authenticated>,
    action: &str,
    outcome: Outcome,
    user: Option<String>,
    sealed: Option<(Option<finsec_audit::Text>, Option<finsec_audit::Text>)>,
    resource: Option<(&str, String)>,
    duration_us: u64,
) -> Result<AuditEvent, finsec_audit::EventError> {
    let principal = authenticated.and_then(Authenticated::principal);
    let (ip, user_agent) = match sealed {
        Some(sealed) => sealed,
        None => (ctx.ip.clone(), ctx.user_agent.clone().map(Into::into)),
    };
    let actor = Actor {
        user: event_user(authenticated, user),
        api_key: principal.and_then(|p| match &p.via {
            Via::ApiKey { key_id, .. } => Some(key_id.to_string()),
            Via::Bearer { .. } => None,
        }),
        ip,
        user_agent,
        ..Actor::default()
    };
    let time = EventTime::new(
        time::OffsetDateTime::now_utc(),
        Precision::Microsecond,
        "system",
    )?;
    let mut event = AuditEvent::new(action, outcome, time)?
        .with_actor(actor)?
        .with_duration_us(duration_us);
    if let Some(id) = &ctx.request_id {
        event = event.with_request_id(id)?;
    }
    if let Some((kind, id)) = resource {
        event = event.with_resource(kind, &clip(&id, 256))?;
    }
    Ok(event)
}

/// The audit layer. See the [module docs](self).
pub async fn record(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    let started = Instant::now();
    let notes = AuditNotes::default();
    request.extensions_mut().insert(notes.clone());
    let ctx = Context {
        method: request.method().clone(),
        path: request.uri().path().to_owned(),
        ip: request
            .extensions()
            .get::<ClientAddr>()
            .and_then(|a| state.audit().client_ip(&a.ip().to_string())),
        raw_ip: request
            .extensions()
            .get::<ClientAddr>()
            .map(|a| a.ip().to_string()),
        user_agent: request
            .headers()
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|ua| clip(ua, 256)),
        request_id: request
            .extensions()
            .get::<RequestId>()
            .map(|id| clip(id.as_str(), 128)),
    };
    let response = next.run(request).await;
    let duration_us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
    let status = response.status();
    let slot = std::mem::take(&mut *notes.slot());
    let authenticated = slot.authenticated.as_ref();
    let audit = state.audit();
    let mut sealed = Sealed::default();

    // The handlers' security events.
    for note in slot.notes {
        let resource = match (&note.attempted_username, note.resource) {
            (Some(name), _) => audit.username_index(name).map(|bidx| ("user", bidx)),
            (None, r) => r,
        };
        // The address and user agent are the user's own when the request is theirs (it was
        // authenticated as them, or it is their successful login); a refused attempt on
        // someone's account comes from anyone, and keeps the configured form.
        let principal = authenticated
            .and_then(Authenticated::principal)
            .map(|p| p.user_id.to_string());
        let user = event_user(authenticated, note.user.clone());
        let theirs = user.is_some()
            && (principal == user || (principal.is_none() && note.outcome == Outcome::Success));
        let personal = if theirs {
            sealed.get(audit, &ctx, user.as_deref()).await
        } else {
            None
        };
        let built = build(
            &ctx,
            authenticated,
            note.action,
            note.outcome,
            note.user,
            personal,
            resource,
            duration_us,
        )
        .and_then(|mut e| {
            for (name, value) in note.details {
                e = e.with_detail(name, value)?;
            }
            Ok(e)
        });
        match built {
            Ok(event) => observe(audit, &ctx, event, true).await,
            Err(e) => tracing::error!(error = %e, action = note.action, "audit event not built"),
        }
    }

    // The request itself.
    let keep = !matches!(ctx.method, Method::GET | Method::HEAD | Method::OPTIONS)
        || matches!(status.as_u16(), 401 | 403 | 429)
        || ctx.path == "/audit"
        || ctx.path.starts_with("/audit/");
    let bytes = response.body().size_hint().exact().unwrap_or(0);
    let user = event_user(authenticated, None);
    let personal = if keep {
        sealed.get(audit, &ctx, user.as_deref()).await
    } else {
        None
    };
    let built = build(
        &ctx,
        authenticated,
        "http.request",
        outcome_of(status),
        None,
        personal,
        Some(("http", format!("{} {}", ctx.method, ctx.path))),
        duration_us,
    )
    .and_then(|e| e.with_detail("status", i64::from(status.as_u16())))
    .and_then(|e| e.with_detail("bytes", i64::try_from(bytes).unwrap_or(i64::MAX)))
    .and_then(
        |e| match (status, response.headers().get("ratelimit-policy")) {
            (StatusCode::TOO_MANY_REQUESTS, Some(policy)) => e.with_detail(
                "rate_limit_policy",
                clip(policy.to_str().unwrap_or("?"), 128),
            ),
            _ => Ok(e),
        },
    )
    .and_then(|e| match authenticated {
        Some(Authenticated::Refused { reason }) => {
            e.with_detail("credential_refused", clip(reason, 128))
        }
        _ => Ok(e),
    });
    match built {
        Ok(event) => observe(audit, &ctx, event, keep).await,
        Err(e) => tracing::error!(error = %e, "audit request event not built"),
    }
    response
}

/// Shows `event` to the monitor with the address as the configuration records it (plain
/// or keyed: the monitor skips sealed values, and its per-address rules must still see
/// every event), and keeps it, if `keep`, as built (sealed for a known user).
async fn observe(audit: &super::Audit, ctx: &Context, event: AuditEvent, keep: bool) {
    let sealed = matches!(event.actor().ip, Some(finsec_audit::Text::Personal(_)))
        || matches!(
            event.actor().user_agent,
            Some(finsec_audit::Text::Personal(_))
        );
    if !sealed {
        audit.observe(event, keep).await;
        return;
    }
    let seen = event.clone().with_actor(Actor {
        ip: ctx.ip.clone(),
        user_agent: ctx.user_agent.clone().map(Into::into),
        ..event.actor().clone()
    });
    match seen {
        Ok(seen) => audit.observe_as(&seen, keep.then_some(&event)).await,
        Err(e) => {
            tracing::error!(error = %e, "audit event not shown to the monitor");
            audit.observe_as(&event, keep.then_some(&event)).await;
        }
    }
}
