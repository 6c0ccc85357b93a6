//! Nothing a client sends may panic the server or lose stored state: random bodies, content
//! types and path segments at every route.

use crate::harness::{Server, spec, status_json};

/// A small deterministic generator (xorshift64*), so a failure can be replayed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn bytes(&mut self, max: usize) -> Vec<u8> {
        let len = (self.next() as usize) % (max + 1);
        let json_ish = b"{}[]\":,0123456789.-truefalsenull name hosts image cmd memory dir \\u00";
        (0..len)
            .map(|_| {
                let r = self.next();
                if r.is_multiple_of(3) {
                    r as u8 >> 1
                } else {
                    json_ish[(r as usize >> 8) % json_ish.len()]
                }
            })
            .collect()
    }
}

#[test]
fn random_requests_get_json_errors_and_change_nothing() {
    let server = Server::start();
    let client = server.client();
    let app = client.create_app(&spec("blog", "blog.example")).unwrap();
    let raw = server.raw();
    let url = server.url();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let paths = [
        "/v1/apps",
        "/v1/apps/blog",
        "/v1/apps/blog/releases",
        "/v1/apps/blog/rollout",
        "/v1/apps/blog/events?limit=",
        "/v1/apps/blog/logs?bytes=",
        "/v1/apps/%FF%00",
        "/v1/apps/blog/x/y",
        "/v1/instances?app=",
    ];
    let types = [
        "application/json",
        "application/x-tar",
        "application/gzip",
        "text/plain",
        "",
    ];
    for i in 0..400 {
        let path = paths[i % paths.len()];
        let mut target = format!("{url}{path}");
        if path.ends_with('=') {
            target.push_str(&format!("{}", rng.next() as i64));
        }
        let body = rng.bytes(300);
        let content_type = types[(rng.next() as usize) % types.len()];
        let method = rng.next() % 2;
        // A POST to rollout (or an accepted deploy) changes state on purpose: those paths
        // get PATCH (405), the others PATCH or POST.
        let request = if method == 0 || path.contains("rollout") || path.contains("releases") {
            raw.patch(&target)
        } else {
            raw.post(&target)
        };
        let mut request = request.header("Authorization", server.bearer());
        if !content_type.is_empty() {
            request = request.header("Content-Type", content_type);
        }
        let (status, json) = status_json(request.send(&body[..]));
        assert!(
            (400..500).contains(&status),
            "{target} {content_type} {:?} -> {status} {json}",
            String::from_utf8_lossy(&body)
        );
        assert!(json["error"].is_string(), "{json}");
    }
    server.client().health().unwrap();
    assert_eq!(client.app("blog").unwrap(), app, "stored state changed");
    assert_eq!(client.list_apps().unwrap().len(), 1);
}
