//! A kept line read into the rule's fields without building the record: the fields are picked
//! out of the line as borrowed JSON text ([`RawValue`]) and every other value is only
//! checked. A `serde_json::Value` of the whole record would hash and allocate every key and
//! string of it, and its dynamic values would be written back to text for the extraction.
//!
//! Picking keeps what a parsed `Value` gives: a repeated key's last value wins, keys are
//! compared unescaped, a record is a JSON object, and a line that is not valid JSON (UTF-8
//! included) is no record.

use std::borrow::Cow;
use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;
use serde_json::Value;

use super::tenant_of_resource;
use crate::read::raw::Row;
use crate::time::parse_instant;

/// The record's own keys the rule reads (both shapes), besides `properties`.
const TOP: [&str; 14] = [
    "time",
    "tenantId",
    "resourceId",
    "operationName",
    "TimeGenerated",
    "TenantId",
    "AADTenantId",
    "Id",
    "Category",
    "OperationName",
    "Result",
    "TargetResources",
    "InitiatedBy",
    "AdditionalDetails",
];

/// A diagnostic record's `properties` keys the rule reads.
const PROPERTIES: [&str; 9] = [
    "tenantId",
    "id",
    "activityDateTime",
    "category",
    "activityDisplayName",
    "result",
    "targetResources",
    "initiatedBy",
    "additionalDetails",
];

/// The values of `N` keys of one JSON object, as their text.
type Picked<'a, const N: usize> = [Option<&'a RawValue>; N];

/// Picks `names`' values out of a JSON object.
struct Pick<const N: usize>(&'static [&'static str; N]);

/// An object key, borrowed unless it holds escapes.
struct Key<'a>(Cow<'a, str>);

impl<'de> serde::Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object key")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Key(Cow::Owned(v.to_string())))
            }
        }
        d.deserialize_str(KeyVisitor)
    }
}

impl<'de, const N: usize> DeserializeSeed<'de> for Pick<N> {
    type Value = Picked<'de, N>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de, const N: usize> Visitor<'de> for Pick<N> {
    type Value = Picked<'de, N>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut out = [None; N];
        while let Some(Key(key)) = map.next_key()? {
            match self.0.iter().position(|n| *n == key) {
                Some(i) => {
                    if let Some(slot) = out.get_mut(i) {
                        *slot = Some(map.next_value()?);
                    }
                }
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(out)
    }
}

/// A diagnostic record's `properties`, picked while the record is read (`None`: not an object):
/// picking them from the record's text afterwards would scan them twice.
struct Properties;

impl<'de> DeserializeSeed<'de> for Properties {
    type Value = Option<Picked<'de, 9>>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Properties {
    type Value = Option<Picked<'de, 9>>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        Pick(&PROPERTIES).visit_map(map).map(Some)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(None)
    }

    fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
}

/// A record: its own keys the rule reads, and its `properties` when they are an object.
type Record<'a> = (Picked<'a, 14>, Option<Picked<'a, 9>>);

/// Reads a record in one pass ([`Pick`] for its keys, [`Properties`] for `properties`).
struct RecordSeed;

impl<'de> DeserializeSeed<'de> for RecordSeed {
    type Value = Record<'de>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for RecordSeed {
    type Value = Record<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let (mut top, mut properties) = ([None; 14], None);
        while let Some(Key(key)) = map.next_key()? {
            if key == "properties" {
                // A repeated `properties` replaces the one before, as a parsed `Value`'s does.
                properties = map.next_value_seed(Properties)?;
                continue;
            }
            match TOP.iter().position(|n| *n == key) {
                Some(i) => {
                    if let Some(slot) = top.get_mut(i) {
                        *slot = Some(map.next_value()?);
                    }
                }
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok((top, properties))
    }
}

/// `text` (valid UTF-8) read as one record; `None` when it is not one JSON object.
fn record(text: &str) -> Option<Record<'_>> {
    let mut d = serde_json::Deserializer::from_str(text);
    let read = RecordSeed.deserialize(&mut d).ok()?;
    d.end().ok()?;
    Some(read)
}

/// The rule's fields of one line, mapped from its shape (see the module's table); `None`
/// when the line is not one JSON object.
pub(super) fn line_fields(line: &[u8]) -> Option<Row> {
    // Ignored values are only scanned: the whole line is checked for UTF-8 here, as a `Value`
    // parse would have checked it.
    fields(std::str::from_utf8(line).ok()?)
}

/// The rule's fields of one record's text (valid UTF-8); `None` when it is not one JSON
/// object.
pub(super) fn fields(text: &str) -> Option<Row> {
    // A record with `\u` escapes (one may be a lone surrogate, which scanning lets through) is
    // checked whole, as a `Value` parse would have checked it.
    let b = text.as_bytes();
    if memchr::memchr_iter(b'\\', b).any(|i| b.get(i + 1) == Some(&b'u')) {
        serde_json::from_str::<Value>(text).ok()?;
    }
    let ([time, tenant_id, resource_id, operation_name, rest @ ..], properties) = record(text)?;
    // `properties` that is not an object is no diagnostic record: the table's shape.
    let Some(p) = properties else {
        let [time_generated, tenant, aad_tenant, id, category, operation, result, targets, initiated, details] =
            rest;
        return Some(Row {
            tenant: scalar(tenant),
            aad_tenant: scalar(aad_tenant),
            id: scalar(id),
            time: instant(time_generated),
            category: scalar(category),
            operation: scalar(operation),
            result: scalar(result),
            targets: dynamic(targets),
            initiated: dynamic(initiated),
            details: dynamic(details),
        });
    };
    let [p_tenant, id, activity_time, category, display_name, result, targets, initiated, details] =
        p;
    // No workspace here: the Entra tenant is both `TenantId` and `AADTenantId`.
    let tenant = scalar(tenant_id).or_else(|| scalar(p_tenant)).or_else(|| {
        let id = string(resource_id?)?;
        tenant_of_resource(&id).map(str::to_string)
    });
    Some(Row {
        aad_tenant: tenant.clone(),
        tenant,
        id: scalar(id),
        time: instant(time).or_else(|| instant(activity_time)),
        category: scalar(category),
        operation: scalar(display_name).or_else(|| scalar(operation_name)),
        result: scalar(result),
        targets: dynamic(targets),
        initiated: dynamic(initiated),
        details: dynamic(details),
    })
}

/// A JSON string's text (`None`: not a string).
fn string(v: &RawValue) -> Option<Cow<'_, str>> {
    let t = v.get();
    let inner = t.strip_prefix('"')?.strip_suffix('"')?;
    match inner.contains('\\') {
        false => Some(Cow::Borrowed(inner)),
        true => serde_json::from_str::<String>(t).ok().map(Cow::Owned),
    }
}

/// A scalar column's value: a string as itself, null as null, anything else as the compact
/// JSON text a parsed `Value` writes.
fn scalar(v: Option<&RawValue>) -> Option<String> {
    let v = v?;
    if let Some(s) = string(v) {
        return Some(s.into_owned());
    }
    match serde_json::from_str::<Value>(v.get()).ok()? {
        Value::Null => None,
        other => Some(other.to_string()),
    }
}

/// A dynamic column's value: an object or array as its JSON text, as it stands in the line
/// (the extraction parses it); else as [`scalar`]. Text with `\u` escapes is written compact
/// instead, so that a name spelled with them reads as it would from a parsed value (the
/// life cycle's filter looks for `UserState` in the text).
fn dynamic(v: Option<&RawValue>) -> Option<String> {
    let t = v?.get();
    match t.starts_with(['{', '[']) && !t.contains("\\u") {
        true => Some(t.to_string()),
        false => scalar(v),
    }
}

/// A time field: a string in one of the archive's time forms (else null).
fn instant(v: Option<&RawValue>) -> Option<i64> {
    parse_instant(&string(v?)?).ok()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    use super::*;

    /// The fields as a parsed `Value` gives them: what this module replaced.
    fn reference(line: &[u8]) -> Option<Row> {
        let v = serde_json::from_slice::<Value>(line).ok()?;
        v.is_object().then_some(())?;
        let text = |v: Option<&Value>| match v? {
            Value::Null => None,
            Value::String(s) => Some(s.clone()),
            other => Some(other.to_string()),
        };
        let time = |v: Option<&Value>| v?.as_str().and_then(|t| parse_instant(t).ok());
        Some(match v.get("properties").filter(|p| p.is_object()) {
            Some(p) => {
                let tenant = text(v.get("tenantId"))
                    .or_else(|| text(p.get("tenantId")))
                    .or_else(|| {
                        let id = v.get("resourceId")?.as_str()?;
                        tenant_of_resource(id).map(str::to_string)
                    });
                Row {
                    aad_tenant: tenant.clone(),
                    tenant,
                    id: text(p.get("id")),
                    time: time(v.get("time")).or_else(|| time(p.get("activityDateTime"))),
                    category: text(p.get("category")),
                    operation: text(p.get("activityDisplayName"))
                        .or_else(|| text(v.get("operationName"))),
                    result: text(p.get("result")),
                    targets: text(p.get("targetResources")),
                    initiated: text(p.get("initiatedBy")),
                    details: text(p.get("additionalDetails")),
                }
            }
            None => Row {
                tenant: text(v.get("TenantId")),
                aad_tenant: text(v.get("AADTenantId")),
                id: text(v.get("Id")),
                time: time(v.get("TimeGenerated")),
                category: text(v.get("Category")),
                operation: text(v.get("OperationName")),
                result: text(v.get("Result")),
                targets: text(v.get("TargetResources")),
                initiated: text(v.get("InitiatedBy")),
                details: text(v.get("AdditionalDetails")),
            },
        })
    }

    /// Ours and the reference agree: scalars exactly, dynamic values as the same JSON (their
    /// text may keep the line's spacing) mentioning `UserState` alike.
    fn agree(line: &[u8]) {
        let (ours, theirs) = (line_fields(line), reference(line));
        let show = String::from_utf8_lossy(line);
        let (Some(a), Some(b)) = (&ours, &theirs) else {
            assert_eq!(ours.is_some(), theirs.is_some(), "{show}");
            return;
        };
        let scalars = |r: &Row| {
            let s = [
                &r.tenant,
                &r.aad_tenant,
                &r.id,
                &r.category,
                &r.operation,
                &r.result,
            ];
            (s.map(Clone::clone), r.time)
        };
        assert_eq!(scalars(a), scalars(b), "{show}");
        let dynamics = |r: &Row| [r.targets.clone(), r.initiated.clone(), r.details.clone()];
        for (x, y) in dynamics(a).iter().zip(dynamics(b).iter()) {
            let parse = |t: &Option<String>| t.as_deref().map(serde_json::from_str::<Value>);
            let (px, py) = (parse(x), parse(y));
            match (&px, &py) {
                (Some(Ok(vx)), Some(Ok(vy))) => assert_eq!(vx, vy, "{show}"),
                _ => assert_eq!(x, y, "{show}"),
            }
            let mentions =
                |t: &Option<String>| t.as_deref().is_some_and(|t| t.contains("UserState"));
            if !mentions(x) {
                assert!(!mentions(y), "{show}");
            }
        }
    }

    /// A key as JSON text, sometimes with an escape.
    fn key(rng: &mut ChaCha8Rng, k: &str) -> String {
        match rng.gen_range(0..6) {
            0 if k.contains('e') => format!("\"{}\"", k.replacen('e', "\\u0065", 1)),
            _ => Value::from(k).to_string(),
        }
    }

    /// A random value a field may hold.
    fn value(rng: &mut ChaCha8Rng, depth: u32) -> String {
        let pick = |rng: &mut ChaCha8Rng, xs: &[&str]| xs[rng.gen_range(0..xs.len())].to_string();
        match rng.gen_range(0..12) {
            0 => "null".into(),
            1 => pick(
                rng,
                &["true", "1", "1.50", "-0", "1e3", "12345678901234567890"],
            ),
            2 => pick(
                rng,
                &[
                    "\"2024-01-02T03:04:05Z\"",
                    "\"2024-01-02T03:04:05.1234567Z\"",
                ],
            ),
            3 => pick(
                rng,
                &[
                    "\"t1\"",
                    "\"T\\u0031\"",
                    "\"\"",
                    "\"/tenants/t9/providers/x\"",
                ],
            ),
            4 => pick(
                rng,
                &["\"Invite external user\"", "\"Update user\"", "\"success\""],
            ),
            5 => pick(rng, &["\"[{\\\"id\\\":1}]\"", "\"{\\\"user\\\":null}\""]),
            6 => pick(
                rng,
                &[
                    r#"[{"displayName":"UserState","newValue":"x"}]"#,
                    r#"[ {"a" : [1, 2.0]} ]"#,
                ],
            ),
            7 => r#"[{"displayName":"User\u0053tate","newValue":"[\"Accepted\"]"}]"#.into(),
            8 if depth > 0 => object(rng, &["properties", "id", "x", "tenantId"], depth - 1),
            _ => format!("[{}]", value(rng, depth.saturating_sub(1))),
        }
    }

    /// A random object over `names` (and another key), keys possibly repeated.
    fn object(rng: &mut ChaCha8Rng, names: &[&str], depth: u32) -> String {
        let n = rng.gen_range(0..8);
        let entries: Vec<String> = (0..n)
            .map(|_| {
                let k = match rng.gen_range(0..8) {
                    0 => "other",
                    _ => names[rng.gen_range(0..names.len())],
                };
                let v = match k {
                    "properties" if rng.gen_bool(0.8) => object(rng, &PROPERTIES, depth),
                    _ => value(rng, depth),
                };
                format!("{}:{v}", key(rng, k))
            })
            .collect();
        let sep = [",", " , ", ",\t"][rng.gen_range(0..3)];
        format!("{{{}}}", entries.join(sep))
    }

    #[test]
    fn picked_fields_agree_with_a_parsed_record() {
        let mut rng = ChaCha8Rng::seed_from_u64(15);
        // A record's keys: its own the rule reads, and `properties`.
        let keys: Vec<&str> = TOP.iter().copied().chain(["properties"]).collect();
        for _ in 0..20_000 {
            agree(object(&mut rng, &keys, 2).as_bytes());
        }
    }

    #[test]
    fn what_is_no_record_agrees_too() {
        for line in [
            &b"[1, 2]"[..],
            b"\"text\"",
            b"{\"time\": 1} x",
            b"{\"time\": 1",
            b"{\"other\": \"\xff\"}",
            b"{\"other\": \"\\ud800\"}",
            b"{\"properties\": null, \"Id\": 7}",
            b"{\"properties\": \"text\", \"TenantId\": \"t\"}",
            b"{\"properties\": [], \"tenantId\": \"t\"}",
            b"  {\"properties\" :  {\"id\": \"a\"} , \"properties\": {\"id\": \"b\"}}",
        ] {
            agree(line);
        }
    }
}
