//! Live resize: the app's limits (memory, CPU, pids) given to its running instances without a
//! restart, through the node ([`crate::node::Node::resize`]). An instance that uses more
//! memory than a lowered limit keeps its old memory limit — forcing it would have the kernel
//! reclaim what it can and then kill the app — and says so in its event; it is not asked
//! again until the app's limits change again, and its successor (an idle stop, a recycle, a
//! rollout) gets the new limit. Instances still starting get the limits when they are ready.

use std::sync::Arc;

use hako_agent::Resized;
use hako_model::units::format_size;
use hako_model::{App, Event, EventKind, InstanceInfo, InstanceLimits, ResizeOutcome};

use super::Lifecycle;

impl Lifecycle {
    /// Gives every ready instance of `app` the app's limits, live, and says what happened to
    /// each (also for those resized or refused before: the call is idempotent).
    pub(crate) async fn resize_app(&self, app: &App) -> Vec<ResizeOutcome> {
        let _one = self.resizing.lock().await;
        let target = app.limits();
        let mut outcomes = Vec::new();
        for (id, t) in self.tracked(app) {
            let leaving = t.draining_since.is_some() && !t.replacing;
            if leaving || t.ready.is_none() {
                continue; // drains away / gets them when it is ready
            }
            let have = t.info.limits;
            if have == Some(target) {
                outcomes.push(ResizeOutcome {
                    instance: id,
                    applied: true,
                    limits: target,
                    reason: None,
                });
                continue;
            }
            if let Some((refused, why)) = &t.resize_refused
                && *refused == target
            {
                outcomes.push(ResizeOutcome {
                    instance: id,
                    applied: false,
                    limits: have.unwrap_or(target),
                    reason: Some(why.clone()),
                });
                continue;
            }
            let outcome = match self.node.resize(&id, target).await {
                Ok(Resized::Applied(now)) => {
                    self.table().resized(&id, now, None);
                    let words =
                        format!("resized live (no restart): {}", describe_change(have, now));
                    self.record_resize(app, &id, words).await;
                    ResizeOutcome {
                        instance: id,
                        applied: true,
                        limits: now,
                        reason: None,
                    }
                }
                Ok(Resized::MemoryKept { limits, using }) => {
                    let why = format!(
                        "keeps its memory limit of {}: it uses {}, more than the new {} (a lower limit would have the kernel kill it); new instances get {}",
                        limits.memory,
                        using.map_or("more".into(), format_size),
                        target.memory,
                        target.memory,
                    );
                    self.table()
                        .resized(&id, limits, Some((target, why.clone())));
                    let mut words = why.clone();
                    if limits != have.unwrap_or(limits) {
                        words.push_str(&format!(
                            "; resized live: {}",
                            describe_change(have, limits)
                        ));
                    }
                    self.record_resize(app, &id, words).await;
                    ResizeOutcome {
                        instance: id,
                        applied: false,
                        limits,
                        reason: Some(why),
                    }
                }
                Err(e) => ResizeOutcome {
                    instance: id,
                    applied: false,
                    limits: have.unwrap_or(target),
                    reason: Some(e.to_string()),
                },
            };
            outcomes.push(outcome);
        }
        outcomes
    }

    /// An instance that just became ready was started from an app whose limits changed
    /// meanwhile: resize it in the background.
    pub(super) fn resize_if_behind(self: &Arc<Self>, app: &App, info: &InstanceInfo) {
        let Some(current) = self.apps.get(&app.spec.name).filter(|a| a.uid == app.uid) else {
            return;
        };
        if info.limits.is_some_and(|l| l != current.limits()) {
            let this = self.clone();
            tokio::spawn(async move {
                this.resize_app(&current).await;
            });
        }
    }

    async fn record_resize(&self, app: &App, id: &str, words: String) {
        self.events
            .record(Event::new(&app.spec.name, EventKind::Resize, words).instance(id))
            .await;
    }
}

/// "memory 256MiB → 512MiB, cpu none → 1.5": the limits that differ.
pub(crate) fn describe_change(from: Option<InstanceLimits>, to: InstanceLimits) -> String {
    let cpu = |c: Option<f64>| c.map_or("none".to_string(), |c| format!("{c}"));
    let Some(from) = from else {
        return format!(
            "memory {}, cpu {}, pids {}",
            to.memory,
            cpu(to.cpu),
            to.pids
        );
    };
    let mut parts = Vec::new();
    if from.memory != to.memory {
        parts.push(format!("memory {} → {}", from.memory, to.memory));
    }
    if from.cpu != to.cpu {
        parts.push(format!("cpu {} → {}", cpu(from.cpu), cpu(to.cpu)));
    }
    if from.pids != to.pids {
        parts.push(format!("pids {} → {}", from.pids, to.pids));
    }
    if parts.is_empty() {
        "no change".into()
    } else {
        parts.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hako_model::ByteSize;

    #[test]
    fn changes_name_what_differs() {
        let a = InstanceLimits {
            memory: ByteSize(256 << 20),
            cpu: None,
            pids: 512,
        };
        let b = InstanceLimits {
            memory: ByteSize(512 << 20),
            cpu: Some(1.5),
            ..a
        };
        assert_eq!(
            describe_change(Some(a), b),
            "memory 256MiB → 512MiB, cpu none → 1.5"
        );
        assert_eq!(describe_change(Some(a), a), "no change");
        assert!(describe_change(None, a).contains("pids 512"));
    }
}

#[cfg(test)]
mod live {
    use hako_model::{ByteSize, EventKind};

    use crate::lifecycle::Cause;
    use crate::testbed::{Call, bed, site};

    #[tokio::test(start_paused = true)]
    async fn limits_change_live_and_a_memory_limit_below_use_is_kept_off_that_instance() {
        let b = bed(site(serde_json::json!({"memory": "256MiB"}))).await;
        let small = b
            .lifecycle
            .start(&b.app(), Cause::Policy("test".into()))
            .await
            .unwrap();
        let big = b
            .lifecycle
            .start(&b.app(), Cause::Policy("test".into()))
            .await
            .unwrap();
        b.node
            .using
            .lock()
            .unwrap()
            .insert(big.id.clone(), 200 << 20);
        // Raised memory and a CPU limit: both instances, live (no stop, no start).
        b.set(site(serde_json::json!({"memory": "512MiB", "cpu": 1.5})));
        let out = b.lifecycle.resize_app(&b.app()).await;
        assert!(out.iter().all(|o| o.applied), "{out:?}");
        assert_eq!(out.len(), 2);
        assert_eq!(b.node.launches(), 2);
        assert!(!b.node.calls().iter().any(|c| matches!(c, Call::Stop(_))));
        let limits = |id: &str| {
            b.lifecycle
                .instances(None)
                .into_iter()
                .find(|i| i.id == id)
                .unwrap()
                .limits
                .unwrap()
        };
        assert_eq!(limits(&small.id).memory, ByteSize(512 << 20));
        assert_eq!(limits(&big.id).cpu, Some(1.5));
        // Lowered below what one uses: that one keeps its memory limit and says why.
        b.set(site(serde_json::json!({"memory": "128MiB", "cpu": 1.5})));
        let out = b.lifecycle.resize_app(&b.app()).await;
        let kept = out.iter().find(|o| o.instance == big.id).unwrap();
        assert!(!kept.applied);
        assert!(
            kept.reason
                .as_deref()
                .unwrap()
                .contains("uses 200MiB, more than the new 128MiB"),
            "{kept:?}"
        );
        assert_eq!(limits(&small.id).memory, ByteSize(128 << 20));
        assert_ne!(limits(&big.id).memory, ByteSize(128 << 20));
        // Asked again (the store watch after the API): nothing is tried again.
        let calls = b.node.calls().len();
        let again = b.lifecycle.resize_app(&b.app()).await;
        assert_eq!(again, out);
        assert_eq!(b.node.calls().len(), calls);
        let events = b.events().await;
        let resizes: Vec<_> = events
            .iter()
            .filter(|e| e.kind == EventKind::Resize)
            .collect();
        assert_eq!(resizes.len(), 4, "{resizes:?}");
        assert!(
            resizes[0]
                .reason
                .contains("memory 256MiB → 512MiB, cpu none → 1.5"),
            "{resizes:?}"
        );
    }
}
