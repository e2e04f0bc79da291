//! Which live instance should poll which bus: rendezvous hashing with a
//! bound on each instance's load, computed the same by every instance from
//! the same members and buses, so that no instance has to be told.
//!
//! Each bus ranks the members by a hash of (bus, member) — the ranking of a
//! bus changes only by the members that come or go, so few buses move. The
//! buses are placed heaviest first (a bus weighs its meters), each on the
//! first member of its ranking whose load stays within the fair share (the
//! total over the members, rounded down; then the rest within the share
//! rounded up, plus the heaviest bus when buses differ); a bus that fits
//! nowhere goes to the least loaded member.

use std::collections::BTreeMap;

/// A bus to place: its name and its weight (its meters, at least 1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Weighted {
    /// The bus.
    pub bus: String,
    /// What polling it costs, in meters.
    pub weight: u64,
}

/// FNV-1a over `bus`, a separator and `member`, then a final mix: stable
/// across builds and machines, which `std`'s hasher is not.
fn score(bus: &str, member: &str) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in bus.bytes().chain([0xff]).chain(member.bytes()) {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    // splitmix64's finaliser: FNV's low bits alone spread short names badly.
    hash ^= hash >> 30;
    hash = hash.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    hash ^= hash >> 27;
    hash = hash.wrapping_mul(0x94d0_49bb_1331_11eb);
    hash ^ (hash >> 31)
}

/// The member each bus should have, by bus name; empty without members.
pub fn spread(buses: &[Weighted], members: &[String]) -> BTreeMap<String, String> {
    let mut placed = BTreeMap::new();
    if members.is_empty() {
        return placed;
    }
    let total: u64 = buses.iter().map(|bus| bus.weight).sum();
    let heaviest = buses.iter().map(|bus| bus.weight).max().unwrap_or(0);
    let count = members.len() as u64;
    let mut order: Vec<&Weighted> = buses.iter().collect();
    order.sort_by(|a, b| b.weight.cmp(&a.weight).then_with(|| a.bus.cmp(&b.bus)));
    let mut load: BTreeMap<&str, u64> = members.iter().map(|m| (m.as_str(), 0)).collect();
    // First every member up to the share rounded down, then the buses
    // left up to the share rounded up (equal buses end at most one apart),
    // or, with unequal buses, up to one heaviest bus more.
    let uniform = buses.iter().all(|bus| bus.weight == heaviest);
    let slack = if uniform { 0 } else { heaviest };
    let rounds = [total / count, total.div_ceil(count) + slack];
    for (round, bound) in rounds.into_iter().enumerate() {
        let last = round + 1 == rounds.len();
        for bus in &order {
            if placed.contains_key(&bus.bus) {
                continue;
            }
            let mut ranking: Vec<&str> = members.iter().map(String::as_str).collect();
            ranking.sort_by(|a, b| score(&bus.bus, b).cmp(&score(&bus.bus, a)).then(a.cmp(b)));
            let fits = |member: &&str| load[member] + bus.weight <= bound;
            let least = || ranking.iter().min_by_key(|member| load[**member]).copied();
            let chosen = match ranking.iter().copied().find(fits) {
                Some(member) => Some(member),
                None if last => least(),
                None => None,
            };
            if let Some(member) = chosen {
                *load.entry(member).or_default() += bus.weight;
                placed.insert(bus.bus.clone(), member.to_owned());
            }
        }
    }
    placed
}

#[cfg(test)]
mod tests {
    use super::*;

    fn buses(count: usize) -> Vec<Weighted> {
        (1..=count)
            .map(|n| Weighted {
                bus: format!("bus{n}"),
                weight: 1,
            })
            .collect()
    }

    fn members(names: &[&str]) -> Vec<String> {
        names.iter().map(|name| (*name).to_owned()).collect()
    }

    fn counts(placed: &BTreeMap<String, String>) -> BTreeMap<String, usize> {
        let mut counts = BTreeMap::new();
        for member in placed.values() {
            *counts.entry(member.clone()).or_default() += 1;
        }
        counts
    }

    #[test]
    fn equal_buses_spread_evenly_and_every_instance_computes_the_same() {
        for (bus_count, names, expected) in [
            (12, &["a", "b", "c"][..], vec![4, 4, 4]),
            (12, &["a", "b"][..], vec![6, 6]),
            (10, &["a", "b", "c"][..], vec![4, 3, 3]),
            (11, &["a", "b", "c"][..], vec![4, 4, 3]),
            (2500, &["a", "b", "c"][..], vec![834, 833, 833]),
        ] {
            let placed = spread(&buses(bus_count), &members(names));
            assert_eq!(placed.len(), bus_count);
            let mut got: Vec<usize> = counts(&placed).into_values().collect();
            got.sort_unstable_by(|a, b| b.cmp(a));
            assert_eq!(got, expected, "{bus_count} buses over {names:?}");
            // The members in another order: the same answer.
            let mut reversed = members(names);
            reversed.reverse();
            assert_eq!(spread(&buses(bus_count), &reversed), placed);
        }
    }

    #[test]
    fn a_member_that_leaves_moves_only_its_own_buses_when_loads_allow() {
        let all = buses(300);
        let three = spread(&all, &members(&["a", "b", "c"]));
        let two = spread(&all, &members(&["a", "b"]));
        let moved = all
            .iter()
            .filter(|bus| three[&bus.bus] != "c" && three[&bus.bus] != two[&bus.bus])
            .count();
        // Rendezvous keeps most buses where they were; the bound moves a few.
        assert!(moved < 300 / 10, "{moved} buses of a and b moved");
    }

    #[test]
    fn buses_spread_by_meters() {
        let mut weighted = buses(6);
        weighted[0].weight = 30;
        for bus in &mut weighted[1..] {
            bus.weight = 6;
        }
        let placed = spread(&weighted, &members(&["a", "b"]));
        let mut load: BTreeMap<&str, u64> = BTreeMap::new();
        for bus in &weighted {
            *load.entry(placed[&bus.bus].as_str()).or_default() += bus.weight;
        }
        // 60 meters: the 30-meter bus alone on one side, five of 6 on the other.
        assert_eq!(load.values().copied().collect::<Vec<_>>(), [30, 30]);
        assert!(spread(&weighted, &[]).is_empty());
    }
}
