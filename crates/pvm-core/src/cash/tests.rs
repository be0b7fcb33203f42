use super::*;
use crate::entropy::SeededEntropy;
use crate::error::DomainResult;
use crate::ids::PlayerId;
use crate::time::MINUTE_MS;

/// A room driven through `decide` then `apply`, as the node does it.
struct Room {
    state: CashState,
    entropy: SeededEntropy,
    now: Timestamp,
}

impl Room {
    fn new() -> Self {
        Room {
            state: CashState::default(),
            entropy: SeededEntropy::new(42),
            now: Timestamp::from_millis(1_800_000_000_000),
        }
    }

    fn run(&mut self, cmd: CashCommand) -> DomainResult<Vec<CashEvent>> {
        let events = decide(&self.state, cmd, self.now, &mut self.entropy)?;
        for e in &events {
            apply(&mut self.state, e);
        }
        Ok(events)
    }

    fn ok(&mut self, cmd: CashCommand) -> Vec<CashEvent> {
        let shown = format!("{cmd:?}");
        match self.run(cmd) {
            Ok(events) => events,
            Err(e) => panic!("{shown} refused: {e}"),
        }
    }

    fn refusal(&mut self, cmd: CashCommand) -> String {
        let before = self.state.clone();
        let message = self
            .run(cmd)
            .expect_err("command should be refused")
            .to_string();
        assert_eq!(before, self.state, "a refused command changed the state");
        message
    }

    fn minutes(&mut self, m: i64) {
        self.now = self.now.plus_millis(m * MINUTE_MS);
    }

    fn game(&mut self, game: &str, sb: i64, bb: i64) -> GameId {
        match self
            .ok(CashCommand::CreateGame {
                game: game.into(),
                small_blind: Money::units(sb),
                big_blind: Money::units(bb),
                min_buy_in: None,
                max_buy_in: None,
                name: None,
            })
            .as_slice()
        {
            [CashEvent::GameCreated { game_id, .. }] => *game_id,
            other => panic!("unexpected {other:?}"),
        }
    }

    fn table(&mut self, number: u32, seat_count: u8, game_id: GameId) -> TableId {
        match self
            .ok(CashCommand::AddTable {
                number,
                seat_count,
                game_id,
            })
            .as_slice()
        {
            [CashEvent::TableAdded { table_id, .. }] => *table_id,
            other => panic!("unexpected {other:?}"),
        }
    }

    fn open_table(&mut self, number: u32, seat_count: u8, game_id: GameId) -> TableId {
        let table_id = self.table(number, seat_count, game_id);
        self.ok(CashCommand::OpenTable { table_id });
        table_id
    }

    fn join(&mut self, game_id: GameId, name: &str) -> WaitlistEntryId {
        self.join_as(game_id, name, None)
    }

    fn join_as(
        &mut self,
        game_id: GameId,
        name: &str,
        player_id: Option<PlayerId>,
    ) -> WaitlistEntryId {
        match self
            .ok(CashCommand::JoinWaitlist {
                game_id,
                name: name.into(),
                phone: None,
                player_id,
            })
            .as_slice()
        {
            [CashEvent::PlayerJoinedWaitlist { entry_id, .. }] => *entry_id,
            other => panic!("unexpected {other:?}"),
        }
    }

    fn seat(&mut self, table_id: TableId, seat: Option<u8>, name: &str) {
        self.ok(CashCommand::SeatPlayer {
            table_id,
            seat,
            name: name.into(),
            player_id: None,
        });
    }

    fn names(&self, game_id: GameId) -> Vec<String> {
        self.state
            .list(game_id)
            .iter()
            .map(|e| e.name.clone())
            .collect()
    }

    fn occupant(&self, table_id: TableId, seat: u8) -> Option<&SeatOccupant> {
        self.state.tables.get(&table_id)?.seats.get(&seat)
    }
}

fn player(n: u128) -> PlayerId {
    PlayerId(uuid::Uuid::from_u128(n))
}

// ---- games ----

#[test]
fn game_name_shows_whole_stakes_without_decimals_and_cents_with_two() {
    assert_eq!(
        game_name("NLH", Money::units(1), Money::units(3)),
        "NLH 1/3"
    );
    assert_eq!(
        game_name("PLO", Money::cents(50), Money::units(1)),
        "PLO 0.50/1"
    );
    assert_eq!(
        game_name(" NLH ", Money::cents(2_50), Money::units(5)),
        "NLH 2.50/5"
    );
}

#[test]
fn created_game_carries_its_name_and_buy_ins() {
    let mut room = Room::new();
    room.ok(CashCommand::CreateGame {
        game: "  PLO ".into(),
        small_blind: Money::units(2),
        big_blind: Money::units(5),
        min_buy_in: Some(Money::units(200)),
        max_buy_in: Some(Money::units(1000)),
        name: None,
    });
    let game = room.state.games.values().next().unwrap();
    assert_eq!(game.name(), "PLO 2/5");
    assert_eq!(game.max_buy_in, Some(Money::units(1000)));
}

#[test]
fn big_blind_smaller_than_small_blind_is_refused() {
    let mut room = Room::new();
    let msg = room.refusal(CashCommand::CreateGame {
        game: "NLH".into(),
        small_blind: Money::units(3),
        big_blind: Money::units(1),
        min_buy_in: None,
        max_buy_in: None,
        name: None,
    });
    assert_eq!(msg, "the big blind (1) is smaller than the small blind (3)");
}

#[test]
fn minimum_buy_in_above_maximum_is_refused() {
    let mut room = Room::new();
    let msg = room.refusal(CashCommand::CreateGame {
        game: "NLH".into(),
        small_blind: Money::units(1),
        big_blind: Money::units(3),
        min_buy_in: Some(Money::units(500)),
        max_buy_in: Some(Money::units(300)),
        name: None,
    });
    assert_eq!(
        msg,
        "the minimum buy-in (500) is more than the maximum (300)"
    );
}

#[test]
fn game_without_type_or_blinds_is_refused() {
    let mut room = Room::new();
    let msg = room.refusal(CashCommand::CreateGame {
        game: "  ".into(),
        small_blind: Money::units(1),
        big_blind: Money::units(3),
        min_buy_in: None,
        max_buy_in: None,
        name: None,
    });
    assert!(msg.contains("game type is missing"), "{msg}");
    let msg = room.refusal(CashCommand::CreateGame {
        game: "NLH".into(),
        small_blind: Money::ZERO,
        big_blind: Money::units(3),
        min_buy_in: None,
        max_buy_in: None,
        name: None,
    });
    assert_eq!(msg, "the small blind must be more than 0");
}

#[test]
fn second_game_with_the_same_name_is_refused() {
    let mut room = Room::new();
    room.game("NLH", 1, 3);
    let msg = room.refusal(CashCommand::CreateGame {
        game: "nlh".into(),
        small_blind: Money::units(1),
        big_blind: Money::units(3),
        min_buy_in: None,
        max_buy_in: None,
        name: None,
    });
    assert_eq!(msg, "a game named NLH 1/3 is already spread");
}

#[test]
fn renamed_game_shows_its_new_name_and_can_go_back() {
    let mut room = Room::new();
    let deep = room.game("NLH", 1, 3);
    room.game("NLH", 2, 5);
    room.ok(CashCommand::RenameGame {
        game_id: deep,
        name: Some("NLH 1/3 deep".into()),
    });
    assert_eq!(room.state.games[&deep].name(), "NLH 1/3 deep");
    let msg = room.refusal(CashCommand::RenameGame {
        game_id: deep,
        name: Some("nlh 2/5".into()),
    });
    assert_eq!(msg, "a game named NLH 2/5 is already spread");
    room.ok(CashCommand::RenameGame {
        game_id: deep,
        name: None,
    });
    assert_eq!(room.state.games[&deep].name(), "NLH 1/3");
}

#[test]
fn closed_game_refuses_tables_lists_and_renames() {
    let mut room = Room::new();
    let plo = room.game("PLO", 2, 5);
    room.join(plo, "Ana");
    room.ok(CashCommand::CloseGame { game_id: plo });
    assert!(room.state.list(plo).is_empty(), "closing drops the list");
    let msg = room.refusal(CashCommand::AddTable {
        number: 4,
        seat_count: 9,
        game_id: plo,
    });
    assert_eq!(msg, "game PLO 2/5 is closed");
    let msg = room.refusal(CashCommand::JoinWaitlist {
        game_id: plo,
        name: "Bob".into(),
        phone: None,
        player_id: None,
    });
    assert_eq!(msg, "game PLO 2/5 is closed");
    let msg = room.refusal(CashCommand::CloseGame { game_id: plo });
    assert_eq!(msg, "game PLO 2/5 is already closed");
}

#[test]
fn closing_a_game_with_an_open_table_is_refused() {
    let mut room = Room::new();
    let nlh = room.game("NLH", 1, 3);
    room.open_table(4, 9, nlh);
    let msg = room.refusal(CashCommand::CloseGame { game_id: nlh });
    assert_eq!(
        msg,
        "game NLH 1/3 still has table 4 open; close its tables first"
    );
}

#[test]
fn table_of_a_closed_game_cannot_open_until_given_another_game() {
    let mut room = Room::new();
    let plo = room.game("PLO", 2, 5);
    let nlh = room.game("NLH", 1, 3);
    let t = room.table(4, 9, plo);
    room.ok(CashCommand::CloseGame { game_id: plo });
    let msg = room.refusal(CashCommand::OpenTable { table_id: t });
    assert_eq!(msg, "game PLO 2/5 is closed");
    room.ok(CashCommand::ChangeTableGame {
        table_id: t,
        game_id: nlh,
    });
    room.ok(CashCommand::OpenTable { table_id: t });
    assert!(room.state.is_running(nlh));
}

#[test]
fn open_table_cannot_change_its_game() {
    let mut room = Room::new();
    let plo = room.game("PLO", 2, 5);
    let nlh = room.game("NLH", 1, 3);
    let t = room.open_table(4, 9, plo);
    let msg = room.refusal(CashCommand::ChangeTableGame {
        table_id: t,
        game_id: nlh,
    });
    assert_eq!(msg, "table 4 is open; close it before changing its game");
}

// ---- must-move links ----

#[test]
fn must_move_links_refuse_self_chains_and_second_links() {
    let mut room = Room::new();
    let main = room.game("NLH", 1, 3);
    let mm = room.game("NLH", 1, 2);
    let other = room.game("NLH", 2, 5);
    let msg = room.refusal(CashCommand::LinkMustMove {
        must_move_game_id: main,
        main_game_id: main,
    });
    assert_eq!(msg, "NLH 1/3 cannot be its own must-move game");
    room.ok(CashCommand::LinkMustMove {
        must_move_game_id: mm,
        main_game_id: main,
    });
    let msg = room.refusal(CashCommand::LinkMustMove {
        must_move_game_id: other,
        main_game_id: mm,
    });
    assert_eq!(
        msg,
        "NLH 1/2 is itself a must-move game for NLH 1/3; link must-move games to a main game"
    );
    let msg = room.refusal(CashCommand::LinkMustMove {
        must_move_game_id: main,
        main_game_id: other,
    });
    assert_eq!(
        msg,
        "NLH 1/3 is the main game of must-move game NLH 1/2; it cannot also be a must-move game"
    );
    let msg = room.refusal(CashCommand::LinkMustMove {
        must_move_game_id: other,
        main_game_id: main,
    });
    assert_eq!(msg, "NLH 1/3 already has must-move game NLH 1/2");
    room.ok(CashCommand::UnlinkMustMove {
        must_move_game_id: mm,
    });
    let msg = room.refusal(CashCommand::UnlinkMustMove {
        must_move_game_id: mm,
    });
    assert_eq!(msg, "NLH 1/2 is not a must-move game");
}

// ---- tables and seats ----

#[test]
fn table_numbers_are_unique_in_the_room() {
    let mut room = Room::new();
    let nlh = room.game("NLH", 1, 3);
    let plo = room.game("PLO", 2, 5);
    room.table(4, 9, nlh);
    let msg = room.refusal(CashCommand::AddTable {
        number: 4,
        seat_count: 6,
        game_id: plo,
    });
    assert_eq!(msg, "table 4 already exists");
}

#[test]
fn seat_count_outside_two_to_twelve_is_refused() {
    let mut room = Room::new();
    let nlh = room.game("NLH", 1, 3);
    for seat_count in [0, 1, 13] {
        let msg = room.refusal(CashCommand::AddTable {
            number: 4,
            seat_count,
            game_id: nlh,
        });
        assert_eq!(msg, format!("a table has 2 to 12 seats, not {seat_count}"));
    }
}

#[test]
fn seating_at_a_closed_table_is_refused() {
    let mut room = Room::new();
    let nlh = room.game("NLH", 1, 3);
    let t = room.table(4, 9, nlh);
    let msg = room.refusal(CashCommand::SeatPlayer {
        table_id: t,
        seat: None,
        name: "Ana".into(),
        player_id: None,
    });
    assert_eq!(msg, "table 4 is closed");
}

#[test]
fn walk_in_takes_the_lowest_free_seat() {
    let mut room = Room::new();
    let nlh = room.game("NLH", 1, 3);
    let t = room.open_table(4, 9, nlh);
    room.seat(t, Some(1), "Ana");
    room.seat(t, Some(3), "Bob");
    room.seat(t, None, "Cy");
    assert_eq!(room.occupant(t, 2).map(|o| o.name.as_str()), Some("Cy"));
}

#[test]
fn full_table_has_no_open_seat() {
    let mut room = Room::new();
    let nlh = room.game("NLH", 1, 3);
    let t = room.open_table(4, 2, nlh);
    room.seat(t, None, "Ana");
    room.seat(t, None, "Bob");
    let msg = room.refusal(CashCommand::SeatPlayer {
        table_id: t,
        seat: None,
        name: "Cy".into(),
        player_id: None,
    });
    assert_eq!(msg, "table 4 has no open seat");
}

#[test]
fn taken_seat_is_refused_naming_who_sits_there() {
    let mut room = Room::new();
    let nlh = room.game("NLH", 1, 3);
    let t = room.open_table(4, 9, nlh);
    room.seat(t, Some(3), "Bob");
    let msg = room.refusal(CashCommand::SeatPlayer {
        table_id: t,
        seat: Some(3),
        name: "Ana".into(),
        player_id: None,
    });
    assert_eq!(msg, "seat 3 at table 4 is taken by Bob");
    let msg = room.refusal(CashCommand::SeatPlayer {
        table_id: t,
        seat: Some(10),
        name: "Ana".into(),
        player_id: None,
    });
    assert_eq!(msg, "table 4 has seats 1 to 9; there is no seat 10");
}

#[test]
fn nobody_is_seated_twice_by_name_or_by_player_id() {
    let mut room = Room::new();
    let nlh = room.game("NLH", 1, 3);
    let plo = room.game("PLO", 2, 5);
    let t4 = room.open_table(4, 9, nlh);
    let t7 = room.open_table(7, 9, plo);
    room.seat(t4, Some(2), "Ana Martins");
    let msg = room.refusal(CashCommand::SeatPlayer {
        table_id: t7,
        seat: None,
        name: "ana  martins".into(),
        player_id: None,
    });
    assert_eq!(msg, "ana martins is already seated at table 4, seat 2");
    room.ok(CashCommand::SeatPlayer {
        table_id: t4,
        seat: Some(5),
        name: "Robert".into(),
        player_id: Some(player(9)),
    });
    let msg = room.refusal(CashCommand::SeatPlayer {
        table_id: t7,
        seat: None,
        name: "Bob".into(),
        player_id: Some(player(9)),
    });
    assert_eq!(msg, "Bob is already seated at table 4, seat 5");
}

#[test]
fn two_players_with_the_same_name_but_different_ids_may_both_sit() {
    let mut room = Room::new();
    let nlh = room.game("NLH", 1, 3);
    let t = room.open_table(4, 9, nlh);
    for id in [1, 2] {
        room.ok(CashCommand::SeatPlayer {
            table_id: t,
            seat: None,
            name: "Ana".into(),
            player_id: Some(player(id)),
        });
    }
    assert_eq!(room.state.tables[&t].seats.len(), 2);
}

#[test]
fn table_with_players_cannot_close_and_empty_one_can() {
    let mut room = Room::new();
    let nlh = room.game("NLH", 1, 3);
    let t = room.open_table(4, 9, nlh);
    room.seat(t, Some(1), "Ana");
    room.seat(t, Some(2), "Bob");
    let msg = room.refusal(CashCommand::CloseTable { table_id: t });
    assert_eq!(
        msg,
        "table 4 still has 2 players seated; unseat or move everyone first"
    );
    room.ok(CashCommand::UnseatPlayer {
        table_id: t,
        seat: 1,
    });
    room.ok(CashCommand::UnseatPlayer {
        table_id: t,
        seat: 2,
    });
    let msg = room.refusal(CashCommand::UnseatPlayer {
        table_id: t,
        seat: 2,
    });
    assert_eq!(msg, "seat 2 at table 4 is empty");
    room.ok(CashCommand::CloseTable { table_id: t });
    assert!(!room.state.is_running(nlh));
    let msg = room.refusal(CashCommand::CloseTable { table_id: t });
    assert_eq!(msg, "table 4 is already closed");
}

#[test]
fn table_change_within_a_game_keeps_time_in_game() {
    let mut room = Room::new();
    let nlh = room.game("NLH", 1, 3);
    let t4 = room.open_table(4, 9, nlh);
    let t5 = room.open_table(5, 9, nlh);
    room.seat(t4, Some(1), "Ana");
    let since = room.now;
    room.minutes(30);
    room.ok(CashCommand::MovePlayer {
        from_table_id: t4,
        from_seat: 1,
        to_table_id: t5,
        to_seat: Some(6),
    });
    assert!(room.occupant(t4, 1).is_none());
    let ana = room.occupant(t5, 6).unwrap();
    assert_eq!(ana.in_game_since, since);
    assert_eq!(ana.seated_at, room.now);
}

#[test]
fn moving_to_a_table_of_an_unrelated_game_is_refused() {
    let mut room = Room::new();
    let nlh = room.game("NLH", 1, 3);
    let plo = room.game("PLO", 2, 5);
    let t4 = room.open_table(4, 9, nlh);
    let t7 = room.open_table(7, 9, plo);
    room.seat(t4, Some(1), "Ana");
    let msg = room.refusal(CashCommand::MovePlayer {
        from_table_id: t4,
        from_seat: 1,
        to_table_id: t7,
        to_seat: None,
    });
    assert_eq!(msg, "Ana plays NLH 1/3; table 7 deals PLO 2/5");
}

// ---- interest lists and waiting lists ----

#[test]
fn interest_list_becomes_the_waiting_list_in_the_same_order_when_a_table_opens() {
    let mut room = Room::new();
    let plo = room.game("PLO", 2, 5);
    for name in ["Ana", "Bob", "Cy"] {
        room.join(plo, name);
    }
    let before = board(&room.state, room.now);
    assert_eq!(before.len(), 1);
    assert_eq!(before[0].kind, ListKind::InterestList);
    room.open_table(7, 6, plo);
    let after = board(&room.state, room.now);
    assert_eq!(after[0].kind, ListKind::WaitingList);
    let order: Vec<_> = after[0]
        .entries
        .iter()
        .map(|e| (e.position, e.name.clone()))
        .collect();
    assert_eq!(
        order,
        vec![(1, "Ana".into()), (2, "Bob".into()), (3, "Cy".into())]
    );
}

#[test]
fn same_person_may_wait_for_several_games_but_not_twice_for_one() {
    let mut room = Room::new();
    let nlh = room.game("NLH", 1, 3);
    let plo = room.game("PLO", 2, 5);
    room.join(nlh, "Bob");
    room.join(nlh, "Cy");
    room.join(nlh, "Ana");
    room.join(plo, "Ana");
    let msg = room.refusal(CashCommand::JoinWaitlist {
        game_id: nlh,
        name: " ana ".into(),
        phone: Some("555 0100".into()),
        player_id: None,
    });
    assert_eq!(msg, "Ana is already on the NLH 1/3 list at position 3");
}

#[test]
fn same_player_id_under_another_name_is_still_on_the_list() {
    let mut room = Room::new();
    let nlh = room.game("NLH", 1, 3);
    room.join_as(nlh, "Robert", Some(player(7)));
    let msg = room.refusal(CashCommand::JoinWaitlist {
        game_id: nlh,
        name: "Bob".into(),
        phone: None,
        player_id: Some(player(7)),
    });
    assert_eq!(msg, "Robert is already on the NLH 1/3 list at position 1");
}

#[test]
fn player_already_in_the_game_cannot_join_its_list() {
    let mut room = Room::new();
    let nlh = room.game("NLH", 1, 3);
    let t = room.open_table(4, 9, nlh);
    room.seat(t, Some(2), "Ana");
    let msg = room.refusal(CashCommand::JoinWaitlist {
        game_id: nlh,
        name: "Ana".into(),
        phone: None,
        player_id: None,
    });
    assert_eq!(msg, "Ana is already playing NLH 1/3 at table 4, seat 2");
}

#[test]
fn bad_names_and_phones_are_refused() {
    let mut room = Room::new();
    let nlh = room.game("NLH", 1, 3);
    let msg = room.refusal(CashCommand::JoinWaitlist {
        game_id: nlh,
        name: "   ".into(),
        phone: None,
        player_id: None,
    });
    assert_eq!(msg, "the player's name is empty");
    let msg = room.refusal(CashCommand::JoinWaitlist {
        game_id: nlh,
        name: "Ana".into(),
        phone: Some("call me".into()),
        player_id: None,
    });
    assert_eq!(msg, "\"call me\" is not a phone number");
    let blank_phone = room.ok(CashCommand::JoinWaitlist {
        game_id: nlh,
        name: "Ana".into(),
        phone: Some("  ".into()),
        player_id: None,
    });
    assert!(matches!(
        blank_phone.as_slice(),
        [CashEvent::PlayerJoinedWaitlist { phone: None, .. }]
    ));
}

#[test]
fn removing_someone_moves_everyone_behind_up_one() {
    let mut room = Room::new();
    let nlh = room.game("NLH", 1, 3);
    let ids: Vec<_> = ["Ana", "Bob", "Cy", "Dee"]
        .iter()
        .map(|n| room.join(nlh, n))
        .collect();
    room.ok(CashCommand::RemoveFromWaitlist { entry_id: ids[1] });
    assert_eq!(room.names(nlh), vec!["Ana", "Cy", "Dee"]);
    assert_eq!(room.state.position(ids[2]), Some(2));
    assert_eq!(room.state.position(ids[3]), Some(3));
    assert_eq!(room.state.position(ids[1]), None);
    let msg = room.refusal(CashCommand::RemoveFromWaitlist { entry_id: ids[1] });
    assert_eq!(msg, format!("waiting list entry {} not found", ids[1]));
}

#[test]
fn calling_from_an_interest_list_is_refused() {
    let mut room = Room::new();
    let plo = room.game("PLO", 2, 5);
    let ana = room.join(plo, "Ana");
    let msg = room.refusal(CashCommand::CallPlayer { entry_id: ana });
    assert_eq!(
        msg,
        "PLO 2/5 has no open table, so its list is an interest list; open a table before calling Ana"
    );
}

#[test]
fn call_records_the_time_and_a_second_call_is_refused() {
    let mut room = Room::new();
    let nlh = room.game("NLH", 1, 3);
    room.open_table(4, 9, nlh);
    let ana = room.join(nlh, "Ana");
    let called_at = room.now;
    room.ok(CashCommand::CallPlayer { entry_id: ana });
    assert_eq!(room.state.list(nlh)[0].called_at, Some(called_at));
    room.minutes(3);
    let msg = room.refusal(CashCommand::CallPlayer { entry_id: ana });
    assert_eq!(msg, "Ana was already called for NLH 1/3 3 minutes ago");
}

#[test]
fn undone_call_clears_the_call_and_cannot_be_undone_twice() {
    let mut room = Room::new();
    let nlh = room.game("NLH", 1, 3);
    room.open_table(4, 9, nlh);
    let ana = room.join(nlh, "Ana");
    room.ok(CashCommand::CallPlayer { entry_id: ana });
    room.ok(CashCommand::UndoCall { entry_id: ana });
    assert_eq!(room.state.list(nlh)[0].called_at, None);
    let msg = room.refusal(CashCommand::UndoCall { entry_id: ana });
    assert_eq!(msg, "Ana has not been called for NLH 1/3");
    room.minutes(60);
    assert!(room.ok(CashCommand::ExpireCalls {}).is_empty());
}

#[test]
fn expired_call_goes_to_the_end_of_the_list_exactly_at_the_response_time() {
    let mut room = Room::new();
    let nlh = room.game("NLH", 1, 3);
    room.open_table(4, 9, nlh);
    let ana = room.join(nlh, "Ana");
    let bob = room.join(nlh, "Bob");
    room.join(nlh, "Cy");
    room.ok(CashCommand::CallPlayer { entry_id: ana });
    room.minutes(2);
    room.ok(CashCommand::CallPlayer { entry_id: bob });
    room.now = room.now.plus_millis(3 * MINUTE_MS - 1);
    assert!(room.ok(CashCommand::ExpireCalls {}).is_empty());
    room.now = room.now.plus_millis(1);
    let events = room.ok(CashCommand::ExpireCalls {});
    assert_eq!(
        events,
        vec![CashEvent::CallExpired {
            entry_id: ana,
            outcome: MissedCallOutcome::MovedToEnd
        }]
    );
    assert_eq!(room.names(nlh), vec!["Bob", "Cy", "Ana"]);
    let moved = &room.state.list(nlh)[2];
    assert_eq!(moved.called_at, None);
    assert_eq!(moved.missed_calls, 1);
}

#[test]
fn several_expired_calls_keep_their_order_at_the_end() {
    let mut room = Room::new();
    let nlh = room.game("NLH", 1, 3);
    room.open_table(4, 9, nlh);
    let ana = room.join(nlh, "Ana");
    let bob = room.join(nlh, "Bob");
    room.join(nlh, "Cy");
    room.ok(CashCommand::CallPlayer { entry_id: bob });
    room.ok(CashCommand::CallPlayer { entry_id: ana });
    room.minutes(10);
    assert_eq!(room.ok(CashCommand::ExpireCalls {}).len(), 2);
    assert_eq!(room.names(nlh), vec!["Cy", "Ana", "Bob"]);
}

#[test]
fn expired_call_takes_the_player_off_when_the_venue_says_so() {
    let mut room = Room::new();
    room.ok(CashCommand::ChangeSettings {
        settings: WaitlistSettings {
            on_missed_call: MissedCallPolicy::Remove,
            call_response_ms: 2 * MINUTE_MS,
            ..WaitlistSettings::default()
        },
    });
    let nlh = room.game("NLH", 1, 3);
    room.open_table(4, 9, nlh);
    let ana = room.join(nlh, "Ana");
    room.join(nlh, "Bob");
    room.ok(CashCommand::CallPlayer { entry_id: ana });
    room.minutes(2);
    room.ok(CashCommand::ExpireCalls {});
    assert_eq!(room.names(nlh), vec!["Bob"]);
}

#[test]
fn no_show_needs_a_call_and_follows_the_missed_call_setting() {
    let mut room = Room::new();
    let nlh = room.game("NLH", 1, 3);
    room.open_table(4, 9, nlh);
    let ana = room.join(nlh, "Ana");
    room.join(nlh, "Bob");
    let msg = room.refusal(CashCommand::MarkNoShow { entry_id: ana });
    assert_eq!(
        msg,
        "Ana has not been called for NLH 1/3, so cannot be a no-show"
    );
    room.ok(CashCommand::CallPlayer { entry_id: ana });
    room.ok(CashCommand::MarkNoShow { entry_id: ana });
    assert_eq!(room.names(nlh), vec!["Bob", "Ana"]);
}

#[test]
fn settings_out_of_range_are_refused() {
    let mut room = Room::new();
    let msg = room.refusal(CashCommand::ChangeSettings {
        settings: WaitlistSettings {
            call_response_ms: 0,
            ..WaitlistSettings::default()
        },
    });
    assert_eq!(
        msg,
        "the call response time must be between 1 second and 120 minutes"
    );
    let msg = room.refusal(CashCommand::ChangeSettings {
        settings: WaitlistSettings {
            turnover_sample: 1,
            ..WaitlistSettings::default()
        },
    });
    assert_eq!(
        msg,
        "the wait estimate needs between 2 and 50 recent seatings, not 1"
    );
}

// ---- seating from lists ----

#[test]
fn seating_from_the_list_takes_the_player_off_all_lists_by_default() {
    let mut room = Room::new();
    let nlh = room.game("NLH", 1, 3);
    let plo = room.game("PLO", 2, 5);
    let t = room.open_table(4, 9, nlh);
    let ana = room.join(nlh, "Ana");
    room.join(nlh, "Bob");
    room.join(plo, "Cy");
    room.join(plo, "Ana");
    room.ok(CashCommand::SeatFromWaitlist {
        entry_id: ana,
        table_id: t,
        seat: Some(5),
    });
    assert_eq!(room.occupant(t, 5).map(|o| o.name.as_str()), Some("Ana"));
    assert_eq!(room.names(nlh), vec!["Bob"]);
    assert_eq!(room.names(plo), vec!["Cy"]);
}

#[test]
fn seating_from_the_list_keeps_other_lists_when_the_venue_says_so() {
    let mut room = Room::new();
    room.ok(CashCommand::ChangeSettings {
        settings: WaitlistSettings {
            seat_removes_other_lists: false,
            ..WaitlistSettings::default()
        },
    });
    let nlh = room.game("NLH", 1, 3);
    let plo = room.game("PLO", 2, 5);
    let t = room.open_table(4, 9, nlh);
    let ana = room.join(nlh, "Ana");
    room.join(plo, "Ana");
    room.ok(CashCommand::SeatFromWaitlist {
        entry_id: ana,
        table_id: t,
        seat: None,
    });
    assert!(room.names(nlh).is_empty());
    assert_eq!(room.names(plo), vec!["Ana"]);
}

#[test]
fn walk_in_who_was_on_the_list_leaves_it() {
    let mut room = Room::new();
    room.ok(CashCommand::ChangeSettings {
        settings: WaitlistSettings {
            seat_removes_other_lists: false,
            ..WaitlistSettings::default()
        },
    });
    let nlh = room.game("NLH", 1, 3);
    let t = room.open_table(4, 9, nlh);
    room.join(nlh, "Ana");
    room.join(nlh, "Bob");
    room.seat(t, None, "ana");
    assert_eq!(room.names(nlh), vec!["Bob"]);
}

#[test]
fn list_player_cannot_be_seated_at_another_games_table() {
    let mut room = Room::new();
    let nlh = room.game("NLH", 1, 3);
    let plo = room.game("PLO", 2, 5);
    let t7 = room.open_table(7, 6, plo);
    let ana = room.join(nlh, "Ana");
    let msg = room.refusal(CashCommand::SeatFromWaitlist {
        entry_id: ana,
        table_id: t7,
        seat: None,
    });
    assert_eq!(msg, "Ana is on the NLH 1/3 list; table 7 deals PLO 2/5");
}

#[test]
fn list_player_already_seated_elsewhere_is_refused() {
    let mut room = Room::new();
    room.ok(CashCommand::ChangeSettings {
        settings: WaitlistSettings {
            seat_removes_other_lists: false,
            ..WaitlistSettings::default()
        },
    });
    let nlh = room.game("NLH", 1, 3);
    let plo = room.game("PLO", 2, 5);
    let t4 = room.open_table(4, 9, nlh);
    let t7 = room.open_table(7, 6, plo);
    let ana_nlh = room.join(nlh, "Ana");
    let ana_plo = room.join(plo, "Ana");
    room.ok(CashCommand::SeatFromWaitlist {
        entry_id: ana_plo,
        table_id: t7,
        seat: Some(2),
    });
    let msg = room.refusal(CashCommand::SeatFromWaitlist {
        entry_id: ana_nlh,
        table_id: t4,
        seat: None,
    });
    assert_eq!(msg, "Ana is already seated at table 7, seat 2");
}

// ---- must-move ----

struct MustMoveRoom {
    room: Room,
    main: GameId,
    main_table: TableId,
    mm_table: TableId,
}

/// NLH 1/3 main game (table 1, full but for seat 9) fed by must-move NLH 1/3 MM (table 2):
/// Ana moved into the must-move game first, then Bob.
fn must_move_room() -> MustMoveRoom {
    let mut room = Room::new();
    let main = room.game("NLH", 1, 3);
    let mm = match room
        .ok(CashCommand::CreateGame {
            game: "NLH".into(),
            small_blind: Money::units(1),
            big_blind: Money::units(3),
            min_buy_in: None,
            max_buy_in: None,
            name: Some("NLH 1/3 MM".into()),
        })
        .as_slice()
    {
        [CashEvent::GameCreated { game_id, .. }] => *game_id,
        other => panic!("unexpected {other:?}"),
    };
    room.ok(CashCommand::LinkMustMove {
        must_move_game_id: mm,
        main_game_id: main,
    });
    let main_table = room.open_table(1, 9, main);
    let mm_table = room.open_table(2, 9, mm);
    for seat in 1..=8 {
        room.seat(main_table, Some(seat), &format!("Regular {seat}"));
    }
    let bob = room.join(main, "Bob");
    let ana = room.join(main, "Ana");
    // The main list feeds the must-move table; Ana sits down first though listed second.
    room.ok(CashCommand::SeatFromWaitlist {
        entry_id: ana,
        table_id: mm_table,
        seat: Some(6),
    });
    room.minutes(5);
    room.ok(CashCommand::SeatFromWaitlist {
        entry_id: bob,
        table_id: mm_table,
        seat: Some(1),
    });
    room.join(main, "Cy");
    MustMoveRoom {
        room,
        main,
        main_table,
        mm_table,
    }
}

#[test]
fn must_move_queue_puts_the_longest_waiting_player_first() {
    let MustMoveRoom { room, main, .. } = must_move_room();
    let queue: Vec<_> = must_move_queue(&room.state, main)
        .into_iter()
        .map(|c| (c.name, c.table_number, c.seat))
        .collect();
    assert_eq!(queue, vec![("Ana".into(), 2, 6), ("Bob".into(), 2, 1)]);
}

#[test]
fn main_game_seat_from_the_list_is_refused_while_must_move_players_wait() {
    let MustMoveRoom {
        mut room,
        main,
        main_table,
        ..
    } = must_move_room();
    let cy = room.state.list(main)[0].id;
    let msg = room.refusal(CashCommand::SeatFromWaitlist {
        entry_id: cy,
        table_id: main_table,
        seat: None,
    });
    assert_eq!(
        msg,
        "a must-move player moves into NLH 1/3 first: Ana (table 2, seat 6) has waited longest"
    );
}

#[test]
fn only_the_longest_waiting_must_move_player_may_move_in() {
    let MustMoveRoom {
        mut room,
        main,
        main_table,
        mm_table,
    } = must_move_room();
    let msg = room.refusal(CashCommand::MovePlayer {
        from_table_id: mm_table,
        from_seat: 1,
        to_table_id: main_table,
        to_seat: None,
    });
    assert_eq!(
        msg,
        "Ana (table 2, seat 6) has waited longer in NLH 1/3 MM and moves to NLH 1/3 first"
    );
    room.minutes(20);
    room.ok(CashCommand::MovePlayer {
        from_table_id: mm_table,
        from_seat: 6,
        to_table_id: main_table,
        to_seat: None,
    });
    let ana = room.occupant(main_table, 9).unwrap();
    assert_eq!(ana.name, "Ana");
    assert_eq!(
        ana.in_game_since, room.now,
        "time in the main game starts now"
    );
    let queue = must_move_queue(&room.state, main);
    assert_eq!(queue.len(), 1);
    assert_eq!(queue[0].name, "Bob");
}

#[test]
fn main_game_seat_goes_to_the_list_once_the_must_move_game_is_empty() {
    let MustMoveRoom {
        mut room,
        main,
        main_table,
        mm_table,
    } = must_move_room();
    room.ok(CashCommand::UnseatPlayer {
        table_id: mm_table,
        seat: 6,
    });
    room.ok(CashCommand::UnseatPlayer {
        table_id: mm_table,
        seat: 1,
    });
    let cy = room.state.list(main)[0].id;
    room.ok(CashCommand::SeatFromWaitlist {
        entry_id: cy,
        table_id: main_table,
        seat: None,
    });
    assert_eq!(room.occupant(main_table, 9).unwrap().name, "Cy");
}

// ---- estimated wait ----

#[test]
fn estimated_wait_needs_two_seatings_from_the_list() {
    let mut room = Room::new();
    let nlh = room.game("NLH", 1, 3);
    let t = room.open_table(4, 9, nlh);
    let ana = room.join(nlh, "Ana");
    room.join(nlh, "Bob");
    assert_eq!(estimated_wait_ms(&room.state, nlh, 1, room.now), None);
    room.ok(CashCommand::SeatFromWaitlist {
        entry_id: ana,
        table_id: t,
        seat: None,
    });
    assert_eq!(estimated_wait_ms(&room.state, nlh, 1, room.now), None);
}

#[test]
fn estimated_wait_is_mean_seating_interval_times_position() {
    let mut room = Room::new();
    let nlh = room.game("NLH", 1, 3);
    let t = room.open_table(4, 9, nlh);
    for name in ["Ana", "Bob", "Cy", "Dee", "Eve"] {
        room.join(nlh, name);
    }
    for gap in [0, 10, 20] {
        room.minutes(gap);
        let first = room.state.list(nlh)[0].id;
        room.ok(CashCommand::SeatFromWaitlist {
            entry_id: first,
            table_id: t,
            seat: None,
        });
    }
    // Seatings 10 and 20 minutes apart: 15 minutes each.
    assert_eq!(
        estimated_wait_ms(&room.state, nlh, 2, room.now),
        Some(30 * MINUTE_MS)
    );
    let line = &board(&room.state, room.now)[0];
    assert_eq!(line.entries[1].estimated_wait_ms, Some(30 * MINUTE_MS));
    // Nobody seated for 45 minutes: the open gap counts, (30 + 45) / 3 = 25 minutes.
    room.minutes(45);
    assert_eq!(
        estimated_wait_ms(&room.state, nlh, 1, room.now),
        Some(25 * MINUTE_MS)
    );
}

#[test]
fn only_the_last_seatings_feed_the_estimate() {
    let mut room = Room::new();
    room.ok(CashCommand::ChangeSettings {
        settings: WaitlistSettings {
            turnover_sample: 2,
            ..WaitlistSettings::default()
        },
    });
    let nlh = room.game("NLH", 1, 3);
    let t = room.open_table(4, 9, nlh);
    for name in ["Ana", "Bob", "Cy", "Dee"] {
        room.join(nlh, name);
    }
    for gap in [0, 60, 4] {
        room.minutes(gap);
        let first = room.state.list(nlh)[0].id;
        room.ok(CashCommand::SeatFromWaitlist {
            entry_id: first,
            table_id: t,
            seat: None,
        });
    }
    assert_eq!(room.state.games[&nlh].recent_list_seatings.len(), 2);
    room.ok(CashCommand::ChangeSettings {
        settings: WaitlistSettings::default(),
    });
    assert_eq!(room.state.games[&nlh].recent_list_seatings.len(), 2);
    assert_eq!(
        estimated_wait_ms(&room.state, nlh, 1, room.now),
        Some(4 * MINUTE_MS)
    );
}

// ---- board ----

#[test]
fn board_shows_running_games_and_interest_lists_only() {
    let mut room = Room::new();
    let nlh = room.game("NLH", 1, 3);
    let plo = room.game("PLO", 2, 5);
    let idle = room.game("NLH", 5, 10);
    let closed = room.game("Stud", 1, 2);
    let t = room.open_table(4, 9, nlh);
    room.seat(t, None, "Zed");
    room.join(plo, "Ana Martins");
    room.join(closed, "Bob");
    room.ok(CashCommand::CloseGame { game_id: closed });
    let lines = board(&room.state, room.now);
    let shown: Vec<_> = lines
        .iter()
        .map(|l| (l.name.clone(), l.kind, l.open_tables, l.open_seats))
        .collect();
    assert_eq!(
        shown,
        vec![
            ("NLH 1/3".into(), ListKind::WaitingList, 1, 8),
            ("PLO 2/5".into(), ListKind::InterestList, 0, 0),
        ]
    );
    assert!(lines.iter().all(|l| l.game_id != idle));
    assert_eq!(lines[1].entries[0].name, "Ana M.");
    assert_eq!(lines[1].entries[0].estimated_wait_ms, None);
}

#[test]
fn board_shows_how_long_ago_a_player_was_called() {
    let mut room = Room::new();
    let nlh = room.game("NLH", 1, 3);
    room.open_table(4, 9, nlh);
    let ana = room.join(nlh, "Ana");
    let called_at = room.now;
    room.ok(CashCommand::CallPlayer { entry_id: ana });
    room.minutes(2);
    let entry = &board(&room.state, room.now)[0].entries[0];
    assert_eq!(entry.called_at, Some(called_at));
    assert_eq!(entry.called_for_ms, Some(2 * MINUTE_MS));
}

#[test]
fn board_marks_must_move_games_with_their_main_game() {
    let MustMoveRoom { room, .. } = must_move_room();
    let lines = board(&room.state, room.now);
    let mm = lines.iter().find(|l| l.name == "NLH 1/3 MM").unwrap();
    assert_eq!(mm.must_move_for.as_deref(), Some("NLH 1/3"));
}

#[test]
fn names_on_the_board_follow_the_privacy_setting() {
    assert_eq!(
        display_name("Ana Maria Martins", NameDisplay::Full),
        "Ana Maria Martins"
    );
    assert_eq!(
        display_name("Ana Maria martins", NameDisplay::FirstNameInitial),
        "Ana M."
    );
    assert_eq!(display_name("Ana", NameDisplay::FirstNameInitial), "Ana");
    assert_eq!(
        display_name("ana maria martins", NameDisplay::Initials),
        "A.M.M."
    );
    assert_eq!(display_name("", NameDisplay::Initials), "");
}

// ---- apply, ids and serde ----

#[test]
fn apply_ignores_events_about_unknown_things() {
    let mut state = CashState::default();
    let game_id = GameId(uuid::Uuid::from_u128(1));
    let table_id = TableId(uuid::Uuid::from_u128(2));
    let entry_id = WaitlistEntryId(uuid::Uuid::from_u128(3));
    let at = Timestamp::from_millis(0);
    let events = vec![
        CashEvent::GameRenamed {
            game_id,
            name: Some("x".into()),
        },
        CashEvent::GameClosed { game_id },
        CashEvent::TableOpened { table_id },
        CashEvent::PlayerSeated {
            table_id,
            seat: 1,
            name: "Ana".into(),
            player_id: None,
            at,
            from_entry: Some(entry_id),
            left_lists: vec![entry_id],
        },
        CashEvent::PlayerMoved {
            from_table_id: table_id,
            from_seat: 1,
            to_table_id: table_id,
            to_seat: 2,
            at,
            left_lists: vec![],
        },
        CashEvent::PlayerJoinedWaitlist {
            entry_id,
            game_id,
            name: "Ana".into(),
            phone: None,
            player_id: None,
            at,
        },
        CashEvent::PlayerCalled { entry_id, at },
        CashEvent::CallExpired {
            entry_id,
            outcome: MissedCallOutcome::MovedToEnd,
        },
        CashEvent::PlayerRemovedFromWaitlist { entry_id },
    ];
    for e in &events {
        apply(&mut state, e);
    }
    assert_eq!(state, CashState::default());
}

#[test]
fn apply_refuses_to_put_two_people_in_one_seat() {
    let mut room = Room::new();
    let nlh = room.game("NLH", 1, 3);
    let t = room.open_table(4, 9, nlh);
    room.seat(t, Some(3), "Bob");
    let forged = CashEvent::PlayerSeated {
        table_id: t,
        seat: 3,
        name: "Ana".into(),
        player_id: None,
        at: room.now,
        from_entry: None,
        left_lists: vec![],
    };
    apply(&mut room.state, &forged);
    assert_eq!(room.occupant(t, 3).unwrap().name, "Bob");
}

#[test]
fn same_seed_and_time_replay_the_same_ids() {
    let run = || {
        let mut room = Room::new();
        let nlh = room.game("NLH", 1, 3);
        (nlh, room.join(nlh, "Ana"))
    };
    assert_eq!(run(), run());
}

#[test]
fn commands_and_events_use_tagged_snake_case_json() {
    let cmd: CashCommand = serde_json::from_str(r#"{"type":"expire_calls"}"#).unwrap();
    assert_eq!(cmd, CashCommand::ExpireCalls {});
    let cmd = CashCommand::CallPlayer {
        entry_id: WaitlistEntryId(uuid::Uuid::from_u128(5)),
    };
    let json = serde_json::to_value(&cmd).unwrap();
    assert_eq!(json["type"], "call_player");
    let event = CashEvent::CallExpired {
        entry_id: WaitlistEntryId(uuid::Uuid::from_u128(5)),
        outcome: MissedCallOutcome::MovedToEnd,
    };
    let json = serde_json::to_value(&event).unwrap();
    assert_eq!(json["type"], "call_expired");
    assert_eq!(json["outcome"], "moved_to_end");
    assert_eq!(event.kind(), "cash.call_expired");
}

#[test]
fn state_survives_a_json_round_trip() {
    let MustMoveRoom { room, .. } = must_move_room();
    let json = serde_json::to_string(&room.state).unwrap();
    let back: CashState = serde_json::from_str(&json).unwrap();
    assert_eq!(back, room.state);
}

#[test]
fn event_kinds_are_distinct_and_prefixed() {
    let id = uuid::Uuid::from_u128(1);
    let samples = [
        CashEvent::GameClosed {
            game_id: GameId(id),
        },
        CashEvent::TableOpened {
            table_id: TableId(id),
        },
        CashEvent::PlayerCalled {
            entry_id: WaitlistEntryId(id),
            at: Timestamp::from_millis(0),
        },
        CashEvent::CallUndone {
            entry_id: WaitlistEntryId(id),
        },
    ];
    let kinds: std::collections::BTreeSet<_> = samples.iter().map(CashEvent::kind).collect();
    assert_eq!(kinds.len(), samples.len());
    assert!(kinds.iter().all(|k| k.starts_with("cash.")));
}

#[test]
fn apply_keeps_closed_tables_empty() {
    let mut room = Room::new();
    let nlh = room.game("NLH", 1, 3);
    let open = room.open_table(4, 9, nlh);
    let closed = room.table(5, 9, nlh);
    room.seat(open, Some(1), "Ana");
    let forged = [
        CashEvent::PlayerSeated {
            table_id: closed,
            seat: 1,
            name: "Bob".into(),
            player_id: None,
            at: room.now,
            from_entry: None,
            left_lists: vec![],
        },
        CashEvent::PlayerMoved {
            from_table_id: open,
            from_seat: 1,
            to_table_id: closed,
            to_seat: 2,
            at: room.now,
            left_lists: vec![],
        },
    ];
    for e in &forged {
        apply(&mut room.state, e);
    }
    assert!(room.state.tables[&closed].seats.is_empty());
    assert_eq!(room.occupant(open, 1).unwrap().name, "Ana");
}

#[test]
fn shrinking_the_turnover_sample_drops_the_oldest_seatings() {
    let mut room = Room::new();
    let nlh = room.game("NLH", 1, 3);
    let t = room.open_table(4, 9, nlh);
    for name in ["Ana", "Bob", "Cy", "Dee"] {
        room.join(nlh, name);
    }
    for gap in [0, 60, 4, 6] {
        room.minutes(gap);
        let first = room.state.list(nlh)[0].id;
        room.ok(CashCommand::SeatFromWaitlist {
            entry_id: first,
            table_id: t,
            seat: None,
        });
    }
    assert_eq!(room.state.games[&nlh].recent_list_seatings.len(), 4);
    room.ok(CashCommand::ChangeSettings {
        settings: WaitlistSettings {
            turnover_sample: 3,
            ..WaitlistSettings::default()
        },
    });
    // 4 and 6 minutes apart: the hour-long gap no longer counts.
    assert_eq!(
        estimated_wait_ms(&room.state, nlh, 1, room.now),
        Some(5 * MINUTE_MS)
    );
}
