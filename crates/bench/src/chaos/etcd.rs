//! The etcd case: a `hako serve --store etcd://…` on a 3-member etcd the benchmark starts
//! itself (hako-testbed's), and one member killed with -9 under load, then started again.

use std::path::Path;
use std::time::Instant;

use hako_testkit::Names;

use super::probe::{Plan, Probes};
use super::report::{Fault, Row};
use super::{HOLD, STATIC_APP, World, create_site, leftovers_swept, start_serve, target};

/// The etcd case: a `hako serve` on a 3-member etcd the benchmark starts; one member killed.
pub(super) fn etcd_member(
    hako: &Path,
    tmp: &Path,
    t0: Instant,
) -> anyhow::Result<(Row, Vec<String>)> {
    eprintln!("bench chaos: starting a 3-member etcd");
    let mut etcd = hako_testbed::etcd::EtcdCluster::start(3)?;
    let endpoint = etcd.endpoint();
    let names = Names::unique('b');
    let data = tmp.join("etcd-serve");
    std::fs::create_dir_all(&data)?;
    hako_testbed::hako::host_image(hako, &data, "base", Some(&endpoint))?;
    let serve_args = vec!["--store".to_string(), endpoint.clone()];
    let serve = start_serve(hako, &data, &names, &serve_args, false)?;
    let code = tmp.join("static-etcd");
    crate::phases::site_code(&code, 1)?;
    create_site(&serve, STATIC_APP, &code, &[], "/index.html")?;
    let plan = Plan::new(format!("{STATIC_APP}.chaos"), None);
    let probes = Probes::start(t0, target(&serve), &plan);
    let mut w = World {
        hako,
        serve,
        names: names.clone(),
        data,
        serve_args,
        probes,
        db: None,
        fs: None,
    };
    let row = w.case("etcd-member", |w| {
        let start = w.probes.now();
        etcd.kill_member(0);
        // The fault's length: the cluster runs on two members meanwhile.
        std::thread::sleep(HOLD);
        etcd.start_member(0)?;
        let lift = w.probes.now();
        Ok((
            Fault { start, lift },
            format!(
                "kill -9 of 1 of 3 etcd members for {:.0} s, then started again",
                HOLD.as_secs_f64()
            ),
        ))
    });
    let World {
        mut serve, probes, ..
    } = w;
    probes.stop();
    let stopped = serve.terminate();
    drop(etcd);
    let mut left = leftovers_swept(&names)?;
    if !matches!(stopped, Ok(Some(s)) if s.success()) {
        left.push(format!(
            "hako serve on etcd did not stop cleanly: {stopped:?}"
        ));
    }
    Ok((row?, left))
}
