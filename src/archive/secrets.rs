//! Values that must never be printed: keys, SAS tokens and secrets from the environment and
//! from `--storage-option`. Every message leaving the binary goes through [`redact`].

use std::sync::OnceLock;

static SECRETS: OnceLock<Vec<String>> = OnceLock::new();

const SECRET_ENV: [&str; 12] = [
    "AZURE_STORAGE_ACCOUNT_KEY",
    "AZURE_STORAGE_MASTER_KEY",
    "AZURE_STORAGE_TOKEN",
    "AZURE_STORAGE_CLIENT_SECRET",
    "AWS_TOKEN",
    "AZURE_STORAGE_ACCESS_KEY",
    "AZURE_STORAGE_SAS_KEY",
    "AZURE_STORAGE_SAS_TOKEN",
    "AZURE_CLIENT_SECRET",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "GOOGLE_SERVICE_ACCOUNT_KEY",
];

/// Does a `--storage-option` key name a secret?
pub(crate) fn is_secret_key(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    ["key", "secret", "token", "sas", "password", "signature"]
        .iter()
        .any(|w| k.contains(w))
        && !k.ends_with("key_id")
        && !k.ends_with("access_key_id")
}

/// Does a `--storage-option` key name a setting that is not secret but reads like one (a
/// switch, a file path, a key's id)? Such settings are kept where secrets are dropped (a plan).
pub(crate) fn is_harmless_key(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    [
        "skip_signature",
        "_file",
        "key_id",
        "bucket_key_enabled",
        "unsigned_payload",
    ]
    .iter()
    .any(|w| k.contains(w))
}

/// Remembers the secret values of the environment and of `options` (first call wins).
pub(crate) fn register(options: &[(String, String)]) {
    let mut v: Vec<String> = SECRET_ENV
        .iter()
        .filter_map(|k| std::env::var(k).ok())
        .chain(
            options
                .iter()
                .filter(|(k, _)| is_secret_key(k))
                .map(|(_, v)| v.clone()),
        )
        .filter(|s| s.len() >= 4)
        .collect();
    v.sort_by_key(|s| std::cmp::Reverse(s.len()));
    let _ = SECRETS.set(v);
}

/// Replaces every known secret value (and URL query strings) in `msg`.
pub fn redact(msg: &str) -> String {
    let mut out = msg.to_string();
    if let Some(secrets) = SECRETS.get() {
        for s in secrets {
            out = out.replace(s.as_str(), "***");
        }
    }
    // SAS signatures travel in query strings; mask any `sig=` value that slipped through.
    let mut pos = 0;
    while let Some(rel) = out[pos..].find("sig=") {
        let start = pos + rel + 4;
        let end = out[start..]
            .find(|c: char| c == '&' || c.is_whitespace() || c == '"' || c == '\'')
            .map_or(out.len(), |e| start + e);
        out.replace_range(start..end, "***");
        pos = start + 3;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sas_signatures_and_secret_keys_are_recognised() {
        assert_eq!(
            redact("GET https://x/c?sv=1&sig=abc&se=2 failed"),
            "GET https://x/c?sv=1&sig=***&se=2 failed"
        );
        assert!(is_secret_key("azure_storage_account_key"));
        assert!(is_secret_key("aws_secret_access_key"));
        assert!(!is_secret_key("aws_access_key_id"));
        assert!(!is_secret_key("azure_storage_account_name"));
    }
}
