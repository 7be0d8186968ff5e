//! [`AuditLog`]: a sink, the log's name and its note key, with witnesses.

use std::sync::Arc;

use uuid::Uuid;

use crate::checkpoint::{Checkpoint, NoteSigner, SignedCheckpoint};
use crate::error::{Error, Result};
use crate::event::AuditEvent;
use crate::merkle::{self, Hash};
use crate::sink::{Appended, AuditSink, EncodedEvent};
use crate::witness::Witness;

/// A proof that one event is in the log at a given size.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InclusionProof {
    /// The event's position.
    pub index: u64,
    /// The tree size the proof is for.
    pub size: u64,
    /// The event's leaf hash.
    pub leaf: Hash,
    /// The audit path, leaf level first.
    pub path: Vec<Hash>,
}

impl InclusionProof {
    /// Checks the proof against a root of the proof's size (from a verified checkpoint).
    pub fn verify(&self, root: &Hash) -> Result<()> {
        merkle::verify_inclusion(&self.leaf, self.index, self.size, &self.path, root)?;
        Ok(())
    }
}

/// Witnesses that failed to take a checkpoint; the checkpoint itself was stored.
#[derive(Debug, Default)]
pub struct WitnessFailures(pub Vec<(String, Error)>);

/// The audit log: appends events to a sink, signs checkpoints and hands them to witnesses,
/// and answers with proofs.
///
/// Cheap to clone: the sink, the key and the witnesses are shared.
#[derive(Clone)]
pub struct AuditLog<S> {
    sink: S,
    origin: String,
    signer: Arc<NoteSigner>,
    witnesses: Vec<Arc<dyn Witness>>,
}

impl<S> std::fmt::Debug for AuditLog<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditLog")
            .field("origin", &self.origin)
            .field("signer", &self.signer)
            .field("witnesses", &self.witnesses.len())
            .finish_non_exhaustive()
    }
}

impl<S: AuditSink> AuditLog<S> {
    /// A log named `origin` (the checkpoint origin line, for example
    /// `audit.example.com/trading`) over `sink`, signing with `signer`.
    pub fn new(sink: S, origin: impl Into<String>, signer: NoteSigner) -> Result<Self> {
        let origin = origin.into();
        // The origin must be a valid checkpoint origin line.
        Checkpoint::new(origin.clone(), 0, Hash::empty())?;
        Ok(Self {
            sink,
            origin,
            signer: Arc::new(signer),
            witnesses: Vec::new(),
        })
    }

    /// Adds a witness every checkpoint is also written to.
    pub fn with_witness(mut self, witness: Arc<dyn Witness>) -> Self {
        self.witnesses.push(witness);
        self
    }

    /// The sink.
    pub fn sink(&self) -> &S {
        &self.sink
    }

    /// The log's origin.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// The note key's signer.
    pub fn signer(&self) -> &NoteSigner {
        &self.signer
    }

    /// Appends events, in order; returns when they are durable.
    pub async fn append(&self, events: &[AuditEvent]) -> Result<Appended> {
        let encoded = events
            .iter()
            .map(EncodedEvent::new)
            .collect::<Result<Vec<_>>>()?;
        self.sink.append(&encoded).await
    }

    /// The root of the log at `size` events.
    pub async fn root_at(&self, size: u64) -> Result<Hash> {
        let now = self.sink.size().await?;
        if size > now {
            return Err(Error::BeyondLog {
                size: now,
                asked: size,
            });
        }
        let nodes = self.sink.nodes(&merkle::root_plan(size)).await?;
        Ok(merkle::root_from_nodes(size, &nodes)?)
    }

    /// Signs a checkpoint of the log as it is now, stores it, and writes it to every
    /// witness. The checkpoint is returned even if a witness failed; the failures come with
    /// it so the caller can alert.
    pub async fn checkpoint(&self) -> Result<(SignedCheckpoint, WitnessFailures)> {
        let size = self.sink.size().await?;
        let root = self.root_at(size).await?;
        let signed = self
            .signer
            .sign(Checkpoint::new(self.origin.clone(), size, root)?);
        self.sink.put_checkpoint(size, signed.note()).await?;
        let mut failures = WitnessFailures::default();
        for w in &self.witnesses {
            if let Err(e) = w.witness(size, signed.note()).await {
                failures.0.push((w.name(), e));
            }
        }
        Ok((signed, failures))
    }

    /// The inclusion proof of the event `id` in the log at `size` events.
    pub async fn inclusion_proof(&self, id: Uuid, size: u64) -> Result<InclusionProof> {
        let index = self
            .sink
            .position(id)
            .await?
            .ok_or(Error::UnknownEvent(id))?;
        self.inclusion_proof_at(index, size).await
    }

    /// The inclusion proof of the event at position `index` in the log at `size` events.
    pub async fn inclusion_proof_at(&self, index: u64, size: u64) -> Result<InclusionProof> {
        let now = self.sink.size().await?;
        if size > now {
            return Err(Error::BeyondLog {
                size: now,
                asked: size,
            });
        }
        let mut plan = merkle::inclusion_plan(index, size)?;
        let leaf_id = merkle::NodeId::new(0, index);
        if !plan.contains(&leaf_id) {
            plan.push(leaf_id);
        }
        let nodes = self.sink.nodes(&plan).await?;
        let path = merkle::inclusion_proof(index, size, &nodes)?;
        let leaf = *nodes
            .get(&leaf_id)
            .ok_or_else(|| Error::Corrupt(format!("leaf {index} is missing")))?;
        Ok(InclusionProof {
            index,
            size,
            leaf,
            path,
        })
    }

    /// The consistency proof from the log at `from` events to the log at `to` events.
    pub async fn consistency_proof(&self, from: u64, to: u64) -> Result<Vec<Hash>> {
        let now = self.sink.size().await?;
        if to > now {
            return Err(Error::BeyondLog {
                size: now,
                asked: to,
            });
        }
        let nodes = self
            .sink
            .nodes(&merkle::consistency_plan(from, to)?)
            .await?;
        Ok(merkle::consistency_proof(from, to, &nodes)?)
    }
}
