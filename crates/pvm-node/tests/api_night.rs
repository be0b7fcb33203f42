//! A whole poker night through the REST API of a running node: first-run setup, a tournament
//! from a template with tables, registrations, clock control, rebuys and add-ons, busts with
//! undo/redo, seating (balance, break, final table, undo), payouts, a deal; a cash game with
//! its waiting list; screens on the HDMI display and an announcement.

mod common;

use common::{Api, TestNode, HDMI};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};

fn money(v: &Value) -> i64 {
    v.as_i64().unwrap_or_else(|| panic!("not an amount: {v}"))
}

async fn detail(api: &Api, t: &str) -> Value {
    api.get(&format!("/api/v1/tournaments/{t}")).await.ok()
}

/// entry id → (table id, seat) for every seated entry.
fn seats(d: &Value) -> BTreeMap<String, (String, u64)> {
    let mut out = BTreeMap::new();
    for table in d["tournament"]["floor"]["tables"].as_array().unwrap() {
        for (seat, entry) in table["occupants"].as_object().unwrap() {
            out.insert(
                entry.as_str().unwrap().to_string(),
                (
                    table["id"].as_str().unwrap().to_string(),
                    seat.parse().unwrap(),
                ),
            );
        }
    }
    out
}

fn active(d: &Value) -> Vec<String> {
    d["tournament"]["entries"]
        .as_object()
        .unwrap()
        .values()
        .filter(|e| e["status"] == "active")
        .map(|e| e["id"].as_str().unwrap().to_string())
        .collect()
}

fn entry<'a>(d: &'a Value, id: &str) -> &'a Value {
    &d["tournament"]["entries"][id]
}

fn clock(d: &Value) -> &Value {
    &d["clock"]
}

/// What the payout table and the results add up to must be the prize pool, to the cent.
fn assert_money_adds_up(d: &Value) {
    let pool = money(&d["prize_pool"]["total"]);
    let payouts: i64 = d["payouts"].as_array().unwrap().iter().map(money).sum();
    assert_eq!(
        payouts, pool,
        "payout table vs prize pool: {}",
        d["payouts"]
    );
}

#[tokio::test]
async fn a_tournament_night_runs_through_the_api() {
    let node = TestNode::start().await;
    let anon = node.anonymous();
    assert_eq!(anon.get("/api/v1/setup").await.ok()["setup_required"], true);
    let admin = node.setup_admin().await;
    assert_eq!(
        anon.get("/api/v1/setup").await.ok()["setup_required"],
        false
    );
    let floor = node.user(&admin, "fran", "floor").await;
    let dealer = node.user(&admin, "dave", "dealer").await;

    // A tournament from a template, with rebuys, an add-on and re-entry.
    let templates = anon.get("/api/v1/structures/templates").await.ok();
    let ids: Vec<&str> = templates
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["turbo", "standard", "deep_stack"]);
    let mut config = common::config("Friday Deepstack");
    config["reentry"] = json!({"max_per_player": 1});
    config["rebuy"] = json!({"price": 10000, "fee": 1000, "chips": 20000, "until_level": 2,
        "max_stack": null, "max_per_entry": 2});
    config["addon"] =
        json!({"price": 5000, "fee": 500, "chips": 30000, "from_level": 1, "until_level": 4});
    let t = floor
        .post(
            "/api/v1/tournaments",
            json!({"config": config, "template": "turbo"}),
        )
        .await
        .created();
    let tp = format!("/api/v1/tournaments/{t}");
    let d = detail(&anon, &t).await;
    assert_eq!(d["tournament"]["config"]["name"], "Friday Deepstack");
    assert_eq!(
        d["tournament"]["structure"], templates[0]["structure"],
        "the turbo template's structure"
    );
    let listed = anon.get("/api/v1/tournaments").await.ok();
    assert_eq!(listed[0]["id"], t.as_str());

    // Two tables of six, then players: one already known to the venue, nine new.
    let mut tables = Vec::new();
    for number in [1, 2] {
        tables.push(
            floor
                .post(
                    &format!("{tp}/tables"),
                    json!({"number": number, "seats": 6}),
                )
                .await
                .created(),
        );
    }
    let known = floor
        .post(
            "/api/v1/players",
            json!({"name": "Vera Known", "phone": "555 0100"}),
        )
        .await
        .created();
    let r = floor
        .post(&format!("{tp}/entries"), json!({"player_id": known}))
        .await
        .ok();
    let kinds: Vec<&str> = r["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        ["tournament.entry_registered", "tournament.seats_changed"],
        "registering draws a seat"
    );
    let vera = r["created_id"].as_str().unwrap().to_string();
    let mut entries = vec![vera.clone()];
    for name in [
        "Ann", "Ben", "Cat", "Dan", "Eve", "Fay", "Gus", "Hal", "Ivy",
    ] {
        entries.push(common::register_new(&floor, &t, name).await);
    }
    let d = detail(&anon, &t).await;
    assert_eq!(d["tournament"]["entries"].as_object().unwrap().len(), 10);
    assert_eq!(entry(&d, &vera)["player_name"], "Vera Known");
    let seated = seats(&d);
    assert_eq!(
        seated.keys().cloned().collect::<BTreeSet<_>>(),
        entries.iter().cloned().collect::<BTreeSet<_>>(),
        "every entry drew a seat"
    );
    let per_table: Vec<usize> = tables
        .iter()
        .map(|id| seated.values().filter(|(t, _)| t == id).count())
        .collect();
    assert_eq!(per_table.iter().sum::<usize>(), 10);
    // A new player is also in the venue's player list.
    let found = floor.get("/api/v1/players?q=Ivy").await.ok();
    assert_eq!(found.as_array().unwrap().len(), 1);
    // Same player twice while their entry is live: refused.
    floor
        .post(&format!("{tp}/entries"), json!({"player_id": known}))
        .await
        .error(StatusCode::CONFLICT, "conflict");

    // The clock.
    assert_eq!(clock(&d)["status"], "not_started");
    floor.act(&format!("{tp}/clock/start")).await.ok();
    let d = detail(&anon, &t).await;
    assert_eq!(clock(&d)["status"], "running");
    assert_eq!(clock(&d)["level_number"], 1);
    dealer.act(&format!("{tp}/clock/pause")).await.ok();
    let paused = detail(&anon, &t).await;
    assert_eq!(clock(&paused)["status"], "paused");
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    let still = detail(&anon, &t).await;
    assert_eq!(
        clock(&still)["remaining_ms"],
        clock(&paused)["remaining_ms"],
        "no time passes while paused"
    );
    dealer.act(&format!("{tp}/clock/resume")).await.ok();
    floor.act(&format!("{tp}/clock/next")).await.ok();
    assert_eq!(clock(&detail(&anon, &t).await)["level_number"], 2);
    floor.act(&format!("{tp}/clock/previous")).await.ok();
    assert_eq!(clock(&detail(&anon, &t).await)["level_number"], 1);
    floor
        .post(&format!("{tp}/clock/set-time"), json!({"seconds": 300}))
        .await
        .ok();
    let left = money(&clock(&detail(&anon, &t).await)["remaining_ms"]);
    assert!(
        (295_000..=300_000).contains(&left),
        "set-time: {left} ms left"
    );
    floor
        .post(&format!("{tp}/clock/add-time"), json!({"seconds": 120}))
        .await
        .ok();
    let left = money(&clock(&detail(&anon, &t).await)["remaining_ms"]);
    assert!(
        (415_000..=420_000).contains(&left),
        "add-time: {left} ms left"
    );

    // Rebuys and add-ons: each one grows the prize pool by its price less its fee.
    let pool = |d: &Value| money(&d["prize_pool"]["total"]);
    let before = pool(&detail(&anon, &t).await);
    assert_eq!(before, 10 * 9000);
    floor
        .post(&format!("{tp}/entries/{}/rebuy", entries[1]), json!({}))
        .await
        .ok();
    floor
        .act(&format!("{tp}/entries/{}/addon", entries[2]))
        .await
        .ok();
    floor
        .act(&format!("{tp}/entries/{}/addon", entries[2]))
        .await
        .error(StatusCode::CONFLICT, "refused");
    let d = detail(&anon, &t).await;
    assert_eq!(pool(&d), before + 9000 + 4500);
    assert_eq!(entry(&d, &entries[1])["rebuys"], 1);
    assert_eq!(entry(&d, &entries[2])["addon"], true);
    assert_money_adds_up(&d);

    // Busts. First make one table short: bust three players from the smaller table (the draw
    // left 5/5 or 6/4), one hand at a time and then two on one hand with their stacks.
    let seated = seats(&d);
    let short_table = if per_table[0] <= per_table[1] {
        &tables[0]
    } else {
        &tables[1]
    };
    let at_short: Vec<String> = entries
        .iter()
        .filter(|e| &seated[*e].0 == short_table)
        .cloned()
        .collect();
    let killer = entries
        .iter()
        .find(|e| !at_short.contains(e))
        .unwrap()
        .clone();
    let r = floor
        .post(
            &format!("{tp}/busts"),
            json!({"busts": [{"entry_id": at_short[0]}], "eliminated_by": killer}),
        )
        .await
        .ok();
    assert_eq!(r["events"][0]["kind"], "tournament.players_busted");
    let d = detail(&anon, &t).await;
    assert_eq!(entry(&d, &at_short[0])["place"], 10);
    assert_eq!(entry(&d, &at_short[0])["eliminated_by"], killer.as_str());
    floor
        .post(
            &format!("{tp}/busts"),
            json!({"busts": [
                {"entry_id": at_short[1], "stack": 3000},
                {"entry_id": at_short[2], "stack": 8000}]}),
        )
        .await
        .ok();
    let d = detail(&anon, &t).await;
    assert_eq!(
        entry(&d, &at_short[2])["place"],
        8,
        "the bigger stack finishes better"
    );
    assert_eq!(entry(&d, &at_short[1])["place"], 9);
    // Undo the double bust, then redo it.
    floor.act(&format!("{tp}/busts/undo")).await.ok();
    let d = detail(&anon, &t).await;
    assert_eq!(entry(&d, &at_short[1])["status"], "active");
    assert_eq!(entry(&d, &at_short[2])["status"], "active");
    assert_eq!(
        seats(&d).get(&at_short[1]),
        seated.get(&at_short[1]),
        "undo puts the player back in their seat"
    );
    floor.act(&format!("{tp}/busts/redo")).await.ok();
    let d = detail(&anon, &t).await;
    assert_eq!(entry(&d, &at_short[1])["place"], 9);
    assert_eq!(active(&d).len(), 7);

    // The table that lost three is short: balancing moves players to it.
    let plan = anon.get(&format!("{tp}/seating/plan")).await.ok();
    let counts = |d: &Value| -> Vec<usize> {
        let s = seats(d);
        tables
            .iter()
            .map(|id| s.values().filter(|(t, _)| t == id).count())
            .collect()
    };
    let before_balance = counts(&d);
    let spread = |c: &[usize]| c.iter().max().unwrap() - c.iter().min().unwrap();
    assert!(spread(&before_balance) >= 3, "{before_balance:?}");
    assert!(
        !plan["balance"]["moves"].as_array().unwrap().is_empty(),
        "{plan}"
    );
    floor.act(&format!("{tp}/seating/balance")).await.ok();
    let after = counts(&detail(&anon, &t).await);
    assert!(
        spread(&after) <= 1,
        "balanced: {before_balance:?} -> {after:?}"
    );
    floor
        .act(&format!("{tp}/seating/balance"))
        .await
        .error(StatusCode::CONFLICT, "refused");
    // Seating undo puts them back where they were; redo balances again.
    floor.act(&format!("{tp}/seating/undo")).await.ok();
    assert_eq!(counts(&detail(&anon, &t).await), before_balance);
    floor.act(&format!("{tp}/seating/redo")).await.ok();
    assert_eq!(counts(&detail(&anon, &t).await), after);
    // Nobody is left standing: balancing and undo keep every active entry in a seat.
    let d = detail(&anon, &t).await;
    assert_eq!(seats(&d).len(), 7);

    // Two more busts: five left fit at one table of six, so a table breaks.
    let live = active(&d);
    floor
        .post(
            &format!("{tp}/busts"),
            json!({"busts": [{"entry_id": live[0]}]}),
        )
        .await
        .ok();
    floor
        .post(
            &format!("{tp}/busts"),
            json!({"busts": [{"entry_id": live[1]}]}),
        )
        .await
        .ok();
    let plan = anon.get(&format!("{tp}/seating/plan")).await.ok();
    let to_break = plan["table_to_break"]
        .as_str()
        .expect("a table to break")
        .to_string();
    floor
        .post(&format!("{tp}/seating/break-table"), json!({}))
        .await
        .ok();
    let d = detail(&anon, &t).await;
    let s = seats(&d);
    assert_eq!(s.len(), 5);
    assert!(s.values().all(|(table, _)| *table != to_break), "{s:?}");
    let final_table = s.values().next().unwrap().0.clone();
    // The final-table redraw, then undo: the seats are exactly as before the redraw.
    floor
        .post(
            &format!("{tp}/seating/final-table"),
            json!({"table_id": final_table}),
        )
        .await
        .ok();
    let redrawn = seats(&detail(&anon, &t).await);
    assert_eq!(redrawn.len(), 5);
    assert!(redrawn.values().all(|(table, _)| *table == final_table));
    floor.act(&format!("{tp}/seating/undo")).await.ok();
    assert_eq!(seats(&detail(&anon, &t).await), s);

    // Payouts so far, then a deal among the three left after two more busts.
    let d = detail(&anon, &t).await;
    assert_money_adds_up(&d);
    let live = active(&d);
    floor
        .post(
            &format!("{tp}/busts"),
            json!({"busts": [
                {"entry_id": live[0], "stack": 2000},
                {"entry_id": live[1], "stack": 1000}]}),
        )
        .await
        .ok();
    let d = detail(&anon, &t).await;
    let live = active(&d);
    assert_eq!(live.len(), 3);
    let stacks: Vec<Value> = live
        .iter()
        .zip([150_000, 90_000, 60_000])
        .map(|(e, chips)| json!({"entry_id": e, "chips": chips}))
        .collect();
    let deal = json!({"method": {"type": "icm"}, "stacks": stacks});
    let before = floor.seq().await;
    let preview = floor
        .post(&format!("{tp}/deal/preview"), deal.clone())
        .await
        .ok();
    assert_eq!(floor.seq().await, before, "a preview records nothing");
    let amounts: BTreeMap<String, i64> = preview["amounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["entry_id"].as_str().unwrap().to_string(),
                money(&a["amount"]),
            )
        })
        .collect();
    let payouts: Vec<i64> = d["payouts"].as_array().unwrap().iter().map(money).collect();
    let top3: i64 = payouts.iter().take(3).sum();
    assert_eq!(
        amounts.values().sum::<i64>(),
        top3,
        "the deal splits what is left"
    );
    assert!(
        amounts[&live[0]] > amounts[&live[2]],
        "more chips, more money"
    );
    floor.post(&format!("{tp}/deal"), deal).await.ok();
    let d = detail(&anon, &t).await;
    let recorded: BTreeMap<String, i64> = d["tournament"]["deal"]["amounts"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), money(v)))
        .collect();
    assert_eq!(recorded, amounts, "the deal recorded is the deal previewed");

    // Play it out: the results pay exactly the prize pool, the deal included.
    floor
        .post(
            &format!("{tp}/busts"),
            json!({"busts": [{"entry_id": live[2]}]}),
        )
        .await
        .ok();
    floor
        .post(
            &format!("{tp}/busts"),
            json!({"busts": [{"entry_id": live[1]}]}),
        )
        .await
        .ok();
    let d = detail(&anon, &t).await;
    assert_eq!(d["tournament"]["status"], "finished");
    assert_eq!(entry(&d, &live[0])["place"], 1);
    let paid: i64 = d["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["paid"].as_i64())
        .sum();
    assert_eq!(
        paid,
        money(&d["prize_pool"]["total"]),
        "results: {}",
        d["results"]
    );
    for e in &live {
        let line = d["results"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["entry_id"] == e.as_str())
            .unwrap();
        assert_eq!(
            money(&line["paid"]),
            amounts[e],
            "a dealt player is paid the deal"
        );
    }
    let payouts_view = anon.get(&format!("{tp}/payouts")).await.ok();
    assert_eq!(payouts_view["results"], d["results"]);
}

#[tokio::test]
async fn a_deal_recorded_matches_its_preview_whatever_the_venue_rounding() {
    let node = TestNode::start().await;
    let admin = node.setup_admin().await;
    let mut venue = admin.get("/api/v1/venue").await.ok();
    venue["rounding_unit"] = json!(500);
    admin.put("/api/v1/venue", venue).await.ok();
    let t = common::create_tournament(&admin, common::config("Rounded")).await;
    let tp = format!("/api/v1/tournaments/{t}");
    let mut entries = Vec::new();
    for i in 0..23 {
        entries.push(common::register_new(&admin, &t, &format!("Player {i}")).await);
    }
    admin.act(&format!("{tp}/clock/start")).await.ok();
    for e in &entries[3..] {
        admin
            .post(&format!("{tp}/busts"), json!({"busts": [{"entry_id": e}]}))
            .await
            .ok();
    }
    let stacks: Vec<Value> = entries[..3]
        .iter()
        .zip([170_000, 170_000, 120_000])
        .map(|(e, chips)| json!({"entry_id": e, "chips": chips}))
        .collect();
    let deal = json!({"method": {"type": "icm"}, "stacks": stacks});
    let preview = admin
        .post(&format!("{tp}/deal/preview"), deal.clone())
        .await
        .ok();
    admin.post(&format!("{tp}/deal"), deal).await.ok();
    let d = detail(&admin, &t).await;
    for a in preview["amounts"].as_array().unwrap() {
        let id = a["entry_id"].as_str().unwrap();
        assert_eq!(
            d["tournament"]["deal"]["amounts"][id], a["amount"],
            "preview {preview} vs recorded {}",
            d["tournament"]["deal"]
        );
    }
    for e in &entries[1..3] {
        admin
            .post(&format!("{tp}/busts"), json!({"busts": [{"entry_id": e}]}))
            .await
            .ok();
    }
    let d = detail(&admin, &t).await;
    let paid: i64 = d["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["paid"].as_i64())
        .sum();
    assert_eq!(
        paid,
        money(&d["prize_pool"]["total"]),
        "results: {}",
        d["results"]
    );
}

#[tokio::test]
async fn a_cash_game_runs_its_waiting_list_and_the_board_shows_running_games() {
    let node = TestNode::start().await;
    let admin = node.setup_admin().await;
    let floor = node.user(&admin, "fran", "floor").await;
    let anon = node.anonymous();
    let nlh = floor
        .post(
            "/api/v1/cash/games",
            json!({"game": "NLH", "small_blind": 100, "big_blind": 300}),
        )
        .await
        .created();
    let plo = floor
        .post(
            "/api/v1/cash/games",
            json!({"game": "PLO", "small_blind": 200, "big_blind": 500}),
        )
        .await
        .created();
    let table = floor
        .post(
            "/api/v1/cash/tables",
            json!({"number": 7, "seat_count": 2, "game_id": nlh}),
        )
        .await
        .created();
    // A game with nothing open and nobody interested is not on the board.
    assert_eq!(anon.get("/api/v1/cash/board").await.ok(), json!([]));
    let alice = floor
        .post(
            "/api/v1/cash/waitlist",
            json!({"game_id": nlh, "name": "Alice", "phone": "555 0101"}),
        )
        .await
        .created();
    let board = anon.get("/api/v1/cash/board").await.ok();
    assert_eq!(board[0]["kind"], "interest_list", "{board}");
    floor
        .act(&format!("/api/v1/cash/tables/{table}/open"))
        .await
        .ok();
    let bob = floor
        .post(
            "/api/v1/cash/waitlist",
            json!({"game_id": nlh, "name": "Bob"}),
        )
        .await
        .created();
    let cy = floor
        .post(
            "/api/v1/cash/waitlist",
            json!({"game_id": nlh, "name": "Cy"}),
        )
        .await
        .created();
    let board = anon.get("/api/v1/cash/board").await.ok();
    let games: Vec<&Value> = board.as_array().unwrap().iter().collect();
    assert_eq!(games.len(), 1, "only the running game: {board}");
    assert_eq!(games[0]["game_id"], nlh.as_str());
    assert_eq!(games[0]["kind"], "waiting_list");
    assert_eq!(games[0]["open_tables"], 1);
    let names: Vec<&str> = games[0]["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert_eq!(names.len(), 3);
    assert!(
        !board.to_string().contains("555 0101"),
        "no phone numbers on the board"
    );
    assert!(!board.to_string().contains(plo.as_str()));

    // Alice is called and seated; Bob is called and does not come.
    floor
        .act(&format!("/api/v1/cash/waitlist/{alice}/call"))
        .await
        .ok();
    floor
        .post(
            &format!("/api/v1/cash/waitlist/{alice}/seat"),
            json!({"table_id": table}),
        )
        .await
        .ok();
    floor
        .act(&format!("/api/v1/cash/waitlist/{bob}/call"))
        .await
        .ok();
    floor
        .act(&format!("/api/v1/cash/waitlist/{bob}/no-show"))
        .await
        .ok();
    let cash = floor.get("/api/v1/cash").await.ok();
    assert_eq!(cash["tables"][&table]["seats"]["1"]["name"], "Alice");
    let list: Vec<&Value> = cash["waitlists"][&nlh].as_array().unwrap().iter().collect();
    assert!(
        list.iter().all(|e| e["id"] != alice.as_str()),
        "Alice left the list"
    );
    let bob_line = list.iter().find(|e| e["id"] == bob.as_str());
    if let Some(b) = bob_line {
        assert_eq!(b["missed_calls"], 1);
        assert!(b["called_at"].is_null());
        assert_eq!(
            list.last().unwrap()["id"],
            bob.as_str(),
            "a no-show goes to the end"
        );
    }
    assert_eq!(list[0]["id"], cy.as_str());
    // Seating someone uncalled at a full table is refused with the reason.
    floor
        .post(
            "/api/v1/cash/tables/{table}/seats"
                .replace("{table}", &table)
                .as_str(),
            json!({"name": "Walk In"}),
        )
        .await
        .ok();
    let r = floor
        .post(
            &format!("/api/v1/cash/waitlist/{cy}/seat"),
            json!({"table_id": table}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.text);
    // Closing the table takes the game off the board again once its list is empty.
    floor
        .delete(&format!("/api/v1/cash/tables/{table}/seats/1"))
        .await
        .ok();
    floor
        .delete(&format!("/api/v1/cash/tables/{table}/seats/2"))
        .await
        .ok();
    floor
        .act(&format!("/api/v1/cash/tables/{table}/close"))
        .await
        .ok();
    let board = anon.get("/api/v1/cash/board").await.ok();
    assert!(
        board
            .as_array()
            .unwrap()
            .iter()
            .all(|g| g["kind"] != "waiting_list"),
        "{board}"
    );
}

#[tokio::test]
async fn screens_on_the_hdmi_display_show_the_clock_and_announcements() {
    let node = TestNode::start().await;
    let admin = node.setup_admin().await;
    let anon = node.anonymous();
    let t = common::create_tournament(&admin, common::config("Clock Show")).await;
    common::register_new(&admin, &t, "Ann").await;
    admin
        .act(&format!("/api/v1/tournaments/{t}/clock/start"))
        .await
        .ok();

    let displays = anon.get("/api/v1/displays").await.ok();
    assert!(displays.as_array().unwrap().iter().any(|d| d["id"] == HDMI));
    let clock_screen = admin
        .post(
            "/api/v1/screens",
            json!({"name": "Main clock", "kind": {"type": "tournament_clock", "tournament_id": t}}),
        )
        .await
        .created();
    let list_screen = admin
        .post(
            "/api/v1/screens",
            json!({"name": "Lists", "kind": {"type": "waiting_list"}}),
        )
        .await
        .created();
    assert_eq!(
        anon.get("/api/v1/screens")
            .await
            .ok()
            .as_array()
            .unwrap()
            .len(),
        2
    );

    // Nothing assigned yet; then the list screen; then the clock: the view follows.
    let view = anon
        .get(&format!("/api/v1/displays/{HDMI}/view"))
        .await
        .ok();
    assert_eq!(view["screen_id"], Value::Null, "{view}");
    admin
        .put(
            &format!("/api/v1/displays/{HDMI}/screen"),
            json!({"screen_id": list_screen}),
        )
        .await
        .ok();
    let view = anon
        .get(&format!("/api/v1/displays/{HDMI}/view"))
        .await
        .ok();
    assert_eq!(view["screen_id"], list_screen.as_str());
    assert_eq!(view["content"]["type"], "waiting_list", "{view}");
    admin
        .put(
            &format!("/api/v1/displays/{HDMI}/screen"),
            json!({"screen_id": clock_screen}),
        )
        .await
        .ok();
    let view = anon
        .get(&format!("/api/v1/displays/{HDMI}/view"))
        .await
        .ok();
    assert_eq!(view["display_id"], HDMI);
    assert_eq!(view["screen_id"], clock_screen.as_str());
    let content = &view["content"];
    assert_eq!(content["type"], "clock", "{view}");
    assert_eq!(content["tournament_id"], t.as_str());
    assert_eq!(content["tournament_name"], "Clock Show");
    assert_eq!(content["running"], true);
    assert!(!content["segments"].as_array().unwrap().is_empty());
    assert!(money(&content["remaining_ms"]) > 0);
    // The other screen has its own view.
    let lists = anon
        .get(&format!("/api/v1/screens/{list_screen}/view"))
        .await
        .ok();
    assert_eq!(lists["content"]["type"], "waiting_list", "{lists}");

    // An announcement shows on the display until it is cleared.
    let a = admin
        .post(
            "/api/v1/announcements",
            json!({"text": "Dinner break at 9", "style": "overlay", "duration_secs": 600}),
        )
        .await
        .created();
    let active = anon.get("/api/v1/announcements").await.ok();
    assert_eq!(active["active"][0]["id"], a.as_str());
    let view = anon
        .get(&format!("/api/v1/displays/{HDMI}/view"))
        .await
        .ok();
    assert!(
        view["announcements"]
            .to_string()
            .contains("Dinner break at 9"),
        "{view}"
    );
    admin
        .delete(&format!("/api/v1/announcements/{a}"))
        .await
        .ok();
    assert_eq!(
        anon.get("/api/v1/announcements").await.ok()["active"],
        json!([])
    );
    let view = anon
        .get(&format!("/api/v1/displays/{HDMI}/view"))
        .await
        .ok();
    assert_eq!(view["announcements"], json!([]));
    // A screen that a display shows cannot be deleted from under it.
    let r = admin
        .delete(&format!("/api/v1/screens/{clock_screen}"))
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.text);
}
