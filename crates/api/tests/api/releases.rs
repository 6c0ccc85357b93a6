//! Code releases: numbering, pointing the app at the latest, refusals and upload limits.

use hako_store::keys;

use crate::harness::{Server, TEST_UPLOAD_LIMIT, api_status, assert_error, spec};

#[test]
fn releases_number_up_and_point_the_app_at_the_latest() {
    let server = Server::start();
    let client = server.client();
    client.create_app(&spec("blog", "blog.example")).unwrap();

    let first = client.deploy_archive("blog", b"plain tar bytes").unwrap();
    assert_eq!((first.app.as_str(), first.number), ("blog", 1));
    assert_eq!(first.size_bytes, 15);
    assert!(first.created_unix > 0);
    assert_eq!(client.app("blog").unwrap().release, Some(1));
    // The app carries the release's digest along with its number (nodes verify by it).
    assert!(first.digest.is_some());
    assert_eq!(client.app("blog").unwrap().release_digest, first.digest);

    let dir = tempfile::tempdir().unwrap();
    let second = client.deploy_dir("blog", dir.path()).unwrap();
    assert_eq!(second.number, 2);
    assert_eq!(client.app("blog").unwrap().release, Some(2));
    assert_ne!(second.digest, first.digest);
    assert_eq!(client.app("blog").unwrap().release_digest, second.digest);

    let gz = [0x1f, 0x8b, 8, 0, 1, 2, 3];
    let third = client.deploy_archive("blog", &gz).unwrap();
    assert_eq!(third.number, 3);
    let file = dir.path().join("code.tar.gz");
    std::fs::write(&file, gz).unwrap();
    let fourth = client.deploy_archive_file("blog", &file).unwrap();
    assert_eq!(fourth.number, 4);

    let numbers: Vec<u64> = client
        .releases("blog")
        .unwrap()
        .iter()
        .map(|r| r.number)
        .collect();
    assert_eq!(numbers, [1, 2, 3, 4]);
    let made = server.backend.made.lock().unwrap().clone();
    assert_eq!(made.len(), 4);
    assert!(matches!(&made[1].2, hako_api::ReleaseSource::Dir(d) if d == dir.path()));
    assert!(matches!(&made[2].2, hako_api::ReleaseSource::Archive(b) if b[..] == gz));
    assert!(matches!(&made[3].2, hako_api::ReleaseSource::Archive(b) if b[..] == gz));

    // Refusals: the backend's verdict on a hostile archive, a missing dir, an unknown app.
    let (status, msg) = api_status(client.deploy_archive("blog", b"HOSTILE tar").unwrap_err());
    assert_eq!(status, 400);
    assert!(msg.contains("refused"), "{msg}");
    let gone = dir.path().join("missing");
    assert_eq!(
        client.deploy_dir("blog", &gone).unwrap_err().status(),
        Some(400)
    );
    assert_eq!(
        client.deploy_archive("nope", b"x").unwrap_err().status(),
        Some(404)
    );
    assert_eq!(client.releases("nope").unwrap_err().status(), Some(404));
    assert_eq!(
        client.app("blog").unwrap().release,
        Some(4),
        "failed deploys change nothing"
    );

    // Deleting the app removes its release records; a new app starts again at 1.
    client.delete_app("blog").unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let left = rt
        .block_on(server.store.range(&keys::releases("blog")))
        .unwrap();
    assert!(left.is_empty(), "{left:?}");
    client.create_app(&spec("blog", "blog.example")).unwrap();
    assert_eq!(client.deploy_archive("blog", b"again").unwrap().number, 1);
}

#[test]
fn upload_limits_and_content_types() {
    let server = Server::start();
    let client = server.client();
    client.create_app(&spec("blog", "blog.example")).unwrap();
    let big = vec![b'x'; TEST_UPLOAD_LIMIT + 1];
    let (status, msg) = api_status(client.deploy_archive("blog", &big).unwrap_err());
    assert_eq!(status, 413);
    assert!(msg.contains(&TEST_UPLOAD_LIMIT.to_string()), "{msg}");
    // Exactly at the limit is fine.
    let at = vec![b'x'; TEST_UPLOAD_LIMIT];
    assert_eq!(client.deploy_archive("blog", &at).unwrap().number, 1);

    let raw = server.raw();
    let url = format!("{}/v1/apps/blog/releases", server.url());
    assert_error(
        raw.post(&url)
            .header("Authorization", server.bearer())
            .header("Content-Type", "text/plain")
            .send("hello"),
        400,
        "application/x-tar",
    );
    assert_error(
        raw.post(&url)
            .header("Authorization", server.bearer())
            .header("Content-Type", "application/json")
            .send(r#"{"dir": "relative/path"}"#),
        400,
        "absolute path",
    );
    assert_error(
        raw.post(&url)
            .header("Authorization", server.bearer())
            .header("Content-Type", "application/x-tar")
            .send_empty(),
        400,
        "empty",
    );
    // A spec body over the JSON limit is a 413 as well.
    let huge = format!(
        "{{\"name\": \"x\", \"cmd\": \"{}\"}}",
        "a".repeat(hako_api::server::MAX_JSON_BODY)
    );
    assert_error(
        raw.post(format!("{}/v1/apps", server.url()))
            .header("Authorization", server.bearer())
            .send(huge),
        413,
        "over the limit",
    );
    assert_eq!(client.app("blog").unwrap().release, Some(1));
}

#[test]
fn oversized_upload_is_refused_before_it_is_all_sent() {
    use std::io::{Read, Write};
    let server = Server::start();
    server
        .client()
        .create_app(&spec("blog", "blog.example"))
        .unwrap();
    let mut stream = std::net::TcpStream::connect(server.addr).unwrap();
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(20)))
        .unwrap();
    let head = format!(
        "POST /v1/apps/blog/releases HTTP/1.1\r\nHost: x\r\nAuthorization: {}\r\nContent-Type: application/x-tar\r\nContent-Length: {}\r\n\r\n",
        server.bearer(),
        100 << 20
    );
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(&[0u8; 1024]).unwrap();
    let mut response = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&response).contains("}") {
        let n = stream.read(&mut buf).unwrap();
        assert!(
            n > 0,
            "connection closed: {}",
            String::from_utf8_lossy(&response)
        );
        response.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&response);
    assert!(text.starts_with("HTTP/1.1 413"), "{text}");
    assert!(text.contains("over the limit"), "{text}");
    assert_eq!(server.client().app("blog").unwrap().release, None);
}

#[test]
fn client_reports_413_for_a_large_upload() {
    let server = Server::start();
    let client = server.client();
    client.create_app(&spec("blog", "blog.example")).unwrap();
    let big = vec![b'x'; 32 * TEST_UPLOAD_LIMIT];
    let err = client.deploy_archive("blog", &big).unwrap_err();
    assert_eq!(err.status(), Some(413), "{err:?}");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("big.tar");
    std::fs::write(&file, &big).unwrap();
    let err = client.deploy_archive_file("blog", &file).unwrap_err();
    assert_eq!(err.status(), Some(413), "{err:?}");
    // The connection pool and the server are fine afterwards.
    assert_eq!(client.deploy_archive("blog", b"small").unwrap().number, 1);
}

#[test]
fn concurrent_deploys_get_distinct_numbers() {
    let server = Server::start();
    server
        .client()
        .create_app(&spec("blog", "blog.example"))
        .unwrap();
    let mut numbers: Vec<u64> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..6)
            .map(|_| {
                let client = server.client();
                s.spawn(move || client.deploy_archive("blog", b"code").unwrap().number)
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    numbers.sort();
    assert_eq!(numbers, [1, 2, 3, 4, 5, 6]);
    let app = server.client().app("blog").unwrap();
    assert_eq!(app.release, Some(6));
    let sixth = server.client().releases("blog").unwrap().pop().unwrap();
    assert_eq!(
        app.release_digest, sixth.digest,
        "the number and the digest of one release"
    );
}
