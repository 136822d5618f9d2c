//! Which shard this worker extracts: `--shard`, else the index the engine gives every task of
//! an indexed job (Kubernetes `JOB_COMPLETION_INDEX`, AWS Batch `AWS_BATCH_JOB_ARRAY_INDEX`).

use crate::error::{Error, Result};

/// The engines' index variables, in the order they are consulted.
pub(crate) const INDEX_VARS: [&str; 2] = ["JOB_COMPLETION_INDEX", "AWS_BATCH_JOB_ARRAY_INDEX"];

/// A shard index and where it came from (named in every message about it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ShardIndex {
    pub(crate) value: usize,
    pub(crate) source: String,
}

impl ShardIndex {
    /// Checks the index against the plan's shard count.
    pub(crate) fn within(&self, shards: usize) -> Result<usize> {
        if self.value < shards {
            Ok(self.value)
        } else {
            Err(Error::Usage(format!(
                "{} is {}, but the plan has {shards} shard(s) (0 to {})",
                self.source,
                self.value,
                shards.saturating_sub(1)
            )))
        }
    }
}

/// The shard index from `--shard` or the environment (`env` looks a variable up); every
/// source given must agree.
pub(crate) fn shard_index(
    flag: Option<&str>,
    env: impl Fn(&str) -> Option<String>,
) -> Result<ShardIndex> {
    let mut given: Vec<(String, String)> = Vec::new();
    if let Some(v) = flag {
        given.push(("--shard".into(), v.to_string()));
    }
    for var in INDEX_VARS {
        if let Some(v) = env(var).filter(|v| !v.trim().is_empty()) {
            given.push((var.to_string(), v));
        }
    }
    let mut parsed = Vec::new();
    for (source, text) in given {
        let value = text.trim().parse::<usize>().map_err(|_| {
            Error::Usage(format!(
                "{source} is `{text}`: a shard index is a whole number from 0"
            ))
        })?;
        parsed.push(ShardIndex { value, source });
    }
    let Some(first) = parsed.first().cloned() else {
        return Err(Error::Usage(format!(
            "no shard index: pass --shard, or set {} (Kubernetes Indexed Job) or {} (AWS Batch array job)",
            INDEX_VARS[0], INDEX_VARS[1]
        )));
    };
    if let Some(other) = parsed.iter().find(|p| p.value != first.value) {
        return Err(Error::Usage(format!(
            "{} is {} but {} is {}: they must agree",
            first.source, first.value, other.source, other.value
        )));
    }
    Ok(first)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |k| {
            vars.iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn the_index_comes_from_the_flag_or_the_engines_variable() {
        let k8s = [("JOB_COMPLETION_INDEX", "3")];
        let batch = [("AWS_BATCH_JOB_ARRAY_INDEX", "4")];
        assert_eq!(shard_index(Some("2"), env(&[])).unwrap().value, 2);
        let i = shard_index(None, env(&k8s)).unwrap();
        assert_eq!((i.value, i.source.as_str()), (3, "JOB_COMPLETION_INDEX"));
        let i = shard_index(None, env(&batch)).unwrap();
        assert_eq!(
            (i.value, i.source.as_str()),
            (4, "AWS_BATCH_JOB_ARRAY_INDEX")
        );
        assert_eq!(shard_index(Some("3"), env(&k8s)).unwrap().value, 3);
        assert_eq!(i.within(5).unwrap(), 4);
    }

    #[test]
    fn a_missing_bad_disagreeing_or_out_of_range_index_is_a_usage_error() {
        let usage = |r: Result<ShardIndex>| match r {
            Err(e @ Error::Usage(_)) => e.to_string(),
            other => panic!("expected a usage error, got {other:?}"),
        };
        let msg = usage(shard_index(None, env(&[])));
        assert!(msg.contains("JOB_COMPLETION_INDEX") && msg.contains("AWS_BATCH_JOB_ARRAY_INDEX"));
        let msg = usage(shard_index(None, env(&[("JOB_COMPLETION_INDEX", "x1")])));
        assert!(msg.contains("JOB_COMPLETION_INDEX is `x1`"), "{msg}");
        let msg = usage(shard_index(Some("-1"), env(&[])));
        assert!(msg.contains("--shard is `-1`"), "{msg}");
        let both = [
            ("JOB_COMPLETION_INDEX", "1"),
            ("AWS_BATCH_JOB_ARRAY_INDEX", "2"),
        ];
        let msg = usage(shard_index(None, env(&both)));
        assert!(
            msg.contains("JOB_COMPLETION_INDEX is 1 but AWS_BATCH_JOB_ARRAY_INDEX is 2"),
            "{msg}"
        );
        let msg = usage(shard_index(
            Some("0"),
            env(&[("JOB_COMPLETION_INDEX", "1")]),
        ));
        assert!(
            msg.contains("--shard is 0 but JOB_COMPLETION_INDEX is 1"),
            "{msg}"
        );
        let i = shard_index(None, env(&[("JOB_COMPLETION_INDEX", "7")])).unwrap();
        let msg = i.within(7).unwrap_err().to_string();
        assert!(
            msg.contains("JOB_COMPLETION_INDEX is 7, but the plan has 7 shard(s) (0 to 6)"),
            "{msg}"
        );
    }
}
