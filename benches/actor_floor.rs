//! W4's floor: the resident memory of bare actix actors, with the allocator the daemon
//! uses. Each actor holds as much state as the smallest possible agent actor (a slug, the
//! shared services, its inbox tail, a flag and a profile pointer: 48 bytes) and is started
//! the way the supervisor starts agents (`start_in_arbiter`, mailbox capacity set in
//! `started`), its address kept the way the registry keeps it. Whatever an agent costs
//! beyond this figure is the daemon's; this much is actix's (context, mailbox, task).
//!
//! `cargo bench --bench actor_floor [-- N]` prints `BENCH actors=N bytes_per_actor=B`.

use std::time::Duration;

use actix::prelude::*;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

struct Bare {
    _state: [u64; 6],
}

impl Actor for Bare {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.set_mailbox_capacity(64);
    }
}

fn rss_bytes() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").expect("Linux /proc");
    let kib = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse::<usize>().ok())
        .expect("VmRSS line");
    kib * 1024
}

fn main() {
    let n: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(100_000);
    let system = System::new();
    system.block_on(async move {
        let arbiter = Arbiter::new();
        let mut addrs: Vec<Addr<Bare>> = Vec::with_capacity(n);
        tokio::time::sleep(Duration::from_millis(200)).await;
        let before = rss_bytes();
        for _ in 0..n {
            addrs.push(Bare::start_in_arbiter(&arbiter.handle(), |_| Bare {
                _state: [0; 6],
            }));
        }
        // Let the arbiter run every actor's start.
        tokio::time::sleep(Duration::from_secs(1)).await;
        let after = rss_bytes();
        let live = addrs.iter().filter(|a| a.connected()).count();
        assert_eq!(live, n, "every actor runs");
        println!("BENCH actors={n} bytes_per_actor={}", (after - before) / n);
        arbiter.stop();
    });
}
