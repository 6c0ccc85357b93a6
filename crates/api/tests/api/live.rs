//! Live data from the backend: metrics, instances, logs.

use hako_model::{InstanceInfo, InstanceState};

use crate::harness::{Server, spec};

#[test]
fn live_data_comes_from_the_backend() {
    let server = Server::start();
    let client = server.client();
    client.create_app(&spec("blog", "blog.example")).unwrap();
    client.create_app(&spec("shop", "shop.example")).unwrap();

    assert_eq!(client.metrics("blog").unwrap_err().status(), Some(404));
    let metrics = serde_json::json!({"cold": 3, "warm": 40});
    server
        .backend
        .metrics
        .lock()
        .unwrap()
        .insert("blog".into(), metrics.clone());
    assert_eq!(client.metrics("blog").unwrap(), metrics);
    assert_eq!(client.metrics("nope").unwrap_err().status(), Some(404));

    let instance = |id: &str, app: &str| InstanceInfo {
        id: id.into(),
        app: app.into(),
        node: "local".into(),
        addr: "10.88.0.7:8080".into(),
        state: InstanceState::Ready,
        started_unix_ms: 1,
        ready_ms: Some(3.5),
        listen_ms: None,
        release: None,
        image: "php:1".into(),
        generation: 0,
        from_pool: false,
        start_path: Default::default(),
        restore_error: None,
        slot: None,
        limits: None,
    };
    server
        .backend
        .instances
        .lock()
        .unwrap()
        .extend([instance("i-1", "blog"), instance("i-2", "shop")]);
    assert_eq!(client.instances(None).unwrap().len(), 2);
    let blog = client.instances(Some("blog")).unwrap();
    assert_eq!(blog, [instance("i-1", "blog")]);
    assert_eq!(
        client.instances(Some("nope")).unwrap_err().status(),
        Some(404)
    );

    assert_eq!(
        client.logs("blog", None).unwrap(),
        "first line of blog\nlast line of blog\n"
    );
    assert_eq!(
        client.logs("blog", Some(18)).unwrap(),
        "last line of blog\n"
    );
    assert_eq!(client.logs("nope", None).unwrap_err().status(), Some(404));
    let mut r = server
        .raw()
        .get(format!("{}/v1/apps/blog/logs", server.url()))
        .header("Authorization", server.bearer())
        .call()
        .unwrap();
    let ct = r.headers()["content-type"].to_str().unwrap().to_string();
    assert!(ct.starts_with("text/plain"), "{ct}");
    assert!(r.body_mut().read_to_string().unwrap().contains("last line"));
}
