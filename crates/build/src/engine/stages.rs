//! Which stages a build builds, and which stage a `FROM`/`--from` word names.

use super::*;

/// The stage a `FROM`/`--from` word names (by name or index), among stages before `before`.
pub(super) fn stage_ref(plan: &Plan, before: usize, word: &str) -> Option<usize> {
    if let Ok(i) = word.parse::<usize>() {
        return (i < before).then_some(i);
    }
    plan.stages[..before.min(plan.stages.len())]
        .iter()
        .position(|s| s.is_named(word))
}

/// The last stage to build: the target's, or the last one. Docker's classic builder builds
/// every stage up to it, in order, whether the target needs it or not.
pub(super) fn last_stage(plan: &Plan, target: Option<&str>) -> Result<usize> {
    match target {
        Some(t) => plan
            .stages
            .iter()
            .position(|s| s.is_named(t))
            .ok_or_else(|| BuildError::Step {
                line: 0,
                msg: format!("failed to reach build target {t} in Dockerfile"),
            }),
        None => plan
            .stages
            .len()
            .checked_sub(1)
            .ok_or_else(|| BuildError::Step {
                line: 0,
                msg: "the Dockerfile has no FROM".into(),
            }),
    }
}
