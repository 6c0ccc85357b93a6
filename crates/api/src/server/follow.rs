//! `GET /v1/apps/NAME/logs?follow=true`: an app's logs as they are written, as server-sent
//! events (`text/event-stream`): `event: instance` (data: the instance id) whenever the text
//! that follows comes from another instance than before, and `event: log` (data: the text as
//! a JSON string, so bytes and line ends arrive exactly). A comment line every 15 s keeps
//! proxies from closing a quiet stream and lets the server notice a client that is gone. The
//! stream ends when the client goes away or the daemon shuts down.

use std::convert::Infallible;
use std::time::Duration;

use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::stream::{self, Stream};

use crate::backend::{LogFollow, LogPiece};

/// How often a quiet stream sends a keep-alive comment.
pub const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// The SSE response of a followed log.
pub(super) fn response(follow: LogFollow) -> Response {
    Sse::new(events(follow))
        .keep_alive(KeepAlive::new().interval(KEEP_ALIVE))
        .into_response()
}

fn events(follow: LogFollow) -> impl Stream<Item = Result<Event, Infallible>> + Send {
    stream::unfold(follow, |mut follow| async move {
        let piece = follow.recv().await?;
        Some((Ok(event(piece)), follow))
    })
}

fn event(piece: LogPiece) -> Event {
    match piece {
        // Instance ids are made by hako (letters, digits, '-'): no line breaks.
        LogPiece::Instance(id) => Event::default()
            .event("instance")
            .data(id.replace(['\r', '\n'], " ")),
        LogPiece::Text(text) => Event::default()
            .event("log")
            .data(serde_json::Value::String(text).to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::StreamExt;

    #[tokio::test]
    async fn pieces_become_events_and_the_stream_ends_with_the_follow() {
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        tx.send(LogPiece::Instance("blog-1".into())).await.unwrap();
        tx.send(LogPiece::Text("a \"line\"\nand more\n".into()))
            .await
            .unwrap();
        drop(tx);
        let all: Vec<_> = events(rx).collect().await;
        assert_eq!(all.len(), 2);
        let body = axum::body::to_bytes(
            Sse::new(stream::iter(all)).into_response().into_body(),
            1 << 20,
        )
        .await
        .unwrap();
        let text = String::from_utf8(body.to_vec()).unwrap();
        assert_eq!(
            text,
            "event: instance\ndata: blog-1\n\nevent: log\ndata: \"a \\\"line\\\"\\nand more\\n\"\n\n"
        );
    }
}
