//! The dynamic columns (`TargetResources`, `InitiatedBy`, `AdditionalDetails`) and the fields
//! the rule reads from them, in either layout an archive has. Nested columns are read by polars
//! expressions. JSON text is parsed once per value for all of its fields ([`parse_texts`]):
//! polars' `json_path_match` parses the text again for every field, six times for
//! `TargetResources`. The selection follows `json_path_match` exactly: the tests compare the
//! two on real values and on random documents.

use std::borrow::Cow;

use polars::prelude::*;
use serde_json::Value;

use crate::rule::columns::ev;

/// One step into a dynamic value: `[0]` or `.key`.
#[derive(Clone, Copy, Debug)]
pub(super) enum Step {
    Index0,
    Key(&'static str),
}

/// In the list at a field's path, the first element whose `key` is `want`: its `value`
/// (`AdditionalDetails`' `{key, value}` pairs, `modifiedProperties`'
/// `{displayName, oldValue, newValue}`).
#[derive(Clone, Copy, Debug)]
pub(super) struct Find {
    key: &'static str,
    want: &'static str,
    value: &'static str,
}

/// A field the rule reads from a dynamic value, as a string (null when any step is missing),
/// like KQL's `tostring(col[0].["key"])` before its null-to-"" conversion.
#[derive(Clone, Copy, Debug)]
pub(super) struct Field {
    /// The column it becomes.
    pub(super) name: &'static str,
    path: &'static [Step],
    find: Option<Find>,
}

/// `TargetResources[0]`'s `UserState` change, new and old (`precise`'s acceptance).
pub(super) const STATE_NEW: &str = "_state_new";
pub(super) const STATE_OLD: &str = "_state_old";

const fn at(name: &'static str, path: &'static [Step]) -> Field {
    Field {
        name,
        path,
        find: None,
    }
}

const fn find(
    name: &'static str,
    path: &'static [Step],
    key: &'static str,
    want: &'static str,
    value: &'static str,
) -> Field {
    Field {
        name,
        path,
        find: Some(Find { key, want, value }),
    }
}

const MODIFIED: &[Step] = &[Step::Index0, Step::Key("modifiedProperties")];

/// What the rule reads of `TargetResources`.
pub(super) const TARGET_FIELDS: [Field; 5] = [
    at(ev::TR_UPN, &[Step::Index0, Step::Key("userPrincipalName")]),
    at(ev::TR_DISPLAY, &[Step::Index0, Step::Key("displayName")]),
    at(ev::TR_ID, &[Step::Index0, Step::Key("id")]),
    find(STATE_NEW, MODIFIED, "displayName", "UserState", "newValue"),
    find(STATE_OLD, MODIFIED, "displayName", "UserState", "oldValue"),
];

/// What the rule reads of an invite's `InitiatedBy`.
pub(super) const INITIATOR_FIELDS: [Field; 2] = [
    at(
        ev::INIT_UPN,
        &[Step::Key("user"), Step::Key("userPrincipalName")],
    ),
    at(ev::INIT_IP, &[Step::Key("user"), Step::Key("ipAddress")]),
];

/// What the rule reads of an invite's `AdditionalDetails`.
pub(super) const DETAIL_FIELDS: [Field; 2] = [
    find(ev::INVITATION_ID, &[], "key", "InvitationId", "value"),
    find(
        ev::INVITED_EMAIL,
        &[],
        "key",
        "invitedUserEmailAddress",
        "value",
    ),
];

/// A dynamic column in whichever layout this object has.
pub(super) enum Dynamic {
    Json(Expr),
    Nested(Expr, DataType),
    Absent,
}

impl Dynamic {
    /// What a candidate row selects of this column for `fields`: each field's value, except
    /// for JSON text, selected itself as `text` and parsed after the select ([`parse_texts`]);
    /// and `bad`, 0 where the text's parse will count it.
    pub(super) fn select(&self, fields: &[Field], text: &str, bad: &str) -> Vec<Expr> {
        match self {
            Dynamic::Json(e) => vec![e.clone().alias(text)],
            Dynamic::Nested(e, dtype) => fields
                .iter()
                .map(|f| nested(e, dtype, f).alias(f.name))
                .chain([lit(0u32).alias(bad)])
                .collect(),
            Dynamic::Absent => fields
                .iter()
                .map(|f| null_string().alias(f.name))
                .chain([lit(0u32).alias(bad)])
                .collect(),
        }
    }

    pub(super) fn is_json(&self) -> bool {
        matches!(self, Dynamic::Json(_))
    }
}

/// Each text's `fields`, and 1 where the text is not JSON (else 0), each text parsed once.
/// Rows where `only` is not true are null, and not parsed.
pub(super) fn parse_texts(
    texts: &StringChunked,
    fields: &[Field],
    only: Option<&BooleanChunked>,
) -> (Vec<StringChunked>, UInt32Chunked) {
    let mut out: Vec<StringChunkedBuilder> = fields
        .iter()
        .map(|f| StringChunkedBuilder::new(f.name.into(), texts.len()))
        .collect();
    let mut bad = Vec::with_capacity(texts.len());
    let mut wanted = only.map(|m| m.iter());
    for text in texts.iter() {
        let want = wanted
            .as_mut()
            .is_none_or(|m| m.next().flatten().unwrap_or(false));
        let text = text.filter(|_| want);
        let parsed = text.map(serde_json::from_str::<Value>);
        let value = parsed.as_ref().and_then(|p| p.as_ref().ok());
        for (b, f) in out.iter_mut().zip(fields) {
            b.append_option(value.and_then(|v| f.select(v)).as_deref());
        }
        bad.push(match (text, &parsed) {
            (Some(t), Some(Err(_))) => u32::from(malformed(t)),
            _ => 0,
        });
    }
    let fields = out.into_iter().map(|b| b.finish()).collect();
    (fields, UInt32Chunked::from_vec("bad".into(), bad))
}

/// A text serde_json refused, as polars' check counts it: after trimming Unicode whitespace
/// (which JSON does not allow), not empty, not `null`, and still not JSON.
fn malformed(text: &str) -> bool {
    let t = text.trim();
    !t.is_empty() && t != "null" && serde_json::from_str::<Value>(t).is_err()
}

impl Field {
    /// The field in a parsed value, as `json_path_match` gives it: a string as itself, null
    /// as null, anything else as compact JSON text.
    fn select<'v>(&self, root: &'v Value) -> Option<Cow<'v, str>> {
        let base = self.path.iter().try_fold(root, |v, step| match step {
            Step::Index0 => v.as_array()?.first(),
            Step::Key(k) => v.as_object()?.get(*k),
        })?;
        let v = match &self.find {
            None => base,
            Some(f) => f.first(base)?,
        };
        match v {
            Value::Null => None,
            Value::String(s) => Some(Cow::Borrowed(s)),
            other => Some(Cow::Owned(other.to_string())),
        }
    }
}

impl Find {
    /// JSONPath's `[?(@.key == 'want')].value` on `base`, first match: the candidates are
    /// `base` itself when it is an object holding `key`, else the objects holding `key` in
    /// `base`'s arrays (nested arrays too, objects not entered), in document order.
    fn first<'v>(&self, base: &'v Value) -> Option<&'v Value> {
        match base {
            Value::Object(_) => self.hit(base),
            Value::Array(items) => items.iter().find_map(|v| self.within(v)),
            _ => None,
        }
    }

    fn within<'v>(&self, v: &'v Value) -> Option<&'v Value> {
        match v {
            Value::Object(_) => self.hit(v),
            Value::Array(items) => items.iter().find_map(|v| self.within(v)),
            _ => None,
        }
    }

    /// An object's `value` when its `key` is the string `want`.
    fn hit<'v>(&self, object: &'v Value) -> Option<&'v Value> {
        let o = object.as_object()?;
        match o.get(self.key)? {
            Value::String(s) if s == self.want => o.get(self.value),
            _ => None,
        }
    }
}

pub(super) fn null_string() -> Expr {
    lit(NULL).cast(DataType::String)
}

/// A field of a nested column.
fn nested(e: &Expr, dtype: &DataType, field: &Field) -> Expr {
    let Some((e, dtype)) = nested_steps(e.clone(), dtype, field.path) else {
        return null_string();
    };
    let Some(f) = field.find else {
        return as_string(e, &dtype);
    };
    let DataType::List(inner) = dtype else {
        return null_string();
    };
    let DataType::Struct(fields) = *inner else {
        return null_string();
    };
    let member = |n: &str| fields.iter().find(|s| s.name().as_str() == n);
    let (Some(k), Some(v)) = (member(f.key), member(f.value)) else {
        return null_string();
    };
    let k = as_string(element().struct_().field_by_name(f.key), k.dtype());
    let v = as_string(element().struct_().field_by_name(f.value), v.dtype());
    e.list().eval(v.filter(k.eq(lit(f.want)))).list().first()
}

/// `e` (of `dtype`) at `path`, and the type there; `None` when a step does not exist.
fn nested_steps(mut e: Expr, dtype: &DataType, path: &[Step]) -> Option<(Expr, DataType)> {
    let mut dtype = dtype.clone();
    for step in path {
        match (step, &dtype) {
            (Step::Index0, DataType::List(inner)) => {
                e = e.list().get(lit(0i64), true);
                dtype = (**inner).clone();
            }
            (Step::Key(k), DataType::Struct(fields)) => {
                let f = fields.iter().find(|f| f.name().as_str() == *k)?;
                e = e.struct_().field_by_name(k);
                dtype = f.dtype().clone();
            }
            _ => return None,
        }
    }
    Some((e, dtype))
}

/// A scalar as a string; anything else null.
fn as_string(e: Expr, dtype: &DataType) -> Expr {
    match dtype {
        DataType::String => e,
        d if d.is_primitive() || d.is_bool() => e.cast(DataType::String),
        _ => null_string(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    use super::*;

    /// `field` as the JSONPath polars' `json_path_match` takes.
    fn json_path(field: &Field) -> String {
        let mut p = String::from("$");
        for step in field.path {
            match step {
                Step::Index0 => p.push_str("[0]"),
                Step::Key(k) => {
                    p.push('.');
                    p.push_str(k);
                }
            }
        }
        if let Some(f) = field.find {
            p.push_str(&format!("[?(@.{} == '{}')].{}", f.key, f.want, f.value));
        }
        p
    }

    const ALL: [&[Field]; 3] = [&TARGET_FIELDS, &INITIATOR_FIELDS, &DETAIL_FIELDS];

    /// Every field of every text, and the malformed count, by [`parse_texts`] and by polars'
    /// JSON paths (the expressions it replaced), which must agree row by row.
    fn agree(texts: &[Option<String>]) {
        let ca: StringChunked = texts.iter().map(|t| t.as_deref()).collect();
        for fields in ALL {
            let (ours, bad) = parse_texts(&ca, fields, None);
            let df = DataFrame::new(
                ca.len(),
                vec![ca.clone().with_name("t".into()).into_column()],
            )
            .unwrap();
            for (f, ours) in fields.iter().zip(&ours) {
                let theirs = df
                    .clone()
                    .lazy()
                    .select([col("t").str().json_path_match(lit(json_path(f)))])
                    .collect()
                    .unwrap();
                let theirs = theirs.column("t").unwrap().str().unwrap();
                for (i, (a, b)) in ours.iter().zip(theirs.iter()).enumerate() {
                    assert_eq!(a, b, "{} of {:?}", json_path(f), texts[i]);
                }
            }
            let text = col("t").str().strip_chars(lit(NULL));
            let old_bad = text
                .clone()
                .is_not_null()
                .and(text.clone().neq(lit("")))
                .and(text.clone().neq(lit("null")))
                .and(text.str().json_path_match(lit("$")).is_null())
                .cast(DataType::UInt32);
            let theirs = df.lazy().select([old_bad]).collect().unwrap();
            let theirs = theirs.column("t").unwrap().u32().unwrap();
            for (i, (a, b)) in bad.iter().zip(theirs.iter()).enumerate() {
                assert_eq!(a, b, "malformed {:?}", texts[i]);
            }
        }
    }

    /// Names the paths read, and a few others.
    const KEYS: [&str; 14] = [
        "invitedUserEmailAddress",
        "userPrincipalName",
        "displayName",
        "id",
        "modifiedProperties",
        "newValue",
        "oldValue",
        "user",
        "ipAddress",
        "key",
        "value",
        "UserState",
        "InvitationId",
        "x",
    ];

    /// A random JSON value over [`KEYS`], nested up to `depth`.
    fn value(rng: &mut ChaCha8Rng, depth: u32) -> Value {
        let scalar = |rng: &mut ChaCha8Rng| match rng.gen_range(0..8) {
            0 => Value::Null,
            1 => Value::Bool(rng.gen()),
            2 => serde_json::json!(rng.gen_range(-3..100)),
            3 => serde_json::json!(rng.gen::<f64>() * 10.0),
            4 => Value::String("Accepted".into()),
            5 => Value::String(["UserState", "InvitationId"][rng.gen_range(0..2)].into()),
            _ => Value::String(KEYS[rng.gen_range(0..KEYS.len())].into()),
        };
        if depth == 0 || rng.gen_range(0..3) == 0 {
            return scalar(rng);
        }
        let n = rng.gen_range(0..4);
        match rng.gen_bool(0.5) {
            true => Value::Array((0..n).map(|_| value(rng, depth - 1)).collect()),
            false => Value::Object(
                (0..n)
                    .map(|_| {
                        let k = KEYS[rng.gen_range(0..KEYS.len())].to_string();
                        (k, value(rng, depth - 1))
                    })
                    .collect(),
            ),
        }
    }

    /// A random list of objects holding the keys the paths look for, or any value.
    fn list(rng: &mut ChaCha8Rng, depth: u32) -> Value {
        let n = rng.gen_range(0..4);
        let item = |rng: &mut ChaCha8Rng| match rng.gen_range(0..6) {
            0 => value(rng, depth),
            1 => Value::Array(vec![list(rng, depth.saturating_sub(1))]),
            _ => {
                let mut o = serde_json::Map::new();
                for k in ["displayName", "key", "newValue", "oldValue", "value", "x"] {
                    if rng.gen_bool(0.6) {
                        o.insert(k.into(), value(rng, depth.saturating_sub(1)));
                    }
                }
                Value::Object(o)
            }
        };
        Value::Array((0..n).map(|_| item(rng)).collect())
    }

    /// A random document, shaped like one of the dynamic columns or anything at all.
    fn document(rng: &mut ChaCha8Rng) -> Value {
        match rng.gen_range(0..4) {
            0 => value(rng, 5),
            1 => {
                let mut first = serde_json::Map::new();
                for k in ["userPrincipalName", "displayName", "id", "x"] {
                    if rng.gen_bool(0.7) {
                        first.insert(k.into(), value(rng, 2));
                    }
                }
                first.insert("modifiedProperties".into(), list(rng, 3));
                let rest = list(rng, 2);
                let mut items = vec![Value::Object(first)];
                items.extend(rest.as_array().into_iter().flatten().cloned());
                Value::Array(items)
            }
            2 => list(rng, 3),
            _ => serde_json::json!({ "user": value(rng, 3), "app": value(rng, 2) }),
        }
    }

    #[test]
    fn fields_agree_with_polars_json_paths_on_random_documents() {
        let mut rng = ChaCha8Rng::seed_from_u64(26);
        let texts: Vec<Option<String>> = (0..8000)
            .map(|_| Some(document(&mut rng).to_string()))
            .collect();
        agree(&texts);
    }

    #[test]
    fn fields_agree_with_polars_json_paths_on_edge_texts() {
        let texts = [
            None,
            Some(""),
            Some("  "),
            Some("null"),
            Some(" null\u{a0}"),
            Some("\u{a0}{}"),
            Some("\u{b}[1]"),
            Some("{"),
            Some("[] x"),
            Some("\"text\""),
            Some("42"),
            Some(r#"[{"userPrincipalName":"a@x","userPrincipalName":"b@x"}]"#),
            Some(r#"[{"userPrincipalName":{"n":1.0,"a":[true]}}]"#),
            Some(r#"[{"id":1e3,"displayName":-0}]"#),
            Some(
                r#"[{"modifiedProperties":[{"displayName":"UserState","newValue":null},{"displayName":"UserState","newValue":"b"}]}]"#,
            ),
            Some(
                r#"[{"modifiedProperties":[{"displayName":"UserState"},{"displayName":"UserState","oldValue":"o"}]}]"#,
            ),
            Some(r#"[{"modifiedProperties":{"displayName":"UserState","newValue":"obj"}}]"#),
            Some(r#"[{"modifiedProperties":[[{"displayName":"UserState","newValue":"deep"}]]}]"#),
            Some(r#"[{"modifiedProperties":[{"x":{"displayName":"UserState","newValue":"in"}}]}]"#),
            Some(r#"[{"key":"InvitationId","value":"arr"}]"#),
            Some(r#"{"key":"InvitationId","value":"root"}"#),
            Some(r#"{"userPrincipalName":"root","modifiedProperties":[]}"#),
            Some(r#"{"0":{"userPrincipalName":"zero"}}"#),
            Some(r#"[{"key":"invitedUserEmailAddress","value":["a"]}]"#),
            Some(r#"{"user":{"userPrincipalName":"u","ipAddress":null}}"#),
            Some(r#"{"user":null,"app":{"displayName":"a"}}"#),
            Some(r#"[{"userPrincipalName":"\u00e9\ud83d\ude00"}]"#),
        ];
        agree(&texts.map(|t| t.map(str::to_string)));
    }

    #[test]
    fn rows_left_out_are_not_parsed() {
        let ca: StringChunked = [
            Some("{\"user\":{\"ipAddress\":\"1\"}}"),
            Some("{"),
            Some("{"),
        ]
        .into_iter()
        .collect();
        let only: BooleanChunked = [Some(true), Some(false), None].into_iter().collect();
        let (fields, bad) = parse_texts(&ca, &INITIATOR_FIELDS, Some(&only));
        assert_eq!(
            fields[1].iter().collect::<Vec<_>>(),
            [Some("1"), None, None]
        );
        assert_eq!(bad.iter().collect::<Vec<_>>(), [Some(0), Some(0), Some(0)]);
        let (_, bad) = parse_texts(&ca, &INITIATOR_FIELDS, None);
        assert_eq!(bad.iter().collect::<Vec<_>>(), [Some(0), Some(1), Some(1)]);
    }
}
