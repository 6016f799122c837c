//! Loader workers end with their loader, also when it is dropped mid-epoch. (Alone in its own
//! test binary, so that no other test's threads come and go while it counts.)

mod common;
use common::mnist_dir;
use minibatch::{DataLoader, Mnist};

fn threads() -> usize {
    std::fs::read_dir("/proc/self/task").map(|d| d.count()).unwrap_or(0)
}

#[test]
fn dropping_a_loader_mid_epoch_leaves_no_thread() {
    let data = Mnist::load(mnist_dir()).unwrap();
    let before = threads();
    {
        let dl = DataLoader::builder(data.train.clone())
            .batch_size(64)
            .shuffle(0)
            .num_workers(3)
            .prefetch(4)
            .build()
            .unwrap();
        let mut epoch = dl.iter();
        for _ in 0..5 {
            epoch.next().unwrap().unwrap();
        }
        assert!(threads() >= before + 3, "the workers run");
        drop(epoch);
        // The workers persist across epochs: a new epoch starts at once with the same threads.
        let during = threads();
        assert_eq!(dl.iter().take(3).count(), 3);
        assert_eq!(threads(), during);
    }
    assert_eq!(threads(), before, "every worker joined");
}
