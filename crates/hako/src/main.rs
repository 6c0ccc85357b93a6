//! The `hako` binary: the daemon (`hako serve`) and the command line.

fn main() {
    println!("hako");
}
