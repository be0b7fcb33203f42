//! The change between two JSON views, as an RFC 6902 JSON Patch (`add`, `remove` and
//! `replace` only), and the code that applies one.
//!
//! The live feed sends each topic's view once, then only what changed. JSON Patch rather than
//! an RFC 7386 merge patch because a merge patch can neither address one element of an array
//! (a tournament's entries, a waiting list, a structure's levels would be resent whole when one
//! player's chips change) nor set a value to `null` (merge patches use `null` to delete, and our
//! views have optional fields that become `null`). JSON Patch addresses array elements by index
//! and is a standard, so a third-party client can apply ours with any library.
//!
//! [`diff`] is exact, not minimal: applying its patch to `old` gives `new`, equal in every
//! value. Arrays are compared around their common head and tail, so inserting, removing or
//! changing one element anywhere, or moving one element (a leaderboard re-sorted after a chip
//! count), costs one or two operations however long the array is.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One operation of a patch. Paths are JSON Pointers (RFC 6901); `""` is the whole document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "lowercase")]
pub enum PatchOp {
    /// Insert into an array at the index (`-` appends), or set an object member.
    Add { path: String, value: Value },
    /// Remove an object member or an array element (later elements shift down).
    Remove { path: String },
    /// Replace the value that is there.
    Replace { path: String, value: Value },
}

/// Why a patch could not be applied: it was not made against this document.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatchError {
    #[error("bad JSON Pointer {0:?}")]
    BadPointer(String),
    #[error("nothing at {0:?}")]
    Missing(String),
}

/// The operations that turn `old` into `new`.
pub fn diff(old: &Value, new: &Value) -> Vec<PatchOp> {
    let mut ops = Vec::new();
    let mut path = String::new();
    diff_at(&mut path, old, new, &mut ops);
    ops
}

fn diff_at(path: &mut String, old: &Value, new: &Value, ops: &mut Vec<PatchOp>) {
    if old == new {
        return;
    }
    match (old, new) {
        (Value::Object(a), Value::Object(b)) => {
            for (key, va) in a {
                let len = path.len();
                push_token(path, key);
                match b.get(key) {
                    Some(vb) => diff_at(path, va, vb, ops),
                    None => ops.push(PatchOp::Remove { path: path.clone() }),
                }
                path.truncate(len);
            }
            for (key, vb) in b.iter().filter(|(k, _)| !a.contains_key(*k)) {
                let len = path.len();
                push_token(path, key);
                ops.push(PatchOp::Add {
                    path: path.clone(),
                    value: vb.clone(),
                });
                path.truncate(len);
            }
        }
        (Value::Array(a), Value::Array(b)) => diff_arrays(path, a, b, ops),
        _ => ops.push(PatchOp::Replace {
            path: path.clone(),
            value: new.clone(),
        }),
    }
}

fn diff_arrays(path: &mut String, a: &[Value], b: &[Value], ops: &mut Vec<PatchOp>) {
    let head = a.iter().zip(b).take_while(|(x, y)| x == y).count();
    let room = a.len().min(b.len()) - head;
    let tail = a
        .iter()
        .rev()
        .zip(b.iter().rev())
        .take(room)
        .take_while(|(x, y)| x == y)
        .count();
    let (old, new) = (&a[head..a.len() - tail], &b[head..b.len() - tail]);
    let at = |path: &String, i: usize| format!("{path}/{i}");

    // One element moved within the changed middle: a remove and an add, not a replace of
    // every element in between.
    let n = old.len();
    if n == new.len() && n > 2 {
        if old[1..] == new[..n - 1] {
            ops.push(PatchOp::Remove {
                path: at(path, head),
            });
            ops.push(PatchOp::Add {
                path: at(path, head + n - 1),
                value: new[n - 1].clone(),
            });
            return;
        }
        if old[..n - 1] == new[1..] {
            ops.push(PatchOp::Remove {
                path: at(path, head + n - 1),
            });
            ops.push(PatchOp::Add {
                path: at(path, head),
                value: new[0].clone(),
            });
            return;
        }
    }

    let common = old.len().min(new.len());
    for i in 0..common {
        let len = path.len();
        path.push('/');
        path.push_str(&(head + i).to_string());
        diff_at(path, &old[i], &new[i], ops);
        path.truncate(len);
    }
    // Removing the same index repeatedly: each removal shifts the rest down.
    for _ in common..old.len() {
        ops.push(PatchOp::Remove {
            path: at(path, head + common),
        });
    }
    for (i, value) in new.iter().enumerate().skip(common) {
        ops.push(PatchOp::Add {
            path: at(path, head + i),
            value: value.clone(),
        });
    }
}

fn push_token(path: &mut String, key: &str) {
    path.push('/');
    for c in key.chars() {
        match c {
            '~' => path.push_str("~0"),
            '/' => path.push_str("~1"),
            c => path.push(c),
        }
    }
}

/// Applies `ops` in order. On an error the document may be half patched: the caller should
/// drop it and ask for a fresh snapshot.
pub fn apply(doc: &mut Value, ops: &[PatchOp]) -> Result<(), PatchError> {
    for op in ops {
        apply_one(doc, op)?;
    }
    Ok(())
}

fn apply_one(doc: &mut Value, op: &PatchOp) -> Result<(), PatchError> {
    let path = match op {
        PatchOp::Add { path, .. } | PatchOp::Remove { path } | PatchOp::Replace { path, .. } => {
            path
        }
    };
    let tokens = tokens(path)?;
    let Some((last, parents)) = tokens.split_last() else {
        return match op {
            PatchOp::Add { value, .. } | PatchOp::Replace { value, .. } => {
                *doc = value.clone();
                Ok(())
            }
            PatchOp::Remove { .. } => Err(PatchError::Missing(path.clone())),
        };
    };
    let mut parent = doc;
    for token in parents {
        parent = match parent {
            Value::Object(map) => map.get_mut(token.as_str()),
            Value::Array(items) => index(token, items.len()).and_then(|i| items.get_mut(i)),
            _ => None,
        }
        .ok_or_else(|| PatchError::Missing(path.clone()))?;
    }
    let missing = || PatchError::Missing(path.clone());
    match (parent, op) {
        (Value::Object(map), PatchOp::Add { value, .. }) => {
            map.insert(last.clone(), value.clone());
        }
        (Value::Object(map), PatchOp::Replace { value, .. }) => {
            *map.get_mut(last.as_str()).ok_or_else(missing)? = value.clone();
        }
        (Value::Object(map), PatchOp::Remove { .. }) => {
            map.remove(last.as_str()).ok_or_else(missing)?;
        }
        (Value::Array(items), PatchOp::Add { value, .. }) => {
            let i = if last == "-" {
                items.len()
            } else {
                index(last, items.len() + 1).ok_or_else(missing)?
            };
            items.insert(i, value.clone());
        }
        (Value::Array(items), PatchOp::Replace { value, .. }) => {
            let i = index(last, items.len()).ok_or_else(missing)?;
            items[i] = value.clone();
        }
        (Value::Array(items), PatchOp::Remove { .. }) => {
            let i = index(last, items.len()).ok_or_else(missing)?;
            items.remove(i);
        }
        _ => return Err(missing()),
    }
    Ok(())
}

/// An array index token below `len`; RFC 6901 forbids leading zeros.
fn index(token: &str, len: usize) -> Option<usize> {
    if token.is_empty() || (token.len() > 1 && token.starts_with('0')) {
        return None;
    }
    if !token.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    token.parse::<usize>().ok().filter(|i| *i < len)
}

fn tokens(path: &str) -> Result<Vec<String>, PatchError> {
    if path.is_empty() {
        return Ok(Vec::new());
    }
    let Some(rest) = path.strip_prefix('/') else {
        return Err(PatchError::BadPointer(path.to_string()));
    };
    Ok(rest
        .split('/')
        .map(|t| t.replace("~1", "/").replace("~0", "~"))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn round_trip(old: Value, new: Value) -> Vec<PatchOp> {
        let ops = diff(&old, &new);
        let mut doc = old.clone();
        apply(&mut doc, &ops).unwrap();
        assert_eq!(doc, new, "patch {ops:?} from {old} gave {doc}, not {new}");
        // Through the wire format too: what a client parses is what was meant.
        let wire: Vec<PatchOp> =
            serde_json::from_str(&serde_json::to_string(&ops).unwrap()).unwrap();
        assert_eq!(wire, ops);
        ops
    }

    #[test]
    fn equal_views_need_no_operation() {
        assert!(round_trip(json!({"a": [1, 2]}), json!({"a": [1, 2]})).is_empty());
    }

    #[test]
    fn one_changed_member_is_one_replace() {
        let ops = round_trip(
            json!({"entries": [{"id": 1, "chips": 10}, {"id": 2, "chips": 20}], "name": "x"}),
            json!({"entries": [{"id": 1, "chips": 10}, {"id": 2, "chips": 25}], "name": "x"}),
        );
        assert_eq!(
            ops,
            vec![PatchOp::Replace {
                path: "/entries/1/chips".into(),
                value: json!(25)
            }]
        );
    }

    #[test]
    fn a_member_set_to_null_stays_as_null() {
        let ops = round_trip(json!({"next": 5}), json!({"next": null}));
        assert_eq!(ops.len(), 1);
    }

    #[test]
    fn removed_and_added_members() {
        round_trip(json!({"a": 1, "b": 2}), json!({"b": 2, "c": 3}));
    }

    #[test]
    fn insertion_in_the_middle_of_a_long_array_is_one_add() {
        let old: Vec<u32> = (0..100).collect();
        let mut new = old.clone();
        new.insert(40, 1000);
        let ops = round_trip(json!(old), json!(new));
        assert_eq!(ops.len(), 1);
    }

    #[test]
    fn removal_in_the_middle_of_a_long_array_is_one_remove() {
        let old: Vec<u32> = (0..100).collect();
        let mut new = old.clone();
        new.remove(70);
        assert_eq!(round_trip(json!(old), json!(new)).len(), 1);
    }

    #[test]
    fn one_element_moving_is_a_remove_and_an_add() {
        let old: Vec<Value> = (0..50).map(|i| json!({"id": i, "chips": i})).collect();
        let mut new = old.clone();
        let moved = new.remove(10);
        new.insert(30, moved);
        assert_eq!(round_trip(json!(old), json!(new)).len(), 2);
        let mut back = old.clone();
        let moved = back.remove(30);
        back.insert(10, moved);
        assert_eq!(round_trip(json!(old), json!(back)).len(), 2);
    }

    #[test]
    fn arrays_that_grow_or_shrink_at_either_end() {
        round_trip(json!([1, 2, 3]), json!([0, 1, 2, 3, 4]));
        round_trip(json!([0, 1, 2, 3, 4]), json!([2]));
        round_trip(json!([]), json!([1]));
        round_trip(json!([1, 1, 1]), json!([1, 1]));
        round_trip(json!([1, 2]), json!([]));
    }

    #[test]
    fn keys_with_slash_and_tilde_are_escaped() {
        let ops = round_trip(json!({"a/b": 1, "c~d": 1}), json!({"a/b": 2, "c~d": 2}));
        assert!(ops
            .iter()
            .any(|op| matches!(op, PatchOp::Replace { path, .. } if path == "/a~1b")));
    }

    #[test]
    fn a_different_kind_of_value_is_replaced_whole() {
        round_trip(json!({"a": [1]}), json!({"a": {"b": 1}}));
        round_trip(json!(null), json!({"id": 1}));
        round_trip(json!({"id": 1}), json!(null));
    }

    #[test]
    fn a_patch_made_for_another_document_is_refused() {
        let mut doc = json!({"a": []});
        let ops = vec![PatchOp::Replace {
            path: "/a/3".into(),
            value: json!(1),
        }];
        assert_eq!(
            apply(&mut doc, &ops),
            Err(PatchError::Missing("/a/3".into()))
        );
        let bad = vec![PatchOp::Remove { path: "a".into() }];
        assert_eq!(
            apply(&mut doc, &bad),
            Err(PatchError::BadPointer("a".into()))
        );
    }

    #[test]
    fn the_wire_format_is_rfc_6902() {
        let op = PatchOp::Add {
            path: "/entries/-".into(),
            value: json!(1),
        };
        assert_eq!(
            serde_json::to_value(&op).unwrap(),
            json!({"op": "add", "path": "/entries/-", "value": 1})
        );
        let mut doc = json!({"entries": [0]});
        apply(&mut doc, &[op]).unwrap();
        assert_eq!(doc, json!({"entries": [0, 1]}));
    }

    /// Small alphabets, so two random documents share keys and array runs often and the
    /// diff has something to find.
    fn doc() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            (0i64..4).prop_map(|n| json!(n)),
            prop::sample::select(vec!["x", "y", ""]).prop_map(|s| json!(s)),
        ];
        leaf.prop_recursive(4, 40, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                prop::collection::btree_map(
                    prop::sample::select(vec!["a", "b", "c", "~", "a/b", "0"])
                        .prop_map(String::from),
                    inner,
                    0..5
                )
                .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn applying_the_diff_gives_the_new_document_exactly(old in doc(), new in doc()) {
            let ops = diff(&old, &new);
            let mut patched = old.clone();
            prop_assert_eq!(apply(&mut patched, &ops), Ok(()));
            prop_assert_eq!(patched, new);
        }

        #[test]
        fn a_document_and_its_edited_copy(old in doc(), edit in doc(), at in 0usize..8) {
            // A realistic change: one subtree of the old document replaced.
            let mut new = old.clone();
            if let Some(slot) = nth_child(&mut new, at) {
                *slot = edit;
            }
            let ops = diff(&old, &new);
            let mut patched = old.clone();
            prop_assert_eq!(apply(&mut patched, &ops), Ok(()));
            prop_assert_eq!(patched, new);
        }
    }

    fn nth_child(v: &mut Value, n: usize) -> Option<&mut Value> {
        match v {
            Value::Array(items) if !items.is_empty() => {
                let len = items.len();
                items.get_mut(n % len)
            }
            Value::Object(map) if !map.is_empty() => {
                let len = map.len();
                map.values_mut().nth(n % len)
            }
            _ => None,
        }
    }
}
