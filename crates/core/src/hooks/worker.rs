//! The delivery worker: claims due deliveries (at most the oldest pending one per hook, under
//! a lease), sends them through a [`Transport`], records each attempt and decides what comes
//! next — delivered, retried after an exponential backoff, or given up after the last
//! attempt, which lets the hook's next delivery go. Receivers see a hook's events in the
//! order they were queued.
//!
//! Each attempt is its own task: the worker claims more as soon as one finishes or a
//! delivery is queued, up to [`DeliverySettings::concurrency`] at a time, so a slow or dead
//! receiver holds back only its own hook's queue, never another hook's.
//!
//! The HTTP client is the binary's ([`Transport`]); this module never touches sockets.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;

use super::model::{Attempt, AttemptOutcome, MAX_RECORDED_BODY};
use super::service::Hooks;
use super::signing;
use super::store::Claimed;
use crate::error::StoreErrorKind;
use crate::ports::{Millis, StoreResult, now_millis};

/// How deliveries are attempted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeliverySettings {
    /// How long one attempt may take, response included.
    pub timeout: Duration,
    /// Wait before the first retry; each further retry waits twice as long as the one before.
    pub retry_base: Duration,
    /// The longest wait between attempts.
    pub retry_max: Duration,
    /// Attempts before a delivery is given up.
    pub max_attempts: u32,
    /// Attempts in flight at once, at most (at least one).
    pub concurrency: usize,
}

impl Default for DeliverySettings {
    fn default() -> Self {
        DeliverySettings {
            timeout: Duration::from_secs(10),
            retry_base: Duration::from_secs(10),
            retry_max: Duration::from_secs(3600),
            max_attempts: 8,
            concurrency: 128,
        }
    }
}

impl DeliverySettings {
    /// The wait after the `failures`-th failed attempt: `retry_base * 2^(failures-1)`, at most
    /// `retry_max`.
    pub fn retry_delay(&self, failures: u32) -> Duration {
        let factor = 1u32
            .checked_shl(failures.saturating_sub(1))
            .unwrap_or(u32::MAX);
        self.retry_base
            .checked_mul(factor)
            .unwrap_or(self.retry_max)
            .min(self.retry_max)
    }

    /// How long a claim lasts: longer than an attempt can take, so a live worker never loses
    /// it; a dead one's claim expires and another worker takes over.
    fn lease(&self) -> Duration {
        self.timeout + Duration::from_secs(30)
    }
}

/// A request to a receiver.
#[derive(Debug, Clone)]
pub struct OutgoingRequest {
    /// The receiver.
    pub url: String,
    /// Headers to send.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
    /// Skip TLS certificate verification.
    pub insecure_ssl: bool,
    /// Give up after this long.
    pub timeout: Duration,
}

/// What a receiver answered.
#[derive(Debug, Clone)]
pub struct ReceivedResponse {
    /// Status code.
    pub status: u16,
    /// Headers.
    pub headers: Vec<(String, String)>,
    /// Body, at most [`MAX_RECORDED_BODY`] bytes of it.
    pub body: Vec<u8>,
}

/// Sends delivery requests (the binary's HTTP client).
#[async_trait]
pub trait Transport: Send + Sync + 'static {
    /// POSTs `request`; `Err` says why no response came (refused, timed out, TLS).
    async fn post(&self, request: OutgoingRequest) -> Result<ReceivedResponse, String>;
}

/// How long finished deliveries stay listed (GitHub's delivery log keeps 30 days).
pub const KEEP_DELIVERIES: Duration = Duration::from_secs(30 * 24 * 3600);
/// How often old deliveries are purged.
const PURGE_EVERY: Duration = Duration::from_secs(3600);
/// The longest the worker sleeps without looking at the queue (other nodes queue too).
const POLL: Duration = Duration::from_secs(1);
/// How often the queue's depth is counted for the metrics.
const COUNT_EVERY: Duration = Duration::from_secs(5);

impl Hooks {
    /// Delivers queued deliveries until the process exits: each attempt in its own task, at
    /// most `settings.concurrency` at once, claiming more whenever one finishes, a delivery
    /// is queued, or one falls due.
    pub async fn run_deliveries(self, transport: Arc<dyn Transport>, settings: DeliverySettings) {
        let limit = settings.concurrency.max(1);
        let mut in_flight = tokio::task::JoinSet::new();
        let mut purged_at = Instant::now();
        let mut counted_at: Option<Instant> = None;
        loop {
            if purged_at.elapsed() >= PURGE_EVERY {
                purged_at = Instant::now();
                self.purge_old_deliveries().await;
            }
            if counted_at.is_none_or(|at| at.elapsed() >= COUNT_EVERY) {
                counted_at = Some(Instant::now());
                match self.store.pending_deliveries().await {
                    Ok(depth) => metrics::gauge!("berth_webhook_queue_depth").set(depth as f64),
                    Err(err) => tracing::warn!(error = %err, "counting the webhook queue failed"),
                }
            }
            while let Some(done) = in_flight.try_join_next() {
                finished(done);
            }
            metrics::gauge!("berth_webhook_deliveries_in_flight").set(in_flight.len() as f64);
            let free = limit.saturating_sub(in_flight.len());
            if free == 0 {
                // Every slot is taken: claim again as soon as one frees.
                if let Some(done) = in_flight.join_next().await {
                    finished(done);
                }
                continue;
            }
            match self.claim(free, &settings).await {
                Ok((token, claims)) if !claims.is_empty() => {
                    for claim in claims {
                        let hooks = self.clone();
                        let transport = transport.clone();
                        let token = token.clone();
                        in_flight.spawn(async move {
                            hooks
                                .attempt(claim, &token, transport.as_ref(), &settings)
                                .await
                        });
                    }
                    metrics::gauge!("berth_webhook_deliveries_in_flight")
                        .set(in_flight.len() as f64);
                    // More may be due (other hooks, beyond this claim's limit).
                    continue;
                }
                Ok(_) => {}
                Err(err) => tracing::warn!(error = %err, "claiming webhook deliveries failed"),
            }
            let wait = match self.store.next_due().await {
                Ok(Some(due)) => {
                    Duration::from_millis(u64::try_from(due - now_millis()).unwrap_or(0))
                        .clamp(Duration::from_millis(5), POLL)
                }
                Ok(None) => POLL,
                Err(err) => {
                    tracing::warn!(error = %err, "reading the webhook queue failed");
                    POLL
                }
            };
            tokio::select! {
                () = self.wake.notified() => {}
                () = tokio::time::sleep(wait) => {}
                Some(done) = in_flight.join_next(), if !in_flight.is_empty() => finished(done),
            }
        }
    }

    /// Deletes finished deliveries older than [`KEEP_DELIVERIES`]; logs failures.
    pub async fn purge_old_deliveries(&self) {
        let keep = Millis::try_from(KEEP_DELIVERIES.as_millis()).unwrap_or(Millis::MAX);
        match self
            .store
            .purge_deliveries(now_millis().saturating_sub(keep))
            .await
        {
            Ok(0) => {}
            Ok(n) => tracing::info!(deliveries = n, "purged old webhook deliveries"),
            Err(err) => tracing::warn!(error = %err, "purging old webhook deliveries failed"),
        }
    }

    /// Leases up to `limit` due deliveries (at most one per hook) under a new token.
    async fn claim(
        &self,
        limit: usize,
        settings: &DeliverySettings,
    ) -> StoreResult<(String, Vec<Claimed>)> {
        let token = uuid::Uuid::new_v4().to_string();
        let now = now_millis();
        let lease = Millis::try_from(settings.lease().as_millis()).unwrap_or(Millis::MAX);
        let claimed = self
            .store
            .claim_due(now, &token, now.saturating_add(lease), limit)
            .await?;
        Ok((token, claimed))
    }

    async fn attempt(
        &self,
        claim: Claimed,
        token: &str,
        transport: &dyn Transport,
        settings: &DeliverySettings,
    ) -> StoreResult<()> {
        let Claimed { delivery, hook } = claim;
        let body = signing::body(hook.config.content_type, &delivery.queued.payload);
        let headers = signing::headers(&hook, &delivery, &body);
        let started_at = now_millis();
        let clock = Instant::now();
        let result = transport
            .post(OutgoingRequest {
                url: hook.config.url.clone(),
                headers: headers.clone(),
                body,
                insecure_ssl: hook.config.insecure_ssl,
                timeout: settings.timeout,
            })
            .await;
        let duration_ms = u64::try_from(clock.elapsed().as_millis()).unwrap_or(u64::MAX);
        let number = delivery.attempts + 1;
        let mut attempt = Attempt {
            number,
            started_at,
            duration_ms,
            request_headers: headers,
            status_code: None,
            response_headers: Vec::new(),
            response_body: String::new(),
            error: None,
        };
        match result {
            Ok(response) => {
                let body = &response.body[..response.body.len().min(MAX_RECORDED_BODY)];
                attempt.status_code = Some(response.status);
                attempt.response_headers = response.headers;
                attempt.response_body = String::from_utf8_lossy(body).into_owned();
            }
            Err(error) => attempt.error = Some(error),
        }
        let outcome = if attempt.succeeded() {
            AttemptOutcome::Delivered
        } else if number >= settings.max_attempts {
            AttemptOutcome::Failed
        } else {
            let wait = settings.retry_delay(number);
            AttemptOutcome::RetryAt(
                now_millis().saturating_add(Millis::try_from(wait.as_millis()).unwrap_or(0)),
            )
        };
        let label = match outcome {
            AttemptOutcome::Delivered => "delivered",
            AttemptOutcome::RetryAt(_) => "retry",
            AttemptOutcome::Failed => "failed",
        };
        metrics::counter!("berth_webhook_attempts_total", "outcome" => label).increment(1);
        match outcome {
            AttemptOutcome::Delivered => {
                tracing::debug!(hook = %hook.id, delivery = %delivery.id, event = %delivery.queued.event, "webhook delivered");
            }
            AttemptOutcome::RetryAt(_) => {
                tracing::info!(hook = %hook.id, delivery = %delivery.id, attempt = number, status = %attempt.status_text(), "webhook delivery failed; will retry");
            }
            AttemptOutcome::Failed => {
                tracing::warn!(hook = %hook.id, delivery = %delivery.id, attempts = number, status = %attempt.status_text(), url = %hook.config.url, "webhook delivery given up");
            }
        }
        match self
            .store
            .record_attempt(delivery.id, token, &attempt, outcome)
            .await
        {
            Err(err) if err.kind() == StoreErrorKind::LeaseLost => {
                tracing::warn!(
                    hook = %hook.id,
                    delivery = %delivery.id,
                    "webhook delivery lease lost before its attempt was recorded"
                );
                Ok(())
            }
            done => done,
        }
    }
}

/// Logs an attempt task that failed to record its attempt or panicked.
fn finished(done: Result<StoreResult<()>, tokio::task::JoinError>) {
    match done {
        Ok(Ok(())) => {}
        Ok(Err(err)) => tracing::warn!(error = %err, "recording a webhook attempt failed"),
        Err(err) => tracing::error!(error = %err, "a webhook attempt task failed"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_back_off_exponentially_up_to_the_cap() {
        let settings = DeliverySettings::default();
        assert_eq!(settings.retry_delay(1), Duration::from_secs(10));
        assert_eq!(settings.retry_delay(2), Duration::from_secs(20));
        assert_eq!(settings.retry_delay(3), Duration::from_secs(40));
        assert_eq!(settings.retry_delay(9), Duration::from_secs(2560));
        assert_eq!(settings.retry_delay(10), Duration::from_secs(3600));
        assert_eq!(settings.retry_delay(64), Duration::from_secs(3600));
        let tiny = DeliverySettings {
            retry_base: Duration::from_millis(20),
            ..settings
        };
        assert_eq!(tiny.retry_delay(1), Duration::from_millis(20));
        assert_eq!(tiny.retry_delay(4), Duration::from_millis(160));
    }

    #[test]
    fn the_lease_outlasts_an_attempt() {
        let settings = DeliverySettings::default();
        assert!(settings.lease() > settings.timeout);
    }
}
