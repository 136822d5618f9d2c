//! Rows rendered as the JSON Lines blobs Azure writes into a storage account, with their real
//! path layouts: Entra diagnostic settings (one `PT1H.json` per tenant and hour) or Log
//! Analytics data export (one `PT05M.json` per workspace and five minutes, dynamic columns as
//! JSON values and as JSON text in turn).

use std::collections::BTreeMap;
use std::io::Write;

use chrono::{DateTime, Timelike, Utc};
use serde_json::{json, Value};

use super::rows::{Row, Tenant};
use crate::error::{Error, Result};

/// What `generate --format` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum GenFormat {
    /// Parquet with the Log Analytics columns, one object per day.
    #[default]
    Parquet,
    /// Entra diagnostic-settings records: `tenantId=<tid>/y=/m=/d=/h=/m=00/PT1H.json`.
    DiagJson,
    /// Log Analytics data export: `WorkspaceResourceId=/…/workspaces/<ws>/y=/m=/d=/h=/m=/PT05M.json`.
    LaExportJson,
}

/// A time as Azure writes it: seven fractional digits.
fn azure_time(t: &DateTime<Utc>) -> String {
    format!(
        "{}.{:07}Z",
        t.format("%Y-%m-%dT%H:%M:%S"),
        t.nanosecond() / 100
    )
}

fn value(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|_| Value::from(text))
}

/// One diagnostic-settings record.
fn diagnostic(r: &Row, tenant: &str, time: &str) -> Value {
    json!({
        "time": time,
        "resourceId": format!("/tenants/{tenant}/providers/Microsoft.aadiam"),
        "operationName": r.operation,
        "operationVersion": "1.0",
        "category": "AuditLogs",
        "tenantId": tenant,
        "resultSignature": "None",
        "durationMs": 0,
        "correlationId": r.correlation,
        "Level": 4,
        "properties": {
            "id": r.id,
            "category": r.category,
            "correlationId": r.correlation,
            "result": r.result,
            "activityDisplayName": r.operation,
            "activityDateTime": time.replace('Z', "+00:00"),
            "loggedByService": r.logged_by,
            "operationType": r.op_type,
            "initiatedBy": value(&r.initiated),
            "targetResources": value(&r.targets),
            "additionalDetails": value(&r.details),
        },
    })
}

/// One data-export record; `as_text` writes the dynamic columns as JSON text.
fn exported(r: &Row, tenant: &str, time: &str, as_text: bool) -> Value {
    let dynamic = |t: &str| if as_text { Value::from(t) } else { value(t) };
    json!({
        "TenantId": tenant,
        "SourceSystem": "Azure AD",
        "TimeGenerated": time,
        "ResourceId": format!("/tenants/{tenant}/providers/Microsoft.aadiam"),
        "OperationName": r.operation,
        "OperationVersion": "1.0",
        "Category": r.category,
        "ResultSignature": "None",
        "CorrelationId": r.correlation,
        "Id": r.id,
        "LoggedByService": r.logged_by,
        "Result": r.result,
        "AADTenantId": tenant,
        "ActivityDisplayName": r.operation,
        "ActivityDateTime": time,
        "AADOperationType": r.op_type,
        "AdditionalDetails": dynamic(&r.details),
        "InitiatedBy": dynamic(&r.initiated),
        "TargetResources": dynamic(&r.targets),
        "Type": "AuditLogs",
    })
}

/// The blobs (key, bytes) of `rows` in `format`, gzip'd when asked.
pub(super) fn blobs(
    rows: &[Row],
    tenants: &[Tenant],
    format: GenFormat,
    gzip: bool,
) -> Result<Vec<(String, Vec<u8>)>> {
    let mut blobs: BTreeMap<String, String> = BTreeMap::new();
    for (i, r) in rows.iter().enumerate() {
        let t = DateTime::from_timestamp_micros(r.time)
            .ok_or_else(|| Error::Usage("the generated period is out of range".into()))?;
        let tenant = tenants.get(r.tenant).map_or("", |t| t.id.as_str());
        let time = azure_time(&t);
        let hour = t.format("y=%Y/m=%m/d=%d/h=%H").to_string();
        let (key, record) = match format {
            GenFormat::DiagJson => (
                format!("tenantId={tenant}/{hour}/m=00/PT1H.json"),
                diagnostic(r, tenant, &time),
            ),
            _ => (
                format!(
                    "WorkspaceResourceId=/subscriptions/00000000-0000-0000-0000-000000000000/\
                     resourcegroups/logs/providers/microsoft.operationalinsights/workspaces/\
                     ws-{tenant}/{hour}/m={:02}/PT05M.json",
                    t.minute() / 5 * 5
                ),
                exported(r, tenant, &time, i % 2 == 1),
            ),
        };
        let blob = blobs.entry(key).or_default();
        blob.push_str(&record.to_string());
        blob.push('\n');
    }
    blobs
        .into_iter()
        .map(|(key, text)| {
            if !gzip {
                return Ok((key, text.into_bytes()));
            }
            let mut g = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            let zipped = g.write_all(text.as_bytes()).and_then(|()| g.finish());
            let key = format!("{key}.gz");
            zipped
                .map(|b| (key.clone(), b))
                .map_err(|e| Error::write(&key, e))
        })
        .collect()
}
