//! The data-subject registry over a small application: a profile that is deleted, trades
//! that must be kept (pseudonymised), the consent ledger, and audit details encrypted
//! under the subject's key.

#![cfg(test)]

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use finsec_audit::event::{Detail, Personal};
use finsec_audit::{
    AuditEvent, AuditLog, AuditSink, EventTime, MemorySink, NoteSigner, Outcome, Precision,
};
use finsec_compliance::Error;
use finsec_compliance::gdpr::consent::{
    ConsentAction, ConsentEvent, ConsentSource, ConsentStore, MemoryConsentStore, Purpose,
};
use finsec_compliance::gdpr::hold::{HoldStore, MemoryHoldStore, NewHold};
use finsec_compliance::gdpr::registry::{
    DataSubjectRegistry, Erased, ErasureAction, ErasureContext, ErasureMode, ErasureRule,
    PersonalDataSource, RecordSink, SourceDescriptor,
};
use finsec_compliance::gdpr::retention::RetentionPolicies;
use finsec_compliance::gdpr::{LawfulBasis, Pseudonymizer, RecordClass};
use finsec_crypto::subject::{MemorySubjectKeyStore, SubjectKeys};
use finsec_crypto::{Key256, KeyName, Keyring, SubjectId};
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::macros::datetime;

const NOW: OffsetDateTime = datetime!(2026-12-07 10:00 UTC);

#[derive(Debug, Clone)]
struct Profile {
    email: String,
    restricted: bool,
}

struct Profiles {
    descriptor: SourceDescriptor,
    rows: Mutex<HashMap<SubjectId, Profile>>,
}

impl Profiles {
    fn new() -> Self {
        Self {
            descriptor: SourceDescriptor {
                name: "profile".into(),
                version: 2,
                description: "the account".into(),
                categories: vec!["e-mail address".into()],
                lawful_basis: LawfulBasis::Contract,
                class: RecordClass::new("profile").unwrap(),
                on_erasure: ErasureRule::Delete,
            },
            rows: Mutex::new(HashMap::new()),
        }
    }
}

#[async_trait]
impl PersonalDataSource for Profiles {
    fn descriptor(&self) -> &SourceDescriptor {
        &self.descriptor
    }
    async fn count(&self, subject: &SubjectId) -> finsec_compliance::Result<u64> {
        Ok(u64::from(self.rows.lock().unwrap().contains_key(subject)))
    }
    async fn export(
        &self,
        subject: &SubjectId,
        sink: &mut dyn RecordSink,
    ) -> finsec_compliance::Result<()> {
        let row = self.rows.lock().unwrap().get(subject).cloned();
        if let Some(p) = row {
            sink.record(&json!({"email": p.email, "restricted": p.restricted}))
                .await?;
        }
        Ok(())
    }
    async fn erase(
        &self,
        subject: &SubjectId,
        _mode: ErasureMode<'_>,
    ) -> finsec_compliance::Result<Erased> {
        let gone = self.rows.lock().unwrap().remove(subject);
        Ok(Erased {
            records: u64::from(gone.is_some()),
            newest: None,
        })
    }
    async fn rectify(
        &self,
        subject: &SubjectId,
        changes: &BTreeMap<String, Value>,
    ) -> finsec_compliance::Result<Vec<String>> {
        let mut rows = self.rows.lock().unwrap();
        let Some(row) = rows.get_mut(subject) else {
            return Ok(Vec::new());
        };
        let mut changed = Vec::new();
        if let Some(email) = changes.get("email") {
            let email = email
                .as_str()
                .filter(|e| e.contains('@'))
                .ok_or(Error::Invalid {
                    field: "email",
                    reason: "an e-mail address".into(),
                })?;
            row.email = email.to_owned();
            changed.push("email".to_owned());
        }
        Ok(changed)
    }
    async fn restrict(
        &self,
        subject: &SubjectId,
        restricted: bool,
    ) -> finsec_compliance::Result<u64> {
        let mut rows = self.rows.lock().unwrap();
        Ok(rows.get_mut(subject).map_or(0, |r| {
            r.restricted = restricted;
            1
        }))
    }
}

#[derive(Debug, Clone)]
struct Trade {
    owner: String,
    client_name: Option<String>,
    quantity: u32,
    at: OffsetDateTime,
}

struct Trades {
    descriptor: SourceDescriptor,
    rows: Mutex<Vec<Trade>>,
}

impl Trades {
    fn new() -> Self {
        Self {
            descriptor: SourceDescriptor {
                name: "trades".into(),
                version: 1,
                description: "executed trades".into(),
                categories: vec!["trades".into(), "name".into()],
                lawful_basis: LawfulBasis::LegalObligation,
                class: RecordClass::new("trades").unwrap(),
                on_erasure: ErasureRule::Pseudonymise {
                    obligation: "MiFIR Art. 25(1) record keeping".into(),
                },
            },
            rows: Mutex::new(Vec::new()),
        }
    }
}

#[async_trait]
impl PersonalDataSource for Trades {
    fn descriptor(&self) -> &SourceDescriptor {
        &self.descriptor
    }
    async fn count(&self, subject: &SubjectId) -> finsec_compliance::Result<u64> {
        let rows = self.rows.lock().unwrap();
        Ok(rows.iter().filter(|t| t.owner == subject.as_str()).count() as u64)
    }
    async fn export(
        &self,
        subject: &SubjectId,
        sink: &mut dyn RecordSink,
    ) -> finsec_compliance::Result<()> {
        let mine: Vec<Trade> = self
            .rows
            .lock()
            .unwrap()
            .iter()
            .filter(|t| t.owner == subject.as_str())
            .cloned()
            .collect();
        for t in mine {
            sink.record(&json!({"quantity": t.quantity, "client_name": t.client_name}))
                .await?;
        }
        Ok(())
    }
    async fn erase(
        &self,
        subject: &SubjectId,
        mode: ErasureMode<'_>,
    ) -> finsec_compliance::Result<Erased> {
        let ErasureMode::Pseudonymise(p) = mode else {
            panic!("trades are kept");
        };
        let mut out = Erased::default();
        for t in self.rows.lock().unwrap().iter_mut() {
            if t.owner == subject.as_str() {
                t.owner = p.to_string();
                t.client_name = None;
                out.records += 1;
                out.newest = out.newest.max(Some(t.at));
            }
        }
        Ok(out)
    }
}

struct App {
    registry: DataSubjectRegistry,
    profiles: Arc<Profiles>,
    trades: Arc<Trades>,
    consent: Arc<MemoryConsentStore>,
    keys: SubjectKeys<MemorySubjectKeyStore, Keyring>,
    log: AuditLog<MemorySink>,
    holds: MemoryHoldStore,
    policies: RetentionPolicies,
    pseudonymizer: Pseudonymizer,
}

fn app() -> App {
    let profiles = Arc::new(Profiles::new());
    let trades = Arc::new(Trades::new());
    let consent = Arc::new(MemoryConsentStore::new());
    let mut registry = DataSubjectRegistry::new();
    registry.register(profiles.clone()).unwrap();
    registry.register(trades.clone()).unwrap();
    registry
        .register(ConsentSource::new(consent.clone()))
        .unwrap();
    let keyring = Keyring::new();
    let kek = KeyName::new("subjects").unwrap();
    keyring.create_key(&kek).unwrap();
    App {
        registry,
        profiles,
        trades,
        consent,
        keys: SubjectKeys::new(MemorySubjectKeyStore::new(), keyring, kek),
        log: AuditLog::new(
            MemorySink::new(),
            "audit.example.com/gdpr",
            NoteSigner::generate("audit.example.com/gdpr").unwrap(),
        )
        .unwrap(),
        holds: MemoryHoldStore::new(),
        policies: RetentionPolicies::default(),
        pseudonymizer: Pseudonymizer::new(&Key256::from_bytes([9; 32])).unwrap(),
    }
}

impl App {
    /// A customer with a profile, three trades, two consent entries and an audit event
    /// whose e-mail detail is encrypted under their key.
    async fn customer(&self, name: &str) -> (SubjectId, Personal) {
        let subject = SubjectId::new(format!("user:{name}")).unwrap();
        self.profiles.rows.lock().unwrap().insert(
            subject.clone(),
            Profile {
                email: format!("{name}@example.com"),
                restricted: false,
            },
        );
        for (i, at) in [
            datetime!(2025-03-01 09:00 UTC),
            datetime!(2026-06-01 09:00 UTC),
            datetime!(2026-11-30 09:00 UTC),
        ]
        .into_iter()
        .enumerate()
        {
            self.trades.rows.lock().unwrap().push(Trade {
                owner: subject.as_str().to_owned(),
                client_name: Some(name.to_uppercase()),
                quantity: 10 * (u32::try_from(i).unwrap() + 1),
                at,
            });
        }
        for action in [ConsentAction::Granted, ConsentAction::Withdrawn] {
            self.consent
                .record(&ConsentEvent {
                    subject: subject.clone(),
                    purpose: Purpose::new("marketing.email").unwrap(),
                    action,
                    policy_version: 3,
                    at: NOW,
                    channel: "web".into(),
                    evidence: "form 17".into(),
                })
                .await
                .unwrap();
        }
        let email = Personal::encrypt(
            &self.keys,
            &subject,
            "details.email",
            &format!("{name}@example.com"),
            NOW,
        )
        .await
        .unwrap();
        let event = AuditEvent::new(
            "user.register",
            Outcome::Success,
            EventTime::new(NOW, Precision::Microsecond, "system").unwrap(),
        )
        .unwrap()
        .with_detail("email", email.clone())
        .unwrap();
        self.log.append(&[event]).await.unwrap();
        (subject, email)
    }

    fn ctx(&self) -> ErasureContext<'_> {
        ErasureContext {
            holds: &self.holds,
            policies: &self.policies,
            pseudonymizer: &self.pseudonymizer,
            keys: &self.keys,
            auditor: &self.log,
            actor: "privacy-officer",
            now: NOW,
        }
    }

    async fn export(&self, subject: &SubjectId) -> Value {
        let mut out = Vec::new();
        let manifest = self
            .registry
            .export(
                subject,
                &mut out,
                &self.policies,
                &self.log,
                subject.as_str(),
                NOW,
            )
            .await
            .unwrap();
        let doc: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(
            doc["manifest"]["sources"].as_array().unwrap().len(),
            manifest.sources.len()
        );
        doc
    }
}

#[tokio::test]
async fn export_holds_every_source_with_a_manifest() {
    let app = app();
    let (alice, _) = app.customer("alice").await;
    app.customer("bob").await;
    let doc = app.export(&alice).await;
    assert_eq!(doc["format"], "finsec.gdpr.export/1");
    assert_eq!(doc["subject"], "user:alice");
    assert_eq!(doc["sources"]["profile"][0]["email"], "alice@example.com");
    assert_eq!(doc["sources"]["trades"].as_array().unwrap().len(), 3);
    assert_eq!(doc["sources"]["consent"].as_array().unwrap().len(), 2);
    assert_eq!(doc["sources"]["consent"][1]["action"], "withdrawn");
    let manifest = doc["manifest"]["sources"].as_array().unwrap();
    let counts: Vec<(String, u64, u64)> = manifest
        .iter()
        .map(|m| {
            (
                m["name"].as_str().unwrap().to_owned(),
                m["version"].as_u64().unwrap(),
                m["records"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        counts,
        [
            ("profile".to_owned(), 2, 1),
            ("trades".to_owned(), 1, 3),
            ("consent".to_owned(), 1, 2)
        ]
    );
    assert_eq!(manifest[1]["lawful_basis"], "legal_obligation");
    assert_eq!(manifest[1]["retention"], "7y");
    assert!(
        !serde_json::to_string(&doc).unwrap().contains("bob"),
        "only alice's data"
    );
    // The export is audited without the data.
    let events = app.log.sink().read(0, 100).await.unwrap();
    let last = AuditEvent::from_canonical(&events.last().unwrap().bytes).unwrap();
    assert_eq!(last.action(), "gdpr.export");
    assert_eq!(last.details().get("records"), Some(&Detail::Int(6)));
}

#[tokio::test]
async fn erasure_deletes_pseudonymises_and_shreds() {
    let app = app();
    let (alice, email) = app.customer("alice").await;
    let (bob, _) = app.customer("bob").await;

    // Planned: nothing changes.
    let plan = app.registry.plan_erasure(&alice, &app.ctx()).await.unwrap();
    assert!(!plan.key_shredded);
    assert_eq!(
        app.export(&alice).await["sources"]["trades"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
    assert_eq!(
        email.decrypt(&app.keys, "details.email").await.unwrap(),
        "alice@example.com"
    );

    let report = app.registry.erase(&alice, &app.ctx()).await.unwrap();
    let lines: Vec<(&str, ErasureAction, u64)> = report
        .sources
        .iter()
        .map(|e| (e.source.as_str(), e.action, e.records))
        .collect();
    assert_eq!(
        lines,
        [
            ("profile", ErasureAction::Deleted, 1),
            ("trades", ErasureAction::Pseudonymised, 3),
            ("consent", ErasureAction::Deleted, 2)
        ]
    );
    assert_eq!(plan.sources.iter().map(|e| e.records).sum::<u64>(), 6);
    let trades = &report.sources[1];
    assert!(trades.reason.contains("Art. 17(3)(b)"), "{}", trades.reason);
    assert!(
        trades.reason.contains("MiFIR Art. 25(1)"),
        "{}",
        trades.reason
    );
    assert_eq!(trades.kept_until, Some(datetime!(2033-11-30 09:00 UTC)));
    assert!(report.sources[0].reason.contains("Art. 17(1)"));
    assert!(report.key_shredded && !report.is_partial());

    // Gone, kept pseudonymised, unreadable.
    let doc = app.export(&alice).await;
    assert_eq!(doc["manifest"]["sources"][0]["records"], 0);
    assert_eq!(doc["manifest"]["sources"][1]["records"], 0);
    assert_eq!(doc["manifest"]["sources"][2]["records"], 0);
    let pseudonym = app.pseudonymizer.pseudonym(&alice);
    assert_eq!(report.pseudonym, pseudonym);
    {
        let rows = app.trades.rows.lock().unwrap();
        let kept: Vec<&Trade> = rows
            .iter()
            .filter(|t| t.owner == pseudonym.as_str())
            .collect();
        assert_eq!(kept.len(), 3);
        assert!(kept.iter().all(|t| t.client_name.is_none()));
    }
    assert!(matches!(
        email.decrypt(&app.keys, "details.email").await,
        Err(finsec_audit::event::EventError::Crypto(
            finsec_crypto::Error::SubjectErased { .. }
        ))
    ));
    // Bob is untouched.
    assert_eq!(
        app.export(&bob).await["sources"]["trades"]
            .as_array()
            .unwrap()
            .len(),
        3
    );

    // Every step audited; the log still verifies.
    let actions: Vec<String> = app
        .log
        .sink()
        .read(0, 100)
        .await
        .unwrap()
        .iter()
        .map(|e| {
            AuditEvent::from_canonical(&e.bytes)
                .unwrap()
                .action()
                .to_owned()
        })
        .filter(|a| a.starts_with("gdpr.erasure"))
        .collect();
    assert_eq!(
        actions,
        [
            "gdpr.erasure.start",
            "gdpr.erasure.source",
            "gdpr.erasure.source",
            "gdpr.erasure.source",
            "gdpr.erasure.finish"
        ]
    );
    let verifier = app.log.signer().verifier();
    app.log.checkpoint().await.unwrap();
    let verified = finsec_audit::LogVerifier::new(verifier, "audit.example.com/gdpr")
        .verify(app.log.sink())
        .await
        .unwrap();
    assert!(verified.is_ok(), "{verified:?}");

    // Erasing again is harmless.
    let again = app.registry.erase(&alice, &app.ctx()).await.unwrap();
    assert!(again.sources.iter().all(|e| e.records == 0));
}

#[tokio::test]
async fn a_legal_hold_keeps_records_and_the_key() {
    let app = app();
    let (alice, email) = app.customer("alice").await;
    let hold = app
        .holds
        .place(&NewHold {
            case: "LIT-2026-017".into(),
            subject: Some(alice.clone()),
            class: Some(RecordClass::new("trades").unwrap()),
            placed_by: "legal".into(),
            reason: "dispute over the June trade".into(),
            at: NOW,
        })
        .await
        .unwrap();
    let report = app.registry.erase(&alice, &app.ctx()).await.unwrap();
    assert!(report.is_partial());
    assert_eq!(report.holds, [hold.id]);
    let trades = &report.sources[1];
    assert_eq!((trades.action, trades.records), (ErasureAction::Kept, 3));
    assert!(trades.reason.contains("Art. 17(3)(e)"));
    assert!(trades.reason.contains("LIT-2026-017"));
    assert!(trades.reason.contains(&hold.id.to_string()));
    assert_eq!(report.sources[0].action, ErasureAction::Deleted);
    assert!(!report.key_shredded);
    assert!(report.key_note.as_deref().unwrap().contains("legal hold"));
    // Held trades are untouched and their audit details still readable.
    assert!(
        app.trades
            .rows
            .lock()
            .unwrap()
            .iter()
            .all(|t| t.owner == "user:alice" && t.client_name.is_some())
    );
    assert_eq!(
        email.decrypt(&app.keys, "details.email").await.unwrap(),
        "alice@example.com"
    );

    // Released by a second person, the erasure completes.
    app.holds
        .release(hold.id, "counsel", "settled", NOW)
        .await
        .unwrap();
    let report = app.registry.erase(&alice, &app.ctx()).await.unwrap();
    assert!(report.key_shredded && !report.is_partial());
    assert_eq!(report.sources[1].action, ErasureAction::Pseudonymised);
}

#[tokio::test]
async fn rectification_and_restriction_reach_the_sources_that_support_them() {
    let app = app();
    let (alice, _) = app.customer("alice").await;
    let changes: BTreeMap<String, Value> = [
        ("email".to_owned(), json!("alice@new.example")),
        ("shoe_size".to_owned(), json!(38)),
    ]
    .into();
    let done = app
        .registry
        .rectify(&alice, &changes, &app.log, "user:alice", NOW)
        .await
        .unwrap();
    assert_eq!(done.changed["profile"], ["email"]);
    assert_eq!(done.unhandled, ["shoe_size"]);
    assert_eq!(
        app.export(&alice).await["sources"]["profile"][0]["email"],
        "alice@new.example"
    );
    let bad: BTreeMap<String, Value> = [("email".to_owned(), json!("nope"))].into();
    assert!(matches!(
        app.registry
            .rectify(&alice, &bad, &app.log, "user:alice", NOW)
            .await,
        Err(Error::Invalid { field: "email", .. })
    ));

    let restricted = app
        .registry
        .restrict(&alice, true, &app.log, "user:alice", NOW)
        .await
        .unwrap();
    assert_eq!(restricted, [("profile".to_owned(), 1)].into());
    assert_eq!(
        app.export(&alice).await["sources"]["profile"][0]["restricted"],
        true
    );
}

#[tokio::test]
async fn sources_are_registered_once_under_a_proper_name() {
    let mut registry = DataSubjectRegistry::new();
    registry.register(Arc::new(Profiles::new())).unwrap();
    assert!(matches!(
        registry.register(Arc::new(Profiles::new())),
        Err(Error::Invalid { .. })
    ));
    let mut odd = Profiles::new();
    odd.descriptor.name = "Profile Data".into();
    assert!(matches!(
        registry.register(Arc::new(odd)),
        Err(Error::Invalid { .. })
    ));
    assert_eq!(registry.descriptors().count(), 1);
}
