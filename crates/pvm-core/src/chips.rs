//! Tournament chips: the denominations in play, when the small ones are coloured up, and the
//! arithmetic of the chip race (TDA 2024 Rule 24).
//!
//! ## The chip race implemented here
//! When a denomination is removed, each player's chips of it are handled in three steps:
//! 1. **Direct exchange.** Every full set of raced chips worth one chip of the next denomination
//!    is exchanged for that chip, at equal value.
//! 2. **The race.** The chips left over (fewer than one new chip's worth per player) are the odd
//!    chips. Each player gets one race card per odd chip. The odd chips of all players are
//!    pooled; the pool buys `total odd value / next value` new chips, rounded to the nearest
//!    whole chip with a half rounded up. The cards are dealt and the new chips go to the highest
//!    cards in order, at most one chip to a player (TDA 2024 Rule 24-A; the race starts in seat 1,
//!    which is the dealing order and not our concern here).
//! 3. **Nobody is raced out.** A player left with no chips at all after the race gets one chip
//!    of the smallest denomination still in play, which is the denomination raced for.
//!
//! Rounding the pool half up is common house practice rather than TDA text. Because every odd
//! chip is raced, no chip of a removed denomination is left over afterwards, so the equal-value
//! exchange and the removal without compensation of TDA 2024 Rule 24-C never come into play.
//!
//! ## What is conserved
//! The direct exchange conserves value exactly. The race replaces the pooled odd value `V` with
//! `n × next` where `n = round_half_up(V / next)`, so the total value in play changes by
//! `n × next − V`, which lies in `(−next/2, +next/2]`. Each player protected by step 3 adds one
//! more chip of `next`. Nothing else is created or lost.

use crate::error::{DomainError, DomainResult};
use crate::money::Chips;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// One chip denomination and its colour.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Denomination {
    pub value: Chips,
    pub colour: String,
}

/// The denominations a tournament uses, smallest first once validated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChipSet {
    pub denominations: Vec<Denomination>,
}

/// At the break after `after_level`, the denominations in `remove` are coloured up and raced off.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ColourUp {
    pub after_level: u32,
    pub remove: Vec<Chips>,
}

/// One player's part in a chip race.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RacePlayer {
    /// Value of the raced denomination the player holds before the colour-up.
    pub holding: Chips,
    /// Value the player receives in new chips by direct exchange, before the race.
    pub exchanged: Chips,
    /// Race cards dealt to the player: one per odd chip left after the exchange.
    pub race_cards: u64,
}

/// The arithmetic of one chip race, ready for the cards to be dealt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChipRacePlan {
    pub raced_value: Chips,
    pub next_value: Chips,
    /// Per player, in the order given to [`chip_race`].
    pub players: Vec<RacePlayer>,
    /// Value of all odd chips pooled for the race.
    pub odd_value: Chips,
    /// New chips raced for: `odd_value / next_value`, half rounded up.
    pub chips_raced_for: u64,
}

impl ChipSet {
    /// A validated chip set, sorted smallest first: at least one denomination, every value
    /// above zero and different, every colour named and different (colours are how players and
    /// dealers tell chips apart, so two denominations can never share one).
    pub fn new(mut denominations: Vec<Denomination>) -> DomainResult<ChipSet> {
        if denominations.is_empty() {
            return Err(DomainError::invalid(
                "a chip set needs at least one denomination",
            ));
        }
        let mut values = BTreeSet::new();
        let mut colours = BTreeSet::new();
        for d in &denominations {
            let colour = d.colour.trim().to_lowercase();
            if d.value == 0 {
                return Err(DomainError::invalid(format!(
                    "the {} chip has no value: every chip must be worth at least 1",
                    d.colour
                )));
            }
            if colour.is_empty() {
                return Err(DomainError::invalid(format!(
                    "the {} chip needs a colour",
                    d.value
                )));
            }
            if !values.insert(d.value) {
                return Err(DomainError::invalid(format!(
                    "two denominations are worth {}",
                    d.value
                )));
            }
            if !colours.insert(colour) {
                return Err(DomainError::invalid(format!(
                    "two denominations are {}: each value needs its own colour",
                    d.colour
                )));
            }
        }
        denominations.sort_by_key(|d| d.value);
        Ok(ChipSet { denominations })
    }

    /// Checks a colour-up schedule against this set: levels strictly increasing, only
    /// denominations of this set, each removed once, always the smallest ones still in play
    /// (they are raced for the next one up, TDA 2024 Rule 24), each a whole fraction of the next
    /// denomination up, and at least one denomination left at the end.
    pub fn check_colour_ups(&self, colour_ups: &[ColourUp]) -> DomainResult<()> {
        let mut in_play: Vec<Chips> = self.denominations.iter().map(|d| d.value).collect();
        in_play.sort_unstable();
        let mut last_level: Option<u32> = None;
        for colour_up in colour_ups {
            if last_level.is_some_and(|l| colour_up.after_level <= l) {
                return Err(DomainError::invalid(format!(
                    "the colour-up after level {} is out of order: colour-ups must be listed \
                     by level, one per break",
                    colour_up.after_level
                )));
            }
            last_level = Some(colour_up.after_level);
            if colour_up.remove.is_empty() {
                return Err(DomainError::invalid(format!(
                    "the colour-up after level {} removes no denomination",
                    colour_up.after_level
                )));
            }
            let mut removing = colour_up.remove.clone();
            removing.sort_unstable();
            for value in removing {
                if !self.denominations.iter().any(|d| d.value == value) {
                    return Err(DomainError::invalid(format!(
                        "the colour-up after level {} removes {value} chips, which are not in \
                         the chip set",
                        colour_up.after_level
                    )));
                }
                if in_play.first() != Some(&value) {
                    return Err(DomainError::invalid(format!(
                        "the colour-up after level {} removes {value} chips, but they are not \
                         the smallest denomination still in play",
                        colour_up.after_level
                    )));
                }
                in_play.remove(0);
                let Some(&next) = in_play.first() else {
                    return Err(DomainError::invalid(format!(
                        "the colour-up after level {} would remove every denomination",
                        colour_up.after_level
                    )));
                };
                if next.checked_rem(value) != Some(0) {
                    return Err(DomainError::invalid(format!(
                        "{value} chips cannot be coloured up into {next} chips: {next} is not a \
                         whole number of {value} chips"
                    )));
                }
            }
        }
        Ok(())
    }

    /// The denominations still in play after every colour-up scheduled up to `level`.
    pub fn in_play_after(&self, colour_ups: &[ColourUp], level: u32) -> Vec<Denomination> {
        let removed: BTreeSet<Chips> = colour_ups
            .iter()
            .filter(|c| c.after_level <= level)
            .flat_map(|c| c.remove.iter().copied())
            .collect();
        self.denominations
            .iter()
            .filter(|d| !removed.contains(&d.value))
            .cloned()
            .collect()
    }
}

/// Works out a chip race. `odd_chips[i]` is the value player `i` holds in the raced-off
/// denomination (e.g. 175 in 25-chips); `next_value` is the denomination raced for, which must
/// be a whole number (at least 2) of raced chips. See the module documentation for the rule.
pub fn chip_race(
    odd_chips: &[Chips],
    raced_value: Chips,
    next_value: Chips,
) -> DomainResult<ChipRacePlan> {
    if next_value <= raced_value || next_value.checked_rem(raced_value) != Some(0) {
        return Err(DomainError::invalid(format!(
            "{raced_value} chips cannot be raced for {next_value} chips: the new chip must be \
             worth a whole number of at least two old chips"
        )));
    }
    let per_new_chip = next_value / raced_value;
    let mut players = Vec::with_capacity(odd_chips.len());
    let mut odd_value: Chips = 0;
    for (index, &holding) in odd_chips.iter().enumerate() {
        if holding.checked_rem(raced_value) != Some(0) {
            return Err(DomainError::invalid(format!(
                "player {} holds {holding} in {raced_value} chips, which is not a whole number \
                 of chips",
                index + 1
            )));
        }
        let count = holding / raced_value;
        let odd = count % per_new_chip;
        let exchanged = (count / per_new_chip) * next_value;
        odd_value = odd_value.checked_add(odd * raced_value).ok_or_else(|| {
            DomainError::invalid("the chips raced add up to more than can be counted")
        })?;
        players.push(RacePlayer {
            holding,
            exchanged,
            race_cards: odd,
        });
    }
    // Half a new chip or more in the pool buys a whole one: n = floor((2V + next) / (2 next)).
    let chips_raced_for =
        (u128::from(odd_value) * 2 + u128::from(next_value)) / (u128::from(next_value) * 2);
    let chips_raced_for = u64::try_from(chips_raced_for)
        .map_err(|_| DomainError::invalid("the chips raced add up to more than can be counted"))?;
    Ok(ChipRacePlan {
        raced_value,
        next_value,
        players,
        odd_value,
        chips_raced_for,
    })
}

/// Settles a race once the cards are dealt, returning each player's whole stack afterwards.
///
/// `winners_in_card_order` lists players (indices into the plan) by their race cards, highest
/// card first; a player may appear once per card. New chips go down the list, one per player at
/// most, until `chips_raced_for` are given. `rest_of_stacks[i]` is player `i`'s value in every
/// other denomination, so the result is `rest + exchanged + won`, plus one chip of the smallest
/// denomination still in play (the one raced for) for a player who would otherwise have nothing
/// (TDA 2024 Rule 24-A: no player is raced out).
pub fn settle_chip_race(
    plan: &ChipRacePlan,
    winners_in_card_order: &[usize],
    rest_of_stacks: &[Chips],
) -> DomainResult<Vec<Chips>> {
    if rest_of_stacks.len() != plan.players.len() {
        return Err(DomainError::invalid(format!(
            "the race has {} players but {} stacks were given",
            plan.players.len(),
            rest_of_stacks.len()
        )));
    }
    let mut won = vec![false; plan.players.len()];
    let mut given: u64 = 0;
    for &index in winners_in_card_order {
        if given == plan.chips_raced_for {
            break;
        }
        let Some(player) = plan.players.get(index) else {
            return Err(DomainError::invalid(format!(
                "the card order names player {}, but the race has only {} players",
                index + 1,
                plan.players.len()
            )));
        };
        if player.race_cards == 0 {
            return Err(DomainError::invalid(format!(
                "player {} has no race card, so cannot win a chip",
                index + 1
            )));
        }
        if let Some(slot) = won.get_mut(index) {
            if !*slot {
                *slot = true;
                given += 1;
            }
        }
    }
    if given < plan.chips_raced_for {
        return Err(DomainError::invalid(format!(
            "{} chips are raced for but the card order names only {given} different players",
            plan.chips_raced_for
        )));
    }
    plan.players
        .iter()
        .zip(rest_of_stacks)
        .zip(won)
        .map(|((player, &rest), won)| {
            let prize = if won { plan.next_value } else { 0 };
            let total = rest
                .checked_add(player.exchanged)
                .and_then(|t| t.checked_add(prize))
                .ok_or_else(|| DomainError::invalid("a stack is larger than can be counted"))?;
            let raced_out = total == 0 && player.holding > 0;
            Ok(if raced_out { plan.next_value } else { total })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn chip(value: Chips, colour: &str) -> Denomination {
        Denomination {
            value,
            colour: colour.to_string(),
        }
    }

    fn standard_set() -> ChipSet {
        ChipSet::new(vec![
            chip(1000, "yellow"),
            chip(25, "green"),
            chip(100, "black"),
            chip(500, "purple"),
        ])
        .unwrap()
    }

    #[test]
    fn a_chip_set_is_sorted_smallest_first() {
        let values: Vec<Chips> = standard_set()
            .denominations
            .iter()
            .map(|d| d.value)
            .collect();
        assert_eq!(values, vec![25, 100, 500, 1000]);
    }

    #[test]
    fn a_chip_set_refuses_duplicate_values_shared_colours_and_worthless_chips() {
        let empty = ChipSet::new(vec![]).unwrap_err();
        assert!(empty.to_string().contains("at least one"), "{empty}");
        let twice = ChipSet::new(vec![chip(25, "green"), chip(25, "red")]).unwrap_err();
        assert!(
            twice.to_string().contains("two denominations are worth 25"),
            "{twice}"
        );
        let colour = ChipSet::new(vec![chip(25, "Green"), chip(100, "green ")]).unwrap_err();
        assert!(colour.to_string().contains("own colour"), "{colour}");
        let zero = ChipSet::new(vec![chip(0, "white")]).unwrap_err();
        assert!(zero.to_string().contains("no value"), "{zero}");
        let unnamed = ChipSet::new(vec![chip(5, " ")]).unwrap_err();
        assert!(unnamed.to_string().contains("needs a colour"), "{unnamed}");
    }

    #[test]
    fn rule_24_colour_ups_remove_the_smallest_denominations_in_order() {
        let set = standard_set();
        let good = vec![
            ColourUp {
                after_level: 4,
                remove: vec![25],
            },
            ColourUp {
                after_level: 8,
                remove: vec![100],
            },
        ];
        set.check_colour_ups(&good).unwrap();
        let in_play: Vec<Chips> = set
            .in_play_after(&good, 8)
            .iter()
            .map(|d| d.value)
            .collect();
        assert_eq!(in_play, vec![500, 1000]);
        assert_eq!(set.in_play_after(&good, 7).len(), 3);

        let skips = vec![ColourUp {
            after_level: 4,
            remove: vec![100],
        }];
        let err = set.check_colour_ups(&skips).unwrap_err();
        assert!(err.to_string().contains("not the smallest"), "{err}");
        let unknown = vec![ColourUp {
            after_level: 4,
            remove: vec![5],
        }];
        assert!(set
            .check_colour_ups(&unknown)
            .unwrap_err()
            .to_string()
            .contains("not in the chip set"));
        let out_of_order = vec![
            ColourUp {
                after_level: 8,
                remove: vec![25],
            },
            ColourUp {
                after_level: 4,
                remove: vec![100],
            },
        ];
        assert!(set
            .check_colour_ups(&out_of_order)
            .unwrap_err()
            .to_string()
            .contains("out of order"));
        let everything = vec![ColourUp {
            after_level: 1,
            remove: vec![25, 100, 500, 1000],
        }];
        assert!(set
            .check_colour_ups(&everything)
            .unwrap_err()
            .to_string()
            .contains("every denomination"));
        let uneven = ChipSet::new(vec![chip(25, "green"), chip(60, "odd")]).unwrap();
        let err = uneven
            .check_colour_ups(&[ColourUp {
                after_level: 2,
                remove: vec![25],
            }])
            .unwrap_err();
        assert!(err.to_string().contains("not a whole number"), "{err}");
    }

    #[test]
    fn rule_24_full_sets_are_exchanged_and_each_odd_chip_gets_a_race_card() {
        // 25s raced for 100s: 175 = one 100 by exchange + 3 odd chips.
        let plan = chip_race(&[175, 50, 25, 200], 25, 100).unwrap();
        let exchanged: Vec<Chips> = plan.players.iter().map(|p| p.exchanged).collect();
        let cards: Vec<u64> = plan.players.iter().map(|p| p.race_cards).collect();
        assert_eq!(exchanged, vec![100, 0, 0, 200]);
        assert_eq!(cards, vec![3, 2, 1, 0]);
        // Odd value 150 = 1.5 new chips: a half rounds up.
        assert_eq!(plan.odd_value, 150);
        assert_eq!(plan.chips_raced_for, 2);
    }

    #[test]
    fn rule_24_less_than_half_a_chip_in_the_pool_is_raced_for_nothing() {
        let plan = chip_race(&[25, 0, 0], 25, 100).unwrap();
        assert_eq!(plan.chips_raced_for, 0);
        let stacks = settle_chip_race(&plan, &[], &[500, 300, 0]).unwrap();
        assert_eq!(stacks, vec![500, 300, 0]);
    }

    #[test]
    fn rule_24_a_at_most_one_chip_goes_to_a_player() {
        let plan = chip_race(&[75, 75, 25], 25, 100).unwrap();
        assert_eq!(plan.chips_raced_for, 2);
        // Player 0 holds the two highest cards, but wins only one chip.
        let stacks = settle_chip_race(&plan, &[0, 0, 2, 1, 1], &[1000, 1000, 1000]).unwrap();
        assert_eq!(stacks, vec![1100, 1000, 1100]);
    }

    #[test]
    fn rule_24_a_no_player_is_raced_out() {
        let plan = chip_race(&[25, 75], 25, 100).unwrap();
        assert_eq!(plan.chips_raced_for, 1);
        // Player 0 had nothing but one 25 chip and lost the race: gets one 100 chip.
        let stacks = settle_chip_race(&plan, &[1, 0], &[0, 400]).unwrap();
        assert_eq!(stacks, vec![100, 500]);
        // With other chips behind, losing the race takes nothing more.
        let stacks = settle_chip_race(&plan, &[1, 0], &[300, 400]).unwrap();
        assert_eq!(stacks, vec![300, 500]);
    }

    #[test]
    fn a_race_refuses_malformed_input_and_too_few_winners() {
        assert!(chip_race(&[25], 25, 60).is_err());
        assert!(chip_race(&[25], 100, 100).is_err());
        assert!(chip_race(&[25], 0, 100).is_err());
        let err = chip_race(&[30], 25, 100).unwrap_err();
        assert!(
            err.to_string().contains("not a whole number of chips"),
            "{err}"
        );
        let plan = chip_race(&[75, 75], 25, 100).unwrap();
        let err = settle_chip_race(&plan, &[0, 0], &[0, 0]).unwrap_err();
        assert!(
            err.to_string().contains("names only 1 different players"),
            "{err}"
        );
        let err = settle_chip_race(&plan, &[5], &[0, 0]).unwrap_err();
        assert!(err.to_string().contains("only 2 players"), "{err}");
        assert!(settle_chip_race(&plan, &[0, 1], &[0]).is_err());
        let no_cards = chip_race(&[75, 100], 25, 100).unwrap();
        assert!(settle_chip_race(&no_cards, &[1], &[0, 0]).is_err());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn a_chip_race_conserves_value_up_to_half_a_new_chip_and_the_protection_chips(
            raced_chips in prop::collection::vec(0u64..40, 1..12),
            rest in prop::collection::vec(prop_oneof![Just(0u64), 1u64..10_000], 12),
            (raced_value, per_new) in (prop_oneof![Just(5u64), Just(25), Just(100)], 2u64..=10),
            order_seed in any::<u64>(),
        ) {
            let next_value = raced_value * per_new;
            let holdings: Vec<Chips> = raced_chips.iter().map(|c| c * raced_value).collect();
            let rest = &rest[..holdings.len()];
            let plan = chip_race(&holdings, raced_value, next_value).unwrap();

            // Direct exchange is exact: exchanged + odd chips = holding, for every player.
            for p in &plan.players {
                prop_assert_eq!(p.exchanged + p.race_cards * raced_value, p.holding);
                prop_assert!(p.race_cards < per_new);
            }
            let racers: Vec<usize> =
                (0..plan.players.len()).filter(|i| plan.players[*i].race_cards > 0).collect();
            prop_assert!(plan.chips_raced_for as usize <= racers.len());

            // Any card order: rotate the racers by the seed.
            let mut order = racers.clone();
            if !order.is_empty() {
                let k = (order_seed as usize) % order.len();
                order.rotate_left(k);
            }
            let stacks = settle_chip_race(&plan, &order, rest).unwrap();

            let before: i128 = holdings.iter().chain(rest).map(|v| i128::from(*v)).sum();
            let after: i128 = stacks.iter().map(|v| i128::from(*v)).sum();
            // The racers are distinct, so the first `chips_raced_for` of them win.
            let winners = &order[..plan.chips_raced_for as usize];
            let protected = (0..plan.players.len())
                .filter(|i| {
                    let p = &plan.players[*i];
                    rest[*i] == 0 && p.exchanged == 0 && p.holding > 0 && !winners.contains(i)
                })
                .count();
            let rounding = i128::from(plan.chips_raced_for * next_value) - i128::from(plan.odd_value);
            prop_assert!(2 * rounding > -i128::from(next_value) && 2 * rounding <= i128::from(next_value));
            prop_assert_eq!(after, before + rounding + protected as i128 * i128::from(next_value));
            for ((s, p), r) in stacks.iter().zip(&plan.players).zip(rest) {
                if p.holding + r > 0 {
                    prop_assert!(*s > 0, "a player was raced out");
                }
            }
        }
    }
}
