//! Checkpoint and restore of real containers with the installed CRIU (root; CRIU installed
//! by `cargo xtask test` or `hako criu install`).

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::TestRuntime;
use hako_runtime::checkpoint::{CheckpointError, INSTANCE_FILE};
use hako_runtime::{BindMount, Container, ContainerSpec, LogSpec, RootfsSpec};

/// An app with state only in memory: a token drawn at start, a request counter; it answers
/// with both, its `HAKO_INSTANCE` and the content of the instance file.
const APP: &str = r#"
import http.server, os, random
TOKEN = random.getrandbits(48)
N = 0
BALLAST = bytearray(8 << 20)  # some resident memory to carry
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        global N
        N += 1
        try:
            now = open('/run/hako/instance').read().strip()
        except OSError:
            now = '-'
        body = f"token={TOKEN} n={N} env={os.environ.get('HAKO_INSTANCE')} file={now}\n".encode()
        self.send_response(200)
        self.send_header('Content-Length', str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        print('request', flush=True)
print('listening', flush=True)
http.server.HTTPServer(('0.0.0.0', 8080), H).serve_forever()
"#;

/// An app that holds an established TCP connection (to itself, on a second port) and says
/// whether it still works.
const HOLDER: &str = r#"
import http.server, socket
l = socket.socket()
l.bind(('127.0.0.1', 9000))
l.listen()
c = socket.create_connection(('127.0.0.1', 9000))
s, _ = l.accept()
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        try:
            c.sendall(b'x')
            state = 'alive' if s.recv(1) == b'x' else 'closed'
        except OSError as e:
            state = 'closed'
        body = f"conn={state}\n".encode()
        self.send_response(200)
        self.send_header('Content-Length', str(len(body)))
        self.end_headers()
        self.wfile.write(body)
http.server.HTTPServer(('0.0.0.0', 8080), H).serve_forever()
"#;

fn criu() -> hako_criu::Criu {
    hako_criu::Criu::open(&hako_criu::default_dir()).expect(
        "CRIU must be installed for these tests: run `cargo xtask test` or `hako criu install`",
    )
}

/// The host's /usr under a small skeleton (merged-/usr Debian): enough for python3.
fn python_image(dir: &Path) -> RootfsSpec {
    std::fs::create_dir_all(dir.join("etc")).unwrap();
    // No /app or /data: their mount points are made by the start (and by the restore).
    for d in ["usr", "proc", "dev", "tmp", "run"] {
        std::fs::create_dir_all(dir.join(d)).unwrap();
    }
    for l in ["bin", "lib", "lib64", "sbin"] {
        std::os::unix::fs::symlink(format!("usr/{l}"), dir.join(l)).unwrap();
    }
    std::fs::write(
        dir.join("etc/passwd"),
        "root:x:0:0::/:/bin/sh\nnobody:x:65534:65534::/:/bin/sh\n",
    )
    .unwrap();
    std::fs::write(dir.join("etc/group"), "root:x:0:\nnogroup:x:65534:\n").unwrap();
    RootfsSpec::Host {
        skeleton: dir.to_path_buf(),
        binds: vec![("/usr".into(), "/usr".into())],
    }
}

struct App {
    code: PathBuf,
    data: PathBuf,
    image: RootfsSpec,
}

fn app(t: &TestRuntime) -> App {
    let code = t.path("code");
    let data = t.path("data");
    std::fs::create_dir_all(&code).unwrap();
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(code.join("app.py"), APP).unwrap();
    App {
        code,
        data,
        image: python_image(&t.path("pyimage")),
    }
}

fn spec(t: &TestRuntime, a: &App, instance: &str) -> ContainerSpec {
    let mut s = ContainerSpec::new(a.image.clone(), "/usr/bin/python3");
    s.args = vec!["/app/app.py".into()];
    s.env.insert("HAKO_INSTANCE".into(), instance.into());
    s.mounts = vec![BindMount::app_code(&a.code), BindMount::data(&a.data)];
    s.hostname = "pyapp".into();
    s.limits.memory_max = Some(128 << 20);
    s.log = LogSpec::File {
        path: t.path(&format!("{instance}.log")),
        max_bytes: 1 << 20,
    };
    s
}

fn get(addr: SocketAddr) -> String {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(b"GET / HTTP/1.0\r\n\r\n").unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out.split("\r\n\r\n")
        .nth(1)
        .unwrap_or_default()
        .trim()
        .to_string()
}

fn wait_listening(c: &Container, addr: SocketAddr) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
        assert!(
            c.try_wait().unwrap().is_none(),
            "the app exited: {}",
            c.log_tail(2000)
        );
        assert!(
            Instant::now() < deadline,
            "the app did not listen: {}",
            c.log_tail(2000)
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn field<'a>(body: &'a str, name: &str) -> &'a str {
    body.split_whitespace()
        .find_map(|kv| kv.strip_prefix(&format!("{name}=")))
        .unwrap_or_else(|| panic!("no {name} in {body:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restored_containers_answer_with_the_memory_they_had_each_with_its_own_address() {
    let t = TestRuntime::new();
    let criu = criu();
    let a = app(&t);
    let first = t.rt.run(&spec(&t, &a, "app-1")).unwrap();
    let addr = SocketAddr::from((first.address().unwrap(), 8080));
    wait_listening(&first, addr);
    let before = get(addr);
    assert_eq!(field(&before, "n"), "1");
    let token = field(&before, "token").to_string();

    let image = t.path("checkpoint");
    let done = t.rt.checkpoint(&criu, &first, &image).unwrap();
    // The dumped container is ended; its image is root's alone.
    tokio::time::timeout(Duration::from_secs(5), first.wait())
        .await
        .unwrap()
        .unwrap();
    first.remove().unwrap();
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&image).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o700);
    assert!(done.manifest.image_bytes > 8 << 20, "{:?}", done.manifest);
    assert!(done.manifest.binds.contains(&"/app".to_string()));

    // Two restores of the one image at once.
    let (rt1, rt2) = (t.rt.clone(), t.rt.clone());
    let (s1, s2) = (spec(&t, &a, "app-2"), spec(&t, &a, "app-3"));
    let (c1, i1, c2, i2) = (criu.clone(), image.clone(), criu.clone(), image.clone());
    let h1 = std::thread::spawn(move || rt1.restore(&c1, &s1, &i1, "app-2"));
    let h2 = std::thread::spawn(move || rt2.restore(&c2, &s2, &i2, "app-3"));
    let r1 = h1.join().unwrap().unwrap();
    let r2 = h2.join().unwrap().unwrap();
    let (a1, a2) = (r1.address().unwrap(), r2.address().unwrap());
    assert_ne!(a1, a2);
    assert_ne!(a1, addr.ip());
    for (c, name, ip) in [(&r1, "app-2", a1), (&r2, "app-3", a2)] {
        let body = get(SocketAddr::from((ip, 8080)));
        assert_eq!(field(&body, "token"), token, "{body}");
        assert_eq!(field(&body, "n"), "2", "{body}");
        assert_eq!(
            field(&body, "env"),
            "app-1",
            "the environment is the dumped one"
        );
        assert_eq!(
            field(&body, "file"),
            name,
            "{INSTANCE_FILE} names the new instance"
        );
        // Its processes are in its own cgroup, which counts their memory.
        assert!(c.pids().unwrap().contains(&c.pid()));
        assert!(
            c.stats().unwrap().memory_current > 8 << 20,
            "{:?}",
            c.stats()
        );
        println!("restore of {name}: {:?}", c.timings());
    }
    // Its output goes to its own log.
    r1.stop(Duration::from_secs(2)).await.unwrap();
    r1.logs_flushed().await;
    assert!(
        r1.log_tail(1000).contains("request"),
        "{}",
        r1.log_tail(1000)
    );
    r1.remove().unwrap();
    r2.stop(Duration::from_secs(2)).await.unwrap();
    r2.remove().unwrap();
    assert!(t.leftovers().is_empty(), "{:?}", t.leftovers());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restore_into_a_container_with_other_binds_is_refused_and_leaves_nothing() {
    let t = TestRuntime::new();
    let criu = criu();
    let a = app(&t);
    let first = t.rt.run(&spec(&t, &a, "app-1")).unwrap();
    let addr = SocketAddr::from((first.address().unwrap(), 8080));
    wait_listening(&first, addr);
    let image = t.path("checkpoint");
    t.rt.checkpoint(&criu, &first, &image).unwrap();
    first.remove().unwrap();
    let mut other = spec(&t, &a, "app-2");
    other.mounts.pop(); // no /data
    let e = t.rt.restore(&criu, &other, &image, "app-2").unwrap_err();
    assert!(matches!(e, CheckpointError::Mismatch(_)), "{e}");
    assert!(e.to_string().contains("/data"), "{e}");
    assert!(t.leftovers().is_empty(), "{:?}", t.leftovers());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn established_connections_are_not_carried_a_restored_app_finds_them_closed() {
    let t = TestRuntime::new();
    let criu = criu();
    let a = app(&t);
    std::fs::write(a.code.join("app.py"), HOLDER).unwrap();
    let first = t.rt.run(&spec(&t, &a, "app-1")).unwrap();
    let addr = SocketAddr::from((first.address().unwrap(), 8080));
    wait_listening(&first, addr);
    assert_eq!(get(addr), "conn=alive");
    let image = t.path("checkpoint");
    t.rt.checkpoint(&criu, &first, &image).unwrap();
    first.remove().unwrap();
    let r =
        t.rt.restore(&criu, &spec(&t, &a, "app-2"), &image, "app-2")
            .unwrap();
    let body = get(SocketAddr::from((r.address().unwrap(), 8080)));
    assert_eq!(
        body, "conn=closed",
        "a dumped connection must never be reused"
    );
    r.remove().unwrap();
    assert!(t.leftovers().is_empty(), "{:?}", t.leftovers());
}
