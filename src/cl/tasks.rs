//! The tasks of a sequence: the ID set's classes cut into tasks, or one task per data set.

use std::path::Path;

use crate::data::split::{ClassOrder, Task, TaskSpec, class_incremental};
use crate::data::{DataSplit, ImageDataset};
use crate::error::Result;
use crate::scenario::Scenario;
use crate::scenario::continual::{ContinualConfig, Sequence};
use crate::scenario::data::{PreparedData, load_prepared};
use crate::seed::derive_seed;

/// The tasks of `cfg`, the number of classes across them, and the labels of the data sets they
/// come from; `id` is the scenario's loaded ID set.
pub(super) fn build(
    sc: &Scenario,
    cfg: &ContinualConfig,
    id: &PreparedData,
    data_dir: &Path,
    progress: &mut dyn crate::data::Progress,
) -> Result<(Vec<Task>, usize, Vec<String>)> {
    Ok(match cfg.sequence {
        Sequence::Classes => {
            let spec = match &cfg.task_classes {
                Some(lists) => TaskSpec::Explicit(lists.clone()),
                None => TaskSpec::Uniform {
                    n_tasks: cfg.tasks.unwrap_or(0),
                    classes_per_task: cfg.classes_per_task.unwrap_or(0),
                    order: match cfg.class_order_seed {
                        Some(seed) => ClassOrder::Seeded(seed),
                        None => ClassOrder::Identity,
                    },
                },
            };
            let split = DataSplit {
                train: id.split.train.clone(),
                test: id.split.test.clone(),
            };
            let key = match spec {
                TaskSpec::Explicit(_) => "key `continual.task_classes`",
                TaskSpec::Uniform { .. } => "key `continual.tasks` and `classes_per_task`",
            };
            let tasks = class_incremental(&split, &spec).map_err(|e| e.context(key))?;
            (tasks, id.n_classes, vec![id.label.clone()])
        }
        Sequence::Datasets => {
            let mut later = Vec::new();
            for (i, d) in cfg.datasets.iter().enumerate() {
                let label = crate::scenario::data_label(d);
                let seed = d.seed.unwrap_or_else(|| derive_seed(sc.seed, &format!("data:{label}")));
                later.push(
                    load_prepared(d, label.clone(), sc.resolution, seed, data_dir, progress)
                        .map_err(|e| e.context(format!("key `continual.datasets[{i}]` (data set `{label}`)")))?,
                );
            }
            dataset_tasks(&std::iter::once(id).chain(&later).collect::<Vec<_>>())
        }
    })
}

/// The tasks of a sequence of data sets, one per set, their classes numbered on from the previous
/// set's (task 2's first class is task 1's class count, and so on), grey images given three
/// channels when the sets mix grey and colour: the tasks, the total class count, the sets' labels.
fn dataset_tasks(sets: &[&PreparedData]) -> (Vec<Task>, usize, Vec<String>) {
    let names: Vec<String> = sets
        .iter()
        .flat_map(|p| {
            p.split
                .train
                .class_names
                .iter()
                .map(move |c| format!("{}/{c}", p.label))
        })
        .collect();
    let colour = sets.iter().any(|p| p.split.train.channels != 1);
    let mut tasks = Vec::new();
    let mut offset = 0u32;
    for p in sets {
        let k = p.n_classes as u32;
        let renumber = |ds: &ImageDataset| {
            let mut ds = ds.clone();
            ds.labels.iter_mut().for_each(|y| *y += offset);
            ds.class_names = names.clone();
            if colour { ds.rgb() } else { ds }
        };
        let (train, test) = (renumber(&p.split.train), renumber(&p.split.test));
        tasks.push(Task {
            classes: (offset..offset + k).collect(),
            train_indices: (0..train.len()).collect(),
            test_indices: (0..test.len()).collect(),
            train,
            test,
        });
        offset += k;
    }
    (tasks, names.len(), sets.iter().map(|p| p.label.clone()).collect())
}
