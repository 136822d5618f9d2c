//! Rows rendered as an AuditLogs frame: the full Log Analytics column set, dynamic columns as
//! JSON text or, for `--nested`, as the nested columns an inferring exporter writes.

use polars::prelude::*;

use super::rows::{Row, Tenant};
use crate::error::Result;
use crate::rule::columns::input;

pub(super) fn frame(rows: &[Row], tenants: &[Tenant], nested: bool) -> Result<DataFrame> {
    let s = |name: &str, f: &dyn Fn(&Row) -> String| {
        Column::new(name.into(), rows.iter().map(f).collect::<Vec<String>>())
    };
    let k = |name: &str, v: &str| Column::new(name.into(), vec![v.to_string(); rows.len()]);
    let times: Vec<i64> = rows.iter().map(|r| r.time).collect();
    let utc = DataType::Datetime(TimeUnit::Microseconds, Some(TimeZone::UTC));
    let time_col =
        |name: &str| -> Result<Column> { Ok(Column::new(name.into(), times.clone()).cast(&utc)?) };
    let df = DataFrame::new_infer_height(vec![
        s(input::TENANT, &|r| tenants[r.tenant].id.clone()),
        k("SourceSystem", "Azure AD"),
        time_col(input::TIME_GENERATED)?,
        s("ResourceId", &|r| {
            format!(
                "/tenants/{}/providers/Microsoft.aadiam",
                tenants[r.tenant].id
            )
        }),
        s(input::OPERATION_NAME, &|r| r.operation.clone()),
        k("OperationVersion", "1.0"),
        s(input::CATEGORY, &|r| r.category.clone()),
        k("ResultType", ""),
        k("ResultSignature", "None"),
        k("ResultDescription", ""),
        k("DurationMs", "0"),
        s("CorrelationId", &|r| r.correlation.clone()),
        k("Resource", "Microsoft.aadiam"),
        k("ResourceGroup", "Microsoft.aadiam"),
        k("ResourceProvider", ""),
        k("Identity", ""),
        k("Level", "4"),
        k("Location", ""),
        s("AdditionalDetails", &|r| r.details.clone()),
        s(input::ID, &|r| r.id.clone()),
        s(input::INITIATED_BY, &|r| r.initiated.clone()),
        s("LoggedByService", &|r| r.logged_by.to_string()),
        s(input::RESULT, &|r| r.result.clone()),
        k("ResultReason", ""),
        s(input::TARGET_RESOURCES, &|r| r.targets.clone()),
        s("AADTenantId", &|r| tenants[r.tenant].id.clone()),
        s("ActivityDisplayName", &|r| r.operation.clone()),
        time_col("ActivityDateTime")?,
        s("AADOperationType", &|r| r.op_type.to_string()),
        k("Type", "AuditLogs"),
    ])?;
    let df = df
        .lazy()
        .with_column(col("DurationMs").cast(DataType::Int64))
        .collect()?;
    if !nested {
        return Ok(df);
    }
    Ok(df
        .lazy()
        .with_columns([
            col(input::TARGET_RESOURCES)
                .str()
                .json_decode(targets_dtype()),
            col(input::INITIATED_BY)
                .str()
                .json_decode(initiated_dtype()),
            col("AdditionalDetails").str().json_decode(details_dtype()),
        ])
        .collect()?)
}

fn strings(names: &[&str]) -> DataType {
    DataType::Struct(
        names
            .iter()
            .map(|n| Field::new((*n).into(), DataType::String))
            .collect(),
    )
}

/// The nested layout an inferring exporter (Spark, Fabric) writes.
fn targets_dtype() -> DataType {
    DataType::List(Box::new(DataType::Struct(vec![
        Field::new("id".into(), DataType::String),
        Field::new("displayName".into(), DataType::String),
        Field::new("type".into(), DataType::String),
        Field::new("userPrincipalName".into(), DataType::String),
        Field::new(
            "modifiedProperties".into(),
            DataType::List(Box::new(strings(&["displayName", "oldValue", "newValue"]))),
        ),
    ])))
}

fn initiated_dtype() -> DataType {
    let mut user = vec![
        Field::new("id".into(), DataType::String),
        Field::new("displayName".into(), DataType::String),
        Field::new("userPrincipalName".into(), DataType::String),
        Field::new("ipAddress".into(), DataType::String),
    ];
    user.push(Field::new(
        "roles".into(),
        DataType::List(Box::new(DataType::String)),
    ));
    DataType::Struct(vec![
        Field::new("user".into(), DataType::Struct(user)),
        Field::new(
            "app".into(),
            strings(&[
                "appId",
                "displayName",
                "servicePrincipalId",
                "servicePrincipalName",
            ]),
        ),
    ])
}

fn details_dtype() -> DataType {
    DataType::List(Box::new(strings(&["key", "value"])))
}
