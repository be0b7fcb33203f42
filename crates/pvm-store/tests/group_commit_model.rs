//! Property: whatever mix of good, duplicate and malformed commands goes into group
//! commits, each command's reported fate matches a simple model and the log holds exactly
//! the accepted commands, in order, with contiguous sequence numbers.

use std::collections::HashSet;

use proptest::prelude::*;
use pvm_store::{NewEvent, Store, StoreError};
use uuid::Uuid;

/// (id drawn from a small pool so duplicates are common, body is valid JSON)
type EventSpec = (u8, bool);

fn to_event(&(id, json_ok): &EventSpec) -> NewEvent {
    NewEvent {
        id: Uuid::from_u128(u128::from(id) + 1),
        stream: "s".to_owned(),
        kind: "k".to_owned(),
        at_ms: 0,
        body: if json_ok {
            format!(r#"{{"id":{id}}}"#)
        } else {
            format!("{{id:{id}")
        },
    }
}

#[derive(Debug, PartialEq)]
enum Fate {
    Recorded(Vec<u64>),
    Duplicate,
    NotJson,
}

fn fate_of(outcome: &Result<Vec<u64>, StoreError>) -> Fate {
    match outcome {
        Ok(seqs) => Fate::Recorded(seqs.clone()),
        Err(StoreError::DuplicateEvent { .. }) => Fate::Duplicate,
        Err(StoreError::BodyNotJson { .. }) => Fate::NotJson,
        Err(other) => panic!("unexpected error {other}"),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn group_commit_matches_the_model(
        calls in prop::collection::vec(
            prop::collection::vec(
                prop::collection::vec((0u8..24, prop::bool::weighted(0.9)), 0..4),
                1..6,
            ),
            1..4,
        )
    ) {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(&dir.path().join("pvm.db")).unwrap();
        let mut seen: HashSet<Uuid> = HashSet::new();
        let mut expected_log: Vec<Uuid> = Vec::new();

        for call in &calls {
            let batches: Vec<Vec<NewEvent>> =
                call.iter().map(|b| b.iter().map(to_event).collect()).collect();
            let outcomes = store.append_batches(&batches).unwrap();
            prop_assert_eq!(outcomes.len(), batches.len());
            for (batch, outcome) in batches.iter().zip(&outcomes) {
                let mut in_batch = HashSet::new();
                let expected = if batch.iter().any(|e| e.body.starts_with("{id:")) {
                    Fate::NotJson
                } else if batch.iter().any(|e| seen.contains(&e.id) || !in_batch.insert(e.id)) {
                    Fate::Duplicate
                } else {
                    let first = expected_log.len() as u64 + 1;
                    for e in batch {
                        seen.insert(e.id);
                        expected_log.push(e.id);
                    }
                    Fate::Recorded((first..first + batch.len() as u64).collect())
                };
                prop_assert_eq!(fate_of(outcome), expected);
            }
        }

        let log = store.events_since(0, usize::MAX).unwrap();
        prop_assert_eq!(log.iter().map(|e| e.id).collect::<Vec<_>>(), expected_log);
        prop_assert_eq!(
            log.iter().map(|e| e.seq).collect::<Vec<_>>(),
            (1..=log.len() as u64).collect::<Vec<_>>()
        );
    }
}
