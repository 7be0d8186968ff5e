//! The Redis store (feature `redis`): every instance of an application shares one limit.
//!
//! # Atomicity: one script, one round trip
//!
//! A check is decided by one Lua script ([`SCRIPT_SOURCE`]) that reads the state of every
//! quota of the key, evaluates them with the rules of [`algorithm::evaluate`], and writes the
//! new states only if every quota allows the request. Redis runs a script without
//! interleaving any other command, so concurrent checks from any number of connections and
//! application instances are serialised: the number of requests allowed never exceeds the
//! quota, and a denied request consumes nothing. The script is a transcription of
//! [`algorithm::evaluate`] with the same integer rules (see the comments at its top for why
//! Lua's doubles compute exactly what the Rust integers do), and the tests replay every
//! Redis decision through [`algorithm::evaluate`] to hold the two together.
//!
//! # The server's clock
//!
//! The script reads the time with Redis's `TIME` command; the client's clock never enters a
//! decision (no argument carries a time). Application instances whose clocks disagree
//! therefore still share one consistent limit, and a client cannot move a window by lying
//! about the time. [`RedisStore::check_with_server_time`] reports the server time a decision
//! was made at.
//!
//! # Key layout and expiry
//!
//! Each quota of each key is one Redis string:
//!
//! ```text
//! <prefix>{<key>}:<quota storage id>     e.g. finsec:rl:{ip:192.0.2.1}:60-per-1m:g:60:60000000:60
//! ```
//!
//! The key is a hash tag, so all quotas of a key live in one Redis Cluster slot and one
//! script can touch them (a key that itself contains `{` or `}` still gives every quota the
//! same tag, because the tag ends at the same place in each; the prefix may contain neither). The [storage id](crate::Quota::storage_id) names the quota's
//! parameters, so changing a quota starts it from fresh state rather than misreading the old
//! one. The value is decimal microseconds and counts: `<tat>` (GCRA), `<start>:<count>`
//! (fixed window) or `<start>:<previous>:<current>` (sliding window). Every write is a
//! `SET … PX` with the evaluation's ttl (rounded up to a millisecond, plus one millisecond
//! of margin), the time after which the state means the same as no state, so idle keys
//! disappear on their own and memory follows the number of active keys.
//!
//! The store is made for one Redis server (standalone, or a primary found through
//! Sentinel): a batch is one pipeline on one connection. Redis 5 or later is needed (the
//! script writes after reading `TIME`, which relies on the script-effects replication that
//! is the default from Redis 5).
//!
//! # Script loading and `NOSCRIPT`
//!
//! Checks are sent as `EVALSHA`, so the script itself crosses the network only when the
//! server does not have it: the first time (or up front, with [`RedisStore::load_script`])
//! and after a restart, a failover or a `SCRIPT FLUSH` empties its script cache. The server
//! then answers `NOSCRIPT`, which means the script did not run and nothing was counted; the
//! store sends `SCRIPT LOAD` and the refused checks again, together in one
//! `MULTI`/`EXEC` so that no other client's flush can fall between the load and the
//! checks. That retry happens once per call. In a [batch](RateLimitStore::check_batch) only
//! the refused checks are sent again, in their order; the others were already decided and
//! are kept, so no check is counted twice. (A refused check is then decided after the
//! batch's later checks that did run; each decision is still atomic and exact.)
//!
//! # Failures
//!
//! Every call is bounded by a [timeout](RedisStore::with_timeout) ([`DEFAULT_TIMEOUT`]):
//!
//! | what happened                                    | error                 |
//! |--------------------------------------------------|-----------------------|
//! | no answer in time                                | [`Error::Timeout`]    |
//! | connection, I/O or server error (`WRONGTYPE`, …) | [`Error::Backend`]    |
//! | a reply of the wrong shape, corrupt stored state | [`Error::Protocol`]   |
//!
//! All three are [backend errors](Error::is_backend) for the crate's failure policy; none
//! panics. After a timeout or a connection error the outcome is unknown: the check may have
//! been counted by the server. Error messages carry Redis's own message and never the
//! connection's credentials, which this store never sees (the caller builds the connection).
//!
//! ```no_run
//! # async fn example() -> finsec_ratelimit::Result<()> {
//! use std::num::NonZeroU32;
//! use finsec_ratelimit::{Check, Quota, RateLimitStore};
//! use finsec_ratelimit::redis::{DEFAULT_PREFIX, RedisStore};
//!
//! let client = redis::Client::open("redis://127.0.0.1:6379").unwrap();
//! let conn = client.get_connection_manager().await.unwrap();
//! let store = RedisStore::new(conn, DEFAULT_PREFIX)?;
//! store.load_script().await?;
//! let quotas = [Quota::per_second(NonZeroU32::new(10).unwrap())];
//! let decision = store.check(Check::new("ip:203.0.113.9", &quotas)).await?;
//! assert!(decision.allowed());
//! # Ok(())
//! # }
//! ```
//!
//! [`algorithm::evaluate`]: crate::algorithm::evaluate

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ::redis::aio::{ConnectionLike, ConnectionManager};
use ::redis::{Cmd, RedisError, Script, ServerErrorKind, Value};
use async_trait::async_trait;

use crate::decision::{Decision, QuotaDecision};
use crate::error::{Error, Result};
use crate::quota::{Algorithm, Quota};
use crate::store::{Check, RateLimitStore};

/// The Lua script that decides a check (loaded once per server, run with `EVALSHA`).
pub const SCRIPT_SOURCE: &str = include_str!("check.lua");

/// A key prefix for applications that have no better one.
pub const DEFAULT_PREFIX: &str = "finsec:rl:";

/// How long a call waits for Redis by default. A rate-limit check sits in front of every
/// request, so a stalled Redis should be noticed quickly and handed to the failure policy.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_millis(250);

/// The longest timeout accepted.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(60);

const BACKEND: &str = "redis";

/// Numbers in a reply per quota: allowed, remaining, retry_after_us, reset_after_us.
const FIELDS_PER_QUOTA: usize = 4;

/// A [`RateLimitStore`] in Redis, over a connection the caller built (a
/// [`ConnectionManager`] by default, or any other asynchronous connection such as a
/// `MultiplexedConnection`). Cheap to clone; clones share the connection.
///
/// See the [module documentation](self) for the key layout, the clock and failures.
#[derive(Clone)]
pub struct RedisStore<C = ConnectionManager> {
    conn: C,
    prefix: String,
    timeout: Duration,
    script: Script,
}

impl<C> fmt::Debug for RedisStore<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The connection is left out: it may hold the credentials it was built with.
        f.debug_struct("RedisStore")
            .field("prefix", &self.prefix)
            .field("timeout", &self.timeout)
            .field("script_sha", &self.script.get_hash())
            .finish_non_exhaustive()
    }
}

impl<C> RedisStore<C>
where
    C: ConnectionLike + Clone + Send + Sync + 'static,
{
    /// A store keeping its keys under `prefix` (for example [`DEFAULT_PREFIX`] or
    /// `myapp:rl:`), with the [`DEFAULT_TIMEOUT`].
    ///
    /// # Errors
    /// [`Error::Config`] if the prefix contains `{`, `}` or a control character (braces
    /// would change which part of a key Redis Cluster hashes).
    pub fn new(conn: C, prefix: &str) -> Result<Self> {
        if let Some(c) = prefix
            .chars()
            .find(|c| matches!(c, '{' | '}') || c.is_control())
        {
            return Err(Error::Config {
                path: "redis.prefix".to_owned(),
                reason: format!("the key prefix must not contain {c:?}"),
            });
        }
        Ok(Self {
            conn,
            prefix: prefix.to_owned(),
            timeout: DEFAULT_TIMEOUT,
            script: Script::new(SCRIPT_SOURCE),
        })
    }

    /// The same store with another per-call timeout (each [`check`](RateLimitStore::check)
    /// or [`check_batch`](RateLimitStore::check_batch), including a script reload).
    ///
    /// # Errors
    /// [`Error::Config`] if the timeout is zero or longer than [`MAX_TIMEOUT`].
    pub fn with_timeout(mut self, timeout: Duration) -> Result<Self> {
        if timeout.is_zero() || timeout > MAX_TIMEOUT {
            return Err(Error::Config {
                path: "redis.timeout".to_owned(),
                reason: format!("the timeout must be above zero and at most {MAX_TIMEOUT:?}"),
            });
        }
        self.timeout = timeout;
        Ok(self)
    }

    /// The key prefix.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The per-call timeout.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The SHA-1 of [`SCRIPT_SOURCE`], as `EVALSHA` names it.
    pub fn script_sha(&self) -> &str {
        self.script.get_hash()
    }

    /// The Redis key holding `quota`'s state for `key`: `<prefix>{<key>}:<storage id>`.
    pub fn storage_key(&self, key: &str, quota: &Quota) -> String {
        format!("{}{{{key}}}:{}", self.prefix, quota.storage_id())
    }

    /// Loads the script now (`SCRIPT LOAD`), so the first checks need no reload. Optional:
    /// the store loads it by itself when the server answers `NOSCRIPT`.
    ///
    /// # Errors
    /// [`Error::Timeout`] or [`Error::Backend`].
    pub async fn load_script(&self) -> Result<()> {
        let mut conn = self.conn.clone();
        self.bounded(async { self.load(&mut conn).await }).await
    }

    /// Decides a check like [`check`](RateLimitStore::check), and also says at what time,
    /// by the Redis server's clock, the decision was made (to the microsecond). The time
    /// is reported, never chosen: it is the `TIME` the script read.
    ///
    /// # Errors
    /// As [`check`](RateLimitStore::check).
    pub async fn check_with_server_time<'q>(
        &self,
        check: Check<'_, 'q>,
    ) -> Result<(Decision<'q>, SystemTime)> {
        check.validate()?;
        let cmd = self.evalsha(&check);
        let mut replies = self.bounded(self.run(std::slice::from_ref(&cmd))).await?;
        match replies.pop() {
            Some(reply) if replies.is_empty() => parse_reply(reply, check.quotas),
            _ => Err(protocol("one check got no single answer".to_owned())),
        }
    }

    async fn bounded<T>(&self, call: impl Future<Output = Result<T>>) -> Result<T> {
        match tokio::time::timeout(self.timeout, call).await {
            Ok(result) => result,
            Err(_) => Err(Error::Timeout {
                backend: BACKEND,
                timeout: self.timeout,
            }),
        }
    }

    async fn load(&self, conn: &mut C) -> Result<()> {
        let sha = self.script.load_async(conn).await.map_err(map_err)?;
        if sha == self.script.get_hash() {
            Ok(())
        } else {
            Err(protocol(format!(
                "SCRIPT LOAD answered the digest {sha:?}, expected {:?}",
                self.script.get_hash()
            )))
        }
    }

    /// `EVALSHA <sha> <n> <key per quota> <cost> (<algorithm> <p1> <p2>)*`: GCRA's
    /// emission interval and tolerance, or a window's limit and period (both in µs), so the
    /// script converts two numbers per quota and derives nothing.
    fn evalsha(&self, check: &Check<'_, '_>) -> Cmd {
        let mut cmd = ::redis::cmd("EVALSHA");
        cmd.arg(self.script.get_hash()).arg(check.quotas.len());
        for quota in check.quotas {
            cmd.arg(self.storage_key(check.key, quota));
        }
        cmd.arg(check.cost);
        for quota in check.quotas {
            match quota.algorithm() {
                Algorithm::Gcra => cmd
                    .arg("g")
                    .arg(quota.emission_interval_micros())
                    .arg(quota.tolerance_micros()),
                Algorithm::SlidingWindow => {
                    cmd.arg("s").arg(quota.limit()).arg(quota.period_micros())
                }
                Algorithm::FixedWindow => {
                    cmd.arg("f").arg(quota.limit()).arg(quota.period_micros())
                }
            };
        }
        cmd
    }

    async fn batch<'q>(&self, checks: &[Check<'_, 'q>]) -> Result<Vec<Decision<'q>>> {
        let cmds: Vec<Cmd> = checks.iter().map(|c| self.evalsha(c)).collect();
        let replies = self.run(&cmds).await?;
        checks
            .iter()
            .zip(replies)
            .map(|(check, reply)| parse_reply(reply, check.quotas).map(|(d, _)| d))
            .collect()
    }

    /// Sends `EVALSHA`s in one round trip (a single command or a pipeline) and returns their
    /// answers in order. Those refused with `NOSCRIPT` did not run; they are sent once more
    /// in one `MULTI`/`EXEC` behind a `SCRIPT LOAD`, so no flush can come between the load
    /// and them. The others ran, and are kept.
    async fn run(&self, cmds: &[Cmd]) -> Result<Vec<Value>> {
        let mut conn = self.conn.clone();
        // A pipeline, even of one command: one round trip, and each command's server error
        // comes back in its place.
        let mut pipe = ::redis::pipe();
        pipe.ignore_errors();
        for cmd in cmds {
            pipe.add_command(cmd.clone());
        }
        let mut answers = pipe
            .query_async::<Vec<Value>>(&mut conn)
            .await
            .map_err(map_err)?;
        expect_answers(cmds.len(), answers.len())?;
        let refused: Vec<usize> = answers
            .iter()
            .enumerate()
            .filter(|(_, a)| matches!(a, Value::ServerError(e) if is_noscript(e)))
            .map(|(i, _)| i)
            .collect();
        if !refused.is_empty() {
            let mut multi = ::redis::pipe();
            multi.atomic().ignore_errors();
            multi.cmd("SCRIPT").arg("LOAD").arg(SCRIPT_SOURCE);
            for &i in &refused {
                if let Some(cmd) = cmds.get(i) {
                    multi.add_command(cmd.clone());
                }
            }
            let mut again = multi
                .query_async::<Vec<Value>>(&mut conn)
                .await
                .map_err(map_err)?
                .into_iter();
            expect_answers(refused.len() + 1, again.len())?;
            match again.next() {
                Some(Value::BulkString(sha)) if sha == self.script.get_hash().as_bytes() => {}
                other => {
                    return Err(match other {
                        Some(Value::ServerError(e)) => map_err(e.into()),
                        other => protocol(format!("SCRIPT LOAD answered {other:?}")),
                    });
                }
            }
            for (i, answer) in refused.into_iter().zip(again) {
                if let Some(slot) = answers.get_mut(i) {
                    *slot = answer;
                }
            }
        }
        answers
            .into_iter()
            .map(|answer| match answer {
                Value::ServerError(e) => Err(map_err(e.into())),
                value => Ok(value),
            })
            .collect()
    }
}

fn expect_answers(expected: usize, got: usize) -> Result<()> {
    if expected == got {
        Ok(())
    } else {
        Err(protocol(format!("{expected} commands got {got} answers")))
    }
}

#[async_trait]
impl<C> RateLimitStore for RedisStore<C>
where
    C: ConnectionLike + Clone + Send + Sync + 'static,
{
    async fn check<'q>(&self, check: Check<'_, 'q>) -> Result<Decision<'q>> {
        self.check_with_server_time(check).await.map(|(d, _)| d)
    }

    /// Decides all checks in one round trip (a pipeline of `EVALSHA`s), each atomically and
    /// in order. One invalid check fails the batch before anything is sent. If Redis fails
    /// part-way (an error answer, a timeout), the checks before the failure may have been
    /// counted.
    async fn check_batch<'q>(&self, checks: &[Check<'_, 'q>]) -> Result<Vec<Decision<'q>>> {
        for c in checks {
            c.validate()?;
        }
        if checks.is_empty() {
            return Ok(Vec::new());
        }
        self.bounded(self.batch(checks)).await
    }

    fn backend(&self) -> &'static str {
        BACKEND
    }
}

fn is_noscript(e: &::redis::ServerError) -> bool {
    e.kind() == Some(ServerErrorKind::NoScript)
}

fn protocol(reason: String) -> Error {
    Error::Protocol {
        backend: BACKEND,
        reason,
    }
}

/// The script's own refusals (corrupt stored state, bad arguments) are protocol errors;
/// everything else Redis or the connection reports is a backend failure.
fn map_err(e: RedisError) -> Error {
    match e.code() {
        Some(code @ ("FINSEC_RL_STATE" | "FINSEC_RL_ARGS")) => protocol(format!(
            "the script refused: {code} {}",
            e.detail().unwrap_or_default()
        )),
        _ => Error::Backend {
            backend: BACKEND,
            source: Box::new(e),
        },
    }
}

fn reply_int(value: &Value) -> Result<u64> {
    match value {
        Value::Int(i) => u64::try_from(*i)
            .map_err(|_| protocol(format!("the script answered a negative number {i}"))),
        other => Err(protocol(format!(
            "the script answered {other:?} where an integer was expected"
        ))),
    }
}

/// Turns the script's reply into a [`Decision`] and the server time it was made at.
fn parse_reply(reply: Value, quotas: &[Quota]) -> Result<(Decision<'_>, SystemTime)> {
    let Value::Array(items) = reply else {
        return Err(protocol(format!(
            "the script answered {reply:?} where an array was expected"
        )));
    };
    let expected = 2 + FIELDS_PER_QUOTA * quotas.len();
    if items.len() != expected {
        return Err(protocol(format!(
            "the script answered {} numbers for {} quotas, expected {expected}",
            items.len(),
            quotas.len()
        )));
    }
    let numbers = items.iter().map(reply_int).collect::<Result<Vec<u64>>>()?;
    let (time, per_quota) = numbers.split_at(2);
    let [seconds, micros] = *time else {
        return Err(protocol("the script answered no time".to_owned()));
    };
    if micros >= 1_000_000 {
        return Err(protocol(format!(
            "the script answered {micros} microseconds past a second"
        )));
    }
    let at = UNIX_EPOCH + Duration::from_secs(seconds) + Duration::from_micros(micros);
    let decisions = quotas
        .iter()
        .zip(per_quota.chunks_exact(FIELDS_PER_QUOTA))
        .map(|(quota, fields)| {
            let &[allowed, remaining, retry, reset] = fields else {
                return Err(protocol("the script answered a short quota".to_owned()));
            };
            let allowed = match allowed {
                0 => false,
                1 => true,
                other => {
                    return Err(protocol(format!(
                        "the script answered {other} where 0 or 1 was expected"
                    )));
                }
            };
            Ok(QuotaDecision::from_parts(
                quota, allowed, remaining, retry, reset,
            ))
        })
        .collect::<Result<Vec<_>>>()?;
    Ok((Decision::from_quotas(decisions), at))
}

#[cfg(test)]
mod tests {
    use std::num::NonZeroU32;

    use super::*;

    fn quotas() -> Vec<Quota> {
        vec![
            Quota::per_second(NonZeroU32::new(10).unwrap()),
            Quota::per_hour(NonZeroU32::new(100).unwrap())
                .with_algorithm(Algorithm::FixedWindow)
                .unwrap(),
        ]
    }

    fn ints(v: &[i64]) -> Value {
        Value::Array(v.iter().map(|&i| Value::Int(i)).collect())
    }

    #[test]
    fn a_well_formed_reply_becomes_a_decision() {
        let q = quotas();
        let (d, at) = parse_reply(
            ints(&[1_700_000_000, 250_000, 1, 9, 0, 100_000, 1, 99, 0, 5]),
            &q,
        )
        .unwrap();
        assert!(d.allowed());
        assert_eq!(d.quotas()[0].remaining(), 9);
        assert_eq!(d.quotas()[1].reset_after(), Duration::from_micros(5));
        assert_eq!(
            at,
            UNIX_EPOCH + Duration::from_secs(1_700_000_000) + Duration::from_millis(250)
        );
        let (d, _) = parse_reply(ints(&[1, 0, 1, 9, 0, 1, 0, 0, 7, 8]), &q).unwrap();
        assert!(!d.allowed());
        assert_eq!(d.retry_after(), Some(Duration::from_micros(7)));
    }

    #[test]
    fn malformed_replies_are_protocol_errors() {
        let q = quotas();
        let bad = [
            Value::Nil,
            Value::Okay,
            ints(&[1, 0, 1, 9, 0, 1]),
            ints(&[1, 0, 1, 9, 0, 1, 1, 9, 0, 1, 7]),
            ints(&[1, 0, 2, 9, 0, 1, 1, 9, 0, 1]),
            ints(&[1, 0, 1, -9, 0, 1, 1, 9, 0, 1]),
            ints(&[1, 1_000_000, 1, 9, 0, 1, 1, 9, 0, 1]),
            Value::Array(vec![Value::BulkString(b"1".to_vec()); 10]),
        ];
        for reply in bad {
            let shown = format!("{reply:?}");
            match parse_reply(reply, &q) {
                Err(e @ Error::Protocol { .. }) => assert!(e.is_backend()),
                other => panic!("{shown}: {other:?}"),
            }
        }
    }
}
