//! The Independent Chip Model (Malmuth–Harville): what a stack is worth in prize money.
//!
//! A player's chance of finishing first is their share of the chips; given who finished above,
//! their chance of the next place is their share of the chips still in play. Summing over every
//! finishing order is n! work, so the sum is taken over *sets* of players who finished above
//! instead: the probability of each set is shared by all the orders that produce it, which makes
//! the work n·2ⁿ and keeps 20 players well under a second.

use crate::error::{DomainError, DomainResult};
use crate::money::{Chips, Money};

/// The most players the exact model accepts: two tables over 2²⁰ sets of players is 16 MiB,
/// which the appliance can spare; each extra player doubles both memory and time.
pub const MAX_EXACT_PLAYERS: usize = 20;

/// Expected prize money of each player, in cents, in the order of `stacks`.
///
/// `prizes` are the places still to be paid, best first; there may be fewer prizes than players
/// (the rest finish out of the money) but not more. Every stack must hold chips: a player with
/// none has already finished. The equities sum to the prizes' total up to float rounding.
pub fn icm_equities(stacks: &[Chips], prizes: &[Money]) -> DomainResult<Vec<f64>> {
    validate(stacks, prizes)?;
    let players = stacks.len();
    let paid_places = prizes.len();
    let chips: Vec<f64> = stacks.iter().map(|&s| s as f64).collect();
    let prize_cents: Vec<f64> = prizes.iter().map(|p| p.as_cents() as f64).collect();

    let subsets = 1usize << players;
    // finished_above[mask]: probability that exactly the players in `mask` took the top
    // |mask| places, in some order. Filled in increasing mask order, which visits every subset
    // before any superset, so each entry is complete before it is extended.
    let mut finished_above = vec![0.0_f64; subsets];
    let mut chips_out = vec![0.0_f64; subsets];
    let total_chips: f64 = chips.iter().sum();
    let mut equities = vec![0.0_f64; players];
    if let Some(first) = finished_above.first_mut() {
        *first = 1.0;
    }
    for mask in 0..subsets {
        let place = mask.count_ones() as usize;
        let (Some(&probability), Some(&out)) = (finished_above.get(mask), chips_out.get(mask))
        else {
            continue;
        };
        if place >= paid_places || probability == 0.0 {
            continue;
        }
        let Some(&prize) = prize_cents.get(place) else {
            continue;
        };
        let in_play = total_chips - out;
        for (player, &stack) in chips.iter().enumerate() {
            let bit = 1usize << player;
            if mask & bit != 0 {
                continue;
            }
            let takes_place = probability * stack / in_play;
            if let Some(equity) = equities.get_mut(player) {
                *equity += takes_place * prize;
            }
            let next = mask | bit;
            if let Some(p) = finished_above.get_mut(next) {
                *p += takes_place;
            }
            if let Some(c) = chips_out.get_mut(next) {
                *c = out + stack;
            }
        }
    }
    Ok(equities)
}

fn validate(stacks: &[Chips], prizes: &[Money]) -> DomainResult<()> {
    if stacks.is_empty() {
        return Err(DomainError::invalid(
            "ICM needs at least one player with chips",
        ));
    }
    if stacks.len() > MAX_EXACT_PLAYERS {
        return Err(DomainError::refused(format!(
            "ICM is computed exactly for at most {MAX_EXACT_PLAYERS} players; {} remain, so \
             wait until fewer are left or use another deal method",
            stacks.len()
        )));
    }
    if prizes.len() > stacks.len() {
        return Err(DomainError::invalid(format!(
            "{} prizes were given for {} players: there cannot be more prizes left than players",
            prizes.len(),
            stacks.len()
        )));
    }
    if let Some(player) = stacks.iter().position(|&s| s == 0) {
        return Err(DomainError::invalid(format!(
            "player #{} has no chips and has already finished",
            player + 1
        )));
    }
    if stacks
        .iter()
        .try_fold(0u64, |sum, &s| sum.checked_add(s))
        .is_none()
    {
        return Err(DomainError::invalid(
            "the chip counts are too large to add up",
        ));
    }
    if let Some(place) = prizes.iter().position(|&p| p < Money::ZERO) {
        return Err(DomainError::invalid(format!(
            "the prize for place {} is negative",
            place + 1
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entropy::{Entropy, SeededEntropy};
    use proptest::prelude::*;

    /// Direct Malmuth–Harville: walks every finishing order, multiplying the conditional
    /// probabilities. Only for small fields, as an independent check of the subset DP.
    fn brute_force(stacks: &[Chips], prizes: &[Money]) -> Vec<f64> {
        fn walk(
            remaining: &mut Vec<usize>,
            stacks: &[Chips],
            prizes: &[Money],
            place: usize,
            probability: f64,
            equities: &mut [f64],
        ) {
            if remaining.is_empty() {
                return;
            }
            let in_play: f64 = remaining.iter().map(|&i| stacks[i] as f64).sum();
            for k in 0..remaining.len() {
                let player = remaining.remove(k);
                let p = probability * stacks[player] as f64 / in_play;
                if let Some(prize) = prizes.get(place) {
                    equities[player] += p * prize.as_cents() as f64;
                }
                walk(remaining, stacks, prizes, place + 1, p, equities);
                remaining.insert(k, player);
            }
        }
        let mut equities = vec![0.0; stacks.len()];
        let mut remaining: Vec<usize> = (0..stacks.len()).collect();
        walk(&mut remaining, stacks, prizes, 0, 1.0, &mut equities);
        equities
    }

    fn assert_close(actual: &[f64], expected: &[f64], tolerance: f64) {
        assert_eq!(actual.len(), expected.len());
        for (a, e) in actual.iter().zip(expected) {
            assert!((a - e).abs() <= tolerance, "{actual:?} vs {expected:?}");
        }
    }

    #[test]
    fn matches_the_published_fifty_thirty_twenty_example() {
        // Wikipedia, "Independent Chip Model", Model section: players hold 50%, 30% and 20% of
        // the chips, first pays 70 and second 30; the article gives ICM(A) ≈ 45, ICM(B) ≈ 32,
        // ICM(C) ≈ 22 (the article truncates). Exact values: 45.178…, 32.25, 22.571…
        let equities = icm_equities(
            &[5_000, 3_000, 2_000],
            &[Money::units(70), Money::units(30)],
        )
        .unwrap();
        assert_close(
            &equities,
            &[4_517.857_142_857, 3_225.0, 2_257.142_857_143],
            1e-6,
        );
        assert_eq!((equities[0] / 100.0).round(), 45.0);
        assert_eq!((equities[1] / 100.0).round(), 32.0);
    }

    #[test]
    fn matches_the_published_big_stack_share_of_a_fifty_thirty_twenty_payout() {
        // Forum walk-through (flopturnriver.com, "ICM is Independent Chip Model…"): stacks
        // 5000/3000/2000 with a 50/30/20 payout; the big stack finishes 1st 50%, 2nd ≈ 34%, 3rd
        // ≈ 16% of the time and "expects to win 38.4% of the prize fund".
        let equities = icm_equities(
            &[5_000, 3_000, 2_000],
            &[Money::units(50), Money::units(30), Money::units(20)],
        )
        .unwrap();
        assert!(
            (equities[0] / 10_000.0 - 0.384).abs() < 0.0005,
            "{equities:?}"
        );
    }

    #[test]
    fn equal_stacks_have_equal_equity() {
        let prizes = [Money::units(500), Money::units(300), Money::units(200)];
        let equities = icm_equities(&[1_000; 4], &prizes).unwrap();
        assert_close(&equities, &[25_000.0; 4], 1e-6);
    }

    #[test]
    fn heads_up_equity_is_the_chip_share_of_the_difference_plus_second_prize() {
        let equities =
            icm_equities(&[3_000, 1_000], &[Money::units(100), Money::units(60)]).unwrap();
        assert_close(&equities, &[9_000.0, 7_000.0], 1e-9);
    }

    #[test]
    fn agrees_with_enumerating_every_finishing_order() {
        let mut entropy = SeededEntropy::new(42);
        for _ in 0..40 {
            let players = 2 + entropy.below(5) as usize;
            let paid = 1 + entropy.below(players as u64) as usize;
            let stacks: Vec<Chips> = (0..players).map(|_| 1 + entropy.below(100_000)).collect();
            let mut prizes: Vec<Money> = (0..paid)
                .map(|_| Money::cents(entropy.below(1_000_000) as i64))
                .collect();
            prizes.sort_unstable_by(|a, b| b.cmp(a));
            let fast = icm_equities(&stacks, &prizes).unwrap();
            assert_close(&fast, &brute_force(&stacks, &prizes), 1e-6);
        }
    }

    #[test]
    fn fifteen_players_are_computed_exactly() {
        let stacks: Vec<Chips> = (1..=15).map(|i| i * 10_000).collect();
        let prizes: Vec<Money> = (1..=15).rev().map(|i| Money::units(i * 100)).collect();
        let equities = icm_equities(&stacks, &prizes).unwrap();
        let total: f64 = prizes.iter().map(|p| p.as_cents() as f64).sum();
        assert!((equities.iter().sum::<f64>() - total).abs() < 1e-6);
    }

    #[test]
    fn twenty_players_are_within_the_exact_limit() {
        let stacks: Vec<Chips> = (1..=20).map(|i| i * 1_000).collect();
        let prizes = [Money::units(1_000), Money::units(600), Money::units(400)];
        let equities = icm_equities(&stacks, &prizes).unwrap();
        assert!((equities.iter().sum::<f64>() - 200_000.0).abs() < 1e-6);
        assert!(equities.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn more_players_than_the_exact_limit_are_refused() {
        let err = icm_equities(&[1_000; 21], &[Money::units(100)]).unwrap_err();
        assert_eq!(err.code(), "refused");
        assert!(err.to_string().contains("at most 20 players"), "{err}");
    }

    #[test]
    fn more_prizes_than_players_are_refused() {
        assert!(icm_equities(&[1_000, 2_000], &[Money::units(3); 3]).is_err());
    }

    #[test]
    fn a_player_without_chips_is_refused() {
        let err = icm_equities(&[1_000, 0], &[Money::units(3)]).unwrap_err();
        assert!(err.to_string().contains("player #2 has no chips"), "{err}");
    }

    #[test]
    fn no_players_are_refused() {
        assert!(icm_equities(&[], &[]).is_err());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]

        #[test]
        fn equities_sum_to_the_prizes_and_follow_the_chips(
            stacks in prop::collection::vec(1u64..10_000_000, 2..9),
            raw_prizes in prop::collection::vec(0i64..100_000_000, 1..9),
        ) {
            let mut prizes: Vec<Money> = raw_prizes.into_iter().take(stacks.len()).map(Money::cents).collect();
            prizes.sort_unstable_by(|a, b| b.cmp(a));
            let equities = icm_equities(&stacks, &prizes).unwrap();
            let total: f64 = prizes.iter().map(|p| p.as_cents() as f64).sum();
            // Within a millionth of a cent, for pools up to eight million.
            let error = (equities.iter().sum::<f64>() - total).abs();
            prop_assert!(error <= 1e-6, "equities are off the prize total by {}", error);
            for i in 0..stacks.len() {
                for j in 0..stacks.len() {
                    if stacks[i] > stacks[j] {
                        prop_assert!(equities[i] >= equities[j] - 1e-9 * total.max(1.0));
                    }
                }
            }
        }
    }
}
