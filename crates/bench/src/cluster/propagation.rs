//! Route propagation with many apps stored. One site, `prop` (host `prop.bench`), runs; the
//! benchmark then stores `apps` more apps straight into the cluster store (copies of prop's
//! record under other names, uids and hosts, 100 to a transaction), as a large operator's
//! store holds them. Each timed change rewrites prop's record with one new host
//! (`pK.prop.bench`): the time runs from just before the write is sent to etcd to the end of
//! the first request with that host that the front's proxy answers 200 (it answers 404 while
//! the host is unknown; the benchmark asks again at once, on a new connection each time).
//! The bed has one front, so "every proxy" is that one. The first change, right after the
//! bulk write, also times the ingestion: the front applies the store's events in order, so
//! once it routes the change it has applied every app written before it.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use hako_store::{Store, Txn, TxnOp, keys};

use super::bed::Bed;
use crate::samples::Samples;

const APP: &str = "prop";
/// Puts per transaction (etcd allows 128 operations in one).
const BATCH: usize = 100;
/// Longest wait for one change to be routed.
const LIMIT: Duration = Duration::from_secs(60);

/// What the propagation measured.
#[derive(Debug, Default)]
pub struct Propagation {
    pub apps: usize,
    /// From the first bulk write to the first change routed.
    pub ingest_s: f64,
    /// Writing the apps alone.
    pub write_s: f64,
    pub changes: Samples,
}

pub fn run(bed: &Bed, code: &Path, apps: usize, changes: usize) -> anyhow::Result<Propagation> {
    bed.create(APP, code, &["--idle-timeout", "1h", "--memory", "64MiB"])?;
    bed.get_ok(APP)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start a tokio runtime")?;
    let store = rt.block_on(bed.store())?;
    let key = keys::app(APP);
    let template: serde_json::Value = {
        let kv = rt
            .block_on(store.get(&key))?
            .with_context(|| format!("{key} is not stored"))?;
        serde_json::from_slice(&kv.value).context("prop's record")?
    };

    eprintln!("bench cluster: storing {apps} apps, then {changes} timed route changes");
    let t = Instant::now();
    let records: Vec<(String, Vec<u8>)> = (0..apps).map(|i| copy(&template, i)).collect();
    for chunk in records.chunks(BATCH) {
        let mut txn = Txn::new();
        for (k, v) in chunk {
            txn = txn.and_then(TxnOp::put(k.clone(), v.clone()));
        }
        rt.block_on(store.txn(txn))?;
    }
    let write_s = t.elapsed().as_secs_f64();
    change(&rt, &store, bed, &template, 0)?;
    let ingest_s = t.elapsed().as_secs_f64();
    eprintln!(
        "bench cluster: {apps} apps written in {write_s:.2} s, routed by the front {ingest_s:.2} s after the first write"
    );
    let mut out = Propagation {
        apps,
        ingest_s,
        write_s,
        changes: Samples::default(),
    };
    for k in 1..=changes {
        out.changes.push(change(&rt, &store, bed, &template, k)?);
    }
    Ok(out)
}

/// The record of stored app `i`: prop's, with its own name, uid and host.
fn copy(template: &serde_json::Value, i: usize) -> (String, Vec<u8>) {
    let name = format!("many{i:05}");
    let mut v = template.clone();
    v["name"] = name.clone().into();
    v["hosts"] = serde_json::json!([format!("{name}.many.bench")]);
    v["uid"] = format!("{:012x}", 0xbe00_0000_0000_u64 + i as u64).into();
    (
        keys::app(&name),
        serde_json::to_vec(&v).expect("JSON serializes"),
    )
}

/// Writes prop's record with host `pK.prop.bench` and times until the front routes it.
fn change(
    rt: &tokio::runtime::Runtime,
    store: &Arc<dyn Store>,
    bed: &Bed,
    template: &serde_json::Value,
    k: usize,
) -> anyhow::Result<Duration> {
    let host = format!("p{k}.{APP}.bench");
    let mut v = template.clone();
    v["hosts"] = serde_json::json!([format!("{APP}.bench"), host]);
    let value = serde_json::to_vec(&v).expect("JSON serializes");
    let t0 = Instant::now();
    rt.block_on(store.put(&keys::app(APP), value))?;
    loop {
        let (r, _) = crate::request::get(bed.proxy, &host, "/index.html", &[], LIMIT)?;
        match r.status {
            200 => return Ok(t0.elapsed()),
            404 => {}
            other => bail!("{host} answered {other} {:?}", r.text()),
        }
        if t0.elapsed() > LIMIT {
            bail!("the front did not route {host} within {LIMIT:?}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copies_have_their_own_name_uid_and_host() {
        let t = serde_json::json!({"name": "prop", "hosts": ["prop.bench"], "uid": "x", "port": 80});
        let (k, v) = copy(&t, 42);
        assert_eq!(k, keys::app("many00042"));
        let v: serde_json::Value = serde_json::from_slice(&v).unwrap();
        assert_eq!(v["name"], "many00042");
        assert_eq!(v["hosts"][0], "many00042.many.bench");
        assert_eq!(v["uid"].as_str().unwrap().len(), hako_model::APP_UID_LEN);
        assert_eq!(v["port"], 80);
        assert_ne!(copy(&t, 1).1, copy(&t, 2).1);
    }
}
