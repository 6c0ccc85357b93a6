//! Write throughput of the embedded store: sequential puts (one commit and
//! fsync each) against concurrent puts (group commit), in one run.
//!
//! `cargo run --release -p hako-store --example store_bench [-- DIR]`
//! Last line: `store: seq_put_per_s=… concurrent_put_per_s=… ratio=…`.

use std::sync::Arc;
use std::time::Instant;

use hako_store::{EmbeddedStore, Store};

const N: usize = 2000;
const TASKS: usize = 32;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let tmp = tempfile::Builder::new()
        .prefix("hako-store-bench")
        .tempdir()?;
    let dir = std::env::args()
        .nth(1)
        .map_or_else(|| tmp.path().to_owned(), Into::into);
    let store = Arc::new(EmbeddedStore::open_in_data_dir(&dir).await?);

    let t = Instant::now();
    for i in 0..N {
        store.put(&format!("/bench/seq/{i}"), vec![0; 256]).await?;
    }
    let seq = N as f64 / t.elapsed().as_secs_f64();

    let t = Instant::now();
    let mut tasks = Vec::new();
    for task in 0..TASKS {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..N / TASKS {
                store
                    .put(&format!("/bench/con/{task}/{i}"), vec![0; 256])
                    .await?;
            }
            Ok::<_, hako_store::StoreError>(())
        }));
    }
    for task in tasks {
        task.await??;
    }
    let concurrent = N as f64 / t.elapsed().as_secs_f64();
    store.close().await;
    println!(
        "store: seq_put_per_s={seq:.0} concurrent_put_per_s={concurrent:.0} ratio={:.2}",
        concurrent / seq
    );
    Ok(())
}
