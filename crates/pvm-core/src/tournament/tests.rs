use super::*;
use crate::testkit::Night;
use crate::time::MINUTE_MS;

#[test]
fn registering_twice_with_a_live_entry_is_refused() {
    let mut n = Night::standard();
    let ana = n.player("Ana");
    n.register(ana);
    let err = n
        .t(TournamentCommand::Register { player_id: ana })
        .unwrap_err();
    assert_eq!(err.to_string(), "Ana already has a live entry (#1)");
}

#[test]
fn late_registration_closes_at_the_end_of_the_configured_level() {
    let mut n = Night::standard();
    n.field(3);
    n.t(TournamentCommand::StartClock).unwrap();
    n.run_past_level(6);
    let late = n.player("Late Larry");
    let err = n
        .t(TournamentCommand::Register { player_id: late })
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "cannot register Late Larry: late registration closed at the end of level 6"
    );
}

#[test]
fn late_registration_is_open_during_the_last_level() {
    let mut n = Night::standard();
    n.field(3);
    n.t(TournamentCommand::StartClock).unwrap();
    n.run_past_level(5);
    let late = n.player("Just In Time");
    n.register(late);
    assert_eq!(n.tour().entries.len(), 4);
}

#[test]
fn reentry_only_after_busting_and_within_the_limit() {
    let mut n = Night::standard();
    let entries = n.field(3);
    let ana = n.tour().entries[&entries[0]].player_id;
    n.t(TournamentCommand::StartClock).unwrap();
    n.bust(entries[0]).unwrap();
    let e2 = n.register(ana);
    assert!(n.tour().entries[&e2].is_reentry);
    n.bust(e2).unwrap();
    let e3 = n.register(ana);
    n.bust(e3).unwrap();
    let err = n
        .t(TournamentCommand::Register { player_id: ana })
        .unwrap_err();
    assert!(
        err.to_string().contains("has used all 2 re-entries"),
        "{err}"
    );
}

#[test]
fn reentry_after_late_registration_is_refused() {
    let mut n = Night::standard();
    let entries = n.field(4);
    let p = n.tour().entries[&entries[0]].player_id;
    n.t(TournamentCommand::StartClock).unwrap();
    n.bust(entries[0]).unwrap();
    n.run_past_level(6);
    let err = n
        .t(TournamentCommand::Register { player_id: p })
        .unwrap_err();
    assert!(err.to_string().starts_with("cannot re-enter"), "{err}");
    assert!(err.to_string().contains("end of level 6"), "{err}");
}

#[test]
fn freezeout_refuses_reentry() {
    let c = TournamentConfig::freezeout("Freeze", Money::units(50), Money::units(5), 10_000);
    let mut n = Night::new(c);
    let entries = n.field(3);
    let p = n.tour().entries[&entries[0]].player_id;
    n.bust(entries[0]).unwrap();
    let err = n
        .t(TournamentCommand::Register { player_id: p })
        .unwrap_err();
    assert!(err.to_string().contains("does not allow re-entry"), "{err}");
}

fn rebuy_night() -> Night {
    let mut c =
        TournamentConfig::freezeout("Rebuy Madness", Money::units(50), Money::units(5), 5_000);
    c.rebuy = Some(RebuyRule {
        price: Money::units(50),
        fee: Money::units(5),
        chips: 5_000,
        until_level: 4,
        max_stack: Some(5_000),
        max_per_entry: Some(2),
    });
    c.addon = Some(AddonRule {
        price: Money::units(50),
        fee: Money::units(5),
        chips: 10_000,
        from_level: 4,
        until_level: 4,
    });
    Night::new(c)
}

#[test]
fn rebuy_needs_a_stack_at_or_below_the_threshold() {
    let mut n = rebuy_night();
    let e = n.field(2)[0];
    n.t(TournamentCommand::StartClock).unwrap();
    let err = n
        .t(TournamentCommand::Rebuy {
            entry_id: e,
            stack: Some(7_000),
        })
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "Player 00 has 7,000 chips; rebuys are allowed at or below 5,000"
    );
    n.t(TournamentCommand::Rebuy {
        entry_id: e,
        stack: Some(1_200),
    })
    .unwrap();
    assert_eq!(n.tour().entries[&e].rebuys, 1);
}

#[test]
fn rebuy_after_the_rebuy_period_is_refused() {
    let mut n = rebuy_night();
    let e = n.field(2)[0];
    n.t(TournamentCommand::StartClock).unwrap();
    n.run_past_level(4);
    let err = n
        .t(TournamentCommand::Rebuy {
            entry_id: e,
            stack: Some(100),
        })
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "the rebuy period ended at the end of level 4"
    );
}

#[test]
fn rebuy_limit_per_entry_is_enforced() {
    let mut n = rebuy_night();
    let e = n.field(2)[0];
    n.t(TournamentCommand::StartClock).unwrap();
    for _ in 0..2 {
        n.t(TournamentCommand::Rebuy {
            entry_id: e,
            stack: Some(0),
        })
        .unwrap();
    }
    let err = n
        .t(TournamentCommand::Rebuy {
            entry_id: e,
            stack: Some(0),
        })
        .unwrap_err();
    assert!(err.to_string().contains("used all 2 rebuys"), "{err}");
}

#[test]
fn addon_is_taken_once_and_only_in_its_window() {
    let mut n = rebuy_night();
    let e = n.field(2)[0];
    n.t(TournamentCommand::StartClock).unwrap();
    let err = n.t(TournamentCommand::Addon { entry_id: e }).unwrap_err();
    assert!(err.to_string().contains("has not opened yet"), "{err}");
    n.run_past_level(3);
    n.t(TournamentCommand::Addon { entry_id: e }).unwrap();
    let err = n.t(TournamentCommand::Addon { entry_id: e }).unwrap_err();
    assert_eq!(err.to_string(), "Player 00 has already taken the add-on");
}

#[test]
fn prize_pool_counts_entries_rebuys_and_addons_minus_fees() {
    let mut n = rebuy_night();
    let es = n.field(10);
    n.t(TournamentCommand::StartClock).unwrap();
    n.t(TournamentCommand::Rebuy {
        entry_id: es[0],
        stack: Some(0),
    })
    .unwrap();
    n.run_past_level(3);
    n.t(TournamentCommand::Addon { entry_id: es[1] }).unwrap();
    let pool = n.tour().prize_pool();
    assert_eq!(pool.from_entries, Money::units(450));
    assert_eq!(pool.from_rebuys, Money::units(45));
    assert_eq!(pool.from_addons, Money::units(45));
    assert_eq!(pool.fees, Money::units(60));
    assert_eq!(pool.total, Money::units(540));
    assert_eq!(pool.overlay, Money::ZERO);
}

#[test]
fn guarantee_tops_up_the_prize_pool_and_shows_the_overlay() {
    let mut c =
        TournamentConfig::freezeout("Guaranteed", Money::units(100), Money::units(10), 20_000);
    c.guarantee = Some(Money::units(5_000));
    let mut n = Night::new(c);
    n.field(20);
    let pool = n.tour().prize_pool();
    assert_eq!(pool.collected, Money::units(1_800));
    assert_eq!(pool.overlay, Money::units(3_200));
    assert_eq!(pool.total, Money::units(5_000));
    let payouts = n.tour().payouts(Money::units(5));
    assert_eq!(payouts.iter().copied().sum::<Money>(), Money::units(5_000));
}

#[test]
fn busts_get_places_counting_down_and_the_last_player_wins() {
    let mut n = Night::standard();
    let es = n.field(3);
    n.t(TournamentCommand::StartClock).unwrap();
    n.bust(es[2]).unwrap();
    assert_eq!(n.tour().entries[&es[2]].place, Some(3));
    n.bust(es[0]).unwrap();
    assert_eq!(n.tour().entries[&es[0]].place, Some(2));
    assert_eq!(n.tour().entries[&es[1]].place, Some(1));
    assert_eq!(n.tour().status, TournamentStatus::Finished);
    assert_eq!(n.tour().clock.status, crate::clock::ClockStatus::Finished);
}

#[test]
fn players_busted_on_one_hand_are_placed_by_starting_stack() {
    let mut n = Night::standard();
    let es = n.field(5);
    n.t(TournamentCommand::Bust {
        busts: vec![
            BustInput {
                entry_id: es[0],
                stack: Some(3_000),
            },
            BustInput {
                entry_id: es[1],
                stack: Some(9_000),
            },
        ],
        eliminated_by: Some(es[4]),
    })
    .unwrap();
    assert_eq!(
        n.tour().entries[&es[1]].place,
        Some(4),
        "bigger stack finishes better"
    );
    assert_eq!(n.tour().entries[&es[0]].place, Some(5));
}

#[test]
fn equal_stacks_busted_on_one_hand_share_places_and_split_the_prize() {
    let mut c = TournamentConfig::freezeout("Tie", Money::units(100), Money::ZERO, 10_000);
    c.payout_plan = crate::payouts::PayoutPlan::Custom {
        shares_bp: vec![5_000, 3_000, 2_000],
    };
    let mut n = Night::new(c);
    let es = n.field(4);
    n.t(TournamentCommand::Bust {
        busts: vec![
            BustInput {
                entry_id: es[0],
                stack: Some(5_000),
            },
            BustInput {
                entry_id: es[1],
                stack: Some(5_000),
            },
        ],
        eliminated_by: None,
    })
    .unwrap();
    let t = n.tour();
    assert_eq!(t.entries[&es[0]].place, Some(3));
    assert_eq!(t.entries[&es[0]].shared_places, 2);
    assert_eq!(t.entries[&es[1]].place, Some(3));
    let results = t.results(Money::units(1));
    let third: Vec<_> = results.iter().filter(|r| r.place == 3).collect();
    assert_eq!(third.len(), 2);
    // 3rd pays 80, 4th pays nothing: the two share 80.
    for r in third {
        assert_eq!(r.paid, Some(Money::units(40)));
    }
}

#[test]
fn several_busts_without_stacks_are_refused_outside_hand_for_hand() {
    let mut n = Night::standard();
    let es = n.field(5);
    let err = n
        .t(TournamentCommand::Bust {
            busts: vec![
                BustInput {
                    entry_id: es[0],
                    stack: None,
                },
                BustInput {
                    entry_id: es[1],
                    stack: None,
                },
            ],
            eliminated_by: None,
        })
        .unwrap_err();
    assert!(
        err.to_string().contains("stack at the start of the hand"),
        "{err}"
    );
}

#[test]
fn undo_of_the_last_bust_restores_the_player_and_their_seat() {
    let mut n = Night::standard();
    n.t(TournamentCommand::AddTable {
        number: 1,
        seats: 9,
    })
    .unwrap();
    let es = n.field(4);
    let seat = n
        .tour()
        .floor
        .seat_of(es[0])
        .expect("seated at registration");
    n.bust(es[0]).unwrap();
    assert!(n.tour().floor.seat_of(es[0]).is_none());
    n.t(TournamentCommand::UndoBust).unwrap();
    let e = &n.tour().entries[&es[0]];
    assert_eq!(e.status, EntryStatus::Active);
    assert_eq!(e.place, None);
    assert_eq!(n.tour().floor.seat_of(es[0]), Some(seat));
    n.t(TournamentCommand::RedoBust).unwrap();
    assert_eq!(n.tour().entries[&es[0]].place, Some(4));
}

#[test]
fn undo_of_the_final_bust_reopens_the_tournament() {
    let mut n = Night::standard();
    let es = n.field(2);
    n.bust(es[0]).unwrap();
    assert_eq!(n.tour().status, TournamentStatus::Finished);
    n.t(TournamentCommand::UndoBust).unwrap();
    assert_ne!(n.tour().status, TournamentStatus::Finished);
    assert_eq!(n.tour().entries[&es[1]].place, None);
}

#[test]
fn fixed_bounty_goes_to_the_eliminator() {
    let mut c = TournamentConfig::freezeout("Bounty", Money::units(100), Money::units(10), 20_000);
    c.bounty = Money::units(25);
    c.bounty_kind = BountyKind::Fixed;
    let mut n = Night::new(c);
    let es = n.field(3);
    n.t(TournamentCommand::Bust {
        busts: vec![BustInput {
            entry_id: es[0],
            stack: None,
        }],
        eliminated_by: Some(es[1]),
    })
    .unwrap();
    assert_eq!(n.tour().entries[&es[1]].bounties_won, Money::units(25));
    let pool = n.tour().prize_pool();
    assert_eq!(pool.total, Money::units(65 * 3));
    assert_eq!(pool.bounties, Money::units(75));
}

#[test]
fn progressive_bounty_pays_half_and_adds_half_to_the_eliminators_head() {
    let mut c = TournamentConfig::freezeout("PKO", Money::units(100), Money::units(10), 20_000);
    c.bounty = Money::units(40);
    c.bounty_kind = BountyKind::Progressive;
    let mut n = Night::new(c);
    let es = n.field(4);
    let by = Some(es[1]);
    n.t(TournamentCommand::Bust {
        busts: vec![BustInput {
            entry_id: es[0],
            stack: None,
        }],
        eliminated_by: by,
    })
    .unwrap();
    let k = &n.tour().entries[&es[1]];
    assert_eq!(k.bounties_won, Money::units(20));
    assert_eq!(k.bounty, Money::units(60));
    n.t(TournamentCommand::UndoBust).unwrap();
    let k = &n.tour().entries[&es[1]];
    assert_eq!(k.bounties_won, Money::ZERO);
    assert_eq!(k.bounty, Money::units(40));
}

#[test]
fn registration_draws_a_seat_and_no_seat_is_held_twice() {
    let mut n = Night::standard();
    n.t(TournamentCommand::AddTable {
        number: 1,
        seats: 9,
    })
    .unwrap();
    n.t(TournamentCommand::AddTable {
        number: 2,
        seats: 9,
    })
    .unwrap();
    let es = n.field(18);
    let mut seats = std::collections::BTreeSet::new();
    for e in &es {
        let s = n.tour().floor.seat_of(*e).expect("everyone seated");
        assert!(seats.insert(s), "seat {s:?} held twice");
    }
    // Nineteenth player: no open seat, registered as an alternate without a seat.
    let p = n.player("Alternate");
    let e = n.register(p);
    assert!(n.tour().floor.seat_of(e).is_none());
}

#[test]
fn hand_for_hand_takes_the_configured_time_per_hand() {
    let mut n = Night::standard();
    n.t(TournamentCommand::AddTable {
        number: 1,
        seats: 9,
    })
    .unwrap();
    n.field(6);
    let t1 = n.tour().floor.tables[0].id;
    n.t(TournamentCommand::StartClock).unwrap();
    n.t(TournamentCommand::SetButton {
        table_id: t1,
        seat: 1,
    })
    .unwrap();
    n.t(TournamentCommand::SetHandForHand { on: true }).unwrap();
    n.t(TournamentCommand::PauseClock).unwrap();
    n.t(TournamentCommand::ResumeClock).unwrap();
    let before = n.tour().clock.view(&n.tour().structure, n.now).remaining_ms;
    n.t(TournamentCommand::HandCompleted { table_id: t1 })
        .unwrap();
    let after = n.tour().clock.view(&n.tour().structure, n.now).remaining_ms;
    assert_eq!(before - after, 2 * MINUTE_MS);
}

#[test]
fn clock_starts_only_with_entries_and_survives_a_reboot() {
    let mut n = Night::standard();
    let err = n.t(TournamentCommand::StartClock).unwrap_err();
    assert!(err.to_string().contains("no entries"), "{err}");
    n.field(2);
    n.t(TournamentCommand::StartClock).unwrap();
    let l1 = n.level_minutes(1);
    n.wait_minutes(l1 + 1);
    // "Reboot": fold the same events into a fresh state; the view at `now` is identical.
    let view = n.tour().clock.view(&n.tour().structure, n.now);
    let copy: Tournament = serde_json::from_str(&serde_json::to_string(n.tour()).unwrap()).unwrap();
    assert_eq!(copy.clock.view(&copy.structure, n.now), view);
    assert_eq!(view.level_number, Some(2));
}

#[test]
fn changing_the_buy_in_after_entries_is_refused() {
    let mut n = Night::standard();
    n.field(1);
    let mut c = n.tour().config.clone();
    c.buy_in = Money::units(200);
    let err = n
        .t(TournamentCommand::UpdateConfig { config: c })
        .unwrap_err();
    assert!(err.to_string().contains("can no longer change"), "{err}");
}

#[test]
fn chip_stats_count_every_chip_bought() {
    let mut n = rebuy_night();
    let es = n.field(4);
    n.t(TournamentCommand::StartClock).unwrap();
    n.t(TournamentCommand::Rebuy {
        entry_id: es[0],
        stack: Some(0),
    })
    .unwrap();
    let s = n.tour().stats(n.now);
    assert_eq!(s.chips_in_play, 4 * 5_000 + 5_000);
    assert_eq!(s.average_stack, 25_000 / 4);
    assert_eq!(s.players_left, 4);
}

#[test]
fn a_deal_pays_the_agreed_amounts_and_the_held_back_money_to_the_winner() {
    let mut c = TournamentConfig::freezeout("Deal", Money::units(100), Money::ZERO, 10_000);
    c.payout_plan = crate::payouts::PayoutPlan::Custom {
        shares_bp: vec![5_000, 3_000, 2_000],
    };
    let mut n = Night::new(c);
    let es = n.field(10);
    for e in &es[3..] {
        n.bust(*e).unwrap();
    }
    n.t(TournamentCommand::MakeDeal {
        method: crate::deals::DealMethod::EvenChop,
        stacks: es[..3]
            .iter()
            .map(|e| DealStack {
                entry_id: *e,
                chips: 30_000,
            })
            .collect(),
        hold_back: Money::units(60),
    })
    .unwrap();
    n.bust(es[2]).unwrap();
    n.bust(es[1]).unwrap();
    let results = n.tour().results(Money::units(1));
    let paid: Money = results.iter().filter_map(|r| r.paid).sum();
    assert_eq!(paid, Money::units(1_000));
    let first = results.iter().find(|r| r.place == 1).unwrap();
    let winner = first.entry_id.unwrap();
    let dealt = n.tour().deal.as_ref().unwrap().amounts[&winner];
    // (1,000 - 60 held back) / 3 = 313.33 each, odd cent to one of them; 60 more to the winner.
    assert!(
        dealt == Money::cents(31_333) || dealt == Money::cents(31_334),
        "{dealt:?}"
    );
    assert_eq!(first.paid, Some(dealt + Money::units(60)));
}
