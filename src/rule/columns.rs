//! The vocabulary every stage shares: the archive's columns the job reads, the event frame the
//! scan hands on, and the columns of every frame the job writes. Each name is spelled here
//! once; stages import it, so a typo is a compile error rather than a `ColumnNotFound`.

use polars::prelude::{Column, DataFrame, DataType};

/// The tenant key, the same column in the archive, the events and every output frame.
pub const TENANT: &str = "TenantId";
/// The Entra tenant (Log Analytics' `AADTenantId`; `TenantId` there is the workspace). With
/// [`TENANT`] it keys every pairing and every per-tenant table; `""` where the input has none.
pub const AAD_TENANT: &str = "AADTenantId";
/// The event's `Id`, passed through from the archive to findings and the baseline.
pub const ID: &str = "Id";
/// The key of every pairing and per-tenant table: an invite in one Entra tenant is never
/// cleared by a redeem in another, even within one workspace.
pub const TENANT_KEY: [&str; 2] = [TENANT, AAD_TENANT];

/// AuditLogs columns, as Log Analytics names them.
pub mod input {
    pub use super::{AAD_TENANT, ID, TENANT};
    pub const TIME_GENERATED: &str = "TimeGenerated";
    pub const CATEGORY: &str = "Category";
    pub const OPERATION_NAME: &str = "OperationName";
    pub const RESULT: &str = "Result";
    pub const TARGET_RESOURCES: &str = "TargetResources";
    pub const INITIATED_BY: &str = "InitiatedBy";
    /// Read for invites only: their `InvitationId` and `invitedUserEmailAddress` (`precise`).
    pub const ADDITIONAL_DETAILS: &str = "AdditionalDetails";

    /// Every column the readers fetch: the [`NEEDED`] ones, then `AADTenantId` and
    /// `AdditionalDetails` where the object has them (absent: `""`, null). Every other column
    /// is ignored.
    pub const READ: [&str; 10] = [
        TENANT,
        ID,
        TIME_GENERATED,
        CATEGORY,
        OPERATION_NAME,
        RESULT,
        TARGET_RESOURCES,
        INITIATED_BY,
        AAD_TENANT,
        ADDITIONAL_DETAILS,
    ];
    /// The columns every object must have.
    pub const NEEDED: &[&str] = READ.split_at(8).0;
}

/// Event frame columns (one row per candidate invite/redeem event).
pub mod ev {
    pub use super::{AAD_TENANT, ID, TENANT};
    /// Event time, i64 nanoseconds since the epoch, UTC.
    pub const TIME: &str = "Time";
    /// What the event is: one of [`kind`], u32.
    pub const KIND: &str = "Kind";
    pub const RESULT_OK: &str = "ResultOk";
    /// `TargetResources[0].userPrincipalName`.
    pub const TR_UPN: &str = "TrUpn";
    /// `TargetResources[0].displayName`.
    pub const TR_DISPLAY: &str = "TrDisplay";
    /// `TargetResources[0].id`: the guest's object id.
    pub const TR_ID: &str = "TrId";
    /// An invite's `AdditionalDetails` `InvitationId` (null for other events).
    pub const INVITATION_ID: &str = "InvitationId";
    /// An invite's `AdditionalDetails` `invitedUserEmailAddress` (null for other events).
    pub const INVITED_EMAIL: &str = "InvitedEmail";
    /// `InitiatedBy.user.userPrincipalName`.
    pub const INIT_UPN: &str = "InitUpn";
    /// `InitiatedBy.user.ipAddress`.
    pub const INIT_IP: &str = "InitIp";
    /// How many of this row's JSON values could not be parsed (0..=3).
    pub const BAD_JSON: &str = "BadJson";

    /// The values of [`KIND`]. Only invites and redeems are read unless a run reads the
    /// guest's life cycle too (`precise`).
    pub mod kind {
        /// "Invite external user".
        pub const INVITE: u32 = 0;
        /// "Redeem external user invite".
        pub const REDEEM: u32 = 1;
        /// "Invite external user with reset invitation status".
        pub const RESET_INVITE: u32 = 2;
        /// "Delete user", "Hard Delete user", "Delete external user".
        pub const DELETE: u32 = 3;
        /// "Update user" that changes `UserState` to `Accepted`.
        pub const ACCEPTED: u32 = 4;
    }
}

/// The event frame with no rows (an archive whose objects hold no guest events): the schema
/// every object's events are normalised to.
pub fn empty_events() -> DataFrame {
    // Built once, then shared: every object without events of a run holds one.
    static EMPTY: std::sync::OnceLock<DataFrame> = std::sync::OnceLock::new();
    EMPTY.get_or_init(build_empty_events).clone()
}

fn build_empty_events() -> DataFrame {
    let s = |n: &str| Column::new_empty(n.into(), &DataType::String);
    let columns = vec![
        s(ev::TENANT),
        s(ev::AAD_TENANT),
        s(ev::ID),
        Column::new_empty(ev::TIME.into(), &DataType::Int64),
        Column::new_empty(ev::KIND.into(), &DataType::UInt32),
        Column::new_empty(ev::RESULT_OK.into(), &DataType::Boolean),
        s(ev::TR_UPN),
        s(ev::TR_DISPLAY),
        s(ev::TR_ID),
        s(ev::INVITATION_ID),
        s(ev::INVITED_EMAIL),
        s(ev::INIT_UPN),
        s(ev::INIT_IP),
        Column::new_empty(ev::BAD_JSON.into(), &DataType::UInt32),
    ];
    DataFrame::new_infer_height(columns).expect("empty columns of one length")
}

/// Columns of the frames the job writes (findings, baseline, replay, sweep, suppressions).
pub mod out {
    pub use super::{AAD_TENANT, ID, TENANT};

    // Findings (`findings.parquet`), and the invite side of every other frame.
    pub const TARGET_UPN: &str = "TargetUPN";
    pub const INVITE_TIME: &str = "InviteTime";
    pub const INVITE_INITIATOR: &str = "InviteInitiator";
    pub const IP_ADDRESS: &str = "IPAddress";
    /// T − InviteTime, seconds.
    pub const PENDING_SECONDS: &str = "PendingSeconds";
    /// `findings.parquet`, in order.
    pub const FINDING: [&str; 8] = [
        TENANT,
        AAD_TENANT,
        TARGET_UPN,
        INVITE_TIME,
        INVITE_INITIATOR,
        IP_ADDRESS,
        ID,
        PENDING_SECONDS,
    ];

    // Suppressions: the finding columns plus the exclusion that suppressed it.
    pub const RULE: &str = "Rule";
    pub const REASON: &str = "Reason";

    // Baseline (`baseline/time_to_redeem.parquet`, `baseline/by_tenant.parquet`).
    pub const REDEEM_TIME: &str = "RedeemTime";
    pub const TIME_TO_REDEEM_SECONDS: &str = "TimeToRedeemSeconds";
    /// `precise`: the key the redemption matched its invite by (`rule::MATCHED_BY`).
    pub const MATCHED_BY: &str = "MatchedBy";
    /// `baseline/time_to_redeem.parquet`, in order.
    pub const TIME_TO_REDEEM: [&str; 9] = [
        TENANT,
        AAD_TENANT,
        ID,
        TARGET_UPN,
        INVITE_TIME,
        INVITE_INITIATOR,
        IP_ADDRESS,
        REDEEM_TIME,
        TIME_TO_REDEEM_SECONDS,
    ];
    /// `precise` only, in `baseline/by_tenant.parquet`: pairs by the key that named them (in
    /// `rule::MATCHED_BY`'s order), pairs whose redemption no UPN text matched, pairs with no
    /// redeem record (an accepting update only), and pending invites to deleted guests.
    pub const PAIRS_BY: [&str; 5] = [
        "PairsByObjectId",
        "PairsByInvitationId",
        "PairsByUpn",
        "PairsByEmail",
        "PairsByUserState",
    ];
    pub const MISSED_BY_UPN: &str = "MissedByUpn";
    pub const LOST_REDEEM_RECORDS: &str = "LostRedeemRecords";
    pub const DELETED_GUESTS: &str = "DeletedGuests";
    pub const INVITES: &str = "Invites";
    pub const REDEEMED: &str = "Redeemed";
    pub const PENDING: &str = "Pending";
    pub const P50_SECONDS: &str = "P50Seconds";
    pub const P90_SECONDS: &str = "P90Seconds";
    pub const P95_SECONDS: &str = "P95Seconds";
    pub const P99_SECONDS: &str = "P99Seconds";
    pub const MAX_SECONDS: &str = "MaxSeconds";

    // Replay (`replay/alerts.parquet`, `replay/by_tick.parquet`).
    pub const EVALUATED_AT: &str = "EvaluatedAt";
    pub const FIRST_ALERT: &str = "FirstAlert";
    pub const ALERTS: &str = "Alerts";
    pub const NEW_ALERTS: &str = "NewAlerts";

    // Sweep (`sweep/sweep.parquet`, `sweep/suggested.parquet`).
    pub const THRESHOLD_SECONDS: &str = "ThresholdSeconds";
    pub const FLAGGED: &str = "Flagged";
    pub const FLAGGED_LATER_REDEEMED: &str = "FlaggedLaterRedeemed";
    pub const FLAGGED_STILL_PENDING: &str = "FlaggedStillPending";
    pub const REDEEMED_WITHIN: &str = "RedeemedWithin";
    pub const EXCLUDED: &str = "Excluded";
    pub const GRACED: &str = "Graced";
    pub const TARGET_QUANTILE: &str = "TargetQuantile";
    pub const QUANTILE_SECONDS: &str = "QuantileSeconds";
    pub const SUGGESTED_THRESHOLD_SECONDS: &str = "SuggestedThresholdSeconds";
    pub const SUGGESTED_THRESHOLD: &str = "SuggestedThreshold";
    pub const FLAGGED_AT_SUGGESTED: &str = "FlaggedAtSuggested";
    pub const CURRENT_THRESHOLD_SECONDS: &str = "CurrentThresholdSeconds";
    pub const FLAGGED_AT_CURRENT: &str = "FlaggedAtCurrent";
}
