//! The replay buffer of the strategies that replay.

use crate::data::ImageDataset;
use crate::data::split::Task;
use crate::error::Result;

/// Reservoir sample over (task, image) pairs (Vitter's algorithm R), seeded.
pub(super) struct Reservoir {
    capacity: usize,
    seen: usize,
    items: Vec<(usize, usize)>,
    rng: rand_chacha::ChaCha8Rng,
}

impl Reservoir {
    pub(super) fn new(capacity: usize, seed: u64) -> Self {
        use rand::SeedableRng;
        Reservoir {
            capacity,
            seen: 0,
            items: Vec::new(),
            rng: rand_chacha::ChaCha8Rng::seed_from_u64(seed),
        }
    }

    pub(super) fn add_task(&mut self, task: usize, n: usize) {
        use rand::Rng;
        for i in 0..n {
            self.seen += 1;
            if self.items.len() < self.capacity {
                self.items.push((task, i));
            } else {
                let j = self.rng.random_range(0..self.seen);
                if j < self.capacity {
                    self.items[j] = (task, i);
                }
            }
        }
    }

    pub(super) fn dataset(&self, tasks: &[Task]) -> Result<Option<ImageDataset>> {
        let mut out: Option<ImageDataset> = None;
        for (t, task) in tasks.iter().enumerate() {
            let idx: Vec<usize> = self.items.iter().filter(|(a, _)| *a == t).map(|(_, i)| *i).collect();
            if idx.is_empty() {
                continue;
            }
            let part = task.train.subset(&idx)?;
            out = Some(match out {
                Some(o) => o.concat(&part)?,
                None => part,
            });
        }
        Ok(out)
    }
}
