//! What a tournament costs and allows: buy-in, fee, bounty, stacks, late registration,
//! re-entry, rebuys, add-on, guarantee, payouts. Checked once, so the rules can trust it.

use crate::chips::{ChipSet, ColourUp, Denomination};
use crate::error::{DomainError, DomainResult};
use crate::money::{Chips, Money};
use crate::payouts::PayoutPlan;
use crate::structure::{Item, Structure};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BountyKind {
    /// No bounties: the whole contribution goes to the prize pool.
    #[default]
    None,
    /// Whoever eliminates a player collects that player's bounty.
    Fixed,
    /// Progressive knockout: half of the busted player's bounty is paid to the eliminator,
    /// the other half is added to the eliminator's own bounty.
    Progressive,
}

/// Late registration closes at the end of `until_level` (or at the end of the break that
/// follows it, when `through_break`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LateRegistration {
    pub until_level: u32,
    #[serde(default)]
    pub through_break: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReentryRule {
    /// Re-entries per player (not counting the first entry).
    pub max_per_player: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RebuyRule {
    /// What the player pays, fee included.
    pub price: Money,
    pub fee: Money,
    pub chips: Chips,
    /// Rebuys are allowed until the end of this level.
    pub until_level: u32,
    /// A player may rebuy only with a stack at or below this (`None`: any stack).
    pub max_stack: Option<Chips>,
    /// Rebuys per entry (`None`: unlimited).
    pub max_per_entry: Option<u32>,
}

/// The add-on is taken once per entry, from the start of `from_level` until the end of
/// `until_level` (including the break that follows `until_level`, where add-ons usually happen).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddonRule {
    pub price: Money,
    pub fee: Money,
    pub chips: Chips,
    pub from_level: u32,
    pub until_level: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TournamentConfig {
    pub name: String,
    /// What a player pays for one entry: prize-pool contribution + fee + bounty.
    pub buy_in: Money,
    /// The house's part of the buy-in.
    #[serde(default)]
    pub fee: Money,
    /// The bounty part of the buy-in (kept out of the prize pool).
    #[serde(default)]
    pub bounty: Money,
    #[serde(default)]
    pub bounty_kind: BountyKind,
    pub starting_stack: Chips,
    #[serde(default)]
    pub late_registration: Option<LateRegistration>,
    #[serde(default)]
    pub reentry: Option<ReentryRule>,
    #[serde(default)]
    pub rebuy: Option<RebuyRule>,
    #[serde(default)]
    pub addon: Option<AddonRule>,
    #[serde(default)]
    pub guarantee: Option<Money>,
    #[serde(default = "default_payout_plan")]
    pub payout_plan: PayoutPlan,
    /// Payouts are rounded to this unit; `None` uses the venue's setting.
    #[serde(default)]
    pub rounding_unit: Option<Money>,
    /// Hand-for-hand: the clock loses this much per hand played (RP-8; default 2 minutes).
    #[serde(default = "default_hand_for_hand_secs")]
    pub hand_for_hand_secs_per_hand: u32,
    /// Highest number of entries accepted (`None`: no cap).
    #[serde(default)]
    pub max_entries: Option<u32>,
    /// The chips in play and which are coloured up at which break (TDA 2024 Rule 24).
    /// `None`: the structure's own break notes are all the room is told.
    #[serde(default)]
    pub chips: Option<ChipPlan>,
}

/// The tournament's chip set and its colour-up schedule (TDA 2024 Rule 24): at the break after
/// each listed level, the listed denominations are coloured up and raced off.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChipPlan {
    pub chip_set: ChipSet,
    #[serde(default)]
    pub colour_ups: Vec<ColourUp>,
}

impl ChipPlan {
    /// Checks the plan against the structure and the stacks it must make up: a valid chip set,
    /// a valid schedule (smallest chips first, each a whole fraction of the next), a break after
    /// every level named, every blind and ante of every level payable with the chips still in
    /// play at that level, and every stack a tournament hands out made of those chips.
    pub fn validate(&self, structure: &Structure, stacks: &[(&str, Chips)]) -> DomainResult<()> {
        let set = ChipSet::new(self.chip_set.denominations.clone())?;
        set.check_colour_ups(&self.colour_ups)?;
        for c in &self.colour_ups {
            let Some(index) = structure.index_of_level(c.after_level) else {
                return Err(DomainError::invalid(format!(
                    "the colour-up after level {} names a level the structure does not have",
                    c.after_level
                )));
            };
            if !matches!(structure.items.get(index + 1), Some(Item::Break(_))) {
                return Err(DomainError::invalid(format!(
                    "the colour-up after level {0} needs a break after level {0}: chips are \
                     raced off during a break (TDA 2024 Rule 24)",
                    c.after_level
                )));
            }
        }
        let smallest = set.denominations.first().map(|d| d.value).unwrap_or(1);
        for (what, stack) in stacks {
            if stack % smallest != 0 {
                return Err(DomainError::invalid(format!(
                    "{what} of {} cannot be made from the chip set: its smallest chip is {}",
                    crate::format::chips(*stack),
                    crate::format::chips(smallest)
                )));
            }
        }
        for (i, level) in structure.levels().enumerate() {
            let number = u32::try_from(i + 1).unwrap_or(u32::MAX);
            let in_play = set.in_play_after(&self.colour_ups, number.saturating_sub(1));
            let Some(chip) = in_play.first().map(|d| d.value) else {
                continue;
            };
            for (what, amount) in [
                ("small blind", level.small_blind),
                ("big blind", level.big_blind),
                ("ante", level.ante),
            ] {
                if amount % chip != 0 {
                    return Err(DomainError::invalid(format!(
                        "level {number}: the {what} of {} cannot be paid with the chips in play \
                         then (the smallest is {}){}",
                        crate::format::chips(amount),
                        crate::format::chips(chip),
                        if chip > smallest {
                            ": colour up later, or change the blinds"
                        } else {
                            ""
                        }
                    )));
                }
            }
        }
        Ok(())
    }

    /// What the room is told at the break after `level`, if chips are raced off then:
    /// "Colour up: race off the green 25s for black 100s".
    pub fn colour_up_note(&self, level: u32) -> Option<String> {
        let colour_up = self.colour_ups.iter().find(|c| c.after_level == level)?;
        let of = |value: Chips| -> Option<&Denomination> {
            self.chip_set
                .denominations
                .iter()
                .find(|d| d.value == value)
        };
        let mut removed: Vec<&Denomination> =
            colour_up.remove.iter().filter_map(|v| of(*v)).collect();
        removed.sort_by_key(|d| d.value);
        let next = self
            .chip_set
            .in_play_after(&self.colour_ups, level)
            .into_iter()
            .min_by_key(|d| d.value)?;
        Some(crate::format::colour_up(&removed, &next))
    }
}

fn default_payout_plan() -> PayoutPlan {
    PayoutPlan::Standard { paid_percent: 10 }
}

fn default_hand_for_hand_secs() -> u32 {
    120
}

impl TournamentConfig {
    /// A plain freezeout: name, buy-in split, stack; everything else off.
    pub fn freezeout(name: &str, buy_in: Money, fee: Money, starting_stack: Chips) -> Self {
        TournamentConfig {
            name: name.to_string(),
            buy_in,
            fee,
            bounty: Money::ZERO,
            bounty_kind: BountyKind::None,
            starting_stack,
            late_registration: None,
            reentry: None,
            rebuy: None,
            addon: None,
            guarantee: None,
            payout_plan: default_payout_plan(),
            rounding_unit: None,
            hand_for_hand_secs_per_hand: default_hand_for_hand_secs(),
            max_entries: None,
            chips: None,
        }
    }

    /// What one entry puts in the prize pool.
    pub fn contribution(&self) -> Money {
        self.buy_in - self.fee - self.bounty
    }

    pub fn validate(&self, structure: &Structure) -> DomainResult<()> {
        let name = self.name.trim();
        if name.is_empty() {
            return Err(DomainError::invalid("a tournament needs a name"));
        }
        if name.chars().count() > 80 {
            return Err(DomainError::invalid(
                "the tournament name is longer than 80 characters",
            ));
        }
        for (what, m) in [
            ("buy-in", self.buy_in),
            ("fee", self.fee),
            ("bounty", self.bounty),
        ] {
            if m.as_cents() < 0 {
                return Err(DomainError::invalid(format!(
                    "the {what} cannot be negative"
                )));
            }
        }
        if self.contribution().as_cents() < 0 {
            return Err(DomainError::invalid(format!(
                "fee ({}) plus bounty ({}) is more than the buy-in ({})",
                crate::format::money(self.fee),
                crate::format::money(self.bounty),
                crate::format::money(self.buy_in)
            )));
        }
        if self.bounty_kind == BountyKind::None && self.bounty.as_cents() != 0 {
            return Err(DomainError::invalid(
                "a bounty amount is set but the bounty kind is none",
            ));
        }
        if self.bounty_kind != BountyKind::None && self.bounty.as_cents() == 0 {
            return Err(DomainError::invalid(
                "a bounty tournament needs a bounty amount",
            ));
        }
        if self.starting_stack == 0 {
            return Err(DomainError::invalid(
                "the starting stack must be above zero",
            ));
        }
        let levels = structure.levels().count() as u32;
        let check_level = |what: &str, n: u32| -> DomainResult<()> {
            if n == 0 || n > levels {
                Err(DomainError::invalid(format!(
                    "{what} names level {n}, but the structure has levels 1 to {levels}"
                )))
            } else {
                Ok(())
            }
        };
        if let Some(lr) = &self.late_registration {
            check_level("late registration", lr.until_level)?;
        }
        if let Some(re) = &self.reentry {
            if self.late_registration.is_none() {
                return Err(DomainError::invalid(
                    "re-entry is only possible while late registration is open: set late registration too",
                ));
            }
            if re.max_per_player == 0 {
                return Err(DomainError::invalid(
                    "re-entry limit is 0: turn re-entry off instead",
                ));
            }
        }
        if let Some(r) = &self.rebuy {
            check_level("the rebuy period", r.until_level)?;
            if r.chips == 0 {
                return Err(DomainError::invalid("a rebuy must give some chips"));
            }
            if r.fee > r.price || r.price.as_cents() < 0 || r.fee.as_cents() < 0 {
                return Err(DomainError::invalid(
                    "the rebuy fee must be between zero and the rebuy price",
                ));
            }
        }
        if let Some(a) = &self.addon {
            check_level("the add-on window", a.from_level)?;
            check_level("the add-on window", a.until_level)?;
            if a.from_level > a.until_level {
                return Err(DomainError::invalid(format!(
                    "the add-on window starts at level {} after it ends at level {}",
                    a.from_level, a.until_level
                )));
            }
            if a.chips == 0 {
                return Err(DomainError::invalid("an add-on must give some chips"));
            }
            if a.fee > a.price || a.price.as_cents() < 0 || a.fee.as_cents() < 0 {
                return Err(DomainError::invalid(
                    "the add-on fee must be between zero and the add-on price",
                ));
            }
        }
        if let Some(g) = self.guarantee {
            if g.as_cents() < 0 {
                return Err(DomainError::invalid("the guarantee cannot be negative"));
            }
        }
        if let Some(u) = self.rounding_unit {
            if u.as_cents() <= 0 {
                return Err(DomainError::invalid(
                    "the payout rounding unit must be at least 0.01",
                ));
            }
        }
        if self.hand_for_hand_secs_per_hand > 600 {
            return Err(DomainError::invalid(
                "hand-for-hand may take at most 10 minutes per hand off the clock",
            ));
        }
        if self.max_entries == Some(0) {
            return Err(DomainError::invalid("the entry cap must be at least 1"));
        }
        crate::payouts::shares_bp(2, &self.payout_plan)?;
        if let Some(plan) = &self.chips {
            let mut stacks = vec![("the starting stack", self.starting_stack)];
            if let Some(r) = &self.rebuy {
                stacks.push(("a rebuy", r.chips));
            }
            if let Some(a) = &self.addon {
                stacks.push(("the add-on", a.chips));
            }
            plan.validate(structure, &stacks)?;
        }
        Ok(())
    }
}

/// The structure index up to which (inclusive) a window "until the end of level `n`" lasts,
/// optionally including the break right after that level.
pub(crate) fn window_end_index(structure: &Structure, level: u32, through_break: bool) -> usize {
    let Some(idx) = structure.index_of_level(level) else {
        return usize::MAX;
    };
    if through_break && matches!(structure.items.get(idx + 1), Some(Item::Break(_))) {
        idx + 1
    } else {
        idx
    }
}
