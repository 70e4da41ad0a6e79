//! Topological order of the step graph, or the cycle that prevents one.

use std::collections::BTreeSet;

/// Orders nodes `0..deps.len()` so every node comes after its dependencies (`deps[i]` lists the
/// nodes `i` needs). Among ready nodes the lowest index goes first, so file order is kept where
/// the graph allows. On a cycle, returns it as a path `a → b → … → a` of indices.
pub fn topological_order(deps: &[Vec<usize>]) -> Result<Vec<usize>, Vec<usize>> {
    let count = deps.len();
    let mut remaining: Vec<usize> = deps.iter().map(|d| dedup_len(d)).collect();
    let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); count];
    for (node, node_deps) in deps.iter().enumerate() {
        let unique: BTreeSet<usize> = node_deps.iter().copied().collect();
        for dep in unique {
            dependents[dep].push(node);
        }
    }
    let mut ready: BTreeSet<usize> = (0..count).filter(|&n| remaining[n] == 0).collect();
    let mut order = Vec::with_capacity(count);
    while let Some(node) = ready.pop_first() {
        order.push(node);
        for &dependent in &dependents[node] {
            remaining[dependent] -= 1;
            if remaining[dependent] == 0 {
                ready.insert(dependent);
            }
        }
    }
    if order.len() == count {
        Ok(order)
    } else {
        Err(find_cycle(deps, &remaining))
    }
}

fn dedup_len(deps: &[usize]) -> usize {
    deps.iter().collect::<BTreeSet<_>>().len()
}

/// A cycle among the nodes left with unmet dependencies.
fn find_cycle(deps: &[Vec<usize>], remaining: &[usize]) -> Vec<usize> {
    let start = (0..deps.len())
        .find(|&n| remaining[n] > 0)
        .unwrap_or_default();
    // Walk dependencies that are themselves stuck until a node repeats.
    let mut path = vec![start];
    let mut current = start;
    loop {
        let next = deps[current]
            .iter()
            .copied()
            .find(|&d| remaining[d] > 0)
            .unwrap_or(current);
        if let Some(position) = path.iter().position(|&n| n == next) {
            let mut cycle: Vec<usize> = path[position..].to_vec();
            // Show it in dependency direction: a needs b needs c needs a, starting at the lowest.
            let lowest = cycle
                .iter()
                .enumerate()
                .min_by_key(|(_, n)| **n)
                .map_or(0, |(i, _)| i);
            cycle.rotate_left(lowest);
            let first = cycle[0];
            cycle.push(first);
            return cycle;
        }
        path.push(next);
        current = next;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orders_by_dependencies_then_file_order() {
        // 0 needs 2, 1 needs nothing, 2 needs 1
        assert_eq!(
            topological_order(&[vec![2], vec![], vec![1]]),
            Ok(vec![1, 2, 0])
        );
        assert_eq!(
            topological_order(&[vec![], vec![], vec![0, 1]]),
            Ok(vec![0, 1, 2])
        );
    }

    #[test]
    fn reports_the_cycle() {
        // 0 needs 1, 1 needs 2, 2 needs 0, 3 needs 0
        let cycle = topological_order(&[vec![1], vec![2], vec![0], vec![0]]).unwrap_err();
        assert_eq!(cycle, vec![0, 1, 2, 0]);
        let self_loop = topological_order(&[vec![], vec![1]]).unwrap_err();
        assert_eq!(self_loop, vec![1, 1]);
    }
}
