//! The HTTP-01 answers of ACME orders in progress: for a token, the host it was asked for and
//! the key authorization the proxy answers with at
//! `http://HOST/.well-known/acme-challenge/TOKEN` (RFC 8555 §8.3). Only the host the
//! challenge belongs to gets the answer; any other request goes on to the app.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;

/// The path prefix of HTTP-01 challenges.
pub const CHALLENGE_PATH: &str = "/.well-known/acme-challenge/";

/// Challenge answers by token. Cheap to clone; all clones share them.
#[derive(Debug, Clone, Default)]
pub struct Challenges {
    inner: Arc<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    /// token → (host, key authorization); read lock-free on the request path.
    map: ArcSwap<HashMap<String, (String, String)>>,
    writes: Mutex<()>,
}

impl Challenges {
    /// No challenge in progress.
    pub fn new() -> Challenges {
        Challenges::default()
    }

    /// Answer `token` for `host` with `key_authorization` until [`Challenges::withdraw`].
    pub fn publish(&self, host: &str, token: &str, key_authorization: &str) {
        self.change(|m| {
            m.insert(
                token.to_owned(),
                (host.to_ascii_lowercase(), key_authorization.to_owned()),
            );
        });
    }

    /// Stop answering `token`.
    pub fn withdraw(&self, token: &str) {
        self.change(|m| {
            m.remove(token);
        });
    }

    fn change(&self, f: impl FnOnce(&mut HashMap<String, (String, String)>)) {
        let _guard = self.inner.writes.lock().unwrap_or_else(|e| e.into_inner());
        let mut map = HashMap::clone(&self.inner.map.load());
        f(&mut map);
        self.inner.map.store(Arc::new(map));
    }

    /// The answer to a request for `path` on `host` (lowercase, no port), if it is a challenge
    /// in progress for that host.
    pub fn answer(&self, host: &str, path: &str) -> Option<String> {
        let token = path.strip_prefix(CHALLENGE_PATH)?;
        let map = self.inner.map.load();
        let (for_host, answer) = map.get(token)?;
        (for_host == host).then(|| answer.clone())
    }

    /// True while no challenge is in progress (the proxy's fast path).
    pub fn is_empty(&self) -> bool {
        self.inner.map.load().is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_challenge_is_answered_for_its_host_only_until_withdrawn() {
        let c = Challenges::new();
        assert!(c.is_empty());
        c.publish("Blog.Example", "tok-1", "tok-1.thumb");
        let shared = c.clone();
        let path = format!("{CHALLENGE_PATH}tok-1");
        assert_eq!(
            shared.answer("blog.example", &path).as_deref(),
            Some("tok-1.thumb")
        );
        assert_eq!(shared.answer("shop.example", &path), None, "another host");
        assert_eq!(
            shared.answer("blog.example", "/tok-1"),
            None,
            "another path"
        );
        assert_eq!(
            shared.answer("blog.example", &format!("{CHALLENGE_PATH}tok-2")),
            None
        );
        c.withdraw("tok-1");
        assert_eq!(shared.answer("blog.example", &path), None);
        assert!(shared.is_empty());
    }
}
