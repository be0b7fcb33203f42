//! Deals: the remaining players agree to split the prizes still to be paid instead of playing
//! them out (all or part of them: an amount can be held back for the winner of the play-out).
//!
//! The floor proposes, the players accept; nothing here decides that a deal happens. Every method
//! pays out exactly the money on the table, and flags what the players should know before they
//! agree (a chip leader offered more than first prize, a short stack less than the lowest prize).

use crate::error::{DomainError, DomainResult};
use crate::icm::icm_equities;
use crate::money::{Chips, Money};
use crate::payouts::format_money;
use serde::{Deserialize, Serialize};
use std::cmp::Reverse;

/// How the money is split between the remaining players.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum DealMethod {
    /// Everyone gets the same; odd cents go to the biggest stacks.
    EvenChop,
    /// The pool in proportion to chips. With `clamp`, nobody gets more than first prize or less
    /// than the lowest remaining prize, and the others share what is left in proportion to chips.
    ChipChop { clamp: bool },
    /// Everyone is paid the lowest remaining prize; the rest is split in proportion to chips.
    NextPayoutPlusChips,
    /// Independent Chip Model (Malmuth–Harville) equity, see [`crate::icm`].
    Icm,
}

/// A deal to price: the prizes still to be paid and the players still in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DealRequest {
    /// The prizes not yet paid, best first, one per remaining player.
    pub prizes: Vec<Money>,
    /// The remaining players' stacks, in the order the payouts are returned.
    pub stacks: Vec<Chips>,
    /// Taken off the top prizes and paid to the winner of the play-out; the deal splits the rest.
    pub hold_back: Money,
    /// How to split.
    pub method: DealMethod,
    /// Payouts are rounded to multiples of this (0.01 for no rounding); odd cents go to the
    /// biggest stack so the deal still adds up.
    pub rounding_unit: Money,
}

/// A proposed deal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deal {
    /// What each player is paid now, in the order of the request's stacks. Sums exactly to the
    /// prizes' total minus `held_back`.
    pub payouts: Vec<Money>,
    /// Still to be played for: paid to the winner of the play-out.
    pub held_back: Money,
    /// Things the players should hear before they agree.
    pub warnings: Vec<String>,
}

/// Prices a deal for the remaining players.
///
/// The amount held back comes off the top: the highest prizes are lowered to a common level
/// until the hold-back is covered, so the prizes left to deal stay in order. Holding back 300
/// from 1000/500/200 leaves 700/500/200 to deal; holding back 700 leaves 400/400/200. Chip-chop
/// bounds, the "next payout" and ICM all use those reduced prizes.
pub fn propose(req: &DealRequest) -> DomainResult<Deal> {
    let pool = validate(req)?;
    let prizes: Vec<i64> = req.prizes.iter().map(|p| p.as_cents()).collect();
    let hold_back = req.hold_back.as_cents();
    let unit = req.rounding_unit.as_cents();
    let to_deal = take_off_top(&prizes, hold_back);
    let deal_pool = pool - hold_back;
    let stacks = &req.stacks;
    let players = stacks.len();
    let first_prize = to_deal.first().copied().unwrap_or(0);
    let lowest_prize = to_deal.last().copied().unwrap_or(0);
    let chip_weights: Vec<u128> = stacks.iter().map(|&s| u128::from(s)).collect();

    let mut warnings = Vec::new();
    let amounts = match req.method {
        DealMethod::EvenChop => apportion(deal_pool, &vec![1; players], stacks, unit),
        DealMethod::ChipChop { clamp: false } => {
            warnings.extend(bound_warnings(
                0,
                deal_pool,
                stacks,
                first_prize,
                lowest_prize,
            ));
            apportion(deal_pool, &chip_weights, stacks, unit)
        }
        DealMethod::ChipChop { clamp: true } => clamped_chip_chop(
            deal_pool,
            stacks,
            first_prize,
            lowest_prize,
            unit,
            &mut warnings,
        ),
        DealMethod::NextPayoutPlusChips => {
            let above_lowest = deal_pool - lowest_prize * i64::try_from(players).unwrap_or(0);
            warnings.extend(bound_warnings(
                lowest_prize,
                above_lowest,
                stacks,
                first_prize,
                lowest_prize,
            ));
            apportion(above_lowest, &chip_weights, stacks, unit)
                .into_iter()
                .map(|extra| lowest_prize + extra)
                .collect()
        }
        DealMethod::Icm => {
            let prizes_to_deal: Vec<Money> = to_deal.iter().copied().map(Money::cents).collect();
            let equities = icm_equities(stacks, &prizes_to_deal)?;
            apportion_by_quota(deal_pool, &equities, stacks, unit)
        }
    };
    Ok(Deal {
        payouts: amounts.into_iter().map(Money::cents).collect(),
        held_back: req.hold_back,
        warnings,
    })
}

/// Checks the request and returns the prizes' total in cents.
fn validate(req: &DealRequest) -> DomainResult<i64> {
    let players = req.stacks.len();
    if players < 2 {
        return Err(DomainError::refused(
            "a deal needs at least two players still in the tournament",
        ));
    }
    if req.prizes.len() != players {
        return Err(DomainError::invalid(format!(
            "{} prizes are left for {players} players: a deal needs exactly one prize per \
             remaining player",
            req.prizes.len()
        )));
    }
    if let Some(player) = req.stacks.iter().position(|&s| s == 0) {
        return Err(DomainError::invalid(format!(
            "player #{} has no chips and cannot be part of the deal",
            player + 1
        )));
    }
    if req
        .stacks
        .iter()
        .try_fold(0u64, |sum, &s| sum.checked_add(s))
        .is_none()
    {
        return Err(DomainError::invalid(
            "the chip counts are too large to add up",
        ));
    }
    if let Some(place) = req.prizes.iter().position(|&p| p < Money::ZERO) {
        return Err(DomainError::invalid(format!(
            "the prize for place {} is negative",
            place + 1
        )));
    }
    for (index, pair) in req.prizes.windows(2).enumerate() {
        if let [better, worse] = pair {
            if worse > better {
                return Err(DomainError::invalid(format!(
                    "prizes must be listed best first, but place {} pays {} and place {} only {}",
                    index + 2,
                    format_money(*worse),
                    index + 1,
                    format_money(*better),
                )));
            }
        }
    }
    let pool = req
        .prizes
        .iter()
        .try_fold(0i64, |sum, p| sum.checked_add(p.as_cents()))
        .ok_or_else(|| DomainError::invalid("the prizes are too large to add up"))?;
    if req.rounding_unit <= Money::ZERO {
        return Err(DomainError::invalid(
            "deal amounts must be rounded to a positive amount (use 0.01 for no rounding)",
        ));
    }
    if req.hold_back < Money::ZERO {
        return Err(DomainError::invalid(
            "the amount held back cannot be negative",
        ));
    }
    if req.hold_back.as_cents() > pool {
        return Err(DomainError::invalid(format!(
            "cannot hold back {} to play for: only {} is left to pay",
            format_money(req.hold_back),
            format_money(Money::cents(pool))
        )));
    }
    Ok(pool)
}

/// Lowers the highest prizes to a common level until `hold_back` is covered; the result stays
/// best first and sums to the prizes' total minus `hold_back`. Needs `0 <= hold_back <= total`.
fn take_off_top(prizes: &[i64], hold_back: i64) -> Vec<i64> {
    let mut top_sum: i64 = 0;
    for (k, &prize) in prizes.iter().enumerate() {
        top_sum += prize;
        let levelled = i64::try_from(k + 1).unwrap_or(i64::MAX);
        let next = prizes.get(k + 1).copied().unwrap_or(0);
        // Lowering the top k+1 prizes down to the next one frees this much.
        if top_sum - levelled * next >= hold_back {
            let remaining = top_sum - hold_back;
            let level = remaining / levelled;
            let odd_cents = remaining % levelled;
            return prizes
                .iter()
                .enumerate()
                .map(|(i, &p)| match i64::try_from(i) {
                    Ok(i) if i < levelled => level + i64::from(i < odd_cents),
                    _ => p,
                })
                .collect();
        }
    }
    vec![0; prizes.len()]
}

/// Warns about players whose exact amount `base + rest × stack / total chips` would be above
/// `first_prize` or below `lowest_prize`.
fn bound_warnings(
    base: i64,
    rest: i64,
    stacks: &[Chips],
    first_prize: i64,
    lowest_prize: i64,
) -> Vec<String> {
    let total_chips: i128 = stacks.iter().map(|&s| i128::from(s)).sum();
    let mut warnings = Vec::new();
    for (player, &stack) in stacks.iter().enumerate() {
        let share = i128::from(rest) * i128::from(stack);
        let exact_floor = i128::from(base) + share / total_chips.max(1);
        let amount = Money::cents(i64::try_from(exact_floor).unwrap_or(i64::MAX));
        if (i128::from(base) - i128::from(first_prize)) * total_chips + share > 0 {
            warnings.push(format!(
                "player #{} would receive {}, more than the first prize left to deal ({})",
                player + 1,
                format_money(amount),
                format_money(Money::cents(first_prize))
            ));
        } else if (i128::from(base) - i128::from(lowest_prize)) * total_chips + share < 0 {
            warnings.push(format!(
                "player #{} would receive {}, less than the lowest prize left to deal ({})",
                player + 1,
                format_money(amount),
                format_money(Money::cents(lowest_prize))
            ));
        }
    }
    warnings
}

/// Chip chop with every amount held between the lowest prize and first prize: the players
/// inside those bounds share what is left in proportion to chips.
///
/// Clamping one player at a time can paint itself into a corner (capping three big stacks at
/// first prize may leave too little to lift the short stack to the lowest prize), so this finds
/// the split directly: the shortest stacks raised to the lowest prize, the biggest lowered to
/// first prize, and one chip price λ for everyone between, with as few players clamped as
/// possible. Such a split always exists because the lowest prize ≤ average ≤ first prize.
fn clamped_chip_chop(
    deal_pool: i64,
    stacks: &[Chips],
    first_prize: i64,
    lowest_prize: i64,
    unit: i64,
    warnings: &mut Vec<String>,
) -> Vec<i64> {
    let players = stacks.len();
    let mut by_stack: Vec<usize> = (0..players).collect();
    by_stack.sort_by_key(|&i| (stacks.get(i).copied().unwrap_or(0), i));
    let sorted_stacks: Vec<i128> = by_stack
        .iter()
        .map(|&i| i128::from(stacks.get(i).copied().unwrap_or(0)))
        .collect();
    let upper = i128::from(first_prize);
    let lower = i128::from(lowest_prize);

    for clamped in 0..=players {
        for raised in 0..=clamped {
            let lowered = clamped - raised;
            let Some(middle) = sorted_stacks.get(raised..players - lowered) else {
                continue;
            };
            let rest = i128::from(deal_pool) - lower * raised as i128 - upper * lowered as i128;
            if rest < 0 {
                continue;
            }
            let middle_chips: i128 = middle.iter().sum();
            // With chip price λ = rest / middle_chips every condition is a cross-multiplied
            // comparison, so the choice is made exactly, without floating point.
            let fits = match (middle.first(), middle.last()) {
                (Some(&smallest), Some(&largest)) => {
                    rest * smallest >= lower * middle_chips
                        && rest * largest <= upper * middle_chips
                        && (raised == 0
                            || sorted_stacks
                                .get(raised - 1)
                                .is_some_and(|&s| rest * s <= lower * middle_chips))
                        && (lowered == 0
                            || sorted_stacks
                                .get(players - lowered)
                                .is_some_and(|&s| rest * s >= upper * middle_chips))
                }
                _ => rest == 0,
            };
            if !fits {
                continue;
            }
            let mut amounts = vec![0i64; players];
            let middle_players = by_stack.get(raised..players - lowered).unwrap_or(&[]);
            let middle_stacks: Vec<Chips> = middle_players
                .iter()
                .map(|&i| stacks.get(i).copied().unwrap_or(0))
                .collect();
            let middle_weights: Vec<u128> = middle_stacks.iter().map(|&s| u128::from(s)).collect();
            let rest = i64::try_from(rest).unwrap_or(0);
            let shared = apportion(rest, &middle_weights, &middle_stacks, unit);
            for (&player, amount) in middle_players.iter().zip(shared) {
                if let Some(slot) = amounts.get_mut(player) {
                    *slot = amount;
                }
            }
            let total_chips: i128 = sorted_stacks.iter().sum();
            let chip_share = |player: usize| {
                let stack = i128::from(stacks.get(player).copied().unwrap_or(0));
                let share = i128::from(deal_pool) * stack / total_chips.max(1);
                format_money(Money::cents(i64::try_from(share).unwrap_or(i64::MAX)))
            };
            for &player in by_stack.get(..raised).unwrap_or(&[]) {
                if let Some(slot) = amounts.get_mut(player) {
                    *slot = lowest_prize;
                }
                warnings.push(format!(
                    "player #{}'s chip share ({}) is below the lowest prize left to deal; raised \
                     to {}",
                    player + 1,
                    chip_share(player),
                    format_money(Money::cents(lowest_prize))
                ));
            }
            for &player in by_stack.get(players - lowered..).unwrap_or(&[]) {
                if let Some(slot) = amounts.get_mut(player) {
                    *slot = first_prize;
                }
                warnings.push(format!(
                    "player #{}'s chip share ({}) is above the first prize left to deal; limited \
                     to {}",
                    player + 1,
                    chip_share(player),
                    format_money(Money::cents(first_prize))
                ));
            }
            return amounts;
        }
    }
    // Unreachable while lowest prize ≤ first prize, which validation guarantees; an unclamped
    // chop still pays out the pool exactly.
    warnings.push("the chip chop could not be kept within the prizes; shown unclamped".into());
    let weights: Vec<u128> = stacks.iter().map(|&s| u128::from(s)).collect();
    apportion(deal_pool, &weights, stacks, unit)
}

/// Splits `pool` cents in proportion to `weights`, in whole multiples of `unit` by largest
/// remainder (ties to the bigger stack, then the earlier player); the cents below one unit go
/// to the biggest stack. Sums exactly to `pool` (which must not be negative).
fn apportion(pool: i64, weights: &[u128], stacks: &[Chips], unit: i64) -> Vec<i64> {
    let total_weight: u128 = weights.iter().sum::<u128>().max(1);
    let whole_units = u128::try_from(pool / unit.max(1)).unwrap_or(0);
    let mut units: Vec<u128> = Vec::with_capacity(weights.len());
    let mut remainders: Vec<u128> = Vec::with_capacity(weights.len());
    for &w in weights {
        units.push(whole_units * w / total_weight);
        remainders.push(whole_units * w % total_weight);
    }
    let left = whole_units.saturating_sub(units.iter().sum());
    let mut order: Vec<usize> = (0..weights.len()).collect();
    order.sort_by_key(|&i| {
        (
            Reverse(remainders.get(i).copied().unwrap_or(0)),
            Reverse(stacks.get(i).copied().unwrap_or(0)),
            i,
        )
    });
    for &i in order.iter().take(usize::try_from(left).unwrap_or(0)) {
        if let Some(u) = units.get_mut(i) {
            *u += 1;
        }
    }
    finish(units, pool, stacks, unit)
}

/// Like [`apportion`], for quotas that are already amounts in cents (ICM equities, which are
/// floating point): they are scaled to sum to `pool` before rounding.
fn apportion_by_quota(pool: i64, quotas: &[f64], stacks: &[Chips], unit: i64) -> Vec<i64> {
    let unit = unit.max(1);
    let whole_units = pool / unit;
    let quota_sum: f64 = quotas.iter().sum();
    let scale = if quota_sum > 0.0 {
        whole_units as f64 / quota_sum
    } else {
        0.0
    };
    let scaled: Vec<f64> = quotas.iter().map(|q| (q * scale).max(0.0)).collect();
    let mut units: Vec<i64> = scaled.iter().map(|q| q.floor() as i64).collect();
    let fraction = |i: usize| scaled.get(i).map_or(0.0, |q| q - q.floor());
    let mut left = whole_units - units.iter().sum::<i64>();
    let mut order: Vec<usize> = (0..quotas.len()).collect();
    if left >= 0 {
        order.sort_by(|&a, &b| {
            fraction(b)
                .total_cmp(&fraction(a))
                .then(stacks.get(b).cmp(&stacks.get(a)))
                .then(a.cmp(&b))
        });
    } else {
        order.sort_by(|&a, &b| {
            fraction(a)
                .total_cmp(&fraction(b))
                .then(stacks.get(a).cmp(&stacks.get(b)))
                .then(b.cmp(&a))
        });
    }
    // Float error can leave the floors a unit or two away from the total either way; walking
    // the order repeatedly settles any difference while never taking a player below zero.
    while left != 0 && !order.is_empty() {
        let before = left;
        for &i in &order {
            let Some(u) = units.get_mut(i) else { continue };
            if left > 0 {
                *u += 1;
                left -= 1;
            } else if left < 0 && *u > 0 {
                *u -= 1;
                left += 1;
            }
            if left == 0 {
                break;
            }
        }
        if left == before {
            break;
        }
    }
    let units: Vec<u128> = units
        .into_iter()
        .map(|u| u128::try_from(u).unwrap_or(0))
        .collect();
    finish(units, pool, stacks, unit)
}

/// Turns whole units into cents and gives the odd cents to the biggest stack.
fn finish(units: Vec<u128>, pool: i64, stacks: &[Chips], unit: i64) -> Vec<i64> {
    let mut amounts: Vec<i64> = units
        .into_iter()
        .map(|u| i64::try_from(u).unwrap_or(0).saturating_mul(unit))
        .collect();
    let allotted: i64 = amounts.iter().sum();
    let biggest = (0..stacks.len()).min_by_key(|&i| (Reverse(stacks.get(i).copied()), i));
    if let Some(slot) = biggest.and_then(|i| amounts.get_mut(i)) {
        *slot += pool - allotted;
    }
    amounts
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn request(prizes: &[i64], stacks: &[Chips], method: DealMethod) -> DealRequest {
        DealRequest {
            prizes: prizes.iter().map(|&p| Money::units(p)).collect(),
            stacks: stacks.to_vec(),
            hold_back: Money::ZERO,
            method,
            rounding_unit: Money::cents(1),
        }
    }

    fn units(amounts: &[i64]) -> Vec<Money> {
        amounts.iter().map(|&a| Money::units(a)).collect()
    }

    #[test]
    fn even_chop_pays_everyone_the_same_with_odd_cents_to_the_biggest_stacks() {
        let mut req = request(&[0, 0, 0], &[100, 300, 200], DealMethod::EvenChop);
        req.prizes = vec![
            Money::cents(50_000),
            Money::cents(30_000),
            Money::cents(20_001),
        ];
        let deal = propose(&req).unwrap();
        assert_eq!(
            deal.payouts,
            vec![
                Money::cents(33_333),
                Money::cents(33_334),
                Money::cents(33_334)
            ]
        );
        assert!(deal.warnings.is_empty());
    }

    #[test]
    fn chip_chop_pays_in_proportion_to_chips_and_flags_prizes_out_of_range() {
        let deal = propose(&request(
            &[5_000, 3_000, 2_000],
            &[60, 25, 15],
            DealMethod::ChipChop { clamp: false },
        ))
        .unwrap();
        assert_eq!(deal.payouts, units(&[6_000, 2_500, 1_500]));
        assert_eq!(deal.warnings.len(), 2, "{:?}", deal.warnings);
        assert!(
            deal.warnings[0].contains("player #1 would receive 6000.00, more than the first prize")
        );
        assert!(deal.warnings[1]
            .contains("player #3 would receive 1500.00, less than the lowest prize"));
    }

    #[test]
    fn clamped_chip_chop_keeps_everyone_between_lowest_and_first_prize() {
        let deal = propose(&request(
            &[5_000, 3_000, 2_000],
            &[60, 25, 15],
            DealMethod::ChipChop { clamp: true },
        ))
        .unwrap();
        assert_eq!(deal.payouts, units(&[5_000, 3_000, 2_000]));
        assert_eq!(deal.warnings.len(), 2, "{:?}", deal.warnings);
    }

    #[test]
    fn clamped_chip_chop_does_not_cap_big_stacks_it_must_pay_less_to_lift_the_short_stack() {
        // Capping the three big stacks at first prize (100) would leave 40 for a short stack
        // owed at least 70; the right split lifts the short stack and shares the rest by chips.
        let deal = propose(&request(
            &[100, 90, 80, 70],
            &[105, 105, 105, 25],
            DealMethod::ChipChop { clamp: true },
        ))
        .unwrap();
        assert_eq!(deal.payouts, units(&[90, 90, 90, 70]));
        assert_eq!(deal.warnings.len(), 1, "{:?}", deal.warnings);
    }

    #[test]
    fn next_payout_plus_chips_pays_the_lowest_prize_then_splits_the_rest_by_chips() {
        let deal = propose(&request(
            &[5_000, 3_000, 2_000],
            &[50, 30, 20],
            DealMethod::NextPayoutPlusChips,
        ))
        .unwrap();
        assert_eq!(deal.payouts, units(&[4_000, 3_200, 2_800]));
        assert!(deal.warnings.is_empty());
    }

    #[test]
    fn icm_deal_pays_the_published_example_to_the_cent() {
        // The Wikipedia example (see icm.rs): 45.178…, 32.25, 22.571… rounded by largest
        // remainder so the cents still add up to 100.00.
        let deal = propose(&request(
            &[70, 30, 0],
            &[5_000, 3_000, 2_000],
            DealMethod::Icm,
        ))
        .unwrap();
        assert_eq!(
            deal.payouts,
            vec![
                Money::cents(4_518),
                Money::cents(3_225),
                Money::cents(2_257)
            ]
        );
    }

    #[test]
    fn icm_deal_rounds_to_the_unit_with_odd_cents_to_the_chip_leader() {
        let mut req = request(&[0, 0, 0], &[5_000, 3_000, 2_000], DealMethod::Icm);
        req.prizes = vec![Money::cents(700_003), Money::cents(300_000), Money::ZERO];
        req.rounding_unit = Money::units(5);
        let deal = propose(&req).unwrap();
        // 10000.00 is 2000 units of 5.00; the equities are 903.57, 645.00 and 451.43 units.
        // Floors 903/645/451 leave one unit, which goes to the largest fraction (player 1), and
        // the 0.03 below one unit goes to the chip leader.
        assert_eq!(
            deal.payouts,
            vec![
                Money::cents(452_003),
                Money::cents(322_500),
                Money::cents(225_500)
            ]
        );
    }

    #[test]
    fn hold_back_comes_off_the_top_prizes() {
        assert_eq!(take_off_top(&[1_000, 500, 200], 300), vec![700, 500, 200]);
        assert_eq!(take_off_top(&[1_000, 500, 200], 700), vec![400, 400, 200]);
        assert_eq!(take_off_top(&[1_000, 500, 200], 1_101), vec![200, 200, 199]);
        assert_eq!(take_off_top(&[1_000, 500, 200], 1_700), vec![0, 0, 0]);
        assert_eq!(take_off_top(&[1_000, 500, 200], 0), vec![1_000, 500, 200]);
    }

    #[test]
    fn held_back_money_is_not_dealt() {
        let mut req = request(&[1_000, 500, 200], &[10, 10, 10], DealMethod::Icm);
        req.hold_back = Money::units(300);
        let deal = propose(&req).unwrap();
        assert_eq!(deal.held_back, Money::units(300));
        // Equal stacks share the 1400.00 left equally; the odd cent goes to the first player.
        assert_eq!(
            deal.payouts,
            vec![
                Money::cents(46_667),
                Money::cents(46_667),
                Money::cents(46_666)
            ]
        );
    }

    #[test]
    fn chip_chop_rounds_to_the_unit_with_odd_cents_to_the_chip_leader() {
        let mut req = request(
            &[0, 0, 0],
            &[20, 50, 30],
            DealMethod::ChipChop { clamp: false },
        );
        req.prizes = vec![
            Money::cents(500_003),
            Money::cents(300_000),
            Money::cents(200_000),
        ];
        req.rounding_unit = Money::units(25);
        let deal = propose(&req).unwrap();
        // 10000.03: 400 units of 25.00 split 80/200/120, the 0.03 to the chip leader.
        assert_eq!(
            deal.payouts,
            vec![
                Money::units(2_000),
                Money::cents(500_003),
                Money::units(3_000)
            ]
        );
    }

    #[test]
    fn next_payout_after_a_hold_back_uses_the_reduced_prizes() {
        let mut req = request(
            &[1_000, 500, 200],
            &[50, 30, 20],
            DealMethod::NextPayoutPlusChips,
        );
        req.hold_back = Money::units(1_000);
        let deal = propose(&req).unwrap();
        // 700.00 is left to deal over the reduced prizes 250/250/200: everyone gets 200.00 and
        // the 100.00 above that goes by chips.
        assert_eq!(deal.payouts, units(&[250, 230, 220]));
    }

    #[test]
    fn a_deal_for_one_player_is_refused() {
        let err = propose(&request(&[100], &[10], DealMethod::EvenChop)).unwrap_err();
        assert_eq!(err.code(), "refused");
    }

    #[test]
    fn a_deal_needs_one_prize_per_player() {
        let err = propose(&request(&[100, 50], &[10, 20, 30], DealMethod::EvenChop)).unwrap_err();
        assert!(
            err.to_string().contains("2 prizes are left for 3 players"),
            "{err}"
        );
    }

    #[test]
    fn a_player_without_chips_is_refused() {
        let err = propose(&request(&[100, 50], &[10, 0], DealMethod::EvenChop)).unwrap_err();
        assert!(err.to_string().contains("player #2 has no chips"), "{err}");
    }

    #[test]
    fn holding_back_more_than_the_prizes_is_refused() {
        let mut req = request(&[100, 50], &[10, 20], DealMethod::EvenChop);
        req.hold_back = Money::units(151);
        let err = propose(&req).unwrap_err();
        assert_eq!(
            err.to_string(),
            "cannot hold back 151.00 to play for: only 150.00 is left to pay"
        );
    }

    #[test]
    fn a_negative_hold_back_is_refused() {
        let mut req = request(&[100, 50], &[10, 20], DealMethod::EvenChop);
        req.hold_back = Money::units(-1);
        assert!(propose(&req).is_err());
    }

    #[test]
    fn prizes_out_of_order_are_refused() {
        let err = propose(&request(&[50, 100], &[10, 20], DealMethod::EvenChop)).unwrap_err();
        assert!(err.to_string().contains("best first"), "{err}");
    }

    #[test]
    fn a_zero_rounding_unit_is_refused() {
        let mut req = request(&[100, 50], &[10, 20], DealMethod::EvenChop);
        req.rounding_unit = Money::ZERO;
        assert!(propose(&req).is_err());
    }

    #[test]
    fn icm_deal_beyond_the_exact_limit_is_refused() {
        let prizes = vec![10; 21];
        let err = propose(&request(&prizes, &[100; 21], DealMethod::Icm)).unwrap_err();
        assert_eq!(err.code(), "refused");
    }

    #[test]
    fn deal_method_serialises_with_a_type_tag() {
        let json = serde_json::to_string(&DealMethod::ChipChop { clamp: true }).unwrap();
        assert_eq!(json, r#"{"type":"chip_chop","clamp":true}"#);
        let json = serde_json::to_string(&DealMethod::Icm).unwrap();
        assert_eq!(json, r#"{"type":"icm"}"#);
    }

    fn arbitrary_method() -> impl Strategy<Value = DealMethod> {
        prop_oneof![
            Just(DealMethod::EvenChop),
            Just(DealMethod::ChipChop { clamp: false }),
            Just(DealMethod::ChipChop { clamp: true }),
            Just(DealMethod::NextPayoutPlusChips),
            Just(DealMethod::Icm),
        ]
    }

    fn arbitrary_request() -> impl Strategy<Value = DealRequest> {
        (2usize..8)
            .prop_flat_map(|players| {
                (
                    prop::collection::vec(0i64..5_000_000, players),
                    prop::collection::vec(1u64..10_000_000, players),
                    0u32..=100,
                    arbitrary_method(),
                    prop::sample::select(vec![1i64, 100, 500, 2_500]),
                )
            })
            .prop_map(|(mut prizes, stacks, hold_percent, method, unit)| {
                prizes.sort_unstable_by(|a, b| b.cmp(a));
                let pool: i64 = prizes.iter().sum();
                DealRequest {
                    prizes: prizes.into_iter().map(Money::cents).collect(),
                    stacks,
                    hold_back: Money::cents(pool * i64::from(hold_percent) / 400),
                    method,
                    rounding_unit: Money::cents(unit),
                }
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn every_deal_pays_exactly_the_pool_less_the_hold_back(req in arbitrary_request()) {
            let deal = propose(&req).unwrap();
            let pool: Money = req.prizes.iter().copied().sum();
            prop_assert_eq!(deal.payouts.len(), req.stacks.len());
            prop_assert_eq!(deal.payouts.iter().copied().sum::<Money>() + deal.held_back, pool);
            prop_assert!(deal.payouts.iter().all(|&p| p >= Money::ZERO));
        }

        #[test]
        fn clamped_chip_chop_stays_within_the_prizes(mut req in arbitrary_request()) {
            req.method = DealMethod::ChipChop { clamp: true };
            req.rounding_unit = Money::cents(1);
            req.hold_back = Money::ZERO;
            let deal = propose(&req).unwrap();
            let first = req.prizes[0];
            let lowest = *req.prizes.last().unwrap();
            prop_assert!(deal.payouts.iter().all(|&p| p >= lowest && p <= first), "{:?}", deal);
            prop_assert!(!deal.warnings.iter().any(|w| w.contains("unclamped")));
        }
    }
}
