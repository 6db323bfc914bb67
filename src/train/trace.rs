//! A record of training for replaying it in another framework: with `TUNNELBENCH_TRACE=DIR`,
//! each call of the trainer in the process (one per task in a continual-learning sequence; a
//! counter `k` from 0) writes to DIR
//!
//! - `call{k}.images.u8`: the training set's pixels as stored (`N × C × H × W` bytes);
//! - `call{k}.json`: their shape, labels and normalisation, and every step's loss and batch (indices
//!   into the training set), in order;
//! - `call{k}.start.safetensors` and `call{k}.end.safetensors`: the weights before the first step
//!   and after the last.
//!
//! `benches/reference/split_mnist_replay.py` replays a task-incremental MLP sequence in PyTorch
//! from such a record (docs/continual-learning.md). A record that cannot be written is an error.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use burn::store::{ModuleSnapshot, SafetensorsStore};
use serde::Serialize;

use crate::data::ImageDataset;
use crate::data::transform::Normalization;
use crate::error::{Error, Result};
use crate::model::Backbone;

static CALLS: AtomicUsize = AtomicUsize::new(0);

#[derive(Serialize)]
struct Record {
    shape: [usize; 4],
    labels: Vec<u32>,
    mean: [f32; 3],
    std: [f32; 3],
    /// (loss, batch) per step.
    steps: Vec<(f64, Vec<usize>)>,
}

pub(super) struct Trace {
    dir: PathBuf,
    call: usize,
    record: Record,
}

impl Trace {
    /// A trace of this call, if `TUNNELBENCH_TRACE` names a folder; writes the training set.
    pub(super) fn start(ds: &ImageDataset, norm: &Normalization) -> Result<Option<Trace>> {
        let Some(dir) = std::env::var_os("TUNNELBENCH_TRACE").map(PathBuf::from) else {
            return Ok(None);
        };
        std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        let call = CALLS.fetch_add(1, Ordering::SeqCst);
        let trace = Trace {
            record: Record {
                shape: [ds.len(), ds.channels, ds.height, ds.width],
                labels: ds.labels.clone(),
                mean: norm.mean,
                std: norm.std,
                steps: Vec::new(),
            },
            dir,
            call,
        };
        let path = trace.path("images.u8");
        std::fs::write(&path, &ds.pixels[..]).map_err(|e| Error::io(&path, e))?;
        Ok(Some(trace))
    }

    fn path(&self, what: &str) -> PathBuf {
        self.dir.join(format!("call{}.{what}", self.call))
    }

    /// Records a step; the weights too before the first (after its forward pass, which
    /// initialises them, and before the update).
    pub(super) fn step(&mut self, model: &Backbone, loss: f64, batch: &[usize]) -> Result<()> {
        if self.record.steps.is_empty() {
            save(model, &self.path("start.safetensors"))?;
        }
        self.record.steps.push((loss, batch.to_vec()));
        Ok(())
    }

    /// Writes the steps and the final weights.
    pub(super) fn finish(self, model: &Backbone) -> Result<()> {
        save(model, &self.path("end.safetensors"))?;
        let path = self.path("json");
        let json = serde_json::to_vec(&self.record).map_err(|e| Error::Internal(e.to_string()))?;
        std::fs::write(&path, json).map_err(|e| Error::io(&path, e))
    }
}

fn save(model: &Backbone, path: &Path) -> Result<()> {
    model
        .save_into(&mut SafetensorsStore::from_file(path))
        .map_err(|e| Error::Internal(format!("writing {}: {e}", path.display())))
}
