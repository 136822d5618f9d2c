//! The rule: its vocabulary ([`columns`]), its model of invites, redeems and their pairing,
//! detection in both readings, the time-to-redeem baseline, exclusion rules, and the files
//! that configure it (`--config`, `--rule`).

mod baseline;
pub mod columns;
mod config;
mod detect;
mod exclude;
mod model;
mod precise;
mod sentinel;

pub use baseline::{by_tenant, tenant_keys, time_to_redeem, TenantKey};
pub(crate) use baseline::{
    intended_time_to_redeem, key_labels, precise_time_to_redeem, tenant_frame, with_precise_counts,
};
pub use config::{Config, Params};
pub(crate) use detect::{
    counts, deleted_guests, event_counts, intended_findings, precise_findings,
};
pub use detect::{findings, Semantics, Window, DELETED_RULE};
pub use exclude::Exclusions;
pub(crate) use exclude::{counts as exclusion_counts, split as split_suppressed, EXCLUDED, GRACE};
pub(crate) use model::{
    category_pattern, finding_order, invites, lifecycle_operation_pattern, operation_pattern, pair,
    redeems, sentinel_redeem_key, tenant_key, DELETE_OPS, INVITE_OP, REDEEM_OP, RESET_INVITE_OP,
    UPDATE_USER_OP, USER_STATE,
};
pub use precise::MATCHED_BY;
pub(crate) use precise::{pair_precise, precise_counts, DELETED_TIME};
pub(crate) use sentinel::load_rule;
pub use sentinel::Rule;
