//! Which stages a build needs, and which stage a `FROM`/`--from` word names.

use std::collections::HashMap;

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

/// Which stages the target needs: itself, the stages it starts FROM and copies --from.
pub(super) fn needed_stages(
    plan: &Plan,
    target: Option<&str>,
    meta: &[(String, String)],
    fe: &dyn Frontend,
) -> Result<Vec<bool>> {
    let last = match target {
        Some(t) => plan
            .stages
            .iter()
            .position(|s| s.is_named(t))
            .ok_or_else(|| BuildError::Step {
                line: 0,
                msg: format!("failed to reach build target {t} in Dockerfile"),
            })?,
        None => plan
            .stages
            .len()
            .checked_sub(1)
            .ok_or_else(|| BuildError::Step {
                line: 0,
                msg: "the Dockerfile has no FROM".into(),
            })?,
    };
    let mut need = vec![false; plan.stages.len()];
    let mut todo = vec![last];
    let mut deps: HashMap<usize, Vec<usize>> = HashMap::new();
    for (i, s) in plan.stages.iter().enumerate() {
        let mut d = Vec::new();
        if let Ok(b) = fe.word(&s.base, meta) {
            if let Some(j) = stage_ref(plan, i, &b) {
                d.push(j);
            }
        }
        for step in &s.steps {
            if let Op::Copy { from: Some(f), .. } = &step.op {
                if let Some(j) = stage_ref(plan, i, f) {
                    d.push(j);
                }
            }
        }
        deps.insert(i, d);
    }
    while let Some(i) = todo.pop() {
        if need[i] {
            continue;
        }
        need[i] = true;
        todo.extend(deps.get(&i).cloned().unwrap_or_default());
    }
    Ok(need)
}
