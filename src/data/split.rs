//! Class and sample subsets (method §6.5) and class-incremental task sequences (method §8).
//!
//! Subsets and tasks keep the original class ids and the full class-name list, so accuracy
//! matrices and probe heads can index classes the same way across tasks.

use rand::seq::SliceRandom;

use super::synth::rng_for;
use super::{DataSplit, ImageDataset};
use crate::error::{Error, Result};

/// Indices of the images whose class id is below `k`.
pub fn first_k_indices(ds: &ImageDataset, k: usize) -> Result<Vec<usize>> {
    if k == 0 || k > ds.n_classes() {
        return Err(Error::usage(format!(
            "{}: cannot take the first {k} classes of {}",
            ds.name,
            ds.n_classes()
        )));
    }
    Ok((0..ds.len()).filter(|&i| (ds.labels[i] as usize) < k).collect())
}

/// The first `k` classes (class ids 0..k), with the class list cut to `k` names.
pub fn first_k_classes(ds: &ImageDataset, k: usize) -> Result<ImageDataset> {
    let mut out = ds.subset(&first_k_indices(ds, k)?)?;
    out.class_names.truncate(k);
    Ok(out)
}

/// `n` images of every class, drawn without replacement with a seeded RNG (each class has its
/// own stream, so the draw for one class does not depend on the others). Indices come grouped
/// by class, in draw order. A class with fewer than `n` images is an error.
pub fn sample_per_class(ds: &ImageDataset, n: usize, seed: u64) -> Result<Vec<usize>> {
    sample_classes(ds, &(0..ds.n_classes() as u32).collect::<Vec<_>>(), n, seed)
}

/// [`sample_per_class`] restricted to `classes`.
pub fn sample_classes(ds: &ImageDataset, classes: &[u32], n: usize, seed: u64) -> Result<Vec<usize>> {
    let by_class = ds.indices_by_class();
    let mut out = Vec::with_capacity(classes.len() * n);
    for &c in classes {
        let Some(pool) = by_class.get(c as usize) else {
            return Err(Error::usage(format!("{}: no class {c}", ds.name)));
        };
        if pool.len() < n {
            return Err(Error::usage(format!(
                "{}: class {c} ({}) has {} images, fewer than the {n} requested",
                ds.name,
                ds.class_names[c as usize],
                pool.len()
            )));
        }
        let mut pool = pool.clone();
        let mut rng = rng_for(&[seed, 0x5A3F, c as u64]);
        let (chosen, _) = pool.partial_shuffle(&mut rng, n);
        out.extend_from_slice(chosen);
    }
    Ok(out)
}

/// How classes are ordered before being cut into tasks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClassOrder {
    Identity,
    Seeded(u64),
}

/// A class-incremental task sequence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TaskSpec {
    /// `n_tasks` tasks of `classes_per_task` classes each, taken in `order`.
    Uniform {
        n_tasks: usize,
        classes_per_task: usize,
        order: ClassOrder,
    },
    /// Explicit class lists, one per task; lists must not overlap.
    Explicit(Vec<Vec<u32>>),
}

/// One task: its classes and the train/test images of those classes.
#[derive(Debug, Clone, PartialEq)]
pub struct Task {
    pub classes: Vec<u32>,
    pub train_indices: Vec<usize>,
    pub test_indices: Vec<usize>,
    pub train: ImageDataset,
    pub test: ImageDataset,
}

/// The class lists of each task, checked against a data set of `n_classes` classes.
pub fn task_classes(spec: &TaskSpec, n_classes: usize) -> Result<Vec<Vec<u32>>> {
    let lists = match spec {
        TaskSpec::Uniform {
            n_tasks,
            classes_per_task,
            order,
        } => {
            if *n_tasks == 0 || *classes_per_task == 0 {
                return Err(Error::usage("a task sequence needs at least one task of one class"));
            }
            let need = n_tasks * classes_per_task;
            if need > n_classes {
                return Err(Error::usage(format!(
                    "{n_tasks} tasks x {classes_per_task} classes need {need} classes; the data has {n_classes}"
                )));
            }
            let mut all: Vec<u32> = (0..n_classes as u32).collect();
            if let ClassOrder::Seeded(seed) = order {
                all.shuffle(&mut rng_for(&[*seed, 0xC1A55]));
            }
            all[..need].chunks(*classes_per_task).map(<[u32]>::to_vec).collect()
        }
        TaskSpec::Explicit(lists) => {
            if lists.is_empty() {
                return Err(Error::usage("empty task list"));
            }
            let mut seen = vec![None; n_classes];
            for (t, list) in lists.iter().enumerate() {
                if list.is_empty() {
                    return Err(Error::usage(format!("task {t} has no classes")));
                }
                for &c in list {
                    let Some(slot) = seen.get_mut(c as usize) else {
                        return Err(Error::usage(format!(
                            "task {t}: class {c} does not exist (the data has {n_classes} classes)"
                        )));
                    };
                    if let Some(prev) = *slot {
                        return Err(Error::usage(format!(
                            "class {c} appears in task {prev} and task {t}; task class lists must not overlap"
                        )));
                    }
                    *slot = Some(t);
                }
            }
            lists.clone()
        }
    };
    Ok(lists)
}

/// Cuts a data set into class-incremental tasks.
pub fn class_incremental(split: &DataSplit, spec: &TaskSpec) -> Result<Vec<Task>> {
    let lists = task_classes(spec, split.train.n_classes())?;
    let mut member = vec![usize::MAX; split.train.n_classes()];
    for (t, list) in lists.iter().enumerate() {
        for &c in list {
            member[c as usize] = t;
        }
    }
    let pick = |ds: &ImageDataset, t: usize| -> Vec<usize> {
        (0..ds.len())
            .filter(|&i| member.get(ds.labels[i] as usize) == Some(&t))
            .collect()
    };
    lists
        .into_iter()
        .enumerate()
        .map(|(t, classes)| {
            let train_indices = pick(&split.train, t);
            let test_indices = pick(&split.test, t);
            if train_indices.is_empty() {
                return Err(Error::usage(format!(
                    "task {t} (classes {classes:?}) has no training images in {}",
                    split.train.name
                )));
            }
            Ok(Task {
                train: split.train.subset(&train_indices)?,
                test: split.test.subset(&test_indices)?,
                classes,
                train_indices,
                test_indices,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ds(n_classes: usize, per_class: usize) -> ImageDataset {
        let names = (0..n_classes).map(|c| format!("c{c}")).collect();
        let mut d = ImageDataset::empty("d", 1, 1, 1, names);
        for i in 0..per_class {
            for c in 0..n_classes {
                d.push(&[(c * 10 + i) as u8], c as u32);
            }
        }
        d
    }

    #[test]
    fn first_k() {
        let d = ds(5, 3);
        let s = first_k_classes(&d, 2).unwrap();
        assert_eq!(s.len(), 6);
        assert_eq!(s.n_classes(), 2);
        assert!(s.labels.iter().all(|&l| l < 2));
        assert!(first_k_classes(&d, 6).is_err());
        assert!(first_k_classes(&d, 0).is_err());
    }

    #[test]
    fn per_class_sampling() {
        let d = ds(4, 10);
        let a = sample_per_class(&d, 3, 1).unwrap();
        assert_eq!(a, sample_per_class(&d, 3, 1).unwrap());
        assert_ne!(a, sample_per_class(&d, 3, 2).unwrap());
        assert_eq!(a.len(), 12);
        let s = d.subset(&a).unwrap();
        assert_eq!(s.class_counts(), vec![3; 4]);
        let mut u = a.clone();
        u.sort();
        u.dedup();
        assert_eq!(u.len(), 12, "without replacement");
        // A class's draw does not depend on the other classes.
        assert_eq!(sample_classes(&d, &[2], 3, 1).unwrap(), a[6..9]);
        let e = sample_per_class(&d, 11, 0).unwrap_err().to_string();
        assert!(e.contains("class 0") && e.contains("10 images"), "{e}");
        assert!(sample_classes(&d, &[7], 1, 0).is_err());
    }

    #[test]
    fn uniform_tasks() {
        let split = DataSplit {
            train: ds(6, 4),
            test: ds(6, 2),
        };
        let tasks = class_incremental(
            &split,
            &TaskSpec::Uniform {
                n_tasks: 3,
                classes_per_task: 2,
                order: ClassOrder::Identity,
            },
        )
        .unwrap();
        assert_eq!(tasks.len(), 3);
        assert_eq!(tasks[1].classes, vec![2, 3]);
        assert_eq!(tasks[1].train.len(), 8);
        assert_eq!(tasks[1].test.len(), 4);
        assert!(
            tasks[1].train.labels.iter().all(|&l| l == 2 || l == 3),
            "original ids kept"
        );
        assert_eq!(tasks[1].train.n_classes(), 6);

        let spec = TaskSpec::Uniform {
            n_tasks: 2,
            classes_per_task: 3,
            order: ClassOrder::Seeded(5),
        };
        let a = task_classes(&spec, 6).unwrap();
        assert_eq!(a, task_classes(&spec, 6).unwrap());
        let mut all: Vec<u32> = a.concat();
        all.sort();
        assert_eq!(all, (0..6).collect::<Vec<_>>());
        let orders: Vec<_> = (0..10)
            .map(|s| {
                task_classes(
                    &TaskSpec::Uniform {
                        n_tasks: 2,
                        classes_per_task: 3,
                        order: ClassOrder::Seeded(s),
                    },
                    6,
                )
                .unwrap()
            })
            .collect();
        assert!(orders.iter().any(|o| *o != orders[0]), "seed changes the order");
        assert!(
            task_classes(
                &TaskSpec::Uniform {
                    n_tasks: 4,
                    classes_per_task: 2,
                    order: ClassOrder::Identity
                },
                6
            )
            .unwrap_err()
            .to_string()
            .contains("need 8 classes")
        );
    }

    #[test]
    fn explicit_tasks() {
        let split = DataSplit {
            train: ds(5, 2),
            test: ds(5, 1),
        };
        let tasks = class_incremental(&split, &TaskSpec::Explicit(vec![vec![4, 0], vec![2]])).unwrap();
        assert_eq!(tasks[0].classes, vec![4, 0]);
        assert_eq!(tasks[0].train.class_counts(), vec![2, 0, 0, 0, 2]);
        assert_eq!(tasks[1].test_indices, vec![2]);
        let err = |lists: Vec<Vec<u32>>| task_classes(&TaskSpec::Explicit(lists), 5).unwrap_err().to_string();
        assert!(err(vec![]).contains("empty task list"));
        assert!(err(vec![vec![0, 1], vec![1]]).contains("must not overlap"));
        assert!(err(vec![vec![5]]).contains("does not exist"));
        assert!(err(vec![vec![0], vec![]]).contains("no classes"));
    }
}
