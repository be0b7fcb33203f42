//! What a tournament adds up to: prize pool and its sources, payouts, results, chip stats.

use super::*;
use crate::payouts;

/// The prize pool with every source shown, so players can check it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrizePoolView {
    pub entries: u32,
    pub reentries: u32,
    pub rebuys: u32,
    pub addons: u32,
    pub from_entries: Money,
    pub from_rebuys: Money,
    pub from_addons: Money,
    /// Bounty money held outside the prize pool.
    pub bounties: Money,
    pub fees: Money,
    /// Entries + rebuys + add-ons (bounties already left out).
    pub collected: Money,
    pub guarantee: Money,
    /// What the house adds to reach the guarantee.
    pub overlay: Money,
    pub total: Money,
}

/// One line of the results / payout table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResultLine {
    pub place: u32,
    /// The prize for this place from the payout table (before ties and deals).
    pub prize: Money,
    pub entry_id: Option<EntryId>,
    pub player_name: Option<String>,
    /// What this player actually receives (ties split, deals applied, held-back money to the winner).
    pub paid: Option<Money>,
    pub bounties_won: Money,
}

/// Chips in play and the average stack.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    pub entries: u32,
    pub unique_players: u32,
    pub reentries: u32,
    pub rebuys: u32,
    pub addons: u32,
    pub players_left: u32,
    pub chips_in_play: Chips,
    pub average_stack: Chips,
    /// Average stack in big blinds at the current level (one decimal, ×10), if a level is on.
    pub average_stack_bb_x10: Option<u64>,
}

impl Tournament {
    pub fn prize_pool(&self) -> PrizePoolView {
        let c = &self.config;
        let entries = self.entries.len() as u32;
        let reentries = self.entries.values().filter(|e| e.is_reentry).count() as u32;
        let rebuys: u32 = self.entries.values().map(|e| e.rebuys).sum();
        let addons = self.entries.values().filter(|e| e.addon).count() as u32;
        let from_entries = c.contribution() * i64::from(entries);
        let from_rebuys = c
            .rebuy
            .map(|r| (r.price - r.fee) * i64::from(rebuys))
            .unwrap_or_default();
        let from_addons = c
            .addon
            .map(|a| (a.price - a.fee) * i64::from(addons))
            .unwrap_or_default();
        let fees = c.fee * i64::from(entries)
            + c.rebuy
                .map(|r| r.fee * i64::from(rebuys))
                .unwrap_or_default()
            + c.addon
                .map(|a| a.fee * i64::from(addons))
                .unwrap_or_default();
        let collected = from_entries + from_rebuys + from_addons;
        let pool = payouts::prize_pool(collected, c.guarantee);
        PrizePoolView {
            entries,
            reentries,
            rebuys,
            addons,
            from_entries,
            from_rebuys,
            from_addons,
            bounties: c.bounty * i64::from(entries),
            fees,
            collected,
            guarantee: pool.guarantee,
            overlay: pool.overlay,
            total: pool.total,
        }
    }

    /// The payout table for the current field, rounded to `venue_unit` unless the tournament
    /// sets its own unit. Always sums exactly to the prize pool.
    pub fn payouts(&self, venue_unit: Money) -> Vec<Money> {
        payout_amounts(self, venue_unit)
    }

    /// Places 1..=paid with who finished there and what they receive.
    pub fn results(&self, venue_unit: Money) -> Vec<ResultLine> {
        let prizes = self.payouts(venue_unit);
        let finished: Vec<&Entry> = self
            .entries
            .values()
            .filter(|e| e.place.is_some())
            .collect();
        let mut lines: Vec<ResultLine> = Vec::new();
        let last_place = finished
            .iter()
            .filter_map(|e| e.place.map(|p| p + e.shared_places - 1))
            .max()
            .unwrap_or(0)
            .max(prizes.len() as u32);
        for place in 1..=last_place {
            let prize = prizes.get(place as usize - 1).copied().unwrap_or_default();
            let who: Vec<&&Entry> = finished.iter().filter(|e| e.place == Some(place)).collect();
            if who.is_empty() {
                // A place inside a shared block, or not yet decided.
                let inside_shared = finished.iter().any(|e| {
                    e.place
                        .is_some_and(|p| p < place && place < p + e.shared_places)
                });
                if !inside_shared {
                    lines.push(ResultLine {
                        place,
                        prize,
                        entry_id: None,
                        player_name: None,
                        paid: None,
                        bounties_won: Money::ZERO,
                    });
                }
                continue;
            }
            let shared = who[0].shared_places.max(1);
            let block: Vec<Money> = (place..place + shared)
                .map(|p| prizes.get(p as usize - 1).copied().unwrap_or_default())
                .collect();
            let split = payouts::split_tied(&block);
            for (i, e) in who.iter().enumerate() {
                let mut paid = split.get(i).copied().unwrap_or_default();
                if let Some(deal) = &self.deal {
                    if let Some(amount) = deal.amounts.get(&e.id) {
                        paid = *amount;
                        if place == 1 {
                            paid += deal.held_back;
                        }
                    }
                }
                lines.push(ResultLine {
                    place,
                    prize,
                    entry_id: Some(e.id),
                    player_name: Some(e.player_name.clone()),
                    paid: Some(paid),
                    bounties_won: e.bounties_won,
                });
            }
        }
        lines
    }

    pub fn stats(&self, now: Timestamp) -> Stats {
        let c = &self.config;
        let pool = self.prize_pool();
        let unique: std::collections::BTreeSet<PlayerId> =
            self.entries.values().map(|e| e.player_id).collect();
        let chips_in_play = c.starting_stack.saturating_mul(u64::from(pool.entries))
            + c.rebuy
                .map(|r| r.chips.saturating_mul(u64::from(pool.rebuys)))
                .unwrap_or(0)
            + c.addon
                .map(|a| a.chips.saturating_mul(u64::from(pool.addons)))
                .unwrap_or(0);
        let left = self.active_count();
        let average = if left == 0 {
            0
        } else {
            chips_in_play / u64::from(left)
        };
        let view = self.clock.view(&self.structure, now);
        let bb = match &view.current {
            Some(crate::structure::Item::Level(l)) if !view.on_break => Some(l.big_blind),
            _ => view.next_level.as_ref().map(|l| l.big_blind),
        };
        Stats {
            entries: pool.entries,
            unique_players: unique.len() as u32,
            reentries: pool.reentries,
            rebuys: pool.rebuys,
            addons: pool.addons,
            players_left: left,
            chips_in_play,
            average_stack: average,
            average_stack_bb_x10: bb.filter(|b| *b > 0).map(|b| average * 10 / b),
        }
    }

    /// Is late registration open at `now`? `Err` says why not.
    pub fn late_registration_open(&self, now: Timestamp) -> Result<(), String> {
        match decide::late_registration_closed(self, now) {
            None => Ok(()),
            Some(why) => Err(why),
        }
    }
}

pub(crate) fn payout_amounts(t: &Tournament, venue_unit: Money) -> Vec<Money> {
    let pool = t.prize_pool();
    let field = pool.entries.max(1);
    let unit = t
        .config
        .rounding_unit
        .or_else(|| t.deal.as_ref().and_then(|d| d.rounding_unit))
        .unwrap_or(venue_unit);
    payouts::shares_bp(field, &t.config.payout_plan)
        .and_then(|shares| payouts::distribute(pool.total, &shares, unit))
        .unwrap_or_else(|_| vec![pool.total])
}
